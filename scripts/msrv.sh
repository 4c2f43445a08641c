#!/usr/bin/env bash
# The MSRV stated in Cargo.toml (rust-version) must be at least every
# dependency's own rust-version. (clippy's incompatible_msrv lint, run with
# -D warnings, checks that our code uses no newer std API.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --locked --format-version 1 | python3 -c '
import json, sys
m = json.load(sys.stdin)
root = next(p for p in m["packages"] if p["name"] == "airlock")
ours = tuple(int(x) for x in root["rust_version"].split("."))
used = {n["id"] for n in m["resolve"]["nodes"]}
bad = []
for p in m["packages"]:
    rv = p.get("rust_version")
    if p["id"] in used and rv and tuple(int(x) for x in rv.split(".")[:3]) > ours + (0,) * (3 - len(ours)):
        bad.append(p["name"] + " " + p["version"] + " needs " + rv)
if bad:
    print("msrv: Cargo.toml says rust-version", root["rust_version"], "but:", *bad, sep="\n  ")
    sys.exit(1)
print("msrv: rust-version", root["rust_version"], "covers all", len(used), "packages")
'
