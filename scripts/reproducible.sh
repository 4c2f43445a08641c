#!/usr/bin/env bash
# Prove the release build is reproducible: build the committed tree in two
# different directories and compare the binaries byte for byte.
#   scripts/reproducible.sh                   two fresh builds
#   scripts/reproducible.sh --against BINARY  one fresh build, compared with a
#                                             release binary built elsewhere
#                                             (as scripts/release.sh builds it)
set -euo pipefail
cd "$(dirname "$0")/.."
against=""
if [ "${1:-}" = "--against" ]; then against=$(realpath "$2"); fi
# The copies have no .git, so the epoch is taken here, from the commit built.
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"
export SOURCE_DATE_EPOCH
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sums=()
[ -n "$against" ] && sums+=("$(sha256sum "$against" | cut -d' ' -f1)")
dirs=("$work/a/airlock" "$work/somewhere/else/airlock-copy")
[ -n "$against" ] && dirs=("$work/somewhere/else/airlock-copy")
for d in "${dirs[@]}"; do
  mkdir -p "$d"
  git archive HEAD | tar -x -C "$d"
  (cd "$d" && . scripts/repro-env.sh && cargo build --release --locked --quiet)
  sums+=("$(sha256sum "$d/target/repro/release/airlock" | cut -d' ' -f1)")
done
echo "build 1: ${sums[0]}"
echo "build 2: ${sums[1]}"
if [ "${sums[0]}" != "${sums[1]}" ]; then
  echo "reproducible: FAILED, the two builds differ" >&2
  exit 1
fi
echo "reproducible: the two builds are byte-identical"
