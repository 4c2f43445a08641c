#!/usr/bin/env bash
# The benchmark (issue #7): builds airlock in release mode, installs the
# reference tools if missing, runs scripts/bench.py. `--big` adds a 4 GiB input,
# `--quick` keeps the 5 MB one only.
#   bash scripts/bench.sh [--big|--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for t in openssl age zip unzip ssh-keygen /usr/bin/time; do command -v $t >/dev/null || need+=($t); done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  pkgs=("${need[@]/ssh-keygen/openssh-client}")
  pkgs=("${pkgs[@]/\/usr\/bin\/time/time}")
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
cargo build --release --locked --quiet
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB"
echo "flags: $(grep -m1 -o -w -e sha_ni -e avx2 /proc/cpuinfo | sort -u | tr '\n' ' ')"
exec python3 scripts/bench.py "$@"
