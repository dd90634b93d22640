#!/usr/bin/env bash
# tests/realunit/test-e2e.sh - run by `make test-real` (after test-real.sh
# and test-roll.sh): the charm's verify and smoketest end to end, through the
# real Magnum API, on one booted unit with a real control plane beside magnum.
#
# Real: MariaDB, RabbitMQ, Keystone, Glance (file store), magnum-api (the
# packaged uwsgi) and magnum-conductor, all from the unit's Debian release
# and started by its systemd (controlplane.sh); the charm and its default
# config; magnum-capi-helm 1.4.0 in the real conductor; the real helm 3.17.
# Stand-ins: Nova and Neutron (fake-cloud: tests/support/openstack/ as a
# process, registered in the real Keystone catalog, checking every token
# with Keystone); the management cluster (mgmt/mgmt_cluster.py: a
# Kubernetes API that plays the Cluster API controllers and serves each
# workload cluster's API) and its chart repository (our own test chart);
# the Juju hook tools (tests/fakes).
#
# Stories: verify's api-driver-check (the runbook's template create/delete
# through magnum-api); smoketest to CREATE_COMPLETE, nodes counted through
# the new cluster's own API with a kubeconfig from magnum's certificates
# API, everything cleaned up (magnum, helm, Keystone); a management cluster
# without the API version the driver needs (CREATE_FAILED with the driver's
# reason, cleaned up); an application credential, to which Keystone refuses
# the trust magnum makes for every cluster (CREATE_FAILED; the smoketest
# says what to use instead).
set -uo pipefail

NAME=${NAME:-magnum-capi-e2e}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$RU_HERE/assert.sh"
SETTLE=5
READY="active: magnum-capi-helm $DRIVER_VERSION ready"
source "$RU_HERE/e2e.sh"

# The operator's view of magnum and Keystone, from inside the unit: GET
# PATH (/clusters..., /clustertemplates on magnum; anything else on Keystone,
# `{me}` the operator's user id) with a token for the operator's password.
os_get() {
    U sh -c ". $CP_ENV; python3 - \"\$1\" \"\$CP_PW_OPERATOR\"" sh "$1" <<'PY'
import json, sys, urllib.request
path, pw = sys.argv[1:3]
body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
    "name": "demo", "domain": {"id": "default"}, "password": pw}}},
    "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}}
r = urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:5000/v3/auth/tokens",
    data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}), timeout=30)
tok, me = r.headers["X-Subject-Token"], json.load(r)["token"]["user"]["id"]
base = "http://127.0.0.1:9511/v1" if path.startswith("/cluster") else "http://127.0.0.1:5000/v3"
req = urllib.request.Request(base + path.replace("{me}", me),
    headers={"X-Auth-Token": tok, "OpenStack-API-Version": "container-infra latest"})
