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

# What of libFuzzer's output to show: the totals, and everything about a finding.
report='^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|Done )|ERROR|SUMMARY|==[0-9]+==|Test unit written|Fatal error|^ +#[0-9]+ 0x'

# Every committed input of every target, once.
replay() {
    for target in "${targets[@]}"; do
        echo "replay $target: $(find "Fuzz/Corpus/$target" -type f | wc -l) inputs"
        "$binary" "$target" "${common[@]}" -runs=0 "Fuzz/Corpus/$target" 2>&1 | tail -3
    done
}

# fuzz TARGET CORPUS [OPTION…]: TARGET from its committed corpus and CORPUS (where new inputs
# go), findings to .build/fuzz-findings; fails with the fuzzer's status.
fuzz() {
    local target=$1 corpus=$2 status=0
    shift 2
    mkdir -p .build/fuzz-findings
    "$binary" "$target" "${common[@]}" "$@" -print_final_stats=1 -artifact_prefix="$root/.build/fuzz-findings/$target-" \
        "$corpus" "Fuzz/Corpus/$target" 2>&1 | { grep -E "$report" || true; } || status=$?
    return "$status"
}

case "${1:-}" in
build)
    build
    ;;
replay)
    build
    replay
    ;;
run)
    seconds=${2:?seconds}
    shift 2
    [ $# -gt 0 ] && targets=("$@")
    build
    for target in "${targets[@]}"; do
        mkdir -p ".build/fuzz-corpus/$target"
        echo "fuzz $target for ${seconds}s"
        fuzz "$target" ".build/fuzz-corpus/$target" -max_total_time="$seconds"
    done
    ;;
ci)
    build
    replay
    # A few seconds each (3 to 9 s on a 2-core VM).
    declare -A runs=([onnx]=20000 [archive]=8000 [oci]=8000 [manifest]=8000 [oip]=60000 [image]=60000 [tokenizer]=30000)
    for target in "${targets[@]}"; do
        echo "fuzz $target: ${runs[$target]} inputs from seed 1"
        work=$(mktemp -d)
        status=0
        fuzz "$target" "$work" -seed=1 -runs="${runs[$target]}" || status=$?
        rm -rf "$work"
        test "$status" -eq 0
    done
    ;;
*)
    sed -n 2,15p "$0"
    exit 2
    ;;
esac
