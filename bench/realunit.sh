#!/usr/bin/env bash
# make bench, second half: the real-unit table of issue 14. Needs root (it
# boots a unit with systemd-nspawn and reads taskstats), the packed charm
# (make charm) and the staged ops charm (bench/run.sh makes both first).
#   1. boots a magnum unit (tests/realunit), installs the charm and its
#      resources where a Juju agent puts them, converges it with `install`;
#   2. copies in the ops charm, the /bin/sh floor, the D-Bus floor
#      (bench/dbus_floor.rs) and bench/unit_harness.py;
#   3. bench/realunit.py times the four interleaved from inside the unit
#      and writes the table into BENCHMARKS.md.
# Environment: BENCH_ROUNDS (50), BENCH_WARMUP (5), BENCH_WORK
# (target/bench), BENCH_STRICT (1: exit 1 on a missed target), NAME.
set -euo pipefail
NAME=${NAME:-magnum-capi-bench}
SETTLE=${SETTLE:-3}
# shellcheck source=../tests/realunit/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tests/realunit/lib.sh"
cd "$REPO"
work=${BENCH_WORK:-$REPO/target/bench}
ops_charm=$work/ops-charm
[[ $EUID -eq 0 ]] || ru_die "the real-unit benchmark boots a unit with systemd-nspawn: run it as root"
[[ -x "$STAGE/dispatch" ]] || ru_die "no $STAGE/dispatch: run make charm first"
[[ -x "$ops_charm/dispatch" ]] || ru_die "no $ops_charm: bench/run.sh stages it"

ensure_inputs
boot_unit
ru_log "unit $NAME booted in ${BOOT_SECONDS}s; logs in $LOGDIR"
wait_for 60 services_healthy || ru_die "magnum-api and magnum-conductor did not come up after boot"
install_charm
run_dispatch hooks/install || { cat "$HOOK_LOG" >&2; ru_die "install failed"; }
run_dispatch hooks/config-changed || { cat "$HOOK_LOG" >&2; ru_die "config-changed failed"; }
run_dispatch hooks/update-status || { cat "$HOOK_LOG" >&2; ru_die "update-status failed"; }
status=$(juju_status)
[[ "$status" == active:* ]] || ru_die "the charm did not converge: $status"
ru_log "converged: $status"

# The ops charm and the floor as charm dirs of their own units; the ops
# charm gets its own copy of the fakes' world (what it records stays apart).
OPS_DIR=/var/lib/juju/agents/unit-bench-ops-0/charm
FLOOR_DIR=/var/lib/juju/agents/unit-bench-floor-0/charm
OPS_FAKE=/var/lib/juju/fake-ops
U mkdir -p "$OPS_DIR" "$FLOOR_DIR" "$OPS_FAKE" /opt/bench
realunit_copy_in "$NAME" "$ops_charm" "$OPS_DIR"
realunit_copy_in "$NAME" "$REPO/bench/floor/dispatch" "$FLOOR_DIR/dispatch"
realunit_copy_in "$NAME" "$REPO/bench/unit_harness.py" /opt/bench/unit_harness.py
# The D-Bus floor: only update-status's exchange with systemd (std only).
DBUS_DIR=/opt/bench/dbus-floor
rustc --edition 2021 -O -C panic=abort -C target-feature=+crt-static -C relocation-model=static \
    --target x86_64-unknown-linux-musl -o "$work/dbus_floor" "$REPO/bench/dbus_floor.rs"
U mkdir -p "$DBUS_DIR"
realunit_copy_in "$NAME" "$work/dbus_floor" "$DBUS_DIR/dispatch"
U cp "$FAKE_DIR/world.json" "$OPS_FAKE/world.json"
U rm -f "$OPS_DIR/.unit-state.db"

env_json() { # FAKE_UNIT JUJU_UNIT_NAME
    python3 -c 'import json, sys; print(json.dumps(dict(a.split("=", 1) for a in sys.argv[1:])))' \
        PATH="$TOOLS_DIR:$UNIT_PATH" HOME=/root LANG=C.UTF-8 FAKE_UNIT="$1" \
        JUJU_UNIT_NAME="$2" JUJU_MODEL_NAME=openstack JUJU_VERSION=3.6.4
}
in_unit() { U sh -c "$1" 2>/dev/null | head -n 1; }
cfg=$LOGDIR/bench-config.json
cat >"$cfg" <<EOF
{
 "harness": "/opt/bench/unit_harness.py",
 "runs_log": "/var/log/bench-runs.log",
 "impls": {
  "rust": {"charm_dir": "$CHARM_DIR", "env": $(env_json "$FAKE_DIR" magnum-capi/0)},
  "ops": {"charm_dir": "$OPS_DIR", "env": $(env_json "$OPS_FAKE" bench-ops/0)},
  "floor": {"charm_dir": "$FLOOR_DIR", "env": $(env_json "$FAKE_DIR" bench-floor/0)},
  "dbus": {"charm_dir": "$DBUS_DIR", "env": $(env_json "$FAKE_DIR" bench-dbus/0)}
 },
 "facts": {
  "nproc": $(nproc),
  "systemd": "$(in_unit 'systemctl --version' | awk '{print $2}')",
  "magnum": "$(in_unit "dpkg-query -W -f '\${Version}' magnum-common")",
  "python": "$(in_unit 'python3 --version' | awk '{print $2}')",
  "sh": "$(in_unit 'readlink -f /bin/sh')",
  "ops": "$(sed -n 's/^ops==//p' "$REPO/bench/ops-charm/requirements.txt")",
  "commit": "$(git -C "$REPO" describe --always --dirty)"
 }
}
EOF
python3 "$REPO/bench/realunit.py" --leader "$(realunit_leader "$NAME")" --config "$cfg" \
    --rounds "${BENCH_ROUNDS:-50}" --warmup "${BENCH_WARMUP:-5}" --output "$REPO/BENCHMARKS.md"