print(json.dumps(json.load(urllib.request.urlopen(req, timeout=30))))
PY
}
count_of() { python3 -c 'import json,sys; print(len(json.load(sys.stdin)[sys.argv[1]]))' "$1"; }
magnum_clusters() { os_get /clusters | count_of clusters; }
magnum_templates() { os_get /clustertemplates | count_of clustertemplates; }
app_creds() { os_get '/users/{me}/application_credentials' | count_of application_credentials; }
helm_releases() { mgmt_releases | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
# ---------------------------------------------------------------------------
ensure_inputs
ensure_fake_cloud
boot_unit
printf 'unit %s (%s) booted in %ss (rootfs ready in %ss); logs in %s\n' "$NAME" "$SUITE" "$BOOT_SECONDS" "$ROOTFS_SECONDS" "$LOGDIR"
wait_for 60 services_healthy || ru_die "magnum-api and magnum-conductor did not come up after boot"

section "a real control plane beside magnum (MariaDB, RabbitMQ, Keystone, Glance; Nova and Neutron fake)"
controlplane_up | tee "$LOGDIR/controlplane.log"
check "magnum-api and magnum-conductor healthy on MariaDB and RabbitMQ" wait_for 60 services_healthy
# The stand-in takes only what Keystone says is valid, as keystonemiddleware
# does: an unknown token gets 401.
bogus=$(U python3 -c '
import urllib.request, urllib.error
r = urllib.request.Request("http://'"$CP_FAKE_CLOUD_ADDR"'/compute/v2.1/flavors", headers={"X-Auth-Token": "gAAAAAbogus"})
try:
    print(urllib.request.urlopen(r, timeout=10).status)
except urllib.error.HTTPError as e:
    print(e.code)')
expect "fake-cloud refuses a token Keystone does not know" 401 "$bogus"

section "the charm, its default config, the test management cluster"
install_charm
e2e_configure
t0=$(now)
rc=0; run_dispatch hooks/install || rc=$?
hook_ok "install" $rc
printf 'TIMING install hook: %s s\n' "$(since "$t0")"
expect "status" "$READY" "$(juju_status)"
check "magnum-api and magnum-conductor healthy after the charm's restart" wait_for 60 services_healthy

section "verify: the runbook's driver check through the real Magnum API"
t0=$(now)
rc=0; run_action verify "$VERIFY_PARAMS" || rc=$?
printf 'TIMING verify: %s s\n' "$(since "$t0")"
results | grep -E '^checks\.[a-z-]+.status=' | sed 's/^checks\.//; s/.status=/: /'
expect "verify exits 0" 0 "$rc"
expect "api-driver-check: pass" pass "$(result_of checks.api-driver-check.status)"
printf '  %s\n' "$(result_of checks.api-driver-check.detail)"
expect "every check passes" "" "$(results | grep -E '^checks\.[a-z-]+.status=' | grep -v '=pass$' || true)"
expect "no template left by it" 0 "$(magnum_templates)"

section "smoketest: a cluster through magnum-api, the conductor, the driver and helm"
creds_before=$(app_creds)
t0=$(now)
rc=0; run_action smoketest "$SMOKE_PARAMS" || rc=$?
printf 'TIMING smoketest: %s s\n' "$(since "$t0")"
# As `juju run` shows it (kept in the logs for the README).
{ U sh -c "cat $FAKE_DIR/action-log.txt 2>/dev/null"; results_yaml; } | tee "$LOGDIR/smoketest.out" | sed 's/^/  /'
expect "smoketest exits 0" 0 "$rc"
check "the smoketest authenticated with the password ($(result_of credentials))" grep -q '^password of user demo' <<<"$(result_of credentials)"
expect "result: pass" pass "$(result_of result)"
expect "the cluster reached CREATE_COMPLETE" CREATE_COMPLETE "$(result_of cluster.status)"
expect "3 nodes Ready, counted through the cluster's own API (kubeconfig from magnum's certificates API)" 3 "$(result_of nodes.ready)"
expect "cleanup: done" done "$(result_of cleanup)"
expect "no cluster left in magnum" 0 "$(magnum_clusters)"
expect "no cluster template left in magnum" 0 "$(magnum_templates)"
expect "no helm release left in the management cluster" 0 "$(helm_releases)"
expect "no application credential the driver made left in Keystone" "$creds_before" "$(app_creds)"
check "fake-cloud validated the real Keystone's tokens with Keystone" \
    test "$(U sh -c 'journalctl -u fake-cloud -o cat | grep -c " valid$"' || true)" -gt 0
check "the driver ran in magnum-conductor (its journal names the helm release)" \
    U sh -c 'journalctl -u magnum-conductor -o cat | grep -q magnum_capi_helm || grep -q magnum_capi_helm /var/log/magnum/magnum-conductor.log'

section "a management cluster without OpenStackCluster v1beta1: CREATE_FAILED with the driver's reason"
stop_mgmt_cluster >/dev/null 2>&1
start_mgmt_cluster --without-version infrastructure.cluster.x-k8s.io/v1beta1 --with-version infrastructure.cluster.x-k8s.io/v1alpha7 \
    >"$LOGDIR/mgmt-start-old.log" 2>&1 || { cat "$LOGDIR/mgmt-start-old.log"; ru_die "the old management cluster did not start"; }
t0=$(now)
rc=0; run_action smoketest "$SMOKE_PARAMS" || rc=$?
printf 'TIMING smoketest (failing): %s s\n' "$(since "$t0")"
results | sed 's/^/  /'
check "smoketest fails (rc=$rc)" test "$rc" -ne 0 -o -n "$(U cat "$FAKE_DIR/action-failed" 2>/dev/null)"
expect "result: fail" fail "$(result_of result)"
expect "the cluster is CREATE_FAILED" CREATE_FAILED "$(result_of cluster.status)"
# magnum's status_reason is the driver's exception as text: processutils'
# "Unexpected error while running command." and then helm's own stderr.
check "with the driver's own reason: helm's error in status_reason" \
    grep -q 'no matches for kind "OpenStackCluster" in version "infrastructure.cluster.x-k8s.io/v1beta1"' <<<"$(results)"
check "and in the action's failure message" grep -q 'OpenStackCluster' <<<"$(U cat "$FAKE_DIR/action-failed" 2>/dev/null)"
expect "cleanup: done" done "$(result_of cleanup)"
expect "no cluster left in magnum" 0 "$(magnum_clusters)"
expect "no cluster template left" 0 "$(magnum_templates)"
expect "no helm release left" 0 "$(helm_releases)"
stop_mgmt_cluster >/dev/null 2>&1
start_mgmt_cluster >"$LOGDIR/mgmt-start-again.log" 2>&1 || ru_die "the management cluster did not start again"

section "an application credential: Keystone refuses magnum the cluster's trust"
# juju update-secret, then the secret-changed Juju sends (the unit stays on
# the revision it read until it refreshes).
world_set "secrets.$CREDS_URI" "{\"content\": $(controlplane_secret)}"
rc=0; run_dispatch hooks/secret-changed JUJU_SECRET_ID="$CREDS_URI" JUJU_SECRET_LABEL= || rc=$?
hook_ok "secret-changed (the credentials)" $rc
t0=$(now)
rc=0; run_action smoketest "$SMOKE_PARAMS" || rc=$?
printf 'TIMING smoketest (application credential): %s s\n' "$(since "$t0")"
msg=$(U cat "$FAKE_DIR/action-failed" 2>/dev/null)
printf '  message: %s\n' "$msg"
check "the smoketest authenticated with the application credential ($(result_of credentials))" \
    grep -q '^application credential ' <<<"$(result_of credentials)"
expect "the cluster is CREATE_FAILED" CREATE_FAILED "$(result_of cluster.status)"
check "magnum could not make the cluster's trust" grep -q 'trustee or trust' <<<"$msg"
check "the failure says what to use instead" grep -q 'password credentials' <<<"$msg"
expect "cleanup: done" done "$(result_of cleanup)"
expect "no cluster left in magnum" 0 "$(magnum_clusters)"
expect "no cluster template left" 0 "$(magnum_templates)"

section "memory of the unit's services"
controlplane_memory | sed 's/^/  /'

section "done"
printf 'logs: %s\n' "$LOGDIR"
finish test-e2e
