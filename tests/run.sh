#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the standard tools the
# tests run against (OpenSSH, unzip, age), then format, lint, build and every
# test. `.ci/run` calls this script; so does the README.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v unzip      >/dev/null || need+=(unzip)
command -v age        >/dev/null || need+=(age)
command -v age-keygen >/dev/null || need+=(age)
command -v sha256sum  >/dev/null || need+=(coreutils)
command -v sqlite3    >/dev/null || need+=(sqlite3)
command -v chromium   >/dev/null || need+=(chromium)
command -v tmux       >/dev/null || need+=(tmux)
command -v objdump    >/dev/null || need+=(binutils)
# The release and package checks (tests/release.sh).
command -v rpm        >/dev/null || need+=(rpm)
command -v cpio       >/dev/null || need+=(cpio)
command -v man        >/dev/null || need+=(man-db)
command -v lintian    >/dev/null || need+=(lintian)
[ -f /usr/share/bash-completion/bash_completion ] || need+=(bash-completion)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing: ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

echo "== tools"
ssh -V 2>&1 | sed -n 1p
age --version
unzip -v | sed -n 1p

if ! command -v cargo-deny >/dev/null; then
  echo "== installing cargo-deny (crates.io)"
  cargo install --locked --quiet cargo-deny
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
rustfmt --check --edition 2021 fuzz/fuzz_targets/*.rs

echo "== cargo clippy"
cargo clippy --locked --all-targets -- -D warnings

echo "== supply chain: cargo deny (licences, bans, sources; offline), MSRV"
cargo deny --frozen check licenses bans sources
bash scripts/msrv.sh

echo "== cargo test"
# Tests that need the debug-build fault/pause hooks record themselves here
# when the binary under test has none; the debug run must skip nothing.
mkdir -p target
skips=target/test-skips.txt
rm -f "$skips" target/test-output-portable.txt
AIRLOCK_TEST_SKIPS=$PWD/$skips cargo test --locked --all-targets 2>&1 | tee target/test-output.txt
if [ -s "$skips" ]; then
  echo "the debug build skipped tests it should have run:" >&2
  cat "$skips" >&2
  exit 1
fi
# Doc tests run separately (--all-targets skips them).
cargo test --locked --doc 2>&1 | tail -n 3

# Fuzz smoke: each cargo-fuzz target for a few seconds, when a nightly
# toolchain is present (cargo-fuzz needs one; stable-only machines skip it).
if cargo +nightly --version >/dev/null 2>&1; then
  echo "== fuzz smoke (nightly present): each target ${FUZZ_SECONDS:-10}s"
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
else
  echo "== fuzz smoke skipped: no nightly toolchain (rustup toolchain install nightly)"
fi

echo "== release: portable binary (glibc 2.17), .deb and .rpm, signed, verified, installed, rebuilt elsewhere byte for byte"
bash tests/release.sh --keep-binary target/release-check/airlock

echo "== integration tests again, against the released portable binary"
AIRLOCK_BIN=$PWD/target/release-check/airlock AIRLOCK_TEST_SKIPS=$PWD/$skips \
  cargo test --locked --test '*' 2>&1 | tee target/test-output-portable.txt
skipped=0
if [ -s "$skips" ]; then
  skipped=$(wc -l < "$skips")
  echo "skipped against the release binary ($skipped, each passed above against the debug build):"
  sed 's/^/  /' "$skips"
fi

passed=$(cat target/test-output.txt target/test-output-portable.txt | grep -Eo 'test result: ok\. [0-9]+ passed' | awk '{s+=$4} END {print s+0}')
failed=$(cat target/test-output.txt target/test-output-portable.txt | grep -Eo '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
# A skipped test reports "ok" to libtest: it is counted as skipped, not passed.
echo "$((passed - skipped)) passed, $failed failed, $skipped skipped"
