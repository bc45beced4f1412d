#!/usr/bin/env bash
# Runs one libFuzzer binary for a bounded time and prints one summary line (Tests/Fuzz/fuzz.mk).
#   run-fuzz.sh NAME BINARY SECONDS MAX_LEN
# New inputs go to .build/fuzz/NAME/corpus (the seeds in Tests/Fuzz/corpus/NAME stay as committed);
# a crashing input is saved as .build/fuzz/NAME/crash-<sha1>, the whole output in .build/fuzz/NAME/log.
# Exits non-zero on a crash, a leak, a timeout or an out-of-memory input.
set -u
name=$1 binary=$2 seconds=$3 max_len=$4
dir=.build/fuzz/$name
mkdir -p "$dir/corpus"
# Swift keeps tag bits in the spare bits of pointers held by multi-payload enums in globals, which
# LeakSanitizer cannot follow: it reports those globals as leaked at exit. Memory is reference-counted;
# runaway growth is still caught by -rss_limit_mb.
export ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
"$binary" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -detect_leaks=0 \
    -print_final_stats=1 -artifact_prefix="$dir/" "$dir/corpus" "Tests/Fuzz/corpus/$name" >"$dir/log" 2>&1
status=$?
# A binary built without coverage runs happily and finds nothing: that is a failure too.
if [ "$status" -eq 0 ] && grep -q 'Is the code instrumented for coverage' "$dir/log"; then
    printf 'fuzz %-7s FAILED the binary has no coverage instrumentation (see Tests/Fuzz/fuzz.mk); log: %s\n' "$name" "$dir/log"
    exit 1
fi
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
coverage=$(grep -oE 'cov: [0-9]+' "$dir/log" | tail -1 | cut -d' ' -f2)
corpus=$(find "$dir/corpus" -type f | wc -l)
if [ "$status" -eq 0 ]; then
    printf 'fuzz %-7s ok     %s s, %s inputs run, coverage %s, corpus %s (%s)\n' "$name" "$seconds" "${runs:-?}" "${coverage:-?}" "$corpus" "$dir/corpus"
    exit 0
fi
artifact=$(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$dir/log" | tail -1)
# The first of: a Swift fatal error (a check of the target or a precondition), a Swift trap with the
# frame it happened in (the Swift backtracer's own report), a sanitizer's or libFuzzer's verdict.
reason=$(grep -m1 'Fatal error:' "$dir/log")
if [ -z "$reason" ] && grep -q 'Program crashed' "$dir/log"; then
    frame=$(grep -m1 -E '^ *0 .* 0x[0-9a-f]+ ' "$dir/log" | sed -E 's/^ *0 .* 0x[0-9a-f]+ +//')
    reason="$(grep -m1 'Program crashed' "$dir/log" | tr -d '*' | sed 's/^ *//; s/ *$//') in ${frame:-?}"
fi
[ -n "$reason" ] || reason=$(grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|deadly signal' "$dir/log")
printf 'fuzz %-7s FAILED %s\n' "$name" "${reason:-exit status $status}"
printf '             input: %s  (replay: %s %s)\n             log:   %s\n' "${artifact:-none saved}" "$binary" "${artifact:-}" "$dir/log"
exit 1
