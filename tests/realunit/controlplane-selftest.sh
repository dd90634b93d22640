#!/usr/bin/env bash
# tests/realunit/controlplane-selftest.sh [ROOT] - one timed run of
# controlplane.sh: boot a throwaway unit (NAME, default cp-selftest,
# --volatile=overlay) from a rootfs with the control plane's packages,
# bring the control plane up, install magnum-capi-helm by hand as the charm
# does (wheel, 99-capi.conf, conf.d for both services), and prove through
# the real Magnum API, authenticated by the real Keystone with the
# operator's application credential:
#   - template create answers 201 and delete 204 (the runbook's driver
#     check), with the image, flavors, keypair and external network;
#   - a cluster create reaches the conductor and the CAPI driver (it fails
#     at the management cluster: its status_reason is printed).
# Prints a TIMING line per step and the memory of the control plane.
# CP_KEEP=1 leaves the unit running at the end (to look around).
#
# ROOT (default /var/tmp/cp-helper/root) is built on first use with
#   REALUNIT_EXTRA_PACKAGES="$CP_PACKAGES" ../shared/realunit/build-rootfs.sh ROOT
# (or by hand with SUITE=...), then given the tier's recipe once (magnum
# DB-less and enabled, as tests/realunit/build-rootfs.sh makes it) and the
# control plane's services disabled at boot.
set -euo pipefail

