# Environment for reproducible release builds (sourced by the release and
# reproducibility scripts): no build path or home directory in the binary,
# and the last commit's time wherever a time is needed.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 1)}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
export RUSTFLAGS="--remap-path-prefix=$PWD=/build/airlock --remap-path-prefix=$cargo_home=/cargo -C strip=symbols"
export CARGO_INCREMENTAL=0
export TZ=UTC LC_ALL=C
