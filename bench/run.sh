#!/usr/bin/env bash
# make bench: the fake-unit benchmark of issues 11 and 14, then the
# real-unit table of issue 14 (bench/realunit.sh, as root).
#   1. builds the release charm (make charm) and the static fakes;
#   2. stages the ops charm (bench/ops-charm + ops from PyPI in its venv/);
#   3. bench/bench.py lays out and converges a fake unit, times the Rust
#      charm, the ops charm and a /bin/sh floor interleaved, and writes the
#      table into BENCHMARKS.md.
# Environment: BENCH_ROUNDS (40), BENCH_WARMUP (3), BENCH_VERIFY_RUNS (10),
# BENCH_WORK (target/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=${BENCH_WORK:-$repo/target/bench}
start=$(date +%s)
step() { echo "=== bench: $* ($(( $(date +%s) - start ))s)" >&2; }

# The system Python: what a real unit runs an ops charm with (not a pyenv
# shim, which is itself a bash script on PATH).
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
"$PY" -c 'import sys; assert sys.version_info >= (3, 10), "ops 3 needs Python >= 3.10"'

step "release charm (make charm) and the static fakes"
make --no-print-directory charm
cargo build --release --locked --target x86_64-unknown-linux-musl --bin fake-tool

mkdir -p "$work"
rm -f "$work/dbus_probe"

step "ops charm (bench/ops-charm, ops from PyPI)"
ops_charm=$work/ops-charm
req=bench/ops-charm/requirements.txt
stamp=$ops_charm/venv/.requirements
if ! cmp -s "$req" "$stamp" 2>/dev/null; then
    rm -rf "$ops_charm" "$work/venv-build"
    "$PY" -m venv "$work/venv-build"
    "$work/venv-build/bin/pip" install --quiet --disable-pip-version-check \
        --target "$ops_charm/venv" -r "$req"
    cp "$req" "$stamp"
fi
# The charm's own files (charmcraft puts them beside venv/).
mkdir -p "$ops_charm/src"
install -m 0755 bench/ops-charm/dispatch "$ops_charm/dispatch"
install -m 0644 bench/ops-charm/metadata.yaml bench/ops-charm/config.yaml "$ops_charm/"
install -m 0755 bench/ops-charm/src/charm.py "$ops_charm/src/charm.py"
rm -f "$ops_charm/.unit-state.db"

step "fake unit, timing"
"$PY" bench/bench.py --repo "$repo" --work "$work" --ops-charm "$ops_charm" \
    --rounds "${BENCH_ROUNDS:-40}" --warmup "${BENCH_WARMUP:-3}" \
    --verify-runs "${BENCH_VERIFY_RUNS:-10}" --output BENCHMARKS.md

# The real-unit table (issue 14's targets are read there): a booted magnum
# unit, so root. BENCH_REAL=0 skips it on purpose.
if [ "${BENCH_REAL:-1}" = 0 ]; then
    step "real unit: skipped (BENCH_REAL=0)"
elif [ "$(id -u)" != 0 ]; then
    echo "=== bench: the real-unit table boots a unit with systemd-nspawn: run make bench as root (or BENCH_REAL=0 to skip it)" >&2
    exit 1
else
    for suite in bookworm trixie; do
        step "real unit, Debian $suite (bench/realunit.sh)"
        SUITE=$suite BENCH_WORK=$work bash bench/realunit.sh
    done
fi
step "done: BENCHMARKS.md"
