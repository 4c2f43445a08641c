#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the standard tools the
# tests run against (OpenSSH, unzip, age, Node with age's TypeScript
# implementation from npm), then format, lint, build and every test. `.ci/run` calls this script; so does the README.
set -euo pipefail
cd "$(dirname "$0")/.."
# What the checkout differs from its commit by, to find a test run that
# changes tracked files (checked before the release stage below); "none"
# outside a git checkout, where there is nothing to compare.
tree_state() {
  if git rev-parse --verify -q HEAD >/dev/null 2>&1; then
    git diff HEAD -- | sha256sum
  else
    echo none
  fi
}
tree_before=$(tree_state)

need=()
command -v ssh-keygen >/dev/null || need+=(openssh-client)
[ -x /usr/sbin/sshd ]  || need+=(openssh-server)   # tests/appliance.rs: the SSH hand-over through a real sshd on loopback
command -v unzip      >/dev/null || need+=(unzip)
command -v age        >/dev/null || need+=(age)
command -v age-keygen >/dev/null || need+=(age)
command -v sha256sum  >/dev/null || need+=(coreutils)
command -v sqlite3    >/dev/null || need+=(sqlite3)
command -v chromium   >/dev/null || need+=(chromium)
command -v tmux       >/dev/null || need+=(tmux)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v objdump    >/dev/null || need+=(binutils)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
command -v unshare    >/dev/null || need+=(util-linux)
command -v man        >/dev/null || need+=(man-db)   # tests/first_hour.rs runs man -l on every page
[ -x /usr/bin/time ] || need+=(time)   # tests/cloud.rs: the child's peak RSS (cloud seats memory bound)
command -v promtool   >/dev/null || need+=(prometheus)   # tests/monitoring.rs: promtool check metrics (Debian ships it only in this package)
command -v node       >/dev/null || need+=(nodejs)
command -v npm        >/dev/null || need+=(npm)
# The release and package checks (tests/release.sh).
command -v rpm        >/dev/null || need+=(rpm)
command -v cpio       >/dev/null || need+=(cpio)
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
echo "node $(node --version)"
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' \
  || echo "warning: age-encryption's dependencies declare Node >= 20.19; tests/post_quantum.rs may fail on this Node" >&2

# age-encryption (npm; age's TypeScript implementation by age's author), the
# interoperability partner for post-quantum recipients (tests/post_quantum.rs):
# the exact versions of tests/interop/package-lock.json, into a scratch
# directory outside the repository, reinstalled only when the lock changed.
export AIRLOCK_AGE_JS="${AIRLOCK_AGE_JS:-${XDG_CACHE_HOME:-$HOME/.cache}/airlock-tests/age-encryption-0.3.1}"
if ! cmp -s tests/interop/package-lock.json "$AIRLOCK_AGE_JS/package-lock.json" \
   || [ ! -f "$AIRLOCK_AGE_JS/node_modules/age-encryption/package.json" ]; then
  echo "== installing age-encryption (npm) into $AIRLOCK_AGE_JS"
  rm -rf "$AIRLOCK_AGE_JS"
  mkdir -p "$AIRLOCK_AGE_JS"
  cp tests/interop/package.json tests/interop/package-lock.json "$AIRLOCK_AGE_JS/"
  (cd "$AIRLOCK_AGE_JS" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
echo "age-encryption $(sed -n 's/.*"version": "\(.*\)".*/\1/p' "$AIRLOCK_AGE_JS/node_modules/age-encryption/package.json" | head -1)"

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
# Logs and the kept binary go to the target directory (CARGO_TARGET_DIR if
# set), never elsewhere in the tree.
tgt=$(realpath -m "${CARGO_TARGET_DIR:-target}")
mkdir -p "$tgt"
skips=$tgt/test-skips.txt
rm -f "$skips" "$tgt/test-output-portable.txt"
AIRLOCK_TEST_SKIPS=$skips cargo test --locked --all-targets 2>&1 | tee "$tgt/test-output.txt"
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

# A run must leave the checkout as it found it: a changed tracked file makes
# the release below "COMMIT-dirty", and so not reproducible (seen when a new
# dependency reached Cargo.lock but not fuzz/Cargo.lock).
if [ "$(tree_state)" != "$tree_before" ]; then
  echo "tracked files changed during the test run (by a test, or by an edit meanwhile): commit them, or fix what writes them:" >&2
  git diff --stat HEAD -- >&2
  exit 1
fi

echo "== release: portable binary (glibc 2.17), .deb and .rpm, signed, verified, installed, rebuilt elsewhere byte for byte"
bash tests/release.sh --keep-binary "$tgt/release-check/airlock"

echo "== integration tests again, against the released portable binary"
t0=$SECONDS
AIRLOCK_BIN=$tgt/release-check/airlock AIRLOCK_TEST_SKIPS=$skips \
  cargo test --locked --test '*' 2>&1 | tee "$tgt/test-output-portable.txt"
echo "(the run against the portable binary took $((SECONDS - t0)) s)"
skipped=0
if [ -s "$skips" ]; then
  skipped=$(wc -l < "$skips")
  echo "skipped against the release binary ($skipped, each passed above against the debug build):"
  sed 's/^/  /' "$skips"
fi

passed=$(cat "$tgt/test-output.txt" "$tgt/test-output-portable.txt" | grep -Eo 'test result: ok\. [0-9]+ passed' | awk '{s+=$4} END {print s+0}')
failed=$(cat "$tgt/test-output.txt" "$tgt/test-output-portable.txt" | grep -Eo '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
# A skipped test reports "ok" to libtest: it is counted as skipped, not passed.
echo "$((passed - skipped)) passed, $failed failed, $skipped skipped"
