#!/usr/bin/env bash
# Fail if BINARY imports any glibc symbol version newer than FLOOR (or a
# GLIBC_PRIVATE one): then it would not start on a system with glibc FLOOR.
#   scripts/check-glibc.sh BINARY FLOOR        e.g. FLOOR=2.17
set -euo pipefail
bin=$1 floor=$2
command -v objdump >/dev/null || { echo "check-glibc: objdump is missing (binutils)" >&2; exit 2; }
[ -f "$bin" ] || { echo "check-glibc: $bin is not a file" >&2; exit 2; }
versions=$(objdump -T "$bin" | grep -o 'GLIBC_[A-Z0-9_.]*' | sed 's/^GLIBC_//' | sort -uV)
[ -n "$versions" ] || { echo "check-glibc: $bin imports no versioned glibc symbol (not a dynamic glibc binary?)" >&2; exit 1; }
bad=()
for v in $versions; do
  if [ "$v" = PRIVATE ] || [ "$(printf '%s\n%s\n' "$v" "$floor" | sort -V | tail -n 1)" != "$floor" ]; then
    bad+=("GLIBC_$v")
  fi
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "check-glibc: $bin needs ${bad[*]}, newer than GLIBC_$floor:" >&2
  for b in "${bad[@]}"; do
    echo "  $b: $(objdump -T "$bin" | grep -F "$b" | grep -E "${b//./\\.}([^0-9.]|\$)" | awk '{print $NF}' | sort -u | tr '\n' ' ')" >&2
  done
  exit 1
fi
echo "check-glibc: $bin needs GLIBC_$(echo "$versions" | tail -n 1) at most (floor GLIBC_$floor)"
