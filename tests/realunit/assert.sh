# tests/realunit/assert.sh - the tier's assertions, sourced by the test
# scripts: one PASS:/FAIL: line each, counted; `finish` prints the totals
# and gives the exit code.
# shellcheck shell=bash

PASSED=0 FAILED=0
T_START=${T_START:-$(date +%s.%N)}
pass() { PASSED=$((PASSED + 1)); printf 'PASS: %s\n' "$1"; }
fail() {
    FAILED=$((FAILED + 1))
    printf 'FAIL: %s\n' "$1"
    [[ -n "${2:-}" ]] && printf '%s\n' "$2" | sed 's/^/      /'
    return 0
}
# check DESC CMD...: PASS when CMD succeeds.
check() {
    local desc=$1
    shift
    if "$@"; then pass "$desc"; else fail "$desc"; fi
}
# expect DESC WANT GOT
expect() {
    if [[ "$2" == "$3" ]]; then pass "$1"; else fail "$1" "want: $2"$'\n'"got:  $3"; fi
}
section() { printf '\n== %s (%ss)\n' "$*" "$(awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"; }
# hook_ok DESC RC: the hook (its log in $HOOK_LOG) exited 0.
hook_ok() {
    local desc=$1 rc=$2
    if [[ $rc -eq 0 ]]; then pass "$desc exits 0"; else fail "$desc exits 0 (rc=$rc)" "$(tail -n 15 "$HOOK_LOG")"; fi
}
# finish NAME: totals; exit code 1 on any failure.
finish() {
    printf 'TIMING %s: %ss\n' "$1" "$(awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
    printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
    [[ $FAILED -eq 0 ]]
}
