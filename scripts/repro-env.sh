# shellcheck shell=bash
# Environment for reproducible release builds (sourced by scripts/release.sh):
# no build path or home directory in the binary, the last commit's time
# wherever a time is needed, the commit itself for `airlock --version`, and a
# target directory of its own that the caller empties first.
#
# Why a fresh target directory: age embeds its translation files through
# rust-embed, which records SOURCE_DATE_EPOCH (or else the file's creation
# time on this disk) at compile time. Cargo does not track that variable, so
# an age compiled earlier under another epoch would be reused and the binary
# would differ from a clean build (docs/decisions.md, D20).
#
# Outside a git checkout (scripts/reproducible.sh builds a `git archive`
# copy) the caller passes SOURCE_DATE_EPOCH and AIRLOCK_BUILD_COMMIT.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 1)}"
if [ -z "${AIRLOCK_BUILD_COMMIT:-}" ] && AIRLOCK_BUILD_COMMIT=$(git rev-parse HEAD 2>/dev/null); then
  # Tracked files that differ from the commit make it another program.
  git diff --quiet HEAD -- 2>/dev/null || AIRLOCK_BUILD_COMMIT="$AIRLOCK_BUILD_COMMIT-dirty"
fi
export AIRLOCK_BUILD_COMMIT="${AIRLOCK_BUILD_COMMIT:-}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
# The build's own target directory: repro/ under the caller's CARGO_TARGET_DIR
# when one is set (never inside the tree then), else under target/. It may
# lie outside $PWD, so it is remapped too; the last matching prefix wins in
# rustc, so it comes after $PWD (it may also lie inside it).
repro_target=$(realpath -m "${CARGO_TARGET_DIR:-$PWD/target}/repro")
export RUSTFLAGS="--remap-path-prefix=$PWD=/build/airlock --remap-path-prefix=$repro_target=/build/target --remap-path-prefix=$cargo_home=/cargo -C strip=symbols"
export CARGO_INCREMENTAL=0
export TZ=UTC LC_ALL=C
export CARGO_TARGET_DIR="$repro_target"
