#!/usr/bin/env bash
# tests/realunit/mgmt/selftest.sh - prove the test management cluster with
# the REAL driver (magnum-capi-helm 1.4.0) and the REAL helm (v3.17.2) in a
# booted magnum unit (bookworm, magnum 15.0.1). See README.md.
#
#   NAME=mgmt-selftest tests/realunit/mgmt/selftest.sh
#
# Needs the cached rootfs ($REALUNIT_DIR/root, build-rootfs.sh), the cached
# 1.4.0 wheel, helm and test-kube-api certificates (lib.sh ensure_inputs
# makes them; this script never runs cargo or build-rootfs.sh). Exit 0 when
# every expectation held.
set -euo pipefail

NAME=${NAME:-mgmt-selftest}
[[ $NAME == mgmt-* ]] || { echo "NAME must start with mgmt- (got $NAME)" >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
source "$HERE/../lib.sh"
# shellcheck source=mgmt.sh
source "$HERE/mgmt.sh"

[[ $EUID -eq 0 ]] || ru_die "run as root (systemd-nspawn)"
[[ -x "$ROOT/lib/systemd/systemd" && -e "$ROOT.pristine" ]] ||
    ru_die "no intact cached rootfs at $ROOT: run tests/realunit/build-rootfs.sh first"
for f in "$WHEEL_DIR/$WHEEL" "$HELM" "$KUBE_API_DIR/server.crt" "$KUBE_API_DIR/client.key"; do
    [[ -e "$f" ]] || ru_die "missing $f (run make test-real once, or lib.sh's ensure_inputs)"
done

TIMES=()
step() { STEP=$1; STEP_T0=$(now); ru_log "== $1"; }
done_step() { TIMES+=("$(printf '%-58s %6ss' "$STEP" "$(since "$STEP_T0")")"); }
FAILED=0
check() { if "$@"; then :; else FAILED=1; fi; }

cleanup() {
    local rc=$?
    if realunit_leader "$NAME" >/dev/null 2>&1; then
        mgmt_log >"$LOGDIR/mgmt-cluster.journal" 2>/dev/null || true
        realunit_stop "$NAME" 2>>"$LOGDIR/stop.log" || true
    fi
    ru_log "logs: $LOGDIR (mgmt-cluster.journal: one line per request)"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "boot $NAME (--volatile=overlay)"
realunit_boot "$ROOT" "$NAME" --volatile=overlay >/dev/null 2>"$LOGDIR/boot.log" || { cat "$LOGDIR/boot.log" >&2; ru_die "boot failed"; }
done_step

step "install magnum-capi-helm $DRIVER_VERSION (pip --no-deps) and helm"
realunit_copy_in "$NAME" "$WHEEL_DIR/$WHEEL" /tmp/
U pip3 install --quiet --break-system-packages --no-deps --no-index "/tmp/$WHEEL" >"$LOGDIR/pip.log" 2>&1 ||
    { cat "$LOGDIR/pip.log" >&2; ru_die "pip install failed"; }
realunit_copy_in "$NAME" "$HELM" /usr/local/bin/helm
realunit_copy_in "$NAME" "$HERE/drive_driver.py" /root/
U sh -c 'python3 --version; helm version --short; pip3 show magnum-capi-helm | sed -n 2p' | tr '\n' ' ' >&2; echo >&2
done_step

step "package the chart (host helm) and start the management cluster"
start_mgmt_cluster
kubeconfig 0001 | U sh -c 'umask 077; cat > /root/kubeconfig-token'
cert_kubeconfig | U sh -c 'umask 077; cat > /root/kubeconfig-cert'
done_step

drive() {
    local out=$1
    shift
    U env HOME=/root python3 /root/drive_driver.py --repo "$MGMT_REPO_URL" --chart-version 0.10.1 "$@" \
        >"$LOGDIR/$out.log" 2>"$LOGDIR/$out.stderr"
}
show() { grep -E '^\[' "$LOGDIR/$1.log" | sed 's/^/    /' >&2; }

step "driver: create -> CREATE_COMPLETE -> delete (token kubeconfig, 1 master + 2 workers)"
check drive token --kubeconfig /root/kubeconfig-token --masters 1 --workers 2
show token
done_step

step "driver: create -> CREATE_COMPLETE -> delete (client-cert kubeconfig, 3 masters + 1 worker)"
check drive cert --kubeconfig /root/kubeconfig-cert --masters 3 --workers 1
show cert
done_step

step "nothing left: no helm release, no object but the namespaces"
rels=$(mgmt_releases)
objs=$(mgmt_objects | python3 -c 'import json,sys; print(" ".join(sorted(o["kind"] + "/" + o["name"] for o in json.load(sys.stdin))))')
others=$(mgmt_objects | python3 -c 'import json,sys; print(len([o for o in json.load(sys.stdin) if o["kind"] != "Namespace"]))')
ru_log "    releases: $rels; objects: $objs"
if [[ $rels == "[]" && $others == 0 ]]; then
    ru_log "    ok"
else
    ru_log "    FAIL: something was left"
    FAILED=1
fi
done_step

step "failure mode: CAPO without v1beta1 (serves v1alpha7) -> CREATE_FAILED"
stop_mgmt_cluster
start_mgmt_cluster --without-version infrastructure.cluster.x-k8s.io/v1beta1 \
    --with-version infrastructure.cluster.x-k8s.io/v1alpha7
check drive fail --kubeconfig /root/kubeconfig-token --expect-fail
show fail
rels=$(mgmt_releases)
ru_log "    releases after the failed install: $rels"
[[ $rels == "[]" ]] || { ru_log "    FAIL: a release was left"; FAILED=1; }
done_step

mgmt_log >"$LOGDIR/mgmt-cluster.journal" 2>/dev/null || true
ru_log "requests served: $(grep -cE '^mgmt-api: (GET|POST|PUT|PATCH|DELETE) ' "$LOGDIR/mgmt-cluster.journal" || true); by verb:" \
    "$(grep -oE '^mgmt-api: (GET|POST|PUT|PATCH|DELETE) ' "$LOGDIR/mgmt-cluster.journal" | sort | uniq -c | tr -s ' ' | tr '\n' ',')"
printf '\nTimings:\n' >&2
printf '  %s\n' "${TIMES[@]}" >&2
if ((FAILED)); then
    ru_log "SELFTEST FAILED (see $LOGDIR)"
    exit 1
fi
ru_log "SELFTEST PASSED"
