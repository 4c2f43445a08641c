#!/usr/bin/env bash
# Build a release: airlock-VERSION-x86_64-linux.tar.gz (binary, man pages,
# completions, docs), SHA256SUMS, and SHA256SUMS.sig, an SSHSIG over
# SHA256SUMS in namespace "airlock-release". On the isolated side,
# `ssh-keygen -Y verify` and `sha256sum -c` are all that is needed
# (docs/install-offline.md).
#
#   scripts/release.sh --key RELEASE_SIGNING_KEY [--out DIR]
#
# The build aims at reproducibility: paths are remapped, times come from
# SOURCE_DATE_EPOCH (the last commit's time), the build starts from an empty
# target directory, the archive is sorted with fixed owners and mtimes.
# scripts/reproducible.sh --against BINARY rebuilds elsewhere and compares.
set -euo pipefail
cd "$(dirname "$0")/.."
key="" out="dist"
while [ $# -gt 0 ]; do
  case "$1" in
    --key) key=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: scripts/release.sh --key KEY [--out DIR]" >&2; exit 2 ;;
  esac
done
[ -n "$key" ] || { echo "release: --key KEY is required (an OpenSSH key for namespace airlock-release)" >&2; exit 2; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
# shellcheck source=scripts/repro-env.sh
. scripts/repro-env.sh
rm -rf "$CARGO_TARGET_DIR"
cargo build --release --locked
bin="$CARGO_TARGET_DIR/release/airlock"

name="airlock-$version-x86_64-linux"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
dir="$stage/$name"
mkdir -p "$dir/man" "$dir/completions" "$dir/docs"
cp "$bin" "$dir/airlock"
"$dir/airlock" man --dir "$dir/man" > /dev/null
for sh in bash zsh fish; do "$dir/airlock" completions "$sh" > "$dir/completions/airlock.$sh"; done
cp README.md CHANGELOG.md "$dir/"
# What a reviewer needs to rebuild this binary and compare it.
{
  echo "commit $(git rev-parse HEAD 2>/dev/null || echo unknown)"
  echo "SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH"
  rustc --version
  cargo --version
  echo "rebuild: scripts/reproducible.sh --against airlock"
} > "$dir/BUILD"
cp docs/*.md docs/*.json "$dir/docs/"

mkdir -p "$out"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    --mode='u+rwX,go+rX,go-w' --format=gnu -C "$stage" -cf - "$name" | gzip -n -9 > "$out/$name.tar.gz"
(cd "$out" && sha256sum "$name.tar.gz" > SHA256SUMS)
rm -f "$out/SHA256SUMS.sig"
ssh-keygen -Y sign -q -f "$key" -n airlock-release "$out/SHA256SUMS"
echo "release: $out/$name.tar.gz"
cat "$out/SHA256SUMS"
