# tests/realunit/mgmt/mgmt.sh - a test Cluster API management cluster in a
# real unit (mgmt_cluster.py), for the real driver and the real helm.
# Source AFTER lib.sh (it uses U, realunit_copy_in, wait_for, ru_die, ru_log,
# $NAME, $REALUNIT_DIR, $KUBE_API_DIR, ensure_kube_api_certs and $HELM).
#
#   start_mgmt_cluster [ARGS...]  package the chart (host helm, cached), copy
#                                 the server, certificates and chart repo in,
#                                 stop lib.sh's stand-in (test-kube-api) if it
#                                 runs, start transient service
#                                 test-mgmt-cluster on 127.0.0.1:6443 (API) and
#                                 127.0.0.1:8879 (chart repo + /debug); ARGS go
#                                 to mgmt_cluster.py, e.g.
#                                   --without-version infrastructure.cluster.x-k8s.io/v1beta1
#                                   --with-version infrastructure.cluster.x-k8s.io/v1alpha7
#                                   --delay 0.5 --addon-phase Failed
#   stop_mgmt_cluster             stop it (workload APIs go with it)
#   mgmt_releases                 helm releases stored in it (JSON list)
#   mgmt_objects [NAMESPACE]      every object (kind, namespace, name, deleting, phase)
#   mgmt_clusters                 Cluster API clusters: phase, endpoint, conditions, nodes
#   mgmt_api PATH                 GET PATH from the API with the client certificate
#   mgmt_log                      the service's journal (one line per request)
#
# The charm / driver should be configured with:
#   helm-chart-repo            = $MGMT_REPO_URL   (http://127.0.0.1:8879/charts)
#   helm-chart-name            = openstack-cluster (the driver default)
#   default-helm-chart-version = 0.10.1 (the 1.4.0 driver default; leave unset)
# shellcheck shell=bash

MGMT_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MGMT_UNIT_DIR=/opt/test-mgmt-cluster
MGMT_SERVICE=test-mgmt-cluster
MGMT_LISTEN=127.0.0.1:6443
MGMT_HTTP=127.0.0.1:8879
MGMT_REPO_URL=http://$MGMT_HTTP/charts
MGMT_CHART_NAME=openstack-cluster
# Versions packaged from the one chart source: the 1.4.0 driver's default
# (conf.py default_helm_chart_version) first.
MGMT_CHART_VERSIONS=${MGMT_CHART_VERSIONS:-0.10.1}
MGMT_CHART_REPO_DIR=${MGMT_CHART_REPO_DIR:-$REALUNIT_DIR/mgmt-chart-repo}
# lib.sh's kubeconfig tokens are eyJhbGciOiJSUzI1NiJ9.canary-token-<serial>.sig
MGMT_TOKEN_PREFIX=eyJhbGciOiJSUzI1NiJ9.canary-token-

# Package the chart with the real helm on the host into a chart repository
# (index.yaml + one .tgz per version); redone when the chart changes.
mgmt_package_chart() {
    local src=$MGMT_HERE/chart/$MGMT_CHART_NAME stamp v work
    [[ -x "$HELM" ]] || ru_die "no helm at $HELM (lib.sh ensure_helm)"
    stamp=$( (cd "$src" && find . -type f -print0 | sort -z | xargs -0 sha256sum; echo "$MGMT_CHART_VERSIONS") | sha256sum | cut -d' ' -f1)
    [[ -f "$MGMT_CHART_REPO_DIR/.stamp" && "$(cat "$MGMT_CHART_REPO_DIR/.stamp")" == "$stamp" ]] && return 0
    rm -rf "$MGMT_CHART_REPO_DIR"
    mkdir -p "$MGMT_CHART_REPO_DIR"
    work=$(mktemp -d)
    for v in $MGMT_CHART_VERSIONS; do
        "$HELM" lint --quiet --values "$MGMT_HERE/chart/lint-values.yaml" "$src" >"$work/lint.log" 2>&1 || { cat "$work/lint.log" >&2; rm -rf "$work"; ru_die "helm lint of the test chart failed"; }
        "$HELM" package --version "$v" -d "$MGMT_CHART_REPO_DIR" "$src" >/dev/null ||
            { rm -rf "$work"; ru_die "helm package of the test chart failed"; }
    done
    rm -rf "$work"
    # Relative URLs in the index: helm resolves them against the repo URL.
    "$HELM" repo index "$MGMT_CHART_REPO_DIR" || ru_die "helm repo index failed"
    echo "$stamp" >"$MGMT_CHART_REPO_DIR/.stamp"
}

