#!/usr/bin/env python3
"""Drive the REAL magnum-capi-helm driver (Driver.create_cluster,
update_cluster_status, get_monitor, delete_cluster) against the test
management cluster, inside a magnum unit, as magnum-conductor does.

Real: the driver (installed wheel), its kubernetes client and helm client,
the helm binary on PATH, magnum's config, context, certificate manager
(local backend: CA generation as at cluster create, CSR signing as the
certificates API does), and the conductor's CREATE_FAILED handling (copied
from magnum/conductor/handlers/cluster_conductor.py cluster_create: the
reason is str(exception)).

Stand-ins: the magnum Cluster/NodeGroup/ClusterTemplate objects (plain
objects whose save() records; no database), the X509KeyPair table of the
x509keypair certificate backend (a dict), and magnum.common.clients.
OpenStackClients (nova flavors, glance image with os_distro/kube_version,
cinder volume types, keystone application credentials).

Usage: drive_driver.py --kubeconfig F --repo URL --chart-version V
                       [--masters 1] [--workers 2] [--expect-fail]
Prints one line per observation with seconds since start; exits non-zero on
any failed expectation.
"""
import argparse
import base64
import os
import sys
import tempfile
import time
import types
import uuid

T0 = time.monotonic()
FAILS = []


def say(msg):
    print(f"[{time.monotonic() - T0:6.2f}s] {msg}", flush=True)


def expect(ok, what):
    say(("ok:   " if ok else "FAIL: ") + what)
    if not ok:
        FAILS.append(what)


