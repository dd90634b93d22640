# tests/realunit/e2e.sh - sourced after lib.sh by test-e2e.sh and demo.sh:
# the real control plane (controlplane.sh) and the test management cluster
# (mgmt/mgmt.sh) beside the charm, the charm pointed at them, and the
# actions as an operator runs them.
# shellcheck shell=bash

source "$RU_HERE/controlplane.sh"
source "$RU_HERE/mgmt/mgmt.sh"
CREDS_URI=secret:d1f8kq7mp25c77se2ecr
IMAGE=ubuntu-jammy-kube-v1.30.4
VERIFY_PARAMS='{"image": "'$IMAGE'", "external-network": "public", "flavor": "m1.medium", "keypair": "mykey"}'
SMOKE_PARAMS='{"image": "'$IMAGE'", "keypair": "mykey", "external-network": "public", "flavor": "m1.medium", "master-flavor": "m1.medium", "node-count": 2, "poll-seconds": 2, "timeout-minutes": 8}'

# The static fake-cloud (Nova, Neutron, Cinder's volume types), built like
# fake-tool when missing or older than its source.
ensure_fake_cloud() {
    if [[ ! -x "$CP_FAKE_CLOUD" || -n "$(find "$REPO/tests/fakes/fake_cloud.rs" "$REPO/tests/support/openstack" "$REPO/tests/support/http.rs" -newer "$CP_FAKE_CLOUD" 2>/dev/null)" ]]; then
        ru_log "building the static fake-cloud (Nova, Neutron, Cinder's volume types)"
        (cd "$REPO" && cargo build --quiet --release --locked --target x86_64-unknown-linux-musl --features fake-cloud --bin fake-cloud) ||
            ru_die "cannot build fake-cloud"
    fi
}

# After install_charm: the test management cluster (replacing lib.sh's
# stand-in), the charm's helm-chart-repo on its chart repository, and the
# operator's password credentials as openstack-credentials-secret.
e2e_configure() {
    local t0
    t0=$(now)
    start_mgmt_cluster >"$LOGDIR/mgmt-start.log" 2>&1 || { cat "$LOGDIR/mgmt-start.log"; ru_die "the test management cluster did not start"; }
    printf 'TIMING management cluster start: %s s\n' "$(since "$t0")"
    world_set config.helm-chart-repo "\"$MGMT_REPO_URL\""
    world_set "secrets.$CREDS_URI" "{\"content\": $(controlplane_secret password)}"
    world_set config.openstack-credentials-secret "\"$CREDS_URI\""
}

# The action's results as flat `key=value` lines (nested keys joined by
# dots, as `juju run` shows them).
results() {
    U sh -c "cat $FAKE_DIR/action-results.json 2>/dev/null || echo '{}'" | python3 -c '
import json, sys
def walk(p, v):
    if isinstance(v, dict):
        for k, x in v.items():
            walk(p + [k], x)
    else:
        print(".".join(p) + "=" + str(v))
walk([], json.load(sys.stdin))'
}
result_of() { results | sed -n "s/^$1=//p"; }
# The results as `juju run` prints them (YAML, keys sorted), indented.
# (PyYAML is the unit's: magnum depends on it; the host may not have it.)
results_yaml() {
    U sh -c "cat $FAKE_DIR/action-results.json 2>/dev/null || echo '{}'" |
        U python3 -c 'import json, sys, yaml; print(yaml.safe_dump(json.load(sys.stdin), default_flow_style=False, width=200), end="")'
}
run_action() {
    local name=$1 params=$2
    world_set action_params "$params"
    U rm -f "$FAKE_DIR/action-results.json" "$FAKE_DIR/action-failed" "$FAKE_DIR/action-log.txt"
    run_dispatch "actions/$name" JUJU_ACTION_NAME="$name" JUJU_ACTION_UUID=$((HOOK_N + 100))
}
