#!/usr/bin/env bash
# The fuzz campaign of RELIABILITY.md: each target in turn, SECS seconds
# each (default 600), one at a time, at the lowest priority, on the seeds
# plus a scratch corpus; the last libFuzzer line of each run is its
# record ("Done N runs in S second(s)"). Findings land in
# fuzz/artifacts/TARGET/; copy them to fuzz/regressions/TARGET-what.
#
#   fuzz/campaign.sh [SECS] [TARGET...]
#
# FUZZ_TARGET_DIR: cargo's target directory (default fuzz/target), e.g. to
# build the sanitizer and the no-sanitizer targets side by side.
# FUZZ_ARGS: more libFuzzer flags, e.g. "-len_control=0" to try long
# inputs from the start (the 64-byte SIMD steps need them).
#
# Needs nightly features through RUSTC_BOOTSTRAP and cargo-fuzz
# (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
targets=("$@")
if [[ ${#targets[@]} == 0 ]]; then
    targets=(fuzz_filter fuzz_spec fuzz_envelope fuzz_members fuzz_csv
        fuzz_scan fuzz_object fuzz_onepass fuzz_notification fuzz_conninfo)
fi
logs=${FUZZ_LOGS:-/tmp/cwl-copy-fuzz}
read -ra extra <<<"${FUZZ_ARGS:-}"
mkdir -p "$logs"
for t in "${targets[@]}"; do
    # The connection-string parser needs the `loader` feature, which
    # brings the AWS SDK: its AddressSanitizer build had not finished after
    # 65 min on a 2-core machine, so it runs without a sanitizer (`-s
    # none`: still coverage-guided; the code under test is safe Rust over
    # tokio-postgres' parser, where ASan finds little).
    features=()
    case $t in fuzz_conninfo) features=(-s none --features loader) ;; esac
    corpus=$logs/corpus/$t
    mkdir -p "$corpus"
    echo "== $t: ${secs}s (log $logs/$t.log)"
    RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz run -O "${features[@]}" \
        ${FUZZ_TARGET_DIR:+--target-dir "$FUZZ_TARGET_DIR"} "$t" \
        "$corpus" "seeds/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 \
        -max_len=65536 "${extra[@]}" >"$logs/$t.log" 2>&1 ||
        echo "   $t: FAILED (see log)"
    grep -E '^Done [0-9]+ runs' "$logs/$t.log" | tail -1 || true
done