class Obj(types.SimpleNamespace):
    """A magnum versioned object stand-in: attributes, save(), refresh()."""

    def save(self):
        self.saves = getattr(self, "saves", 0) + 1

    def refresh(self):
        pass

    def destroy(self):
        self.destroyed = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--repo", required=True)
    p.add_argument("--chart-version", required=True)
    p.add_argument("--masters", type=int, default=1)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--expect-fail", action="store_true",
                   help="the management cluster lacks the chart's API versions: expect CREATE_FAILED")
    p.add_argument("--timeout", type=float, default=120)
    a = p.parse_args()

    import magnum.conf
    from oslo_log import log as logging
    CONF = magnum.conf.CONF
    try:
        logging.register_options(CONF)      # as magnum.common.service.prepare_service
    except Exception:  # noqa: BLE001 - already registered
        pass
    CONF([], project="magnum", default_config_files=[])
    logging.setup(CONF, "magnum")

    from magnum.common import context as mctx
    from magnum.conductor.handlers.common import cert_manager
    from magnum.objects import fields
    import magnum_capi_helm
    from magnum_capi_helm import driver as capi_driver
    from magnum_capi_helm import driver_utils

    # magnum's x509keypair certificate backend (CA and keys kept in magnum's
    # database) with the database table as a dict. (The "local" backend of
    # magnum 15.0.1 cannot store on Python 3: local_cert_manager.store_cert
    # writes bytes to a text file, TypeError.)
    from magnum.common.cert_manager import x509keypair_cert_manager as x509kp
    keypairs = {}

    class X509KeyPair(Obj):
        def __init__(self, context, **kw):
            super().__init__(uuid=str(uuid.uuid4()), **kw)

        def create(self):
            keypairs[self.uuid] = self

        def destroy(self):
            keypairs.pop(self.uuid, None)

        @staticmethod
        def get_by_uuid(context, ref):
            return keypairs[ref]

    x509kp.objects = Obj(X509KeyPair=X509KeyPair)
    CONF.set_override("cert_manager_type", "x509keypair", "certificates")
    CONF.set_override("kubeconfig_file", a.kubeconfig, "capi_helm")
    CONF.set_override("helm_chart_repo", a.repo, "capi_helm")
    CONF.set_override("default_helm_chart_version", a.chart_version, "capi_helm")
    say(f"driver {magnum_capi_helm.__file__}; [capi_helm] helm_chart_repo={CONF.capi_helm.helm_chart_repo} "
        f"helm_chart_name={CONF.capi_helm.helm_chart_name} version={CONF.capi_helm.default_helm_chart_version}")

    # ---- OpenStack stand-ins ---------------------------------------------
    image_id = str(uuid.uuid4())
    appcreds = {}

    class Image(dict):
        id = image_id

    class AppCred(Obj):
        def delete(self):
            appcreds[self.id].deleted = True

    class AppCreds:
        def create(self, user, name, description):
            c = AppCred(id=uuid.uuid4().hex, secret="s3cr3t", name=name, deleted=False)
            appcreds[c.id] = c
            return c

        def get(self, cred_id):
            return appcreds[cred_id]

    class FakeOSC:
        def __init__(self, context):
            pass

        def nova(self):
            return Obj(flavors=Obj(list=lambda min_ram: [Obj(id="f1", name="m1.medium", vcpus=2)]))

        def glance(self):
            return Obj(images=Obj(get=lambda ident: Image(os_distro="ubuntu", kube_version="v1.31.2")))

        def cinder(self):
            return Obj(volume_types=Obj(list=lambda: [Obj(name="lvmdriver-1"), Obj(name="fast ssd")]))

        def keystone(self):
            return Obj(client=Obj(application_credentials=AppCreds()))

        def cinder_region_name(self):
            return "RegionOne"

        def url_for(self, **kw):
            return "https://keystone.test:5000/v3"

    capi_driver.clients.OpenStackClients = FakeOSC   # magnum.common.clients, as the driver and app_creds see it

    # ---- the cluster, as magnum-api + conductor create it ---------------------
    context = mctx.make_context(auth_token="t", user_id="u" * 32, project_id="0123456789abcdef0123456789abcdef",
                                auth_url="https://keystone.test:5000/v3")
    template = Obj(labels={}, image_id=image_id, dns_nameserver="8.8.8.8",
                   external_network_id=str(uuid.uuid4()), network_driver="calico", uuid=str(uuid.uuid4()))
    master = Obj(id=1, name="default-master", role="master", node_count=a.masters, min_node_count=1,
                 max_node_count=None, flavor_id="m1.medium", status=fields.ClusterStatus.CREATE_IN_PROGRESS,
                 is_default=True)
    worker = Obj(id=2, name="default-worker", role="worker", node_count=a.workers, min_node_count=1,
                 max_node_count=None, flavor_id="m1.medium", status=fields.ClusterStatus.CREATE_IN_PROGRESS,
                 is_default=True)
    cluster = Obj(uuid=str(uuid.uuid4()), name="selftest", project_id=context.project_id, user_id=context.user_id,
                  stack_id=None, status=fields.ClusterStatus.CREATE_IN_PROGRESS, status_reason=None, labels={},
                  keypair=None, fixed_network=None, fixed_subnet=None, master_flavor_id="m1.medium",
                  master_count=a.masters, node_count=a.workers, coe_version=None, api_address=None,
                  cluster_template=template, nodegroups=[master, worker], default_ng_worker=worker)
    cert_manager.generate_certificates_to_cluster(cluster, context=context)

    drv = capi_driver.Driver()
    ns = driver_utils.cluster_namespace(cluster)

    # ---- create -------------------------------------------------------------
    t = time.monotonic()
    try:
        drv.create_cluster(context, cluster, 60)
        cluster.save()
    except Exception as e:  # noqa: BLE001 - as cluster_conductor.cluster_create
        cluster.status = fields.ClusterStatus.CREATE_FAILED
        cluster.status_reason = str(e)
        cluster.save()
        say(f"create_cluster raised {type(e).__name__} after {time.monotonic() - t:.2f}s")
    if a.expect_fail:
        expect(cluster.status == "CREATE_FAILED", f"status {cluster.status}")
        expect("no matches for kind" in (cluster.status_reason or "") and "OpenStackCluster" in cluster.status_reason,
               "status_reason names the missing kind: " + (cluster.status_reason or "").strip().splitlines()[-1][:300])
        return finish()
    expect(cluster.status == "CREATE_IN_PROGRESS", f"create_cluster returned in {time.monotonic() - t:.2f}s; "
           f"release {cluster.stack_id} in namespace {ns}")
    k8s = drv._k8s_client
    for s in ("cloud-credentials", "ca", "etcd", "proxy", "sa"):
        sec = k8s.get_secret(driver_utils.get_k8s_resource_name(cluster, s), ns)
        expect(sec is not None and sec["metadata"]["labels"].get("magnum.openstack.org/cluster-uuid") == cluster.uuid,
               f"secret {cluster.stack_id}-{s} applied (server-side apply) with the cluster-uuid label")

    # ---- poll as the conductor's periodic sync does -----------------------------
    t, last = time.monotonic(), None
    while cluster.status == "CREATE_IN_PROGRESS" and time.monotonic() - t < a.timeout:
        drv.update_cluster_status(context, cluster)
        now = (cluster.status, cluster.api_address, cluster.coe_version, master.status, worker.status)
        if now != last:
            say(f"update_cluster_status: status={now[0]} api_address={now[1]} coe_version={now[2]} "
                f"master_ng={now[3]} worker_ng={now[4]}")
            last = now
        time.sleep(0.5)
    expect(cluster.status == "CREATE_COMPLETE", f"CREATE_COMPLETE after {time.monotonic() - t:.2f}s of polling")
    expect(master.status == worker.status == "CREATE_COMPLETE", "both node groups CREATE_COMPLETE")
    expect(cluster.coe_version == "v1.31.2", f"coe_version {cluster.coe_version} (from the KubeadmControlPlane)")

    mon = drv.get_monitor(context, cluster)
    mon.poll_health_status()
    expect(mon.data["health_status"] == "HEALTHY", f"monitor health {mon.data['health_status']} "
           f"{mon.data['health_status_reason']}")

    # ---- the workload API, as `openstack coe cluster config` + kubectl ------------
    import requests
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    ca_pem = cert_manager.get_cluster_ca_certificate(cluster, context).get_certificate()   # GET /v1/certificates
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (cx509.CertificateSigningRequestBuilder().subject_name(cx509.Name([
        cx509.NameAttribute(NameOID.COMMON_NAME, "admin"),
        cx509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters")])).sign(key, hashes.SHA256()))
    signed = cert_manager.sign_node_certificate(                                                # POST /v1/certificates
        cluster, csr.public_bytes(serialization.Encoding.PEM).decode(), context=context)
    d = tempfile.mkdtemp()
    paths = {}
    for n, data in (("ca", ca_pem), ("crt", signed), ("key", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()))):
        paths[n] = os.path.join(d, n)
        with open(paths[n], "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
    t = time.monotonic()
    r = requests.get(cluster.api_address + "/api/v1/nodes", verify=paths["ca"], cert=(paths["crt"], paths["key"]),
                     timeout=10)
    nodes = r.json().get("items", []) if r.ok else []
    ready = [n["metadata"]["name"] for n in nodes
             if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])]
    expect(r.status_code == 200 and len(ready) == a.masters + a.workers,
           f"GET {cluster.api_address}/api/v1/nodes with a magnum-signed client cert, server verified by the "
           f"cluster CA: {r.status_code}, {len(ready)} Ready nodes {ready} ({time.monotonic() - t:.2f}s)")
    r = requests.get(cluster.api_address + "/api/v1/nodes", verify=paths["ca"], timeout=10)
    expect(r.status_code == 401, f"without a client certificate: {r.status_code}")

    # ---- delete ---------------------------------------------------------------
    appcred_id = next(iter(appcreds))
    cluster.status = fields.ClusterStatus.DELETE_IN_PROGRESS
    t = time.monotonic()
    drv.delete_cluster(context, cluster)
    say(f"delete_cluster (helm uninstall) returned in {time.monotonic() - t:.2f}s")
    t, last = time.monotonic(), None
    while cluster.status == "DELETE_IN_PROGRESS" and time.monotonic() - t < a.timeout:
        drv.update_cluster_status(context, cluster)
        now = (cluster.status, master.status, worker.status)
        if now != last:
            say(f"update_cluster_status: status={now[0]} master_ng={now[1]} worker_ng={now[2]}")
            last = now
        time.sleep(0.5)
    expect(cluster.status == "DELETE_COMPLETE", f"DELETE_COMPLETE after {time.monotonic() - t:.2f}s of polling")
    expect(appcreds[appcred_id].deleted, "the application credential was deleted (read back from the secret)")
    left = k8s.get(f"/api/v1/namespaces/{ns}/secrets").json()["items"]
    expect(not left, f"no secrets left in {ns}: {[s['metadata']['name'] for s in left]}")
    return finish()


def finish():
    if FAILS:
        say(f"{len(FAILS)} expectation(s) failed")
        return 1
    say("all expectations met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
