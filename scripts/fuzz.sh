#!/usr/bin/env bash
# Usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags…]
#   TARGET: policy (the policy engine), wire (the wire decoders, login and QueryRelay),
#           audit (the audit log verifier); Fuzz/<target>/main.swift states each one's invariants.
# Builds the target with libFuzzer and AddressSanitizer (release, .build-fuzz) if needed, seeds it
# (the policy target from Tests/corpus and ../shared/corpus, the others with inputs they generate),
# runs it for SECONDS, then prints the executions, executions per second and crashes. The corpus
# grows in .build-fuzz/corpus/TARGET across runs; crashing inputs land in
# .build-fuzz/crashes/TARGET/ and the exit status is 1. Reproduce one without instrumentation:
#   swift build --product fuzz-TARGET && .build/debug/fuzz-TARGET CRASH-FILE
# For a long run that goes on past crashes, add: -fork=1 -ignore_crashes=1
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/fuzz.sh policy|wire|audit SECONDS [libFuzzer flags…]" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
target=$1 seconds=$2
shift 2
[[ $target =~ ^(policy|wire|audit)$ && $seconds =~ ^[0-9]+$ ]] || usage

scratch=.build-fuzz
build=(swift build -c release --scratch-path "$scratch"
       -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
       # SwiftPM names an executable's main with a --defsym that gold cannot link beside libFuzzer's main.
       -Xswiftc -use-ld=lld)
started=$(date +%s)
# FUZZ_NO_BUILD=1 runs the binary already built: a long run beside a build of another target in
# .build-fuzz, which would otherwise wait for SwiftPM's lock on that directory.
if [[ ${FUZZ_NO_BUILD:-} != 1 ]]; then
    "${build[@]}" --product "fuzz-$target" 2>&1 | grep -v "warning: Cannot export local symbol" >&2
    echo "fuzz.sh: build took $(( $(date +%s) - started )) s" >&2
fi
binary="$scratch/release/fuzz-$target"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$binary" --write-seeds "$work/seeds" >&2
corpus="$scratch/corpus/$target"
crashes="$scratch/crashes/$target"
mkdir -p "$corpus" "$crashes"
# Findings are crash-, leak-, timeout- and oom- files; a slow-unit- file is only an input that took
# over 10 s of wall time (libFuzzer's -report_slow_units), which a loaded machine gives any big input.
findings() { find "$crashes" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l; }
slow_units() { find "$crashes" -maxdepth 1 -type f -name 'slow-unit-*' | wc -l; }
crashes_before=$(findings) slow_before=$(slow_units)

# Dictionaries: tokens the fuzzer would take long to spell by chance.
dictionary="$work/$target.dict"
quote() { sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/.*/"&"/'; }
case $target in
policy)
    # Every PostgreSQL 15 keyword (libpg_query's token list; ABORT_P = 277 … ZONE = 736) and every
    # built-in function name the policies know, admitted or excluded.
    {
        awk '/^enum Token/ { in_tokens = 1 } in_tokens && $2 == "=" { n = $3 + 0; if (n >= 277 && n <= 736) { sub(/_P$/, "", $1); print $1 } }' \
            /usr/include/pg_query/pg_query.proto
        grep -hv '^#' Policies/functions/pg15.tsv Policies/functions/pg15-excluded.tsv | cut -f1
        printf '%s\n' "::" "<>" "<=" ">=" "!=" "||" "->>" "#>>" "@>" '$1' '$$' "E'\\\\" "U&'" "/*" "*/" "--" \
            "pg_catalog." "information_schema." "request.jwt.claims" "public.users" "LATERAL" "WITH RECURSIVE"
    } | sort -u | quote > "$dictionary"
    ;;
wire)
    printf '%s\n' "SCRAM-SHA-256" "n,,n=,r=" "y,,n=,r=" "c=biws,r=" ",p=" "user" "database" "replication" \
        "scram" "fuzz-secret" "SELECT 1" | quote > "$dictionary"
    ;;
audit)
    printf '%s\n' '"seq":' '"prev_hash":' '"entry_hash":' '"time":' '"event":' '"detail":' '"segment_opened"' \
        '"key_rotation"' '"new_key":' '"origin":' '"segment":' "fuzz.example/audit" | quote > "$dictionary"
    echo '"\xE2\x80\x94 fuzz-audit "' >> "$dictionary"  # a signature line starts with an em dash
    ;;
esac

log="$work/fuzz.log"
status=0
"$binary" -max_total_time="$seconds" -print_final_stats=1 -timeout=30 -dict="$dictionary" \
    -artifact_prefix="$crashes/" "$@" "$corpus" "$work/seeds" > "$log" 2>&1 || status=$?

# The totals: print_final_stats in a single process; the last status line with -fork.
executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
per_second=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
if [[ -z $executions ]]; then
    last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1 || true)
    executions=$(sed -E 's/^#([0-9]+):.*/\1/' <<< "$last")
    per_second=$(sed -nE 's/.*exec\/s: ([0-9]+).*/\1/p' <<< "$last")
fi
crashes_found=$(( $(findings) - crashes_before ))
tail -5 "$log" >&2
echo "fuzz.sh $target: ${seconds} s, executions ${executions:-?}, exec/s ${per_second:-?}, crashes $crashes_found, slow units $(( $(slow_units) - slow_before )), corpus $(ls "$corpus" | wc -l) inputs"
if [[ $crashes_found -gt 0 || $status -ne 0 ]]; then
    echo "fuzz.sh $target: libFuzzer exited with $status; crashing inputs in $crashes/" >&2
    grep -m5 -E 'ERROR|fuzz invariant|Fatal error' "$log" >&2 || true
    exit 1
fi
