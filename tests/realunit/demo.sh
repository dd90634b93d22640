#!/usr/bin/env bash
# tests/realunit/demo.sh - `make demo`: the charm's whole lifecycle on a
# booted Debian magnum unit (real systemd, dbus, pip3, python3, magnum-api
# and magnum-conductor; SUITE=bookworm|trixie) beside a real Keystone,
# RabbitMQ, MariaDB and Glance and a test management cluster, with fake Juju
# hook tools, in Juju's order:
#   install, juju-info-relation-joined/changed, config-changed, start,
#   update-status, verify (with the Magnum API check), smoketest, a config
#   change, a secret rotation, upgrade-charm, remove.
# After each step: what `juju status` would show, and both services as
# systemd sees them; the time per step and in total. Powers the unit off at
# the end. Needs root; first run builds the rootfs (~2 min, cached).
set -uo pipefail

NAME=${NAME:-magnum-capi-demo}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SETTLE=${SETTLE:-5}
source "$RU_HERE/e2e.sh"
T_START=$(now)
TIMES=()

bold() { if [[ -t 1 ]]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
indent() { sed 's/^/    /'; }

# What `juju status magnum-capi` shows for the unit, and systemd's view.
show_unit() {
    local version
    version=$(U sh -c "cat $FAKE_DIR/app-version 2>/dev/null")
    printf '    juju status:  magnum-capi/0  %-60s  (version %s)\n' "$(juju_status)" "${version:--}"
    printf '    systemd:      magnum-api %s, magnum-conductor %s\n' \
        "$(U systemctl is-active magnum-api.service)" "$(U systemctl is-active magnum-conductor.service)"
}

# step "TITLE" CMD...: run one step, time it, show the unit after it.
STEP_N=0
step() {
    local title=$1 t0 rc=0 secs
    shift
    STEP_N=$((STEP_N + 1))
    printf '\n'
    bold "[$STEP_N] $title"
    t0=$(now)
    "$@" || rc=$?
    secs=$(since "$t0")
    TIMES+=("$(printf '%6ss  %s' "$secs" "$title")")
    show_unit
    printf '    (%ss%s)\n' "$secs" "$([[ $rc -eq 0 ]] || echo ", exit $rc")"
}

# hook NAME [ENV...]: run the hook as Juju would; show what the charm logged.
hook() {
    local name=$1 rc=0
    shift
    run_dispatch "hooks/$name" "$@" || rc=$?
    printf '    $ hooks/%s -> exit %s\n' "$name" "$rc"
    indent <"$HOOK_LOG"
    return "$rc"
}

relation_env=(JUJU_RELATION=juju-info JUJU_RELATION_ID=juju-info:7 JUJU_REMOTE_UNIT=magnum/0 JUJU_REMOTE_APP=magnum)

# `juju run magnum-capi/0 ACTION [params]`, as the user sees it: the
# progress messages (action-log), then the results.
show_action() {
    local name=$1 rc=$2
    U sh -c "cat $FAKE_DIR/action-log.txt 2>/dev/null" | indent
    results_yaml | indent
    if U test -e "$FAKE_DIR/action-failed"; then
        printf '    Action failed: %s\n' "$(U cat "$FAKE_DIR/action-failed")"
    else
        printf '    Action completed\n'
    fi
    [[ $rc -eq 0 ]] && ! U test -e "$FAKE_DIR/action-failed"
}
action_verify() {
    local rc=0
    printf '    $ juju run magnum-capi/0 verify image=%s external-network=public flavor=m1.medium keypair=mykey\n' "$IMAGE"
    run_action verify "$VERIFY_PARAMS" || rc=$?
    printf '    api-driver-check: %s\n' "$(result_of checks.api-driver-check.status)"
    show_action verify "$rc"
}
action_smoketest() {
    local rc=0
    printf '    $ juju run magnum-capi/0 smoketest image=%s keypair=mykey external-network=public flavor=m1.medium master-flavor=m1.medium node-count=2 poll-seconds=2\n' "$IMAGE"
    run_action smoketest "$SMOKE_PARAMS" || rc=$?
    show_action smoketest "$rc"
}

config_change() {
    printf '    $ juju config magnum-capi namespace-prefix=capi\n'
    world_set config.namespace-prefix '"capi"'
    hook config-changed || return
    printf '    99-capi.conf [capi_helm]: %s\n' \
        "$(U sed -n '/^\[capi_helm\]/,/^$/p' /etc/magnum/magnum.conf.d/99-capi.conf | grep -v '^\[' | tr '\n' ' ')"
}

secret_rotation() {
    printf '    $ juju update-secret capi-kubeconfig kubeconfig#file=new.kubeconfig\n'
    printf '    /etc/magnum/kubeconfig before: %s\n' "$(U grep -o 'canary-token-[0-9]*' /etc/magnum/kubeconfig)"
    world_set "secrets.$SECRET_URI" "$(python3 -c 'import json,sys; print(json.dumps({"content": {"kubeconfig": sys.argv[1]}}))' "$(kubeconfig 0002)")"
    hook secret-changed JUJU_SECRET_ID="$SECRET_URI" JUJU_SECRET_LABEL= JUJU_SECRET_REVISION=2 || return
    printf '    /etc/magnum/kubeconfig after:  %s (%s)\n' "$(U grep -o 'canary-token-[0-9]*' /etc/magnum/kubeconfig)" \
        "$(U stat -c '%U:%G %a' /etc/magnum/kubeconfig)"
}

upgrade() {
    printf '    $ juju refresh magnum-capi --path ./magnum-capi.charm   (the agent swaps the charm dir)\n'
    U rm -rf "$CHARM_DIR.new"
    realunit_copy_in "$NAME" "$STAGE" "$CHARM_DIR.new" && U sh -ec "rm -rf $CHARM_DIR && mv $CHARM_DIR.new $CHARM_DIR" || return
    hook upgrade-charm
}

remove() {
    printf '    $ juju remove-relation magnum-capi magnum   (departed, stop, remove)\n'
    hook juju-info-relation-departed "${relation_env[@]}" && hook stop && hook remove
}

# ---------------------------------------------------------------------------
bold "magnum-capi demo: a Debian magnum unit under real systemd, Juju's hooks, fake hook tools"
t0=$(now)
ensure_inputs
T_INPUTS=$(since "$t0")
boot_unit
printf 'rootfs ready in %ss (cache: %s), unit %s booted in %ss\n' "$ROOTFS_SECONDS" "$ROOT.tar.zst" "$NAME" "$BOOT_SECONDS"
t0=$(now)
wait_for 60 services_healthy || ru_die "magnum-api and magnum-conductor did not come up after boot"
T_SETUP=$(since "$t0")
t0=$(now)
ensure_fake_cloud
bold "the cloud, as the magnum charm and its relations leave it: MariaDB, RabbitMQ, Keystone, Glance (real), Nova and Neutron (fake-cloud)"
controlplane_up | indent
T_CLOUD=$(since "$t0")
t0=$(now)
install_charm
e2e_configure | indent
T_SETUP2=$(since "$t0")
printf 'magnum up, charm at %s, hook tools in %s (%ss)\n' "$CHARM_DIR" "$TOOLS_DIR" "$T_SETUP"
printf 'resources attached: driver-wheel=%s, helm=helm v3.17.2 (static); pinned with driver-sha256 and helm-sha256\n' "$WHEEL"
printf 'management cluster: the test Cluster API management cluster in the unit at %s (chart repository %s)\n' "$KUBE_SERVER" "$MGMT_REPO_URL"
printf 'config: kubeconfig-secret=%s driver-version=%s service-override=packaged (default) restart-settle-seconds=%s driver-sha256=%.12s... helm-sha256=%.12s...\n' \
    "$SECRET_URI" "$DRIVER_VERSION" "$SETTLE" "$WHEEL_SHA256" "$HELM_SHA256"
show_unit

step "install (pip installs the real magnum-capi-helm $DRIVER_VERSION wheel, offline)" hook install
printf '    driver: %s\n' "$(U python3 -c 'import magnum_capi_helm, importlib.metadata as m; print(m.version("magnum-capi-helm"), magnum_capi_helm.__path__[0])')"
printf '    helm:   %s\n' "$(U sh -c 'echo "$(command -v helm) $(helm version --short)"')"
step "juju-info-relation-joined (magnum/0)" hook juju-info-relation-joined "${relation_env[@]}"
step "juju-info-relation-changed (magnum/0)" hook juju-info-relation-changed "${relation_env[@]}"
step "config-changed" hook config-changed
printf '    magnum-conductor runs: %s\n' "$(U sh -c 'tr "\0" " " < /proc/$(systemctl show -p MainPID --value magnum-conductor.service)/cmdline')"
printf '    magnum-api runs:       %s\n' "$(U sh -c 'tr "\0" " " < /proc/$(systemctl show -p MainPID --value magnum-api.service)/cmdline')"
step "start" hook start
step "update-status" hook update-status
step "verify (juju run magnum-capi/0 verify), with the Magnum API check" action_verify
step "smoketest (juju run magnum-capi/0 smoketest): a cluster through the real Magnum API, driver and helm" action_smoketest
step "config change: namespace-prefix=capi" config_change
step "secret rotation (secret-changed, revision 2)" secret_rotation
step "upgrade-charm" upgrade
step "remove" remove

printf '\n'
bold "time per step"
printf '%s\n' "${TIMES[@]}"
printf '%6ss  inputs (fake tools, wheel)\n%6ss  rootfs (build or cache)\n%6ss  boot\n%6ss  magnum up\n%6ss  the control plane (controlplane.sh)\n%6ss  charm copied in, management cluster up\n' \
    "$T_INPUTS" "$ROOTFS_SECONDS" "$BOOT_SECONDS" "$T_SETUP" "$T_CLOUD" "$T_SETUP2"
T_STOP=$(now)
trap - EXIT
teardown_rc=0
( teardown ) || teardown_rc=$?
printf '%6ss  power off\n' "$(since "$T_STOP")"
bold "$(printf 'total %ss; logs in %s' "$(since "$T_START")" "$LOGDIR")"
realunit_list | grep "^$NAME " || true
exit "$teardown_rc"
