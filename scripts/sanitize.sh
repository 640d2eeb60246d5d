#!/usr/bin/env bash
# Usage: scripts/sanitize.sh [address|thread] [swift test arguments…]
# Runs the unit tests under AddressSanitizer (default) or ThreadSanitizer, each in a build
# directory of its own (.build-asan, .build-tsan): a sanitized build is another cold build of
# every dependency. A report fails the run: ASan stops at its first, TSan's exit code is 66.
set -euo pipefail
cd "$(dirname "$0")/.."
sanitizer=${1:-address}
[[ $# -gt 0 ]] && shift
case $sanitizer in
address) scratch=.build-asan ;;
thread) scratch=.build-tsan ;;
*) echo "usage: scripts/sanitize.sh [address|thread] [swift test arguments…]" >&2; exit 2 ;;
esac
# Leaks of the toolchain and dependencies, each explained in scripts/lsan.supp.
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
started=$(date +%s)
swift test --scratch-path "$scratch" --sanitize="$sanitizer" "$@"
echo "sanitize.sh $sanitizer: passed in $(( $(date +%s) - started )) s" >&2
