# tests/realunit/lib.sh - sourced by test-real.sh and demo.sh: a booted
# magnum unit (build-rootfs.sh + unit.sh) with the charm where a Juju agent
# puts it, the fake HOOK TOOLS where Juju puts its own, and the real
# systemd, journalctl, pip3 and python3 of the unit.
#
# Unit layout (as a Juju machine agent lays it out):
#   /var/lib/juju/agents/unit-magnum-capi-0/charm   the packed charm's tree (make charm)
#   /var/lib/juju/tools/unit-magnum-capi-0/         config-get, secret-get, status-set, ...
#                                                   (links to the static fake-tool)
#   /var/lib/juju/fake/                             the fakes' world (FAKE_UNIT): world.json
#                                                   in, status.json, calls.jsonl, ... out
#   /var/cache/magnum-capi/wheels                   the driver wheel, for pip offline
#
# Host inputs: build/amd64/magnum-capi (make charm), the static fake-tool
# (built here with cargo when missing or older than its source), and the
# magnum-capi-helm wheel (pip download on the host, cached and checked
# against a pinned sha256). The unit has no network.
#
# Environment: MAGNUM_CAPI_REALUNIT_DIR (default /var/tmp/magnum-capi-realunit)
# holds the rootfs, its cache and the wheel cache.
# shellcheck shell=bash

RU_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$RU_HERE/../.." && pwd)
# shellcheck source=unit.sh
source "$RU_HERE/unit.sh"

REALUNIT_DIR=${MAGNUM_CAPI_REALUNIT_DIR:-/var/tmp/magnum-capi-realunit}
ROOT=$REALUNIT_DIR/root
WHEEL_DIR=$REALUNIT_DIR/wheels
DRIVER_VERSION=1.1.0
WHEEL=magnum_capi_helm-1.1.0-py3-none-any.whl
# PyPI files never change: the wheel pip downloads must be this one.
WHEEL_SHA256=a90b39640c9f79763d23d3e319b49f9eab917e8349f6e1cc686eb64bfb5819a0
STAGE=${MAGNUM_CAPI_STAGE:-$REPO/build/amd64/magnum-capi}
FAKE_TOOL=$REPO/target/x86_64-unknown-linux-musl/release/fake-tool

CHARM_DIR=/var/lib/juju/agents/unit-magnum-capi-0/charm
TOOLS_DIR=/var/lib/juju/tools/unit-magnum-capi-0
FAKE_DIR=/var/lib/juju/fake
UNIT_WHEELS=/var/cache/magnum-capi/wheels
UNIT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
SECRET_URI=secret:d1f8kq7mp25c77s6iqgg
SERVICES=(magnum-api magnum-conductor)
# The hook tools a Juju agent provides; the charm gets nothing else fake.
HOOK_TOOLS=(config-get secret-get status-set application-version-set action-get action-set
            action-fail action-log juju-log resource-get is-leader)

NAME=${NAME:-magnum-capi-0}
LOGDIR=${LOGDIR:-$(mktemp -d /tmp/magnum-capi-realunit.XXXXXX)}