_mgmt_up() {
    U python3 -c 'import socket
for p in (6443, 8879):
    socket.create_connection(("127.0.0.1", p), 1).close()'
}

start_mgmt_cluster() {
    ensure_kube_api_certs
    mgmt_package_chart
    # Replace lib.sh's stand-in if it is running (same address).
    if U systemctl is-active --quiet test-kube-api.service 2>/dev/null; then
        U systemctl stop test-kube-api.service
    fi
    if U systemctl is-active --quiet "$MGMT_SERVICE.service" 2>/dev/null; then
        stop_mgmt_cluster
    fi
    U mkdir -p "$MGMT_UNIT_DIR/charts"
    realunit_copy_in "$NAME" "$MGMT_HERE/mgmt_cluster.py" "$MGMT_UNIT_DIR/"
    local f
    for f in ca.crt server.crt server.key client.crt client.key; do
        realunit_copy_in "$NAME" "$KUBE_API_DIR/$f" "$MGMT_UNIT_DIR/"
    done
    realunit_copy_in "$NAME" "$MGMT_CHART_REPO_DIR" "$MGMT_UNIT_DIR/charts"
    U systemd-run --quiet --unit="$MGMT_SERVICE" \
        --description="test Cluster API management cluster (magnum-capi real-unit tier)" \
        python3 -u "$MGMT_UNIT_DIR/mgmt_cluster.py" --listen "$MGMT_LISTEN" --http "$MGMT_HTTP" \
        --cert "$MGMT_UNIT_DIR/server.crt" --key "$MGMT_UNIT_DIR/server.key" --client-ca "$MGMT_UNIT_DIR/ca.crt" \
        --token-prefix "$MGMT_TOKEN_PREFIX" --repo-dir "$MGMT_UNIT_DIR/charts" \
        --state-dir /run/$MGMT_SERVICE "$@" || ru_die "cannot start $MGMT_SERVICE"
    wait_for 20 _mgmt_up || { mgmt_log | tail -n 20 >&2; ru_die "$MGMT_SERVICE did not listen on $MGMT_LISTEN and $MGMT_HTTP"; }
}

stop_mgmt_cluster() {
    U systemctl stop "$MGMT_SERVICE.service" 2>/dev/null || true
    U systemctl reset-failed "$MGMT_SERVICE.service" 2>/dev/null || true
}

_mgmt_http_get() {
    U python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen("http://127.0.0.1:8879" + sys.argv[1], timeout=10).read().decode())' "$1"
}

mgmt_releases() { _mgmt_http_get /debug/releases; }
mgmt_objects() { _mgmt_http_get "/debug/objects${1:+?namespace=$1}"; }
mgmt_clusters() { _mgmt_http_get /debug/clusters; }

mgmt_api() {
    U python3 -c 'import ssl, sys, urllib.request
d = "/opt/test-mgmt-cluster/"
ctx = ssl.create_default_context(cafile=d + "ca.crt")
ctx.load_cert_chain(d + "client.crt", d + "client.key")
sys.stdout.write(urllib.request.urlopen("https://127.0.0.1:6443" + sys.argv[1], context=ctx, timeout=10).read().decode())' "$1"
}

mgmt_log() { U journalctl -u "$MGMT_SERVICE" --no-pager -o cat; }
