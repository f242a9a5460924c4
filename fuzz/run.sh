#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer on stable Rust and runs each for N minutes.
#
#   fuzz/run.sh [MINUTES] [TARGET...]      (default: 10 minutes, every target; JOBS=2 runs two at once)
#
# The build is what `cargo fuzz build --sanitizer none` does, without nightly: SanitizerCoverage
# through stable -C flags (inline 8-bit counters, PC table, comparison tracing), debug
# assertions and overflow checks on, `--cfg fuzzing`, for the host target only so build scripts
# stay uninstrumented. With cargo-fuzz installed, `cargo fuzz run TARGET --sanitizer none` from the
# repository root runs the same targets. Each target keeps its corpus in fuzz/corpus/TARGET
# (seeded on first run), crashes in fuzz/artifacts/TARGET, its log in fuzz/logs/TARGET.log, and
# the script ends with one summary line per target: executions, coverage (edges) and features.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
minutes="${1:-10}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(frame_open client_hello server_hello message_decode server_input)
fi
jobs="${JOBS:-1}"
host="$(rustc -vV | sed -n 's/^host: //p')"

export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks \
--cfg fuzzing -Cdebuginfo=1"
export CARGO_TARGET_DIR="$here/target"
(cd "$here" && cargo build --release --target "$host" --bins)
bin="$here/target/$host/release"

run_one() {
    local target="$1"
    local corpus="$here/corpus/$target" artifacts="$here/artifacts/$target/"
    local extra=()
    mkdir -p "$corpus" "$artifacts" "$here/logs"
    case "$target" in
        server_input) extra=(-max_len=20000 -timeout=30) ;;
        message_decode) extra=(-max_len=16384) ;;
    esac
    FUZZ_SEEDS="$corpus" "$bin/$target" "$corpus" -artifact_prefix="$artifacts" \
        -max_total_time=$((minutes * 60)) -print_final_stats=1 -rss_limit_mb=4096 \
        "${extra[@]}" >"$here/logs/$target.log" 2>&1
}

summary() {
    local target="$1" log="$here/logs/$1.log"
    local last execs status
    last="$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)"
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    if grep -qE '^==[0-9]+== ERROR|deadly signal|panicked at|Test unit written' "$log"; then
        status="CRASH (see $log and fuzz/artifacts/$target/)"
    else
        status="no crash"
    fi
    printf '%-15s %s min  execs %s  %s  -> %s\n' "$target" "$minutes" "${execs:-?}" \
        "$(echo "$last" | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[^ ]+' || true)" "$status"
}

failed=0
pids=()
for target in "${targets[@]}"; do
    run_one "$target" &
    pids+=($!)
    if [ ${#pids[@]} -ge "$jobs" ]; then
        wait "${pids[0]}" || failed=1
        pids=("${pids[@]:1}")
    fi
done
for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
done
for target in "${targets[@]}"; do
    summary "$target"
done
exit "$failed"
