#!/usr/bin/env bash
# Peak RSS of `airlock cloud seats` over a million users in 10,000 pages
# (issue #28: at most 64 MiB), against the release binary: the loopback
# stand-in of tests/cloud.rs makes each page as it is asked for, and GNU
# time reads the child's ru_maxrss after waiting for it.
#   bash scripts/seats-rss.sh [PAGES]     (default 10000, 100 users a page)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }
cargo build --release --locked --quiet
AIRLOCK_BIN="$PWD/target/release/airlock" AIRLOCK_SEATS_PAGES="${1:-10000}" \
  cargo test --locked --quiet --test cloud cloud_seats_memory_is_bounded_by_design -- --nocapture 2>&1 |
  grep -E 'peak RSS|test result|panicked|assert'