ru_log() { printf '[realunit] %s\n' "$*" >&2; }
ru_die() { ru_log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# U CMD...: run CMD in the unit (clean environment, standard PATH).
U() { realunit_exec "$NAME" "$@"; }

# wait_for SECONDS CMD...: poll CMD (every 0.2 s) until it succeeds; false
# when SECONDS pass first. Every wait in these scripts is bounded by it.
wait_for() {
    local limit=$1 deadline
    shift
    deadline=$(awk -v n="$(now)" -v l="$limit" 'BEGIN { printf "%d", n + l }')
    until "$@" >/dev/null 2>&1; do
        (($(date +%s) < deadline)) || return 1
        sleep 0.2
    done
}

# --- host inputs ---------------------------------------------------------

ensure_inputs() {
    [[ $EUID -eq 0 ]] || ru_die "run as root (systemd-nspawn)"
    local t
    for t in systemd-nspawn nsenter strace python3 file; do
        command -v "$t" >/dev/null || ru_die "$t is not installed on the host"
    done
    [[ -x "$STAGE/dispatch" ]] || ru_die "no $STAGE/dispatch: run make charm first"
    file -b "$STAGE/dispatch" | grep -q 'static' ||
        ru_die "$STAGE/dispatch is not a static binary: $(file -b "$STAGE/dispatch")"
    if [[ ! -x "$FAKE_TOOL" || -n "$(find "$REPO/tests/fakes" -newer "$FAKE_TOOL" -name '*.rs' 2>/dev/null)" ]]; then
        ru_log "building the static fake hook tools"
        (cd "$REPO" && cargo build --quiet --release --locked --target x86_64-unknown-linux-musl --bin fake-tool) ||
            ru_die "cannot build fake-tool"
    fi
    mkdir -p "$WHEEL_DIR"
    if [[ ! -f "$WHEEL_DIR/$WHEEL" ]]; then
        ru_log "downloading $WHEEL from PyPI (cached in $WHEEL_DIR)"
        PIP_FIND_LINKS= python3 -m pip download --quiet --disable-pip-version-check --no-deps \
            --only-binary=:all: -d "$WHEEL_DIR" "magnum-capi-helm==$DRIVER_VERSION" ||
            ru_die "pip download magnum-capi-helm==$DRIVER_VERSION failed"
    fi
    [[ "$(sha256sum "$WHEEL_DIR/$WHEEL" | cut -d' ' -f1)" == "$WHEEL_SHA256" ]] ||
        ru_die "$WHEEL_DIR/$WHEEL does not have the pinned sha256 $WHEEL_SHA256: delete it and retry"
}

# --- the unit ------------------------------------------------------------

# Boot a throwaway unit: ROOT is only read (tmpfs overlay), so no restore is
# needed between runs. Sets the EXIT trap that powers it off.
boot_unit() {
    local t0
    t0=$(now)
    "$RU_HERE/build-rootfs.sh" "$ROOT" >"$LOGDIR/build-rootfs.log" 2>&1 ||
        { tail -n 20 "$LOGDIR/build-rootfs.log" >&2; ru_die "build-rootfs.sh failed"; }
    ROOTFS_SECONDS=$(since "$t0")
    t0=$(now)
    trap teardown EXIT
    trap 'exit 130' INT TERM
    realunit_boot "$ROOT" "$NAME" --volatile=overlay >/dev/null 2>"$LOGDIR/boot.log" ||
        { cat "$LOGDIR/boot.log" >&2; ru_die "boot failed"; }
    BOOT_SECONDS=$(since "$t0")
}

teardown() {
    local rc=$?
    if realunit_leader "$NAME" >/dev/null 2>&1; then
        # The unit is thrown away: uwsgi (magnum-api as packaged) takes its
        # whole 15 s stop timeout on SIGTERM, so end the services first.
        timeout 10 nsenter -t "$(realunit_leader "$NAME")" -a env -i PATH="$UNIT_PATH" \
            systemctl kill --signal=SIGKILL magnum-api.service magnum-conductor.service >/dev/null 2>&1 || true
        realunit_stop "$NAME" 2>"$LOGDIR/stop.log" || { cat "$LOGDIR/stop.log" >&2; rc=1; }
    fi
    exit "$rc"
}

# Both services active, not restarting; false otherwise.
services_healthy() {
    local s out
    for s in "${SERVICES[@]}"; do
        out=$(U systemctl show -p ActiveState,SubState,NRestarts "$s.service") || return 1
        [[ "$out" == *"ActiveState=active"* && "$out" == *"SubState=running"* && "$out" == *"NRestarts=0"* ]] || return 1
    done
}

# The charm, the fake hook tools, the wheel and a world for the fakes.
install_charm() {
    local t
    U mkdir -p "$CHARM_DIR" "$TOOLS_DIR" "$FAKE_DIR" "$UNIT_WHEELS"
    realunit_copy_in "$NAME" "$STAGE" "$CHARM_DIR"
    realunit_copy_in "$NAME" "$FAKE_TOOL" "$TOOLS_DIR/fake-tool"
    for t in "${HOOK_TOOLS[@]}"; do U ln -sf fake-tool "$TOOLS_DIR/$t"; done
    realunit_copy_in "$NAME" "$WHEEL_DIR/$WHEEL" "$UNIT_WHEELS/"
    initial_world | U sh -c "cat > $FAKE_DIR/world.json"
}

# The kubeconfig the tests use (tests/support/mod.rs KUBECONFIG), with a
# serial so a rotated secret differs.
kubeconfig() {
    cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: capi-mgmt
  cluster:
    server: https://10.20.0.10:6443
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJkVENDQVJ1Z0F3SUJBZ0lJCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K
contexts:
- name: magnum@capi-mgmt
  context:
    cluster: capi-mgmt
    user: magnum
current-context: magnum@capi-mgmt
users:
- name: magnum
  user:
    token: eyJhbGciOiJSUzI1NiJ9.canary-token-${1:-0001}.sig
EOF
}

initial_world() {
    python3 - "$SECRET_URI" "$(kubeconfig 0001)" "${SETTLE:-5}" <<'PY'
import json, sys
uri, kube, settle = sys.argv[1], sys.argv[2], int(sys.argv[3])
print(json.dumps({
    "config": {"kubeconfig-secret": uri, "driver-version": "1.1.0", "disabled-drivers": "auto",
               "service-override": "runbook", "restart-settle-seconds": settle},
    "secrets": {uri: {"content": {"kubeconfig": kube}}},
    "leader": True,
}, indent=1))
PY
}

# world_set KEY.PATH JSON: edit the fakes' world in the unit, e.g.
#   world_set config.namespace-prefix '"capi"'   (juju config)
#   world_set 'secrets.secret:...' '{...}'        (juju update-secret)
# A null JSON value removes the key (juju config --reset).
world_set() {
    U python3 -c '
import json, sys
path, value = sys.argv[1], json.loads(sys.argv[2])
f = sys.argv[3]
w = json.load(open(f))
keys = path.split(".", 1) if not path.startswith("secrets.") else ["secrets", path[len("secrets."):]]
node = w
for k in keys[:-1]:
    node = node.setdefault(k, {})
if value is None:
    node.pop(keys[-1], None)
else:
    node[keys[-1]] = value
json.dump(w, open(f + ".tmp", "w"), indent=1)
import os; os.rename(f + ".tmp", f)
' "$1" "$2" "$FAKE_DIR/world.json"
}

# The status the charm last set, as `juju status` shows it: "kind: message".
juju_status() {
    U sh -c "cat $FAKE_DIR/status.json 2>/dev/null" |
        python3 -c 'import json,sys; t=sys.stdin.read().strip(); s=json.loads(t) if t else {"kind":"unknown","message":""}; print(s["kind"] + ": " + s["message"])'
}

# --- running the charm ---------------------------------------------------

# The argv that runs the charm as a Juju agent would: dispatch in the charm
# dir, JUJU_DISPATCH_PATH, the hook tools first on PATH. Extra NAME=VALUE
# words are added to the environment. The unit's shell writes its PID to
# /run/magnum-capi-hook.pid before it becomes dispatch (exec).
dispatch_argv() {
    local path=$1 hook_env=()
    shift
    [[ "$path" == hooks/* ]] && hook_env+=("JUJU_HOOK_NAME=${path#hooks/}")
    DISPATCH_ARGV=(nsenter -t "$(realunit_leader "$NAME")" -a
        env -i PATH="$TOOLS_DIR:$UNIT_PATH" HOME=/root LANG=C.UTF-8
        FAKE_UNIT="$FAKE_DIR" PIP_NO_INDEX=1 PIP_FIND_LINKS="$UNIT_WHEELS"
        JUJU_CHARM_DIR="$CHARM_DIR" JUJU_UNIT_NAME=magnum-capi/0 JUJU_MODEL_NAME=openstack
        JUJU_VERSION=3.6.4 JUJU_DISPATCH_PATH="$path" "${hook_env[@]}" "$@"
        /bin/sh -c 'echo $$ > /run/magnum-capi-hook.pid; cd "$JUJU_CHARM_DIR" && exec ./dispatch')
}

# run_dispatch hooks/X|actions/Y [NAME=VALUE...]: run it; its stdout and
# stderr go to $LOGDIR/<n>-<hook>.log (HOOK_LOG); returns its exit code.
HOOK_N=0
run_dispatch() {
    local path=$1 rc=0
    shift
    HOOK_N=$((HOOK_N + 1))
    HOOK_LOG=$LOGDIR/$(printf '%02d' "$HOOK_N")-${path//\//-}.log
    dispatch_argv "$path" "$@"
    timeout 300 "${DISPATCH_ARGV[@]}" >"$HOOK_LOG" 2>&1 || rc=$?
    return "$rc"
}

# traced_dispatch hooks/X [NAME=VALUE...]: the same under strace on the
# host; TRACE is the strace output. spawned_by_charm then lists what the
# charm itself ran.
traced_dispatch() {
    local path=$1 rc=0
    shift
    HOOK_N=$((HOOK_N + 1))
    HOOK_LOG=$LOGDIR/$(printf '%02d' "$HOOK_N")-${path//\//-}.log
    TRACE=$LOGDIR/$(printf '%02d' "$HOOK_N")-${path//\//-}.strace
    dispatch_argv "$path" "$@"
    timeout 300 strace -f -qq -s 200 -e trace=execve,connect -e signal=none -o "$TRACE" \
        "${DISPATCH_ARGV[@]}" >"$HOOK_LOG" 2>&1 || rc=$?
    return "$rc"
}

# The programs the charm spawned (one line each: path then argv), from
# TRACE: every successful execve after the harness's own exec of
# ./dispatch (nsenter, env and sh come before it; failed PATH lookups end
# in ENOENT).
spawned_by_charm() {
    awk '/execve\("\.\/dispatch", .* = 0$/ { seen = 1; next } seen && / execve\(.* = 0$/' "$TRACE" |
        sed -E 's/^[0-9]+ +execve\("([^"]*)", \[(.*)\], 0x.*$/\1 \2/'
}

# Basenames of what the charm spawned, sorted, one line.
spawned_names() {
    spawned_by_charm | awk '{ n = split($1, p, "/"); print p[n] }' | sort | tr '\n' ' ' | sed 's/ $//'
}

# Did the charm connect to the unit's system bus?
used_system_bus() {
    grep -q 'connect(.*sun_path="/run/dbus/system_bus_socket"' "$TRACE"
}

svc() { U systemctl show -p "$2" --value "$1.service"; }