NAME=${NAME:-cp-selftest}
[[ $NAME == cp-* ]] || { echo "NAME must start with cp-" >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
# shellcheck source=controlplane.sh
source "$HERE/controlplane.sh"

CP_ROOT=$(realpath -m "${1:-/var/tmp/cp-helper/root}")
CP_PACKAGES="keystone rabbitmq-server mariadb-server python3-pymysql glance-api"
SHARED_BUILD=$REPO/../shared/realunit/build-rootfs.sh
T_ALL=$(now)

[[ $EUID -eq 0 ]] || ru_die "run as root"
if [[ ! -x "$CP_ROOT/lib/systemd/systemd" ]]; then
    t0=$(now)
    REALUNIT_STATE=$REALUNIT_STATE REALUNIT_EXTRA_PACKAGES="$CP_PACKAGES" "$SHARED_BUILD" "$CP_ROOT" ||
        ru_die "cannot build $CP_ROOT"
    cp_timing build-rootfs "$t0"
fi

# The tier's recipe on this root, once: magnum DB-less (fake:/, sqlite) and
# enabled, the control plane's services installed but not started at boot.
if [[ ! -f "$CP_ROOT/etc/cp-selftest-prepared" ]]; then
    t0=$(now)
    in_root() { chroot "$CP_ROOT" env -i PATH="$UNIT_PATH" "$@"; }
    SQLITE=sqlite:////var/lib/magnum/magnum.sqlite
    grep -q '^transport_url = fake:/' "$CP_ROOT/etc/magnum/magnum.conf" ||
        sed -i -e '/^\[DEFAULT\]/a transport_url = fake:/' -e "/^\\[database\\]/a connection = $SQLITE" "$CP_ROOT/etc/magnum/magnum.conf"
    in_root python3 -W ignore -c "from magnum.db.sqlalchemy import models; from sqlalchemy import create_engine; models.Base.metadata.create_all(create_engine('$SQLITE'))"
    in_root chown magnum:magnum /var/lib/magnum/magnum.sqlite
    in_root systemctl enable magnum-api.service magnum-conductor.service 2>/dev/null
    for s in mariadb rabbitmq-server epmd keystone glance-api; do
        [[ -e "$CP_ROOT/lib/systemd/system/$s.service" ]] && in_root systemctl disable "$s.service" 2>/dev/null
    done
    in_root systemctl disable epmd.socket 2>/dev/null || true
    touch "$CP_ROOT/etc/cp-selftest-prepared"
    cp_timing prepare-root "$t0"
fi

# The fake-cloud binary (static, like fake-tool).
if [[ ! -x "$CP_FAKE_CLOUD" || -n "$(find "$REPO/tests/fakes/fake_cloud.rs" "$REPO/tests/support/openstack.rs" -newer "$CP_FAKE_CLOUD" 2>/dev/null)" ]]; then
    t0=$(now)
    (cd "$REPO" && cargo build --quiet --release --locked --target x86_64-unknown-linux-musl --features fake-cloud --bin fake-cloud) ||
        ru_die "cannot build fake-cloud"
    cp_timing build-fake-cloud "$t0"
fi
[[ -f "$WHEEL_DIR/$WHEEL" ]] || ru_die "no $WHEEL_DIR/$WHEEL (make test-real downloads it)"
ensure_kube_api_certs

cp_teardown() {
    local rc=$?
    if [[ ${CP_KEEP:-0} == 1 ]]; then
        ru_log "CP_KEEP=1: $NAME left running (tests/realunit/unit.sh stop $NAME)"
    elif realunit_leader "$NAME" >/dev/null 2>&1; then
        # uwsgi waits out its stop timeout on SIGTERM; the unit is thrown away.
        timeout 10 nsenter -t "$(realunit_leader "$NAME")" -a env -i PATH="$UNIT_PATH" systemctl kill --signal=SIGKILL \
            magnum-api.service magnum-conductor.service keystone.service glance-api.service >/dev/null 2>&1 || true
        local t0
        t0=$(now)
        realunit_stop "$NAME" 2>"$LOGDIR/stop.log" || { cat "$LOGDIR/stop.log" >&2; rc=1; }
        cp_timing stop "$t0"
    fi
    cp_timing selftest-total "$T_ALL"
    exit "$rc"
}
trap cp_teardown EXIT
trap 'exit 130' INT TERM

t0=$(now)
realunit_boot "$CP_ROOT" "$NAME" --volatile=overlay >/dev/null 2>"$LOGDIR/boot.log" || { cat "$LOGDIR/boot.log" >&2; ru_die "boot failed"; }
cp_timing boot "$t0"
U systemctl is-active --quiet magnum-api.service magnum-conductor.service ||
    ru_log "note: magnum is not active after boot (tier recipe expects it DB-less and running)"

controlplane_up
controlplane_env | sed -E 's/^(CP_APP_CRED_SECRET=|CP_PASSWORD=).*/\1<redacted>/'

# --- the driver, installed by hand as the charm installs it -----------------
t0=$(now)
U mkdir -p /var/cache/magnum-capi/wheels
realunit_copy_in "$NAME" "$WHEEL_DIR/$WHEEL" /var/cache/magnum-capi/wheels/
U pip3 install --quiet --break-system-packages --no-deps --no-index "/var/cache/magnum-capi/wheels/$WHEEL" ||
    ru_die "pip3 install of the driver failed"
realunit_copy_in "$NAME" "$HELM" /usr/local/bin/helm 2>/dev/null || true
start_kube_api
kubeconfig 0001 | U sh -c 'umask 027; cat > /etc/magnum/kubeconfig && chown root:magnum /etc/magnum/kubeconfig'
others=$(U python3 -c '
from importlib.metadata import entry_points
print(",".join(sorted(e.name for e in entry_points(group="magnum.drivers") if e.name != "k8s_capi_helm_v1")))')
U sh -c "install -d -o root -g magnum -m 0750 /etc/magnum/magnum.conf.d && umask 027 && cat > /etc/magnum/magnum.conf.d/99-capi.conf &&
    chown root:magnum /etc/magnum/magnum.conf.d/99-capi.conf" <<EOF
[capi_helm]
kubeconfig_file = /etc/magnum/kubeconfig

[drivers]
disabled_drivers = $others
EOF
U sh -c 'echo "DAEMON_ARGS=\"\$DAEMON_ARGS --config-dir=/etc/magnum/magnum.conf.d\"" >> /etc/default/magnum-conductor'
U systemctl restart magnum-api.service magnum-conductor.service
wait_for 90 cp_http_up http://127.0.0.1:9511/ || ru_die "magnum-api did not come back"
cp_timing driver-install "$t0"
ru_log "disabled_drivers = $others"
U sh -c 'tr "\0" " " < /proc/$(systemctl show -p MainPID --value magnum-conductor)/cmdline; echo' | sed 's/^/conductor: /'

# --- through the real Magnum API ------------------------------------------
# In the unit: keystoneauth1 with the operator's application credential,
# the container-infra endpoint from the real catalog.
MAGNUM_PY=$(cat <<'PY'
import json, os, sys, time
from keystoneauth1 import session
from keystoneauth1.identity import v3
if os.environ.get("CP_AUTH") == "password":
    auth = v3.Password(auth_url=os.environ["CP_AUTH_URL"], username=os.environ["CP_USERNAME"],
        password=os.environ["CP_PASSWORD"], project_name=os.environ["CP_PROJECT_NAME"],
        user_domain_id="default", project_domain_id="default")
else:
    auth = v3.ApplicationCredential(auth_url=os.environ["CP_AUTH_URL"],
        application_credential_id=os.environ["CP_APP_CRED_ID"], application_credential_secret=os.environ["CP_APP_CRED_SECRET"])
s = session.Session(auth=auth)
ef = {"service_type": "container-infra", "interface": "public", "region_name": os.environ["CP_REGION"]}
h = {"OpenStack-API-Version": "container-infra latest"}
def call(method, path, body=None):
    r = s.request(path, method, endpoint_filter=ef, headers=h, json=body, raise_exc=False)
    try:
        data = r.json()
    except ValueError:
        data = r.text
    return r.status_code, data
op = sys.argv[1]
if op == "template":
    st, t = call("POST", "/clustertemplates", {"name": sys.argv[2], "coe": "kubernetes",
        "image_id": "ubuntu-jammy-kube-v1.30.4", "external_network_id": "public", "keypair_id": "mykey",
        "flavor_id": "m1.medium", "master_flavor_id": "m1.medium", "network_driver": "calico"})
    print(st, t.get("uuid") if isinstance(t, dict) and st == 201 else json.dumps(t))
elif op == "delete-template":
    st, t = call("DELETE", "/clustertemplates/" + sys.argv[2])
    print(st, json.dumps(t) if st != 204 else "")
elif op == "cluster":
    st, c = call("POST", "/clusters", {"name": sys.argv[2], "cluster_template_id": sys.argv[3],
        "master_count": 1, "node_count": 1, "keypair": "mykey"})
    print(st, c.get("uuid") if isinstance(c, dict) and st == 202 else json.dumps(c))
elif op == "show":
    st, c = call("GET", "/clusters/" + sys.argv[2])
    print(st, c.get("status") if st == 200 else "", json.dumps(c.get("status_reason") if st == 200 else c))
elif op == "delete-cluster":
    st, c = call("DELETE", "/clusters/" + sys.argv[2])
    print(st, json.dumps(c) if st != 204 else "")
PY
)
# magnum_api OP ARGS...: CP_AUTH=password uses the operator's password
# instead of the application credential.
magnum_api() { U env $(controlplane_env | tr '\n' ' ') CP_AUTH="${CP_AUTH:-appcred}" python3 -c "$MAGNUM_PY" "$@"; }

PASS=0 FAIL=0
check() { if [[ $1 == ok ]]; then PASS=$((PASS + 1)); echo "PASS: $2"; else FAIL=$((FAIL + 1)); echo "FAIL: $2"; fi; }

t0=$(now)
read -r st tmpl <<<"$(magnum_api template cp-selftest-tmpl)"
[[ $st == 201 ]] && check ok "template create: 201 ($tmpl)" || check no "template create: $st $tmpl"
cp_timing template-create "$t0"
t0=$(now)
read -r st rest <<<"$(magnum_api delete-template "$tmpl")"
[[ $st == 204 ]] && check ok "template delete: 204" || check no "template delete: $st $rest"
cp_timing template-delete "$t0"

# The host's real openstack CLI in the unit's network namespace (when the
# project's venv exists: make venv-openstack), with the application
# credential as the charm's secret holds it.
OSC=$REPO/target/venv-openstack/bin/openstack
osc() {
    env $(controlplane_env | tr '\n' ' ') sh -c 'leader=$1 osc=$2; shift 2
        OS_AUTH_TYPE=v3applicationcredential OS_AUTH_URL=$CP_AUTH_URL OS_REGION_NAME=$CP_REGION \
        OS_APPLICATION_CREDENTIAL_ID=$CP_APP_CRED_ID OS_APPLICATION_CREDENTIAL_SECRET=$CP_APP_CRED_SECRET \
        exec nsenter -t "$leader" -n "$osc" "$@"' sh "$(realunit_leader "$NAME")" "$OSC" "$@"
}
if [[ -x "$OSC" ]]; then
    t0=$(now)
    if out=$(osc coe cluster template list -f value -c name 2>&1); then
        check ok "openstack coe cluster template list (host CLI in the unit's network)"
    else
        check no "openstack coe cluster template list (host CLI): ${out//$'\n'/ }"
    fi
    # python-magnumclient 5.0.0 sends the template's `driver` (API 1.12,
    # magnum 2024.2+); magnum 15 refuses it: reported, not a failure here.
    if out=$(osc coe cluster template create cp-selftest-cli --coe kubernetes --image ubuntu-jammy-kube-v1.30.4 \
            --external-network public --flavor m1.medium --master-flavor m1.medium --keypair mykey \
            --network-driver calico -f value -c uuid 2>&1); then
        echo "NOTE: host CLI template create: ok ($out)"
        osc coe cluster template delete cp-selftest-cli >/dev/null 2>&1 || true
    else
        echo "NOTE: host CLI template create: ${out//$'\n'/ }"
    fi
    cp_timing cli-template "$t0"
fi

# cluster_until_settled UUID: poll (2 s, at most 180 s) while it is
# CREATE_IN_PROGRESS; sets status and reason.
cluster_until_settled() {
    local deadline=$(($(date +%s) + 180))
    while :; do
        read -r _ status reason <<<"$(magnum_api show "$1")"
        [[ $status != CREATE_IN_PROGRESS ]] && return 0
        (($(date +%s) < deadline)) || return 0
        sleep 2
    done
}

# With the application credential: Debian's keystone (22.0.2-0+deb12u4 and
# later: CVE-2026-80184) refuses every trust operation to an application
# credential token, unrestricted or not, unless [security_compliance]
# allow_insecure_application_credential_trust_escalation = true. magnum's
# conductor makes a trust for every cluster before it calls the driver.
t0=$(now)
read -r st tmpl <<<"$(magnum_api template cp-selftest-tmpl2)"
read -r st cluster <<<"$(magnum_api cluster cp-selftest-appcred "$tmpl")"
[[ $st == 202 ]] && check ok "cluster create (application credential): 202 ($cluster)" ||
    check no "cluster create (application credential): $st $cluster"
if [[ $st == 202 ]]; then
    cluster_until_settled "$cluster"
    echo "cluster (application credential): $status; status_reason: $reason"
    if [[ $status == CREATE_FAILED && $reason == *"Failed to create trustee or trust"* ]] &&
        U grep -q 'Delegated tokens cannot manage trusts' /var/log/magnum/magnum-conductor.log; then
        check ok "application credential: CREATE_FAILED at the trust (keystone: Delegated tokens cannot manage trusts)"
    elif [[ $status == CREATE_FAILED || $status == CREATE_IN_PROGRESS ]]; then
        echo "NOTE: application credential got past the trust (keystone allows app-credential trusts here)"
    fi
fi
cp_timing cluster-create-appcred "$t0"

# With the operator's password: the trust is made and the conductor calls
# the CAPI driver, which fails at the management cluster (the stand-in
# test Kubernetes API answers only discovery).
t0=$(now)
n_driver=$(U grep -c 'magnum_capi_helm' /var/log/magnum/magnum-conductor.log || true)
read -r st cluster <<<"$(CP_AUTH=password magnum_api cluster cp-selftest-password "$tmpl")"
[[ $st == 202 ]] && check ok "cluster create (password): 202 ($cluster)" || check no "cluster create (password): $st $cluster"
if [[ $st == 202 ]]; then
    CP_AUTH=password cluster_until_settled "$cluster"
    echo "cluster (password): $status; status_reason: $reason"
    if (($(U grep -c 'magnum_capi_helm' /var/log/magnum/magnum-conductor.log || true) > n_driver)); then
        check ok "the conductor ran the CAPI driver (magnum_capi_helm in its log)"
    else
        check no "no magnum_capi_helm in the conductor's log"
    fi
    U grep -E 'magnum_capi_helm|ERROR' /var/log/magnum/magnum-conductor.log | grep -v 'rpc.server  ' | tail -n 6 | cut -c1-400 | sed 's/^/conductor.log: /'
    U sh -c 'journalctl -u test-kube-api --no-pager -o cat | tail -n 6' | sed 's/^/test-kube-api: /'
fi
cp_timing cluster-create-password "$t0"

# fake-cloud took the real Keystone's tokens (checked with Keystone) and
# refuses one Keystone does not know, as keystonemiddleware would.
n_valid=$(U sh -c 'journalctl -u fake-cloud -o cat | grep -c " valid$"' || true)
bogus=$(U python3 -c '
import urllib.request, urllib.error
r = urllib.request.Request("http://'"$CP_FAKE_CLOUD_ADDR"'/compute/v2.1/flavors", headers={"X-Auth-Token": "gAAAAAbogus"})
try:
    print(urllib.request.urlopen(r, timeout=10).status)
except urllib.error.HTTPError as e:
    print(e.code)')
[[ $n_valid -gt 0 && $bogus == 401 ]] && check ok "fake-cloud: $n_valid Keystone tokens validated, an unknown token gets 401" ||
    check no "fake-cloud: $n_valid tokens validated, unknown token: $bogus"

controlplane_memory
echo "$PASS passed, $FAIL failed"
[[ $FAIL -eq 0 ]]
