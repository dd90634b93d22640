#!/usr/bin/env bash
# tests/realunit/test-real.sh - `make test-real`: the charm on a booted
# Debian magnum unit (real systemd as PID 1, real dbus, pip3, python3,
# journalctl, magnum-api and magnum-conductor 15.0.1), with only the Juju
# hook tools faked. Needs root and systemd-nspawn; the unit has no network.
#
# Prints one PASS/FAIL line per assertion and ends with `N passed, N failed`
# (exit 1 on any FAIL). Known charm bugs are XFAIL lines (not counted as
# failures; an XPASS says the bug is fixed and the check can become a PASS).
#
# Inputs: build/amd64/magnum-capi (make charm); the fake hook tools and the
# magnum-capi-helm 1.1.0 wheel are made/downloaded here (cached). Logs of
# every hook, and the strace of the traced ones, stay in $LOGDIR.
set -uo pipefail

NAME=${NAME:-magnum-capi-test}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SETTLE=5

source "$RU_HERE/assert.sh"
XFAILED=0
# known_bug DESC CMD...: the correct behaviour; XFAIL while the bug is there.
known_bug() {
    local desc=$1
    shift
    if "$@"; then
        PASSED=$((PASSED + 1))
        printf 'XPASS: %s (known bug fixed: make it a plain check)\n' "$desc"
    else
        XFAILED=$((XFAILED + 1))
        printf 'XFAIL: %s (known charm bug)\n' "$desc"
    fi
}
# start_bg hooks/X: run the hook in the background (BG: the host PID of
# our subshell; the unit shell's PID, then dispatch's, is in
# /run/magnum-capi-hook.pid in the unit). wait_bg: wait for it (at most
# 30 s), return the hook's exit code.
start_bg() {
    dispatch_argv "$1"
    HOOK_LOG=$LOGDIR/bg-${1//\//-}-$((HOOK_N += 1)).log
    U rm -f /run/magnum-capi-hook.pid
    ( "${DISPATCH_ARGV[@]}" >"$HOOK_LOG" 2>&1; echo $? >"$HOOK_LOG.rc" ) 2>/dev/null &
    BG=$!
}
wait_bg() {
    timeout 30 tail --pid="$BG" -f /dev/null || kill -KILL "$BG" 2>/dev/null
    wait "$BG" 2>/dev/null
    return "$(cat "$HOOK_LOG.rc" 2>/dev/null || echo 255)"
}
status_is() { [[ "$(juju_status)" == "$1" ]]; }
READY="active: magnum-capi-helm $DRIVER_VERSION ready"

start_ts() { svc "$1" ExecMainStartTimestampMonotonic; }
exec_start() { svc "$1" ExecStart | grep -o 'argv\[\]=[^;]*' | sed 's/^argv\[\]=//; s/ *$//'; }
main_cmdline() { U sh -c 'tr "\0" " " < /proc/$(systemctl show -p MainPID --value "$1.service")/cmdline' sh "$1"; }
no_temp_files() {
    [[ -z "$(U find /etc/magnum /etc/systemd/system /var/lib/magnum-capi -name '*.magnum-capi-tmp')" ]]
}
file_sum() { U sh -c 'sha256sum < "$1" 2>/dev/null || echo absent' sh "$1"; }
# healthy_within SECONDS: healthy_stays within the time, or print what
# systemd says of both services (a failing check says why).
healthy_within() {
    wait_for "$1" healthy_stays && return 0
    U systemctl show -p Id,ActiveState,SubState,Result,NRestarts,ExecMainStartTimestampMonotonic magnum-api magnum-conductor | tr '\n' ' ' >&2
    echo >&2
    U journalctl --no-pager -o short-monotonic -n 12 -u magnum-api -u magnum-conductor | cut -c1-220 >&2
    return 1
}

# Both services healthy now, and after a short while still (a crash loop
# can read `active` between two starts).
healthy_stays() {
    services_healthy || return 1
    local a c
    a=$(start_ts magnum-api) c=$(start_ts magnum-conductor)
    sleep 2
    services_healthy && [[ "$(start_ts magnum-api)" == "$a" && "$(start_ts magnum-conductor)" == "$c" ]]
}

# The config as magnum's services load it: magnum's own option registration
# (import magnum.conf) and its own parse_args, as the magnum user, with the
# argv given; [capi_helm] registered as the driver does when magnum loads it.
# Prints JSON {kubeconfig_file, disabled_drivers, written}.
magnum_reads() {
    U setpriv --reuid=magnum --regid=magnum --init-groups python3 -W ignore -c '
import json, sys
import magnum.conf
from magnum.common import config
config.parse_args(sys.argv)
import magnum_capi_helm.conf
CONF = magnum.conf.CONF
print(json.dumps({"kubeconfig_file": CONF.capi_helm.kubeconfig_file,
                  "disabled_drivers": sorted(CONF.drivers.disabled_drivers)}))
' "$@"
}
# Every installed magnum driver but ours (what disabled-drivers=auto means).
other_drivers() {
    U python3 -c '
import json, importlib.metadata as md
print(json.dumps({"kubeconfig_file": "/etc/magnum/kubeconfig", "disabled_drivers": sorted(
    {e.name for e in md.entry_points(group="magnum.drivers")} - {"k8s_capi_helm_v1"})}))'
}

# A stand-in /usr/bin/magnum-conductor that, like a magnum that dies on a
# config value, runs ~2 s and exits 1 with a red-flag line (also when it is
# stopped before) while 99-capi.conf holds the marker; otherwise it is the
# real one.
install_breaker() {
    U sh -ec '[ -e /usr/bin/magnum-conductor.real ] || mv /usr/bin/magnum-conductor /usr/bin/magnum-conductor.real'
    cat <<EOF | U sh -ec 'cat > /usr/bin/magnum-conductor; chmod 0755 /usr/bin/magnum-conductor'
#!/bin/sh
# test-real: fail like a magnum that rejects its config, while
# 99-capi.conf has namespace_prefix = $1.
if grep -qsx "namespace_prefix = $1" /etc/magnum/magnum.conf.d/99-capi.conf; then
    flag() { echo "oslo_config.cfg.ConfigFileValueError: Value for option namespace_prefix is not valid (injected by test-real\$1)" >&2; exit 1; }
    # Like a Python service stopped mid-start, it also logs on SIGTERM.
    trap 'flag ", at stop"' TERM
    sleep 2 & wait \$!
    flag ""
fi
exec /usr/bin/magnum-conductor.real "\$@"
EOF
}
remove_breaker() { U sh -ec 'mv /usr/bin/magnum-conductor.real /usr/bin/magnum-conductor'; }

# ---------------------------------------------------------------------------
ensure_inputs
boot_unit
printf 'unit %s booted in %ss (rootfs ready in %ss); logs in %s\n' "$NAME" "$BOOT_SECONDS" "$ROOTFS_SECONDS" "$LOGDIR"
wait_for 60 services_healthy || ru_die "magnum-api and magnum-conductor did not come up after boot"
install_charm
# What remove must give back: the files the charm may touch, and the
# services as systemd runs them.
unit_snapshot() {
    U sh -c '
        find /etc/magnum /etc/systemd/system /etc/default /usr/local/bin /usr/local/lib /var/lib/magnum-capi \
            -printf "%p %M %u:%g\n" 2>/dev/null | sort
        find /etc/magnum /etc/systemd/system /etc/default -type f -exec sha256sum {} + 2>/dev/null | sort -k2
        for s in magnum-api magnum-conductor; do
            echo "$s ExecStart=$(systemctl show -p ExecStart --value $s | grep -o "argv\[\][^;]*")"
            echo "$s DropInPaths=$(systemctl show -p DropInPaths --value $s)"
        done'
}
before=$(unit_snapshot)
# unit_mark: remember the unit's files and when each service started.
# unit_untouched PREFIX [--no-pip]: since unit_mark, no file of the unit
# changed and nothing restarted; --no-pip: the last traced hook ran no pip.
unit_mark() {
    snap=$(unit_snapshot)
    a=$(start_ts magnum-api) c=$(start_ts magnum-conductor)
}
unit_untouched() {
    local prefix=$1
    if [ "${2:-}" = --no-pip ]; then
        check "${prefix}it ran no pip" no_exec 'execve\("[^"]*pip'
    fi
    expect "${prefix}no file of the unit changed" "$snap" "$(unit_snapshot)"
    expect "${prefix}nothing restarted" "$a $c" "$(start_ts magnum-api) $(start_ts magnum-conductor)"
}

section "install: the real wheel, offline, with real pip"
rc=0; traced_dispatch hooks/install || rc=$?
hook_ok "install" $rc
pip_calls=$(spawned_by_charm | grep -c '/pip3 ' || true)
pip_argv=$(spawned_by_charm | grep '/pip3 ' | head -n 1)
expect "install runs pip3 once" 1 "$pip_calls"
check "pip3 runs with --no-deps ($pip_argv)" grep -q -- '"--no-deps"' <<<"$pip_argv"
check "pip3 runs with --break-system-packages (Debian's pip is PEP 668)" grep -q -- '"--break-system-packages"' <<<"$pip_argv"
where=$(U python3 -c 'import magnum_capi_helm; print(magnum_capi_helm.__file__)' 2>&1)
check "the driver is in /usr/local/lib/python3.*/dist-packages ($where)" \
    grep -Eq '^/usr/local/lib/python3\.[0-9]+/dist-packages/magnum_capi_helm/__init__\.py$' <<<"$where"
expect "--no-deps: pip added nothing but the driver to dist-packages" \
    "magnum_capi_helm magnum_capi_helm-$DRIVER_VERSION.dist-info" \
    "$(U sh -c 'ls /usr/local/lib/python3.*/dist-packages' | tr '\n' ' ' | sed 's/ $//')"
got=$(U python3 -W ignore -c '
import sys
from magnum.common import config
config.parse_args(["magnum-conductor", "--config-file=/etc/magnum/magnum.conf", "--config-dir=/etc/magnum/magnum.conf.d"])
from magnum.drivers.common.driver import Driver
d = Driver.get_driver("vm", "ubuntu", "kubernetes")
print(type(d).__module__ + "." + type(d).__name__)' 2>&1 | tail -n 1)
expect "magnum's Driver.get_driver('vm','ubuntu','kubernetes') is the CAPI driver" "magnum_capi_helm.driver.Driver" "$got"
expect "the charm installed helm from its resource (sha256 as pinned)" "$HELM_SHA256" \
    "$(U sh -c 'sha256sum < /usr/local/bin/helm' | cut -d' ' -f1)"
expect "helm runs in the unit" "v3.17.2+gcc0bbbd" "$(U helm version --short 2>&1)"
expect "status after install" "$READY" "$(juju_status)"

section "service-override=packaged (the default): the packaged servers kept, conf.d read last (issue 22)"
want=$(other_drivers)
written=$(U sed -n 's/^disabled_drivers = //p' /etc/magnum/magnum.conf.d/99-capi.conf | tr ',' '\n' | sort | tr '\n' ',')
expect "disabled_drivers as written in 99-capi.conf is every other installed driver" \
    "$(python3 -c 'import json,sys; print(",".join(json.loads(sys.argv[1])["disabled_drivers"]) + ",")' "$want")" "$written"
# The API as the packaging runs it: uwsgi (Debian's openstack-pkg-tools
# template), its master and the ini's processes, on 9511.
api_is_packaged_uwsgi() {
    local main workers
    main=$(main_cmdline magnum-api)
    [[ $main == /usr/bin/uwsgi_python3* && $main == *"--http-socket :9511 --ini /etc/magnum/magnum-api-uwsgi.ini"* ]] || return 1
    workers=$(U sh -c 'ps -o pid= --ppid "$(systemctl show -p MainPID --value magnum-api.service)" | wc -l')
    [[ $workers -ge 2 ]]
}
api_answers() {
    U python3 -c 'import urllib.request; b = urllib.request.urlopen("http://127.0.0.1:9511/", timeout=30).read(); assert b"OpenStack Magnum API" in b'
}
# The arguments magnum's own parser gets in each running service.
conductor_args() { main_cmdline magnum-conductor | tr ' ' '\n' | grep -E '^--config-(file|dir)='; }
api_app_args() { U sh -c 'tr "\0" "\n" < /proc/$(systemctl show -p MainPID --value magnum-api.service)/cmdline' | sed -n '/^--pyargv$/{n;p}'; }
packaged_checks() {
    local s
    for s in "${SERVICES[@]}"; do
        expect "$s ExecStart is the packaged one" "/etc/init.d/$s systemd-start" "$(exec_start "$s")"
        expect "$s has no magnum-capi drop-in" "" "$(svc "$s" DropInPaths | grep -o '99-magnum-capi.conf' || true)"
    done
    check "magnum-api is still the packaged server: uwsgi with its workers ($(main_cmdline magnum-api))" api_is_packaged_uwsgi
    check "magnum-api answers on 9511" wait_for 60 api_answers
    expect "magnum-conductor runs with magnum.conf, then conf.d (its MainPID's command line)" \
        "--config-file=/etc/magnum/magnum.conf --config-dir=/etc/magnum/magnum.conf.d" "$(conductor_args | tr '\n' ' ' | sed 's/ $//')"
    expect "magnum-api's app gets --config-dir through uwsgi's --pyargv" "--config-dir=/etc/magnum/magnum.conf.d" "$(api_app_args)"
    # shellcheck disable=SC2046
    expect "magnum's config loader, with the conductor's arguments, reads 99-capi.conf" \
        "$want" "$(magnum_reads $(conductor_args) 2>&1 | tail -n 1)"
    expect "and with the API app's (oslo.config's default files, then conf.d)" \
        "$want" "$(magnum_reads "$(api_app_args)" 2>&1 | tail -n 1)"
}
packaged_checks
check "both services active, NRestarts=0, and stay up" healthy_stays

section "service-override=runbook: drop-ins effective under real systemd"
world_set config.service-override '"runbook"'
rc=0; run_dispatch hooks/config-changed || rc=$?
hook_ok "config-changed (service-override=runbook)" $rc
expect "status" "$READY" "$(juju_status)"
for s in "${SERVICES[@]}"; do
    expect "$s ExecStart (systemctl show)" \
        "/usr/bin/$s --config-file=/etc/magnum/magnum.conf --config-dir=/etc/magnum/magnum.conf.d" "$(exec_start "$s")"
    check "$s runs with --config-dir (its MainPID's command line)" grep -q -- "--config-dir=/etc/magnum/magnum.conf.d" <<<"$(main_cmdline "$s")"
done
check "the API is magnum's own server now, not uwsgi (what runbook costs)" grep -q '^/usr/bin/python3 /usr/bin/magnum-api ' <<<"$(main_cmdline magnum-api)"
check "the charm's /etc/default files are gone (it made them)" U sh -c '! test -e /etc/default/magnum-conductor && ! test -e /etc/default/magnum-api'
check "both services active, NRestarts=0, and stay up" healthy_stays

section "service-override=none: the packaged ExecStart, no --config-dir"
world_set config.service-override '"none"'
rc=0; run_dispatch hooks/config-changed || rc=$?
hook_ok "config-changed (service-override=none)" $rc
expect "status" "$READY" "$(juju_status)"
for s in "${SERVICES[@]}"; do
    expect "$s ExecStart is the packaged one" "/etc/init.d/$s systemd-start" "$(exec_start "$s")"
    expect "$s has no magnum-capi drop-in" "" "$(svc "$s" DropInPaths | grep -o '99-magnum-capi.conf' || true)"
done
check "both services active, NRestarts=0, and stay up" healthy_stays
expect "magnum-conductor runs with magnum.conf only" "--config-file=/etc/magnum/magnum.conf" "$(conductor_args | tr '\n' ' ' | sed 's/ $//')"
expect "magnum.conf + the default config dir (the packaged conductor's argv): conf.d still read" \
    "$want" "$(magnum_reads --config-file=/etc/magnum/magnum.conf 2>&1 | tail -n 1)"

section "back to the default, packaged"
world_set config.service-override '"packaged"'
rc=0; run_dispatch hooks/config-changed || rc=$?
hook_ok "config-changed (service-override=packaged)" $rc
expect "status" "$READY" "$(juju_status)"
packaged_checks
check "both services active, NRestarts=0, and stay up" healthy_stays

section "a config-changed with nothing to do"
a=$(start_ts magnum-api) c=$(start_ts magnum-conductor)
rc=0; traced_dispatch hooks/config-changed || rc=$?
hook_ok "config-changed (no change)" $rc
expect "it spawns only config-get and secret-get (strace)" "config-get secret-get" "$(spawned_names)"
expect "it restarts nothing (ExecMainStartTimestampMonotonic of both unchanged)" "$a $c" \
    "$(start_ts magnum-api) $(start_ts magnum-conductor)"

section "update-status"
rc=0; traced_dispatch hooks/update-status || rc=$?
hook_ok "update-status (converged)" $rc
expect "on the converged unit it spawns no process at all (strace)" "" "$(spawned_names)"
check "it reads systemd over the system bus (connect to /run/dbus/system_bus_socket)" used_system_bus
rc=0; traced_dispatch hooks/update-status || rc=$?
hook_ok "update-status again" $rc
expect "the next one is the lean path: it opens its state file and nothing else (stat stamps, one D-Bus exchange)" \
    "/var/lib/magnum-capi/state.json" "$(opened_by_charm)"
expect "and spawns nothing" "" "$(spawned_names)"
expect "it restarts nothing" "$a $c" "$(start_ts magnum-api) $(start_ts magnum-conductor)"
U systemctl stop magnum-conductor.service
expect "magnum-conductor stopped by hand" "inactive" "$(svc magnum-conductor ActiveState)"
rc=0; run_dispatch hooks/update-status || rc=$?
hook_ok "update-status (conductor stopped)" $rc
check "update-status started magnum-conductor again; both healthy and stay up" healthy_stays
expect "status" "$READY" "$(juju_status)"

section "verify"
run_verify() {
    world_set action_params '{}'
    U rm -f "$FAKE_DIR/action-results.json" "$FAKE_DIR/action-failed" "$FAKE_DIR/action-log.txt"
    run_dispatch actions/verify JUJU_ACTION_NAME=verify JUJU_ACTION_UUID=1
}
# check_status [NAME...]: "name=status" for the checks named (all of them,
# sorted, without one).
check_status() {
    U sh -c "cat $FAKE_DIR/action-results.json 2>/dev/null || echo '{}'" | python3 -c '
import json, sys
r = json.load(sys.stdin).get("checks", {})
names = sys.argv[1:] or sorted(r)
print(" ".join("%s=%s" % (n, r.get(n, {}).get("status", "missing")) for n in names))' "$@"
}
not_failed() { ! U test -e "$FAKE_DIR/action-failed"; }
no_exec() { ! grep -qE "$1" "$TRACE"; }
a=$(start_ts magnum-api) c=$(start_ts magnum-conductor)
run_verify; rc=$?
# What `juju run magnum-capi/0 verify` shows on this unit (README's example).
U sh -c "cat $FAKE_DIR/action-log.txt; echo; cat $FAKE_DIR/action-results.json" >"$LOGDIR/verify-healthy.txt" 2>&1 || true
check "verify ran (dispatch exit 0, results written)" test "$rc" -eq 0 -a -n "$(check_status services)"
got=$(check_status)
check "on the healthy unit every check passes but the skipped api-driver-check ($got)" \
    test -z "$(tr ' ' '\n' <<<"$got" | grep -v '=pass$' | grep -vx 'api-driver-check=skip')"
check "and the action succeeds" not_failed
expect "verify restarts nothing" "$a $c" "$(start_ts magnum-api) $(start_ts magnum-conductor)"
U rm /usr/local/bin/helm
run_verify
expect "with helm deleted by hand, verify fails the helm check" "helm=fail" "$(check_status helm)"
check "and the action fails" U test -e "$FAKE_DIR/action-failed"
rc=0; run_dispatch hooks/update-status || rc=$?
hook_ok "update-status (helm deleted)" $rc
expect "update-status put helm back (sha256 as pinned)" "$HELM_SHA256" \
    "$(U sh -c 'sha256sum < /usr/local/bin/helm 2>/dev/null' | cut -d' ' -f1)"
U systemctl stop magnum-conductor.service
run_verify
expect "with magnum-conductor stopped, verify fails the services check" "services=fail" "$(check_status services)"
check "and the action fails" U test -e "$FAKE_DIR/action-failed"
U systemctl start magnum-conductor.service
wait_for 30 healthy_stays

section "the driver of today: versions, credentials, the management cluster's APIs (issue 20)"
# The stand-in management cluster serves OpenStackCluster at v1beta1 only,
# as CAPO 0.11+ does. The default driver (1.4.0) with the token kubeconfig
# passed every check above; here what it checked, then 1.1.0.
detail_of() {
    U sh -c "cat $FAKE_DIR/action-results.json 2>/dev/null || echo '{}'" |
        python3 -c 'import json,sys; c=json.load(sys.stdin).get("checks",{}).get(sys.argv[1],{}); print(c.get("detail","") + " | " + c.get("fix",""))' "$1"
}
set_kube_secret() {
    world_set "secrets.$SECRET_URI" "$(python3 -c 'import json,sys; print(json.dumps({"content": {"kubeconfig": sys.argv[1]}}))' "$1")"
}
run_verify
d=$(detail_of management-cluster-apis)
check "verify: the cluster serves every API 1.4.0 requests, OpenStackCluster v1beta1 ($d)" \
    grep -q 'serves every API magnum-capi-helm 1.4.0 requests: .*infrastructure.cluster.x-k8s.io/v1beta1' <<<"$d"
d=$(detail_of helm)
check "verify: helm found on magnum-conductor's own PATH and run as magnum ($d)" \
    grep -q "^/usr/local/bin/helm v3.17.2.*on magnum-conductor's PATH as magnum" <<<"$d"

# 1.1.0 with the token kubeconfig: refused before anything changes.
unit_mark
world_set config.driver-version "\"$OLD_VERSION\""
rc=0; traced_dispatch hooks/config-changed || rc=$?
hook_ok "config-changed (driver-version=1.1.0, token kubeconfig)" $rc
st=$(juju_status)
check "blocked, naming the token and the fix ($st)" grep -q '^blocked: driver-version 1.1.0 cannot use the kubeconfig.s bearer token.*driver-version=1.4.0' <<<"$st"
unit_untouched "" --no-pip

# 1.1.0 with a certificate kubeconfig: `juju attach-resource` of the 1.1.0
# wheel, driver-sha256 unset (the charm's table pins it to PyPI's sha256).
U mkdir -p "$RESOURCES_DIR/driver-wheel-old"
realunit_copy_in "$NAME" "$WHEEL_DIR/$OLD_WHEEL" "$RESOURCES_DIR/driver-wheel-old/driver-wheel"
world_set resources.driver-wheel "\"$RESOURCES_DIR/driver-wheel-old/driver-wheel\""
world_set config.driver-sha256 null
set_kube_secret "$(cert_kubeconfig)"
rc=0; run_dispatch hooks/secret-changed JUJU_SECRET_ID="$SECRET_URI" JUJU_SECRET_LABEL= || rc=$?
hook_ok "secret-changed (a certificate kubeconfig)" $rc
rc=0; run_dispatch hooks/upgrade-charm || rc=$?
hook_ok "upgrade-charm (the 1.1.0 wheel attached)" $rc
expect "active on 1.1.0" "active: magnum-capi-helm 1.1.0 ready" "$(juju_status)"
expect "the installed 1.1.0 is PyPI's wheel" "1.1.0" "$(U python3 -c 'import importlib.metadata as m; print(m.version("magnum-capi-helm"))')"
run_verify
d=$(detail_of management-cluster-apis)
check "verify fails management-cluster-apis, naming v1alpha6 and the fix ($d)" \
    grep -q 'requests infrastructure.cluster.x-k8s.io/v1alpha6, which the management cluster does not serve (infrastructure.cluster.x-k8s.io serves v1beta1).*driver-version=1.4.0' <<<"$d"
check "and the action fails" U test -e "$FAKE_DIR/action-failed"
expect "the certificate passes kubeconfig-credentials" "kubeconfig-credentials=pass" "$(check_status kubeconfig-credentials)"

# Back to the default: 1.4.0's wheel, the token kubeconfig.
world_set resources.driver-wheel "\"$RESOURCES_DIR/driver-wheel/driver-wheel\""
world_set config.driver-version "\"$DRIVER_VERSION\""
set_kube_secret "$(kubeconfig 0001)"
rc=0; run_dispatch hooks/secret-changed JUJU_SECRET_ID="$SECRET_URI" JUJU_SECRET_LABEL= || rc=$?
hook_ok "secret-changed (the token kubeconfig again)" $rc
rc=0; run_dispatch hooks/upgrade-charm || rc=$?
hook_ok "upgrade-charm (the 1.4.0 wheel again)" $rc
expect "active on 1.4.0 again" "$READY" "$(juju_status)"
check "both services active, NRestarts=0, and stay up" healthy_stays

# A wheel named 1.4.0 whose bytes are not PyPI's (one file added), attached
# with driver-sha256 unset: refused by the charm's table, both hashes named.
python3 - "$WHEEL_DIR/$WHEEL" "$LOGDIR/$WHEEL" <<'PY'
import shutil, sys, zipfile
shutil.copy(sys.argv[1], sys.argv[2])
with zipfile.ZipFile(sys.argv[2], "a") as z:
    z.writestr("magnum_capi_helm/rebuilt.txt", "not the released wheel\n")
PY
tampered_sha=$(sha256sum "$LOGDIR/$WHEEL" | cut -d' ' -f1)
U mkdir -p "$RESOURCES_DIR/driver-wheel-tampered"
realunit_copy_in "$NAME" "$LOGDIR/$WHEEL" "$RESOURCES_DIR/driver-wheel-tampered/driver-wheel"
world_set resources.driver-wheel "\"$RESOURCES_DIR/driver-wheel-tampered/driver-wheel\""
unit_mark
rc=0; traced_dispatch hooks/upgrade-charm || rc=$?
hook_ok "upgrade-charm (a rebuilt 1.4.0 wheel attached, driver-sha256 unset)" $rc
st=$(juju_status)
check "blocked with both hashes ($st)" grep -q "^blocked: driver wheel sha256 $tampered_sha is not magnum-capi-helm 1.4.0 as released (sha256 $WHEEL_SHA256)" <<<"$st"
unit_untouched "" --no-pip
world_set resources.driver-wheel "\"$RESOURCES_DIR/driver-wheel/driver-wheel\""
rc=0; run_dispatch hooks/upgrade-charm || rc=$?
hook_ok "upgrade-charm (PyPI's 1.4.0 wheel again)" $rc
expect "active" "$READY" "$(juju_status)"
expect "and still nothing restarted" "$a $c" "$(start_ts magnum-api) $(start_ts magnum-conductor)"

section "helm's directory and Juju's proxies in magnum-conductor's environment, every override mode (issue 20)"
PROXY_ENV=(JUJU_CHARM_HTTP_PROXY=http://squid.internal:3128 JUJU_CHARM_HTTPS_PROXY=http://squid.internal:3129
           JUJU_CHARM_NO_PROXY=127.0.0.1,localhost,.internal)
# conductor_env NAME: NAME=value from magnum-conductor's running process.
conductor_env() {
    U sh -c 'tr "\0" "\n" < /proc/$(systemctl show -p MainPID --value magnum-conductor.service)/environ' | sed -n "s/^$1=//p"
}
on_path() { tr ':' '\n' <<<"$(conductor_env PATH)" | grep -qx "$1"; }
for mode in runbook none packaged; do
    world_set config.service-override "\"$mode\""
    c=$(start_ts magnum-conductor)
    rc=0; run_dispatch hooks/config-changed "${PROXY_ENV[@]}" || rc=$?
    hook_ok "config-changed (service-override=$mode, Juju proxies set)" $rc
    expect "$mode: status" "$READY" "$(juju_status)"
    check "$mode: the proxies restarted magnum-conductor" test "$(start_ts magnum-conductor)" != "$c"
    check "both services active, NRestarts=0, and stay up" healthy_stays
    check "$mode: /usr/local/bin (helm) is on the conductor's PATH ($(conductor_env PATH))" on_path /usr/local/bin
    expect "$mode: HTTP_PROXY in the conductor's environment" "http://squid.internal:3128" "$(conductor_env HTTP_PROXY)"
    expect "$mode: https_proxy in the conductor's environment" "http://squid.internal:3129" "$(conductor_env https_proxy)"
    expect "$mode: NO_PROXY in the conductor's environment" "127.0.0.1,localhost,.internal" "$(conductor_env NO_PROXY)"
    expect "$mode: HTTPS_PROXY in magnum-api's environment too" "http://squid.internal:3129" \
        "$(U sh -c 'tr "\0" "\n" < /proc/$(systemctl show -p MainPID --value magnum-api.service)/environ' | sed -n 's/^HTTPS_PROXY=//p')"
    world_set action_params '{}'
    U rm -f "$FAKE_DIR/action-results.json" "$FAKE_DIR/action-failed"
    run_dispatch actions/verify JUJU_ACTION_NAME=verify JUJU_ACTION_UUID=1 "${PROXY_ENV[@]}"
    d=$(detail_of helm)
    check "$mode: verify's helm check passes on the conductor's PATH ($d)" grep -q "on magnum-conductor's PATH as magnum" <<<"$d"
done
expect "packaged: the packaged ExecStart runs (init script, which resets PATH)" "/etc/init.d/magnum-conductor systemd-start" "$(exec_start magnum-conductor)"
check "packaged: the charm's block is in /etc/default/magnum-conductor" U grep -qx '# BEGIN magnum-capi' /etc/default/magnum-conductor
rc=0; run_dispatch hooks/config-changed || rc=$?
hook_ok "config-changed (packaged, the proxies unset in the model)" $rc
expect "status" "$READY" "$(juju_status)"
expect "no proxy left in the conductor's environment" "" "$(conductor_env HTTP_PROXY)"
check "the charm's block stays in /etc/default/magnum-conductor, without a proxy" \
    U sh -c 'grep -qx "# BEGIN magnum-capi" /etc/default/magnum-conductor && ! grep -q PROXY /etc/default/magnum-conductor'
check "both services active, NRestarts=0, and stay up" healthy_stays

section "kill -9 in the middle of a hook (settle window after the restart)"
world_set config.namespace-prefix '"killed-mid-hook"'
c=$(start_ts magnum-conductor)
start_bg hooks/config-changed
restarted() { [[ "$(start_ts magnum-conductor)" != "$c" ]]; }
if wait_for 60 restarted && kill -0 "$BG" 2>/dev/null; then
    expect "killed while applying (status at the kill)" "maintenance: applying magnum-capi-helm configuration" "$(juju_status)"
    U kill -KILL "$(U cat /run/magnum-capi-hook.pid)"
    wait_bg; brc=$?
    expect "the charm died of SIGKILL (exit 137)" 137 "$brc"
else
    fail "the hook was in its settle window after the restart within 60 s" "$(cat "$HOOK_LOG")"
    wait_bg
fi
rc=0; run_dispatch hooks/config-changed || rc=$?
hook_ok "the next config-changed" $rc
expect "it converges: status set again" "$READY" "$(juju_status)"
check "99-capi.conf has the new namespace_prefix" U grep -qx 'namespace_prefix = killed-mid-hook' /etc/magnum/magnum.conf.d/99-capi.conf
check "no *.magnum-capi-tmp file left" no_temp_files
check "both services active, NRestarts=0, and stay up" healthy_stays
a=$(start_ts magnum-api) c=$(start_ts magnum-conductor)
rc=0; traced_dispatch hooks/update-status || rc=$?
expect "then update-status is lean again (no spawn, no restart)" "|$a $c" "$(spawned_names)|$(start_ts magnum-api) $(start_ts magnum-conductor)"

section "a change that breaks magnum is rolled back"
# No value the charm writes makes magnum 15 fail at start (they pass the
# charm's validation, and [capi_helm] is only read when a cluster
# operation loads the driver), so the failure is injected: see
# install_breaker.
install_breaker rollback-marker
good=$(file_sum /etc/magnum/magnum.conf.d/99-capi.conf)
world_set config.namespace-prefix '"rollback-marker"'
rc=0; run_dispatch hooks/config-changed || rc=$?
hook_ok "config-changed (breaking change)" $rc
st=$(juju_status)
check "status is blocked: rolled back ($st)" grep -q '^blocked: restart unhealthy, rolled back to the last good config' <<<"$st"
check "the status names the journal's red flag (ConfigFileValueError)" grep -q 'ConfigFileValueError' <<<"$st"
check "magnum-conductor really failed on the new file (its journal)" \
    U sh -c 'journalctl --no-pager -o cat -u magnum-conductor.service | grep -q "injected by test-real"'
expect "99-capi.conf is the old file again" "$good" "$(file_sum /etc/magnum/magnum.conf.d/99-capi.conf)"
check "no *.magnum-capi-tmp file left" no_temp_files
check "services end healthy on the old config (within 30 s)" healthy_within 30
a=$(start_ts magnum-api) c=$(start_ts magnum-conductor)
rc=0; run_dispatch hooks/config-changed || rc=$?
hook_ok "config-changed again, same breaking config" $rc
check "still blocked (rolled-back change not retried)" grep -q '^blocked: restart unhealthy, rolled back' <<<"$(juju_status)"
expect "and nothing restarted" "$a $c" "$(start_ts magnum-api) $(start_ts magnum-conductor)"
world_set config.namespace-prefix '"killed-mid-hook"'
rc=0; run_dispatch hooks/config-changed || rc=$?
hook_ok "config-changed (back to the good config)" $rc
expect "active again" "$READY" "$(juju_status)"
check "both services active, NRestarts=0, and stay up" healthy_stays

section "a hand-edited 99-capi.conf that magnum crash-loops on is repaired"
# An operator edits 99-capi.conf and restarts magnum-conductor, which then
# fails every ~2 s. The next hook rewrites the charm's file and restarts:
# that restart is healthy, and must not be taken for a failure because the
# old instance logged a red flag while the restart stopped it.
install_breaker hand-edit
U sed -i 's/^namespace_prefix = killed-mid-hook$/namespace_prefix = hand-edit/' /etc/magnum/magnum.conf.d/99-capi.conf
U systemctl restart magnum-conductor.service
n_flags() { U sh -c 'journalctl --no-pager -o cat -u magnum-conductor.service | grep -c "injected by test-real"'; }
n=$(n_flags)
new_flag() { [[ $(n_flags) -gt $n ]]; }
check "magnum-conductor fails on the hand edit (a new red flag in its journal within 10 s)" wait_for 10 new_flag
rc=0; run_dispatch hooks/config-changed || rc=$?
hook_ok "config-changed (repairs the file)" $rc
check "99-capi.conf is the charm's again" U grep -qx 'namespace_prefix = killed-mid-hook' /etc/magnum/magnum.conf.d/99-capi.conf
check "services healthy on the repaired file" wait_for 20 healthy_stays
expect "the crash loop's restart count is cleared by the repair (reset-failed before the restart)" "0" "$(svc magnum-conductor NRestarts)"
st=$(juju_status)
check "the healthy repair is not rolled back for the old instance's journal line (status: $st)" test "$st" == "$READY"
# Clear a rejection of the good config, if any: config away and back.
world_set config.namespace-prefix '"elsewhere"'; run_dispatch hooks/config-changed
world_set config.namespace-prefix '"killed-mid-hook"'; run_dispatch hooks/config-changed
expect "active again after a config change away and back" "$READY" "$(juju_status)"

section "kill -9 in the settle window of a change that breaks magnum"
# The restart looks fine for ~2 s, then magnum-conductor fails; the charm
# is killed before it can tell. The next hook must not call the broken
# config good: it owes the restart, watches it and rolls back.
install_breaker kill-breaker
good=$(file_sum /etc/magnum/magnum.conf.d/99-capi.conf)
world_set config.namespace-prefix '"kill-breaker"'
c=$(start_ts magnum-conductor)
start_bg hooks/config-changed
if wait_for 60 restarted && kill -0 "$BG" 2>/dev/null; then
    U kill -KILL "$(U cat /run/magnum-capi-hook.pid)"
    wait_bg; expect "the charm died of SIGKILL in the settle window" 137 "$?"
else
    fail "the hook was in its settle window after the restart within 60 s" "$(cat "$HOOK_LOG")"
    wait_bg
fi
rc=0; run_dispatch hooks/config-changed || rc=$?
hook_ok "the next config-changed" $rc
st=$(juju_status)
check "it reports the broken restart: blocked, rolled back ($st)" grep -q '^blocked: restart unhealthy, rolled back to the last good config' <<<"$st"
expect "99-capi.conf is the last good file again" "$good" "$(file_sum /etc/magnum/magnum.conf.d/99-capi.conf)"
check "services end healthy on it (within 30 s)" healthy_within 30
check "no *.magnum-capi-tmp file left" no_temp_files
rc=0; run_dispatch hooks/update-status || rc=$?
hook_ok "update-status after it" $rc
check "still blocked on the rolled-back change" grep -q '^blocked: restart unhealthy, rolled back' <<<"$(juju_status)"
remove_breaker
world_set config.namespace-prefix '"killed-mid-hook"'
rc=0; run_dispatch hooks/config-changed || rc=$?
hook_ok "config-changed (back to the good config)" $rc
check "both services active, NRestarts=0, and stay up" healthy_stays
run_dispatch hooks/update-status
expect "unit recovered: status" "$READY" "$(juju_status)"

section "a failed change, then the applied config: no write, no pip, no restart"
# Issue 23, item 1: whatever kind of change fails or is refused, setting
# back the config the unit runs must cost nothing.
# costs_nothing DESC HOOK WANT BREAK MEND [HOOK_ENV...]: BREAK (shell, run
# here) makes a change HOOK fails on with a status containing WANT; MEND
# puts the applied config back; HOOK again must write nothing, run no pip,
# no daemon-reload and no restart.
costs_nothing() {
    local desc=$1 h=$2 want=$3 brk=$4 mend=$5 snap a c rc st
    shift 5
    unit_mark
    eval "$brk"
    rc=0; run_dispatch "hooks/$h" "$@" || rc=$?
    hook_ok "$h ($desc)" $rc
    st=$(juju_status)
    check "$desc: blocked, naming it ($st)" grep -q "^blocked: .*$want" <<<"$st"
    wait_for 30 services_healthy
    # (A rolled-back restart restarted magnum in that hook: starts count
    # from here.)
    a=$(start_ts magnum-api) c=$(start_ts magnum-conductor)
    eval "$mend"
    rc=0; traced_dispatch "hooks/$h" "$@" || rc=$?
    hook_ok "$h ($desc, then the applied config again)" $rc
    expect "$desc, mended: active again" "$READY" "$(juju_status)"
    check "$desc, mended: it ran no systemctl restart or daemon-reload" no_exec 'execve\("[^"]*systemctl", \["systemctl", "(restart|daemon-reload)'
    unit_untouched "$desc, mended: " --no-pip
}
# The index kinds need a unit without the driver-wheel resource (as a
# deploy that never attached it: resource-get finds none). The installed
# 1.4.0 is PyPI's either way: nothing to reinstall.
world_set resources.driver-wheel null
rc=0; traced_dispatch hooks/upgrade-charm || rc=$?
hook_ok "upgrade-charm (no driver-wheel resource: the index, here the harness's wheelhouse)" $rc
expect "active" "$READY" "$(juju_status)"
check "no pip: the driver installed is PyPI's 1.4.0 already" no_exec 'execve\("[^"]*pip'
costs_nothing "a driver version the index lacks" config-changed 'No matching distribution found for magnum-capi-helm==9\.9\.9' \
    "world_set config.driver-version '\"9.9.9\"'" \
    "world_set config.driver-version '\"$DRIVER_VERSION\"'"
costs_nothing "an index that fails" config-changed 'No matching distribution found for magnum-capi-helm==1\.3\.0' \
    "world_set config.pip-index-url '\"http://127.0.0.1:9/simple\"'; world_set config.driver-version '\"1.3.0\"'" \
    "world_set config.pip-index-url null; world_set config.driver-version '\"$DRIVER_VERSION\"'"
world_set resources.driver-wheel "\"$RESOURCES_DIR/driver-wheel/driver-wheel\""
rc=0; traced_dispatch hooks/upgrade-charm || rc=$?
hook_ok "upgrade-charm (the 1.4.0 wheel attached again)" $rc
expect "active" "$READY" "$(juju_status)"
check "no pip: the same wheel as installed" no_exec 'execve\("[^"]*pip'
# A new driver-wheel resource that installs but registers no driver (no
# entry point): the driver the services run is put back from the charm's
# copy of its wheel (the staged wheelhouse now holds only the new one).
python3 - "$LOGDIR/broken/magnum_capi_helm-1.5.0-py3-none-any.whl" <<'PY2'
import os, sys, zipfile
os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("magnum_capi_helm/__init__.py", "")
    z.writestr("magnum_capi_helm-1.5.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: magnum-capi-helm\nVersion: 1.5.0\n")
    z.writestr("magnum_capi_helm-1.5.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test-real\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr("magnum_capi_helm-1.5.0.dist-info/RECORD", "magnum_capi_helm/__init__.py,,\nmagnum_capi_helm-1.5.0.dist-info/METADATA,,\nmagnum_capi_helm-1.5.0.dist-info/WHEEL,,\nmagnum_capi_helm-1.5.0.dist-info/RECORD,,\n")
PY2
U mkdir -p "$RESOURCES_DIR/driver-wheel-broken"
realunit_copy_in "$NAME" "$LOGDIR/broken/magnum_capi_helm-1.5.0-py3-none-any.whl" "$RESOURCES_DIR/driver-wheel-broken/driver-wheel"
# (The harness's own wheelhouse, PIP_FIND_LINKS, must not be what puts it
# back: 1.4.0 leaves it for this check.)
U mv "$UNIT_WHEELS/$WHEEL" /root/
costs_nothing "a driver-wheel resource whose driver does not load" upgrade-charm 'driver does not load' \
    "world_set resources.driver-wheel '\"$RESOURCES_DIR/driver-wheel-broken/driver-wheel\"'; world_set config.driver-version '\"1.5.0\"'" \
    "world_set resources.driver-wheel '\"$RESOURCES_DIR/driver-wheel/driver-wheel\"'; world_set config.driver-version '\"$DRIVER_VERSION\"'"
expect "the driver the services run was put back" "$DRIVER_VERSION" "$(U python3 -c 'import importlib.metadata as m; print(m.version("magnum-capi-helm"))')"
U mv "/root/$WHEEL" "$UNIT_WHEELS/"
costs_nothing "a bad kubeconfig rotation" secret-changed 'https' \
    "set_kube_secret \"\$(kubeconfig 0001 | sed 's|https://|http://|')\"" \
    "set_kube_secret \"\$(kubeconfig 0001)\"" \
    JUJU_SECRET_ID="$SECRET_URI" JUJU_SECRET_LABEL=
costs_nothing "a bad option" config-changed 'namespace-prefix' \
    "world_set config.namespace-prefix '\"x\\n[DEFAULT]\\ndebug = true\"'" \
    "world_set config.namespace-prefix '\"killed-mid-hook\"'"

section "a resource the controller fails to download changes nothing"
# Issue 19, item 4: only a local charm's never-uploaded resource is a
# deliberate not-found; a failed download keeps the staged wheelhouse and
# the installed driver, and the next hook tries again.
unit_mark
staged() { U sh -c 'ls /var/lib/magnum-capi/resources/wheels/ 2>/dev/null | tr "\n" " "'; }
staged_before=$(staged)
world_set resources.driver-wheel '{"error": "while getting resource from charmhub: dial tcp: lookup api.charmhub.io: no such host"}'
rc=0; run_dispatch hooks/upgrade-charm || rc=$?
hook_ok "upgrade-charm (the driver-wheel download fails)" $rc
st=$(juju_status)
check "blocked, naming the resource and the error ($st)" grep -q '^blocked: driver-wheel resource: could not download resource: .*no such host' <<<"$st"
expect "the staged wheelhouse is kept" "$staged_before" "$(staged)"
unit_untouched "a failed download: "
world_set resources.driver-wheel "\"$RESOURCES_DIR/driver-wheel/driver-wheel\""
rc=0; run_dispatch hooks/update-status || rc=$?
hook_ok "update-status (the controller answers again)" $rc
expect "active again, by itself" "$READY" "$(juju_status)"
expect "and still nothing restarted" "$a $c" "$(start_ts magnum-api) $(start_ts magnum-conductor)"

section "a reinstall over a kept state dir ends active"
# Issue 19, item 7: Juju sets `maintenance: installing charm software`
# before install; the charm's kept copy of its status must not stop it
# from setting its own (a forced removal keeps /var/lib/magnum-capi).
U sh -c "printf '%s' '{\"kind\": \"maintenance\", \"message\": \"installing charm software\"}' > $FAKE_DIR/status.json"
rc=0; run_dispatch hooks/install || rc=$?
hook_ok "install (again, over the kept state dir)" $rc
expect "active" "$READY" "$(juju_status)"

section "hook output as Juju logs it: nothing routine on stderr, one juju-log"
# Juju logs a hook's stdout at DEBUG and its stderr at WARNING (issue 19,
# item 8): a config change that restarts puts its routine lines on stdout
# and tells the operator what changed in one juju-log call at INFO.
n_logs() { U sh -c "cat $FAKE_DIR/juju-log.txt 2>/dev/null | wc -l"; }
logs_before=$(n_logs)
world_set config.namespace-prefix '"levels"'
dispatch_argv hooks/config-changed
rc=0; timeout 300 "${DISPATCH_ARGV[@]}" >"$LOGDIR/levels.stdout" 2>"$LOGDIR/levels.stderr" || rc=$?
HOOK_LOG=$LOGDIR/levels.stdout
hook_ok "config-changed (a change that restarts)" $rc
check "it restarted (stdout says so)" grep -q 'restarting magnum-api, magnum-conductor' "$LOGDIR/levels.stdout"
expect "nothing on stderr" "" "$(cat "$LOGDIR/levels.stderr")"
expect "one juju-log call" 1 $(( $(n_logs) - logs_before ))
check "at INFO, naming the change, the restart and the status" \
    U sh -c "tail -n 1 $FAKE_DIR/juju-log.txt | grep -q '^-l INFO writing /etc/magnum/magnum.conf.d/99-capi.conf; restarting magnum-api, magnum-conductor; hook config-changed: active'"
logs_before=$(n_logs)
rc=0; run_dispatch hooks/config-changed || rc=$?
hook_ok "config-changed again (nothing to do)" $rc
expect "no juju-log for a hook that changed nothing" 0 $(( $(n_logs) - logs_before ))
world_set config.namespace-prefix '"killed-mid-hook"'
rc=0; run_dispatch hooks/config-changed || rc=$?
hook_ok "config-changed (back to the good config)" $rc

section "a start job systemd refuses (ExecStartPre fails) is rolled back once"
# Issue 23, item 5: an operator's pre-start check refuses the new config;
# systemctl restart fails at once ("Job for ... failed because the control
# process exited with error code").
PRECHECK=/etc/systemd/system/magnum-conductor.service.d/50-test-precheck.conf
printf '%s\n' '[Service]' \
    "ExecStartPre=/bin/sh -c '! grep -qx \"namespace_prefix = refused\" /etc/magnum/magnum.conf.d/99-capi.conf'" |
    U sh -ec "mkdir -p ${PRECHECK%/*} && cat > $PRECHECK"
U systemctl daemon-reload
good=$(file_sum /etc/magnum/magnum.conf.d/99-capi.conf)
world_set config.namespace-prefix '"refused"'
rc=0; run_dispatch hooks/config-changed || rc=$?
hook_ok "config-changed (a config the pre-start check refuses)" $rc
st=$(juju_status)
check "blocked: rolled back, naming the refused start job ($st)" \
    grep -q '^blocked: restart unhealthy, rolled back to the last good config: magnum-conductor: start job failed' <<<"$st"
expect "the status is one line" 1 "$(wc -l <<<"$st")"
expect "99-capi.conf is the last good file again" "$good" "$(file_sum /etc/magnum/magnum.conf.d/99-capi.conf)"
check "services end healthy on the last good files (within 30 s)" wait_for 30 healthy_stays
a=$(start_ts magnum-api) c=$(start_ts magnum-conductor)
for h in update-status config-changed; do
    rc=0; run_dispatch hooks/$h || rc=$?
    hook_ok "$h after it" $rc
done
check "still blocked: the refused change is not retried" grep -q '^blocked: restart unhealthy, rolled back' <<<"$(juju_status)"
expect "and nothing restarted" "$a $c" "$(start_ts magnum-api) $(start_ts magnum-conductor)"
U rm -f "$PRECHECK"
U systemctl daemon-reload
world_set config.namespace-prefix '"killed-mid-hook"'
rc=0; traced_dispatch hooks/config-changed || rc=$?
hook_ok "config-changed (back to the good config)" $rc
expect "active again" "$READY" "$(juju_status)"
# Issue 23, item 1, for a rolled-back restart: the unit already runs the
# good config, so setting it back costs nothing.
check "it ran no systemctl restart or daemon-reload" no_exec 'execve\("[^"]*systemctl", \["systemctl", "(restart|daemon-reload)'
expect "nothing restarted" "$a $c" "$(start_ts magnum-api) $(start_ts magnum-conductor)"

section "update-status on a service that crash-loops for a reason outside the charm"
U sh -ec '[ -e /usr/bin/magnum-conductor.real ] || mv /usr/bin/magnum-conductor /usr/bin/magnum-conductor.real'
cat <<'EOF' | U sh -ec 'cat > /usr/bin/magnum-conductor; chmod 0755 /usr/bin/magnum-conductor'
#!/bin/sh
# test-real: crash-loop while /run/test-real-crash exists (e.g. the database
# is gone): nothing the charm wrote.
if [ -e /run/test-real-crash ]; then
    sleep 2
    echo "oslo_db.exception.DBConnectionError: (injected by test-real)" >&2
    exit 1
fi
exec /usr/bin/magnum-conductor.real "$@"
EOF
U touch /run/test-real-crash
U systemctl restart magnum-conductor.service
looping() { (( $(svc magnum-conductor NRestarts) > 1 )); }
check "magnum-conductor crash-loops (NRestarts > 1 within 20 s)" wait_for 20 looping
rc=0; run_dispatch hooks/update-status || rc=$?
hook_ok "update-status" $rc
st=$(juju_status)
check "update-status does not report ready while magnum-conductor crash-loops (NRestarts=$(svc magnum-conductor NRestarts), status: $st)" \
    test "$st" != "$READY"
U rm /run/test-real-crash
remove_breaker
U systemctl reset-failed magnum-conductor.service
U systemctl restart magnum-conductor.service
check "magnum-conductor healthy again once the cause is gone" wait_for 30 healthy_stays
rc=0; run_dispatch hooks/update-status || rc=$?
expect "and update-status reports ready" "$READY" "$(juju_status)"

section "an OpenStack credentials rotation reaches the next smoketest (issue 19, item 1)"
# A Keystone stand-in in the unit (127.0.0.1:5000) records the application
# credential each token request presents and answers 401 as Keystone does;
# the smoketest then stops at authentication, which is all this needs.
U mkdir -p /opt/test-keystone
U sh -c 'cat > /opt/test-keystone/server.py' <<'PY'
import http.server, json
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        cred = body.get("auth", {}).get("identity", {}).get("application_credential", {})
        with open("/opt/test-keystone/seen", "a") as f:
            f.write(cred.get("id", "-") + "\n")
        data = json.dumps({"error": {"code": 401, "title": "Unauthorized",
                                     "message": "The request you have made requires authentication."}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", 5000), Handler).serve_forever()
PY
U systemd-run --quiet --unit=test-keystone python3 /opt/test-keystone/server.py
keystone_up() { U python3 -c 'import socket; socket.create_connection(("127.0.0.1", 5000), 1).close()'; }
wait_for 20 keystone_up || fail "the Keystone stand-in listens on 127.0.0.1:5000"
CREDS_URI=secret:d1f8kq7mp25c77screds
creds() {
    python3 -c 'import json,sys; print(json.dumps({"content": {"auth-url": "http://127.0.0.1:5000/v3",
        "application-credential-id": sys.argv[1], "application-credential-secret": sys.argv[2]}}))' "$1" "$2"
}
run_smoketest() {
    world_set action_params '{"image": "ubuntu-jammy-kube-v1.30.4", "keypair": "ops", "external-network": "public", "flavor": "m1.medium", "master-flavor": "m1.medium"}'
    U rm -f "$FAKE_DIR/action-results.json" "$FAKE_DIR/action-failed" "$FAKE_DIR/action-log.txt"
    run_dispatch actions/smoketest JUJU_ACTION_NAME=smoketest JUJU_ACTION_UUID=2
}
last_seen() { U sh -c 'tail -n 1 /opt/test-keystone/seen 2>/dev/null'; }
world_set "secrets.$CREDS_URI" "$(creds appcred-rev1 SECRET-REV1-d0n0tl0g)"
world_set config.openstack-credentials-secret "\"$CREDS_URI\""
rc=0; run_dispatch hooks/config-changed || rc=$?
hook_ok "config-changed (openstack-credentials-secret set)" $rc
run_smoketest
expect "the smoketest authenticates with revision 1's credential" "appcred-rev1" "$(last_seen)"
check "and fails at Keystone's 401, saying so" U grep -q 'Keystone' "$FAKE_DIR/action-failed"
# juju update-secret: Juju keeps the unit on the revision it read until
# the unit refreshes (secret-get --refresh), which the charm does on the
# secret-changed Juju sends.
world_set "secrets.$CREDS_URI" "$(creds appcred-rev2 SECRET-REV2-d0n0tl0g)"
run_smoketest
expect "before secret-changed, the unit still reads the revision it is on" "appcred-rev1" "$(last_seen)"
rc=0; run_dispatch hooks/secret-changed JUJU_SECRET_ID="$CREDS_URI" JUJU_SECRET_LABEL= || rc=$?
hook_ok "secret-changed (the credentials)" $rc
run_smoketest
expect "after it, the next smoketest uses revision 2" "appcred-rev2" "$(last_seen)"
check "no credential secret in the action's output" \
    U sh -c "! cat $FAKE_DIR/action-results.json $FAKE_DIR/action-failed $FAKE_DIR/action-log.txt 2>/dev/null | grep -q 'SECRET-REV'"
check "nor in the hooks' logs" sh -c "! grep -rq 'SECRET-REV' '$LOGDIR'"
world_set config.openstack-credentials-secret null
U systemctl stop test-keystone

section "a unit without pip gets python3-pip from its own archive (issue 20)"
# charm-magnum installs only its own packages: pip may be missing. The
# unit's archive here is a local apt repository holding Debian's
# python3-pip (downloaded on the host, same release), and the unit has no
# package lists yet: apt-get install finds nothing, the charm runs
# apt-get update, then installs it.
ensure_pip_deb
U sh -ec 'mkdir -p /srv/local-apt && rm -f /etc/apt/sources.list.d/* && rm -rf /var/lib/apt/lists/* &&
    echo "deb [trusted=yes] file:/srv/local-apt ./" > /etc/apt/sources.list'
realunit_copy_in "$NAME" "$PIP_DEB_DIR/$PIP_DEB" /srv/local-apt/
realunit_copy_in "$NAME" "$PIP_DEB_DIR/Packages" /srv/local-apt/
U dpkg --purge python3-pip >/dev/null
check "pip3 is gone from the unit" U sh -c '! command -v pip3'
U sh -c 'rm -rf /usr/local/lib/python3*/dist-packages/magnum_capi_helm*'
rc=0; traced_dispatch hooks/update-status || rc=$?
hook_ok "update-status (the driver and pip both gone)" $rc
expect "active again" "$READY" "$(juju_status)"
check "the charm ran apt-get install python3-pip, apt-get update, then again" \
    test "$(spawned_by_charm | grep -o '"apt-get", "[a-z]*"' | tr '\n' ' ')" = '"apt-get", "install" "apt-get", "update" "apt-get", "install" '
check "python3-pip is installed" U dpkg-query -W python3-pip
expect "and the driver with it" "$DRIVER_VERSION" "$(U python3 -c 'import importlib.metadata as m; print(m.version("magnum-capi-helm"))')"
check "both services active, NRestarts=0, and stay up" healthy_stays

section "stop and remove: the unit as it was before install"
rc=0; run_dispatch hooks/juju-info-relation-departed JUJU_RELATION=juju-info JUJU_RELATION_ID=juju-info:7 JUJU_REMOTE_UNIT=magnum/0 JUJU_REMOTE_APP=magnum || rc=$?
hook_ok "juju-info-relation-departed" $rc
rc=0; run_dispatch hooks/stop || rc=$?
hook_ok "stop" $rc
rc=0; run_dispatch hooks/remove || rc=$?
hook_ok "remove" $rc
after=$(unit_snapshot)
changed=$(diff <(printf '%s\n' "$before") <(printf '%s\n' "$after"))
check "the unit's files and services are as before install (etc/magnum, systemd units, /usr/local, the charm's state)" \
    test -z "$changed"
[[ -z "$changed" ]] || printf '%s\n' "$changed" | sed 's/^/      /'
check "both services active, NRestarts=0, and stay up" healthy_stays

section "done"
printf 'logs: %s\n' "$LOGDIR"
[[ $XFAILED -eq 0 ]] || printf '%d known charm bug(s) (XFAIL)\n' "$XFAILED"
finish test-real
