#!/usr/bin/env bash
# Prove the release is reproducible: build the committed tree (git archive
# HEAD) with scripts/release.sh --unsigned in another directory and compare
# what it makes, byte for byte, with a release built elsewhere.
#   scripts/reproducible.sh                    two fresh builds, compared
#   scripts/reproducible.sh --against DIR      one fresh build, compared with
#                                              every file DIR/SHA256SUMS lists
#                                              (tarball, .deb, .rpm)
#   scripts/reproducible.sh --against BINARY   one fresh build, its binary
#                                              compared with BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
against=""
if [ "${1:-}" = "--against" ]; then against=$(realpath "$2"); fi
# The copies have no .git: the epoch and the commit are taken here, from the
# commit built. (A release made from a tree with uncommitted changes says
# COMMIT-dirty in --version, and so differs: as it should.)
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"
AIRLOCK_BUILD_COMMIT=$(git rev-parse HEAD)
export SOURCE_DATE_EPOCH AIRLOCK_BUILD_COMMIT
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() { # DIR OUT
  mkdir -p "$1"
  git archive HEAD | tar -x -C "$1"
  # Each copy builds in its own target/ (under its own directory), whatever
  # CARGO_TARGET_DIR the caller uses: another path that must not matter.
  (cd "$1" && env -u CARGO_TARGET_DIR bash scripts/release.sh --unsigned --out "$2" > "$2.log" 2>&1) || {
    cat "$2.log" >&2
    echo "reproducible: the build in $1 failed" >&2
    exit 1
  }
  rm -rf "$1/target"
}
binary_of() { # OUT-DIR -> the binary inside its tarball, unpacked in $work
  local d
  d=$(mktemp -d -p "$work")
  tar -xzf "$(ls "$1"/airlock-*-x86_64-linux.tar.gz)" -C "$d"
  ls "$d"/*/airlock
}

if [ -z "$against" ]; then
  build "$work/a/airlock" "$work/out-a"
  ref="$work/out-a"
elif [ -d "$against" ]; then
  ref="$against"
else
  ref=""
fi
build "$work/somewhere/else/airlock-copy" "$work/out-b"

if [ -z "$ref" ]; then
  a=$(sha256sum "$against" | cut -d' ' -f1)
  b=$(sha256sum "$(binary_of "$work/out-b")" | cut -d' ' -f1)
  echo "build 1: $a"
  echo "build 2: $b"
  [ "$a" = "$b" ] || { echo "reproducible: FAILED, the two binaries differ" >&2; exit 1; }
  echo "reproducible: the two binaries are byte-identical"
  exit 0
fi

status=0
while read -r sum file; do
  other=$(grep -F "  $file" "$work/out-b/SHA256SUMS" | cut -d' ' -f1 || true)
  if [ "$sum" = "$other" ]; then
    echo "same    $sum  $file"
  else
    echo "DIFFERS $file: ${sum:-missing} here, ${other:-missing} in the rebuild" >&2
    status=1
  fi
done < "$ref/SHA256SUMS"
[ "$(wc -l < "$ref/SHA256SUMS")" = "$(wc -l < "$work/out-b/SHA256SUMS")" ] || {
  echo "reproducible: the builds made different sets of files" >&2
  status=1
}
echo "binary  $(sha256sum "$(binary_of "$ref")" | cut -d' ' -f1)  (build 1)"
echo "binary  $(sha256sum "$(binary_of "$work/out-b")" | cut -d' ' -f1)  (build 2)"
if [ $status -ne 0 ]; then
  echo "reproducible: FAILED, the builds differ" >&2
  exit 1
fi
echo "reproducible: tarball, .deb and .rpm are byte-identical across two build directories"
