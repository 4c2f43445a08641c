#!/usr/bin/env bash
# Run the cargo-fuzz targets (fuzz/) for a chosen time each.
#
#   scripts/fuzz.sh SECONDS [TARGET...]   run each TARGET (default: all) for
#                                         SECONDS; exit 1 if any crashed
#   scripts/fuzz.sh --seeds               rebuild fuzz/seeds/ from fixtures/
#                                         and keys/ (checked in)
#
# Needs a nightly toolchain (`cargo +nightly`) and cargo-fuzz. New inputs the
# fuzzer finds go to target/fuzz-corpus/TARGET (not checked in); the seeds in
# fuzz/seeds/TARGET are read only. Crashes land in fuzz/artifacts/TARGET/;
# each one found becomes a regression test (docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
all=(bundle manifest sshsig allowed_signers usage hybrid)

if [ "${1:-}" = "--seeds" ]; then
  rm -rf fuzz/seeds && mkdir -p fuzz/seeds/{bundle,manifest,sshsig,allowed_signers,usage,hybrid}
  for b in fixtures/bundles/*.airlock.zip; do
    n=$(basename "$b" .airlock.zip)
    cp "$b" "fuzz/seeds/bundle/$n"
    unzip -p "$b" manifest.json > "fuzz/seeds/manifest/$n" 2>/dev/null || true
    for s in $(unzip -Z1 "$b" 2>/dev/null | grep '^signatures/' || true); do
      unzip -p "$b" "$s" > "fuzz/seeds/sshsig/$n" 2>/dev/null || true
    done
    for a in $(unzip -Z1 "$b" 2>/dev/null | grep '\.age$' || true); do
      (unzip -p "$b" "$a" 2>/dev/null || true) | head -c 400 > "fuzz/seeds/manifest/age-$n"
    done
  done
  for k in keys/*.pub; do cp "$k" "fuzz/seeds/sshsig/$(basename "$k")"; done
  cp keys/allowed_signers fuzz/seeds/allowed_signers/allowed_signers
  cp keys/revoked_keys fuzz/seeds/allowed_signers/revoked_keys
  printf '%s\n' 'ops@example.com,!*@evil.example namespaces="airlock-bundle",valid-after="20260101",valid-before="20270101Z" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl' \
    > fuzz/seeds/allowed_signers/options
  cp fixtures/usage/* fuzz/seeds/usage/
  for v in fixtures/age-testkit/hybrid*; do
    # the age file after the testkit's header
    python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.stdout.buffer.write(d[d.index(b"\n\n")+2:])' "$v" \
      > "fuzz/seeds/hybrid/$(basename "$v")"
  done
  grep -h '^# public key: ' keys/age_pq_identity.txt | cut -d' ' -f4 > fuzz/seeds/hybrid/recipient
  find fuzz/seeds -type f -empty -delete
  echo "seeds: $(find fuzz/seeds -type f | wc -l) files"
  exit 0
fi

secs=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...] | --seeds}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
command -v cargo-fuzz >/dev/null || cargo install --locked --quiet cargo-fuzz
status=0
for t in "${targets[@]}"; do
  mkdir -p "target/fuzz-corpus/$t"
  echo "== fuzz $t for ${secs}s"
  # -rss_limit_mb: a target that needs more than 512 MiB for any input is a bug.
  rc=0
  (cd fuzz && cargo +nightly fuzz run "$t" "../target/fuzz-corpus/$t" "seeds/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=512 -timeout=10 -print_final_stats=1) \
      > "target/fuzz-$t.log" 2>&1 || rc=$?
  grep -E '^(INFO: seed corpus|stat::number_of_executed_units|stat::peak_rss_mb)' "target/fuzz-$t.log" || true
  if [ $rc -ne 0 ] || grep -qE 'SUMMARY|panicked|ERROR: libFuzzer' "target/fuzz-$t.log"; then
    echo "fuzz $t: CRASH (exit $rc), see target/fuzz-$t.log and fuzz/artifacts/$t/" >&2
    tail -n 30 "target/fuzz-$t.log" >&2
    status=1
  fi
done
exit $status
