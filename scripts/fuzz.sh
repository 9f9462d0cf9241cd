#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/, every module compiled with -sanitize=fuzzer,address) and
# runs them.
#
#   scripts/fuzz.sh build                 build only
#   scripts/fuzz.sh replay                every committed input of every target, once (a regression run)
#   scripts/fuzz.sh run SECONDS [TARGET…] fuzz each target for SECONDS (all targets by default),
#                                         starting from Fuzz/Corpus/TARGET; new inputs go to
#                                         .build/fuzz-corpus/TARGET, findings to .build/fuzz-findings
#   scripts/fuzz.sh ci                    replay, then a fixed number of inputs per target from a
#                                         fixed seed: the same inputs on every run, so a CI
#                                         failure is a finding anyone can reproduce
#
# A finding stops the run with libFuzzer's report and the input that caused it; copy that input
# into Fuzz/Corpus/TARGET/ with a name saying what it was, and fix it (the replay keeps it fixed).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$root/.build/fuzz
binary=$build/debug/vessel-fuzz
targets=(onnx archive oci manifest oip image tokenizer)

build() {
    swift build --package-path Fuzz --build-path "$build" -c debug \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library 2>&1 | grep -v "Cannot export local symbol" >&2
    test "${PIPESTATUS[0]}" -eq 0
}

# The Swift runtime's own crash reporter would run inside the sanitizer's signal handling;
# libFuzzer's report (the stack, the input) is the one wanted.
export SWIFT_BACKTRACE=enable=no

# Leak checking off: the runtime keeps process-wide caches (kernel tables, thread pools) that
# LeakSanitizer reports at exit, and a leak per input would show as growing RSS (-rss_limit_mb).
common=(-rss_limit_mb=4096 -malloc_limit_mb=2048 -timeout=30 -detect_leaks=0)

case "${1:-}" in
build)
    build
    ;;
replay)
    build
    for target in "${targets[@]}"; do
        files=$(find "Fuzz/Corpus/$target" -type f | wc -l)
        echo "replay $target: $files inputs"
        "$binary" "$target" "${common[@]}" -runs=0 "Fuzz/Corpus/$target" 2>&1 | tail -3
        test "${PIPESTATUS[0]}" -eq 0
    done
    ;;
run)
    seconds=${2:?seconds}
    shift 2
    [ $# -gt 0 ] && targets=("$@")
    build
    mkdir -p .build/fuzz-findings
    for target in "${targets[@]}"; do
        mkdir -p ".build/fuzz-corpus/$target"
        echo "fuzz $target for ${seconds}s"
        "$binary" "$target" "${common[@]}" -max_total_time="$seconds" -print_final_stats=1 \
            -artifact_prefix="$root/.build/fuzz-findings/$target-" \
            ".build/fuzz-corpus/$target" "Fuzz/Corpus/$target" 2>&1 | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|Done )|ERROR|SUMMARY|==[0-9]+==|Test unit written|Fatal error|^ +#[0-9]+ 0x" || true
        test "${PIPESTATUS[0]}" -eq 0
    done
    ;;
ci)
    "$0" replay
    build
    # About 20 s each on a 2-core VM.
    declare -A runs=([onnx]=20000 [archive]=8000 [oci]=8000 [manifest]=8000 [oip]=60000 [image]=60000 [tokenizer]=30000)
    mkdir -p .build/fuzz-findings
    for target in "${targets[@]}"; do
        echo "fuzz $target: ${runs[$target]} inputs from seed 1"
        work=$(mktemp -d)
        "$binary" "$target" "${common[@]}" -seed=1 -runs="${runs[$target]}" -print_final_stats=1 \
            -artifact_prefix="$root/.build/fuzz-findings/$target-" "$work" "Fuzz/Corpus/$target" 2>&1 |
            grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|Done )|ERROR|SUMMARY|==[0-9]+==|Test unit written|Fatal error|^ +#[0-9]+ 0x" || true
        status=${PIPESTATUS[0]}
        rm -rf "$work"
        test "$status" -eq 0
    done
    ;;
*)
    sed -n 2,15p "$0"
    exit 2
    ;;
esac
