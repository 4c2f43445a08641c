#!/usr/bin/env bash
# Build a release archive with a throwaway signing key and check it exactly
# as docs/install-offline.md tells an administrator to: ssh-keygen -Y verify,
# sha256sum -c, unpack, run --version. Then check that tampering is caught.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ssh-keygen -q -t ed25519 -N '' -C release@airlock -f "$work/release_key"
echo "release@airlock namespaces=\"airlock-release\" $(cut -d' ' -f1,2 "$work/release_key.pub")" > "$work/release_signers"
bash scripts/release.sh --key "$work/release_key" --out "$work/dist" > "$work/release.log"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
cd "$work/dist"
ssh-keygen -Y verify -f ../release_signers -I release@airlock -n airlock-release -s SHA256SUMS.sig < SHA256SUMS
sha256sum -c SHA256SUMS
tar -xzf "airlock-$version-x86_64-linux.tar.gz"
out=$("./airlock-$version-x86_64-linux/airlock" --version)
[ "$out" = "airlock $version" ] || { echo "release: --version printed '$out'" >&2; exit 1; }
for f in BUILD man/airlock.1 man/airlock-export.1 completions/airlock.bash docs/format.md README.md CHANGELOG.md; do
  [ -s "airlock-$version-x86_64-linux/$f" ] || { echo "release: $f missing" >&2; exit 1; }
done
glibc=$(objdump -T "airlock-$version-x86_64-linux/airlock" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)
echo "release: needs $glibc at most"
# A signature in another namespace, or one changed byte, must fail.
if ssh-keygen -Y verify -f ../release_signers -I release@airlock -n airlock-bundle -s SHA256SUMS.sig < SHA256SUMS >/dev/null 2>&1; then
  echo "release: a bundle-namespace check accepted the release signature" >&2; exit 1
fi
printf 'x' >> "airlock-$version-x86_64-linux.tar.gz"
if sha256sum -c SHA256SUMS >/dev/null 2>&1; then
  echo "release: sha256sum accepted an altered archive" >&2; exit 1
fi
echo "release: archive verified with ssh-keygen and sha256sum, binary runs"
# The shipped binary must be what anyone gets from the same commit elsewhere.
bash "$repo/scripts/reproducible.sh" --against "$PWD/airlock-$version-x86_64-linux/airlock"
