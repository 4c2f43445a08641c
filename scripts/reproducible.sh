#!/usr/bin/env bash
# Prove the release build is reproducible: build the committed tree in two
# different directories and compare the binaries byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sums=()
for d in "$work/a/airlock" "$work/somewhere/else/airlock-copy"; do
  mkdir -p "$d"
  git archive HEAD | tar -x -C "$d"
  (cd "$d" && . scripts/repro-env.sh && cargo build --release --locked --quiet)
  sums+=("$(sha256sum "$d/target/release/airlock" | cut -d' ' -f1)")
done
echo "build 1: ${sums[0]}"
echo "build 2: ${sums[1]}"
if [ "${sums[0]}" != "${sums[1]}" ]; then
  echo "reproducible: FAILED, the two builds differ" >&2
  exit 1
fi
echo "reproducible: the two builds are byte-identical"
