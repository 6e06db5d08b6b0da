#!/usr/bin/env bash
# Checks that the declared MSRV (`rust-version` in the workspace Cargo.toml) is not below the
# `rust-version` any dependency in the resolved graph declares: all features, dev-dependencies
# too (the tests build with it), the dependencies of this host's target. rustup cannot install
# an older toolchain here, so `cargo +<msrv> check` is not run; this is the bound the
# dependencies set (clippy's `incompatible_msrv` lint covers pgbulk's own code).
# Needs Node.js (already needed by scripts/install-pg.sh) to read cargo metadata's JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
cargo metadata --format-version 1 --all-features --filter-platform "$host" | node -e '
  const meta = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const ours = new Set(meta.workspace_members);
  const key = v => v.split(".").map(Number).concat([0, 0, 0]).slice(0, 3);
  const cmp = (a, b) => { for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i]; return 0; };
  // Only packages in the resolved graph (cargo metadata also lists unused optional ones).
  const used = new Set(meta.resolve.nodes.map(n => n.id));
  let declared = null, needed = [0, 0, 0], by = [];
  for (const p of meta.packages) {
    if (!used.has(p.id) || !p.rust_version) continue;
    if (ours.has(p.id)) { declared = p.rust_version; continue; }
    const c = cmp(key(p.rust_version), needed);
    if (c > 0) { needed = key(p.rust_version); by = []; }
    if (c >= 0) by.push(`${p.name} ${p.version}`);
  }
  if (!declared) { console.error("check-msrv: the workspace declares no rust-version"); process.exit(1); }
  const need = needed.join(".");
  if (cmp(key(declared), needed) < 0) {
    console.error(`check-msrv: rust-version = "${declared}" is below ${need}, which ${by.join(", ")} declare(s)`);
    process.exit(1);
  }
  console.log(`check-msrv: rust-version = "${declared}"; the highest a dependency declares is ${need} (${by.join(", ")})`);
'
