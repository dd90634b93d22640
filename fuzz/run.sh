#!/usr/bin/env bash
# Run every fuzz target for a bounded time (default 60 s each; FUZZ_SECONDS
# to change) from the committed seeds, and print the executions of each.
# cargo-fuzz needs nightly compiler flags: RUSTC_BOOTSTRAP=1 lets the
# machine's stable toolchain accept them (no other toolchain can be had).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-60}
command -v cargo-fuzz >/dev/null || bash ../.ci/deps.sh fuzz
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
total=0
for t in kubeconfig config ini_render dbus_reply x509; do
    corpus=corpus/$t
    mkdir -p "$corpus"
    cp -n seeds/$t/* "$corpus"/ 2>/dev/null || true
    out=$(cargo fuzz run -O "$t" "$corpus" -- -max_total_time="$seconds" 2>&1) || { echo "$out" | tail -40; echo "fuzz target $t FAILED" >&2; exit 1; }
    runs=$(grep -oE 'Done [0-9]+ runs' <<<"$out" | grep -oE '[0-9]+' | tail -1)
    echo "fuzz $t: ${runs:-0} executions in ${seconds}s, no crash"
    total=$((total + ${runs:-0}))
done
echo "fuzz: $total executions in all"
