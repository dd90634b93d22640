#!/usr/bin/env python3
"""A test Cluster API management cluster for the magnum-capi real-unit tier.

One process that plays, for magnum-capi-helm (the driver) and the helm it
runs, the parts of a real management cluster they talk to:

* a Kubernetes API server over TLS (``--listen``, default 127.0.0.1:6443):
  discovery, get/list (label and field selectors), create, update, patch
  (server-side apply, JSON merge patch, strategic merge patch, JSON patch),
  delete and delete-collection, finalizers and owner-reference garbage
  collection, for the core kinds helm stores releases in and the Cluster API
  kinds the test chart renders;
* the controllers a real management cluster runs (Cluster API core, the
  kubeadm control plane provider, CAPO and the azimuth addon provider): they
  drive the chart's objects to the status the driver reads as complete, write
  the ``<cluster>-kubeconfig`` secret, and delete in order on uninstall;
* one Kubernetes API per workload cluster (127.0.0.1, a port from
  ``--workload-ports``) whose server certificate is signed by the cluster CA
  the driver put in ``<cluster>-ca``, which accepts client certificates signed
  by that CA and lists one Ready node per Machine;
* a plain-HTTP side port (``--http``, default 127.0.0.1:8879): a helm chart
  repository (``/charts/``, the files of ``--repo-dir``) and a debug view of
  the store (``/debug/...``).

It needs python3 (3.11 bookworm, 3.13 trixie), python3-yaml and
python3-cryptography: both are dependencies of Debian's magnum packages.

Sources followed (cited as [n] in the comments):
 [1] Kubernetes API concepts, https://kubernetes.io/docs/reference/using-api/api-concepts/
 [2] Server-side apply, https://kubernetes.io/docs/reference/using-api/server-side-apply/
 [3] API conventions, kubernetes/community contributors/devel/sig-architecture/api-conventions.md
 [4] k8s.io/apiserver pkg/endpoints/handlers (delete.go, patch.go, create.go)
 [5] client-go discovery/discovery_client.go (aggregated discovery fallback)
 [6] helm v3 pkg/storage/driver/secrets.go, pkg/kube/client.go, pkg/action
 [7] cluster-api (v1beta1): internal/controllers/cluster, controlplane/kubeadm,
     util/kubeconfig, util/secret; docs book/src/developer/providers/contracts
 [8] cluster-api-provider-openstack v0.11+ api/v1beta1 (OpenStackCluster)
 [9] magnum-capi-helm 1.4.0: magnum_capi_helm/driver.py, kubernetes.py,
     common/capi_monitor.py, common/ca_certificates.py
[10] k8s.io/apimachinery pkg/apis/meta/v1/unstructured (UnstructuredList)
[11] Kubernetes garbage collection, https://kubernetes.io/docs/concepts/architecture/garbage-collection/
"""

import argparse
import base64
import copy
import datetime
import gzip
import http.server
import json
import os
import random
import re
import socket
import socketserver
import ssl
import string
import sys
import threading
import time
import traceback
import urllib.parse
import uuid

import yaml

# --------------------------------------------------------------------------
# The resources served.  (group, version, kind, plural, namespaced, flags)
# flags: "status" = has a status subresource (CRDs with
# subresources.status, [1] "Subresources"), "scale" likewise, "cr" = a custom
# resource (served by apiextensions-apiserver: JSON merge patch only, lists
# carry metadata.continue even when empty [10]), "optional" = not served
# unless --with-version.
# --------------------------------------------------------------------------
CORE_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

RESOURCES = [
    # core/v1 (what helm's release storage [6] and a chart commonly create)
    ("", "v1", "Namespace", "namespaces", False, ("status",)),
    ("", "v1", "Secret", "secrets", True, ()),
    ("", "v1", "ConfigMap", "configmaps", True, ()),
    ("", "v1", "Service", "services", True, ("status",)),
    ("", "v1", "ServiceAccount", "serviceaccounts", True, ()),
    ("", "v1", "Event", "events", True, ()),
    ("", "v1", "Pod", "pods", True, ("status",)),
    ("", "v1", "Node", "nodes", False, ("status",)),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("status",)),
    ("apps", "v1", "Deployment", "deployments", True, ("status", "scale")),
    ("apps", "v1", "StatefulSet", "statefulsets", True, ("status", "scale")),
    ("apps", "v1", "DaemonSet", "daemonsets", True, ("status",)),
    ("batch", "v1", "Job", "jobs", True, ("status",)),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles", True, ()),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True, ()),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False, ()),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False, ()),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False, ("status",)),
    # Cluster API core, kubeadm bootstrap and control plane providers, as
    # CAPI 1.8-1.10 serve them (v1beta1) [7].
    ("cluster.x-k8s.io", "v1beta1", "Cluster", "clusters", True, ("status", "cr")),
    ("cluster.x-k8s.io", "v1beta1", "ClusterClass", "clusterclasses", True, ("status", "cr")),
    ("cluster.x-k8s.io", "v1beta1", "Machine", "machines", True, ("status", "cr")),
    ("cluster.x-k8s.io", "v1beta1", "MachineSet", "machinesets", True, ("status", "scale", "cr")),
    ("cluster.x-k8s.io", "v1beta1", "MachineDeployment", "machinedeployments", True, ("status", "scale", "cr")),
    ("cluster.x-k8s.io", "v1beta1", "MachineHealthCheck", "machinehealthchecks", True, ("status", "cr")),
    ("cluster.x-k8s.io", "v1beta1", "MachinePool", "machinepools", True, ("status", "scale", "cr")),
    ("controlplane.cluster.x-k8s.io", "v1beta1", "KubeadmControlPlane", "kubeadmcontrolplanes", True, ("status", "scale", "cr")),
    ("controlplane.cluster.x-k8s.io", "v1beta1", "KubeadmControlPlaneTemplate", "kubeadmcontrolplanetemplates", True, ("cr",)),
    ("bootstrap.cluster.x-k8s.io", "v1beta1", "KubeadmConfig", "kubeadmconfigs", True, ("status", "cr")),
    ("bootstrap.cluster.x-k8s.io", "v1beta1", "KubeadmConfigTemplate", "kubeadmconfigtemplates", True, ("cr",)),
    # CAPO 0.11+: v1beta1 for the classic kinds, v1alpha1 for the new ones;
    # v1alpha6 was removed in 0.11 and v1alpha7 in 0.12 [8].  The older
    # versions are here only so that --with-version can play an old CAPO.
    ("infrastructure.cluster.x-k8s.io", "v1beta1", "OpenStackCluster", "openstackclusters", True, ("status", "cr")),
    ("infrastructure.cluster.x-k8s.io", "v1beta1", "OpenStackClusterTemplate", "openstackclustertemplates", True, ("cr",)),
    ("infrastructure.cluster.x-k8s.io", "v1beta1", "OpenStackMachine", "openstackmachines", True, ("status", "cr")),
    ("infrastructure.cluster.x-k8s.io", "v1beta1", "OpenStackMachineTemplate", "openstackmachinetemplates", True, ("cr",)),
    ("infrastructure.cluster.x-k8s.io", "v1alpha1", "OpenStackServer", "openstackservers", True, ("status", "cr")),
    ("infrastructure.cluster.x-k8s.io", "v1alpha1", "OpenStackFloatingIPPool", "openstackfloatingippools", True, ("status", "cr")),
    ("infrastructure.cluster.x-k8s.io", "v1alpha7", "OpenStackCluster", "openstackclusters", True, ("status", "cr", "optional")),
    ("infrastructure.cluster.x-k8s.io", "v1alpha7", "OpenStackClusterTemplate", "openstackclustertemplates", True, ("cr", "optional")),
    ("infrastructure.cluster.x-k8s.io", "v1alpha7", "OpenStackMachine", "openstackmachines", True, ("status", "cr", "optional")),
    ("infrastructure.cluster.x-k8s.io", "v1alpha7", "OpenStackMachineTemplate", "openstackmachinetemplates", True, ("cr", "optional")),
    ("infrastructure.cluster.x-k8s.io", "v1alpha6", "OpenStackCluster", "openstackclusters", True, ("status", "cr", "optional")),
    ("infrastructure.cluster.x-k8s.io", "v1alpha6", "OpenStackClusterTemplate", "openstackclustertemplates", True, ("cr", "optional")),
    ("infrastructure.cluster.x-k8s.io", "v1alpha6", "OpenStackMachine", "openstackmachines", True, ("status", "cr", "optional")),
    ("infrastructure.cluster.x-k8s.io", "v1alpha6", "OpenStackMachineTemplate", "openstackmachinetemplates", True, ("cr", "optional")),
    # azimuth cluster-api-addon-provider: the driver lists these by the
    # label addons.stackhpc.com/cluster and waits for phase Deployed
    # (driver.py _update_status_updating, kubernetes.py HelmRelease/Manifests)
    # [9].  addons.cluster.x-k8s.io (HelmChartProxy, CAAPH) is deliberately
    # NOT served: the driver must tolerate its 404 (kubernetes.py
    # get_addons_by_label).
    ("addons.stackhpc.com", "v1alpha1", "HelmRelease", "helmreleases", True, ("status", "cr")),
    ("addons.stackhpc.com", "v1alpha1", "Manifests", "manifests", True, ("status", "cr")),
]

SHORT_NAMES = {"namespaces": ["ns"], "secrets": [], "configmaps": ["cm"], "services": ["svc"],
               "serviceaccounts": ["sa"], "clusters": ["cl"], "machines": ["ma"],
               "machinedeployments": ["md"], "machinesets": ["ms"], "machinehealthchecks": ["mhc"],
               "kubeadmcontrolplanes": ["kcp"], "openstackclusters": ["osc"]}

CLUSTER_NAME_LABEL = "cluster.x-k8s.io/cluster-name"     # [7] api/v1beta1 common_types.go


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def log(msg):
    print(msg, flush=True)


def rand_suffix(n=5):
    # Kubernetes generateName / CAPI machine names use [bcdfghjklmnpqrstvwxz2456789] [3]
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


def kube_version_key(v):
    """Order of Kubernetes API versions: GA > beta > alpha, higher first
    (apimachinery pkg/version/helpers.go CompareKubeAwareVersionStrings)."""
    m = re.match(r"^v(\d+)(?:(alpha|beta)(\d+))?$", v)
    if not m:
        return (0, 0, 0, v)
    major, kind, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    rank = {"alpha": 1, "beta": 2, None: 3}[kind]
    return (rank, major, minor, v)


class ApiError(Exception):
    """A Status failure ([3] "Response Status Kind")."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            s["details"] = self.details
        return s


def not_found(res, name):
    gr = res.plural + ("." + res.group if res.group else "")
    return ApiError(404, "NotFound", f'{gr} "{name}" not found',
                    {"name": name, "group": res.group, "kind": res.plural})


# --------------------------------------------------------------------------
# Label and field selectors ([1] "Label selectors": =, ==, !=, in, notin,
# exists, !exists; comma is AND).
# --------------------------------------------------------------------------
def parse_label_selector(sel):
    reqs = []
    if not sel:
        return reqs
    # split on commas not inside parentheses
    parts, depth, cur = [], 0, ""
    for ch in sel:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    for p in (x.strip() for x in parts):
        if not p:
            continue
        m = re.match(r"^([^\s!=]+)\s+(in|notin)\s+\((.*)\)$", p)
        if m:
            reqs.append((m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}))
        elif "!=" in p:
            k, v = p.split("!=", 1)
            reqs.append((k.strip(), "!=", v.strip()))
        elif "==" in p:
            k, v = p.split("==", 1)
            reqs.append((k.strip(), "=", v.strip()))
        elif "=" in p:
            k, v = p.split("=", 1)
            reqs.append((k.strip(), "=", v.strip()))
        elif p.startswith("!"):
            reqs.append((p[1:].strip(), "!exists", None))
        else:
            reqs.append((p, "exists", None))
    return reqs


def labels_match(labels, reqs):
    labels = labels or {}
    for k, op, v in reqs:
        if op == "=" and labels.get(k) != v:
            return False
        if op == "!=" and labels.get(k) == v:
            return False
        if op == "in" and labels.get(k) not in v:
            return False
        if op == "notin" and labels.get(k) in v:
            return False
        if op == "exists" and k not in labels:
            return False
        if op == "!exists" and k in labels:
            return False
    return True


def field_match(obj, sel):
    """Field selectors: metadata.name, metadata.namespace and, for secrets,
    type ([1] "Field selectors"; the apiserver supports these for all kinds)."""
    if not sel:
        return True
    for part in sel.split(","):
        neg = "!=" in part
        k, v = re.split(r"!=|==|=", part, maxsplit=1)
        cur = obj
        for seg in k.strip().split("."):
            cur = cur.get(seg) if isinstance(cur, dict) else None
        if (str(cur) == v.strip()) == neg:
            return False
    return True


# --------------------------------------------------------------------------
# Patches.
# --------------------------------------------------------------------------
def json_merge_patch(target, patch):
    """RFC 7386 (application/merge-patch+json)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = json_merge_patch(result.get(k), v)
    return result


MERGE_KEYS = ("name", "port", "containerPort", "mountPath", "devicePath", "ip", "type", "key")


def strategic_merge_patch(target, patch):
    """A subset of strategic merge patch (apimachinery
    pkg/util/strategicpatch) for built-in kinds: maps merge, null deletes,
    lists of maps merge by their merge key (name/port/...), ``$patch:
    delete|replace`` and the ``$setElementOrder``/``$retainKeys``/
    ``$deleteFromPrimitiveList`` directives helm's three-way patches carry
    are honoured or dropped.  Custom resources never get here: the
    apiserver answers 415 for them ([2], [4] patch.go)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "delete":
        return None
    if patch.get("$patch") == "replace":
        return {k: v for k, v in patch.items() if not k.startswith("$")}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$setElementOrder/") or k in ("$retainKeys", "$patch"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            result[field] = [x for x in result.get(field, []) if x not in v]
            continue
        if v is None:
            result.pop(k, None)
        elif isinstance(v, dict):
            merged = strategic_merge_patch(result.get(k), v)
            if merged is None:
                result.pop(k, None)
            else:
                result[k] = merged
        elif isinstance(v, list) and isinstance(result.get(k), list) and v and \
                all(isinstance(x, dict) for x in v + result[k]):
            key = next((mk for mk in MERGE_KEYS
                        if all(mk in x for x in result[k] + [y for y in v if y.get("$patch") != "delete" or mk in y])), None)
            if key is None:
                result[k] = [x for x in v if x.get("$patch") != "delete"]
                continue
            merged = list(result[k])
            for item in v:
                idx = next((i for i, x in enumerate(merged) if x.get(key) == item.get(key)), None)
                if item.get("$patch") == "delete":
                    if idx is not None:
                        merged.pop(idx)
                elif idx is None:
                    merged.append(strategic_merge_patch({}, item))
                else:
                    merged[idx] = strategic_merge_patch(merged[idx], item)
            result[k] = merged
        else:
            result[k] = copy.deepcopy(v)
    return result


def json_patch(target, ops):
    """RFC 6902 (application/json-patch+json): add, remove, replace, test."""
    doc = copy.deepcopy(target)

    def walk(path):
        segs = [s.replace("~1", "/").replace("~0", "~") for s in path.split("/")[1:]]
        parent = doc
        for s in segs[:-1]:
            parent = parent[int(s)] if isinstance(parent, list) else parent[s]
        return parent, segs[-1]

    for op in ops:
        parent, last = walk(op["path"])
        kind = op["op"]
        if isinstance(parent, list):
            idx = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(idx, op["value"])
            elif kind == "remove":
                parent.pop(idx)
            elif kind == "replace":
                parent[idx] = op["value"]
            elif kind == "test" and parent[idx] != op["value"]:
                raise ApiError(422, "Invalid", "json patch test failed")
        else:
            if kind in ("add", "replace"):
                parent[last] = op["value"]
            elif kind == "remove":
                parent.pop(last)
            elif kind == "test" and parent.get(last) != op["value"]:
                raise ApiError(422, "Invalid", "json patch test failed")
    return doc


# --------------------------------------------------------------------------
# Protobuf request bodies.  helm's release storage uses client-go's typed
# clientset, which sends built-in kinds as application/vnd.kubernetes.protobuf
# (helm pkg/kube: the rest config asks for protobuf; apiserver
# runtime/serializer/protobuf: 4-byte magic "k8s\0" + runtime.Unknown
# {typeMeta=1, raw=2, contentEncoding=3, contentType=4}) while accepting JSON
# replies.  Decoded here for the messages helm sends: Secret, ConfigMap and
# DeleteOptions (field numbers from k8s.io/api/core/v1/generated.proto and
# apimachinery pkg/apis/meta/v1/generated.proto).
# --------------------------------------------------------------------------
PB_SCHEMAS = {
    "Unknown": {1: ("typeMeta", "TypeMeta"), 2: ("raw", "bytes"), 3: ("contentEncoding", "str"),
                4: ("contentType", "str")},
    "TypeMeta": {1: ("apiVersion", "str"), 2: ("kind", "str")},
    "ObjectMeta": {1: ("name", "str"), 2: ("generateName", "str"), 3: ("namespace", "str"), 5: ("uid", "str"),
                   6: ("resourceVersion", "str"), 7: ("generation", "int"), 11: ("labels", "map:str"),
                   12: ("annotations", "map:str"), 13: ("ownerReferences", "[]OwnerReference"),
                   14: ("finalizers", "[]str")},
    "OwnerReference": {1: ("kind", "str"), 3: ("name", "str"), 4: ("uid", "str"), 5: ("apiVersion", "str"),
                       6: ("controller", "bool"), 7: ("blockOwnerDeletion", "bool")},
    "Secret": {1: ("metadata", "ObjectMeta"), 2: ("data", "map:b64"), 3: ("type", "str"),
               4: ("stringData", "map:str"), 5: ("immutable", "bool")},
    "ConfigMap": {1: ("metadata", "ObjectMeta"), 2: ("data", "map:str"), 3: ("binaryData", "map:b64"),
                  4: ("immutable", "bool")},
    "DeleteOptions": {1: ("gracePeriodSeconds", "int"), 2: ("preconditions", "Preconditions"),
                      3: ("orphanDependents", "bool"), 4: ("propagationPolicy", "str"), 5: ("dryRun", "[]str")},
    "Preconditions": {1: ("uid", "str"), 2: ("resourceVersion", "str")},
}


def _pb_fields(buf):
    i = 0

    def varint():
        nonlocal i
        shift = result = 0
        while True:
            b = buf[i]
            i += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result
            shift += 7

    while i < len(buf):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            yield field, varint()
        elif wire == 2:
            n = varint()
            yield field, buf[i:i + n]
            i += n
        elif wire == 1:
            yield field, buf[i:i + 8]
            i += 8
        elif wire == 5:
            yield field, buf[i:i + 4]
            i += 4
        else:
            raise ValueError(f"protobuf wire type {wire} not supported")


def pb_decode(buf, schema):
    out = {}
    spec = PB_SCHEMAS[schema]
    for field, val in _pb_fields(buf):
        if field not in spec:
            continue            # fields helm never sets (timestamps, managedFields)
        name, typ = spec[field]
        if typ == "str":
            out[name] = val.decode()
        elif typ == "bytes":
            out[name] = val
        elif typ == "int":
            out[name] = val
        elif typ == "bool":
            out[name] = bool(val)
        elif typ.startswith("map:"):
            entry = dict(_pb_fields(val))
            v = entry.get(2, b"")
            out.setdefault(name, {})[entry.get(1, b"").decode()] = \
                base64.b64encode(v).decode() if typ == "map:b64" else v.decode()
        elif typ == "[]str":
            out.setdefault(name, []).append(val.decode())
        elif typ.startswith("[]"):
            out.setdefault(name, []).append(pb_decode(val, typ[2:]))
        else:
            out[name] = pb_decode(val, typ)
    return out


def decode_body(body, ctype, kind):
    """JSON (or YAML for apply) bodies, or a protobuf envelope."""
    if ctype.split(";")[0].strip() == "application/vnd.kubernetes.protobuf":
        if body[:4] != b"k8s\x00":
            raise ApiError(400, "BadRequest", "protobuf body without the k8s envelope")
        unk = pb_decode(body[4:], "Unknown")
        k = unk.get("typeMeta", {}).get("kind") or kind
        if k not in PB_SCHEMAS:
            raise ApiError(415, "UnsupportedMediaType", f"this test server decodes no protobuf {k}")
        obj = pb_decode(unk.get("raw", b""), k)
        if k not in ("DeleteOptions",):
            obj["apiVersion"], obj["kind"] = unk.get("typeMeta", {}).get("apiVersion", "v1"), k
        return obj
    return json.loads(body) if body.strip() else {}


def fields_v1(obj):
    """The FieldsV1 set of an applied configuration ([2] "Field management")."""
    if not isinstance(obj, dict):
        return {}
    return {"f:" + k: fields_v1(v) for k, v in obj.items()}


def remove_unapplied(obj, old_applied, new_applied):
    """Server-side apply: fields this manager applied before but not now
    are removed, when no other manager owns them ([2] "Merge strategy").
    Managers are not tracked per field here: one applier per object (the
    driver's "magnum"), as the driver uses it."""
    if not isinstance(old_applied, dict) or not isinstance(obj, dict):
        return
    for k, v in old_applied.items():
        if k in ("apiVersion", "kind"):
            continue
        if not isinstance(new_applied, dict) or k not in new_applied:
            obj.pop(k, None)
        elif isinstance(v, dict):
            remove_unapplied(obj.get(k), v, new_applied[k])


def merge_applied(obj, applied):
    """Server-side apply merge: maps merge, lists and scalars are replaced
    (lists without x-kubernetes-list-type=map are atomic for CRDs [2])."""
    for k, v in applied.items():
        if isinstance(v, dict) and isinstance(obj.get(k), dict):
            merge_applied(obj[k], v)
        else:
            obj[k] = copy.deepcopy(v)


# --------------------------------------------------------------------------
# The store.
# --------------------------------------------------------------------------
class Resource:
    def __init__(self, group, version, kind, plural, namespaced, flags):
        self.group, self.version, self.kind, self.plural = group, version, kind, plural
        self.namespaced = namespaced
        self.flags = set(flags)
        self.custom = "cr" in self.flags

    @property
    def gv(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def store_key(self):
        # One storage per group+resource, whatever the version (the apiserver
        # converts between served versions; these are field-compatible
        # enough here).
        return (self.group, self.plural)


class Store:
    def __init__(self):
        self.lock = threading.RLock()
        self.objects = {}        # (group, plural) -> {(ns, name): obj}
        self.applied = {}        # (group, plural, ns, name, manager) -> last applied config
        self.rv = 1000
        self.kinds = {}          # (group, plural) -> Resource (any served version)

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    def bucket(self, res):
        return self.objects.setdefault(res.store_key, {})

    def get(self, res, ns, name):
        return self.bucket(res).get((ns or "", name))

    def list(self, res, ns=None, label_selector=None, field_selector=None):
        reqs = parse_label_selector(label_selector)
        out = []
        for (ons, oname), obj in sorted(self.bucket(res).items()):
            if ns and ons != ns:
                continue
            if not labels_match(obj["metadata"].get("labels"), reqs):
                continue
            if not field_match(obj, field_selector):
                continue
            out.append(obj)
        return out

    def all_objects(self):
        for key, bucket in self.objects.items():
            for obj in bucket.values():
                yield key, obj


# --------------------------------------------------------------------------
# Certificates (cryptography, a magnum dependency).
# --------------------------------------------------------------------------
def _crypto():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    return x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID


def make_ca(cn):
    """A CA as CAPI's util/secret generates when `<cluster>-ca` is missing [7]."""
    x509, hashes, serialization, ec, _, NameOID = _crypto()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    t = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(t - datetime.timedelta(minutes=5))
            .not_valid_after(t + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def issue_cert(ca_crt_pem, ca_key_pem, cn, orgs=(), server_sans=None, client=False):
    """A leaf certificate signed by the cluster CA: the apiserver's serving
    certificate (kubeadm: SANs kubernetes, kubernetes.default, ..., the
    endpoint IP) or a client certificate (CN = user, O = groups)."""
    import ipaddress
    x509, hashes, serialization, ec, EKU, NameOID = _crypto()
    ca_cert = x509.load_pem_x509_certificate(ca_crt_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    t = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(ca_cert.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(t - datetime.timedelta(minutes=5))
         .not_valid_after(t + datetime.timedelta(days=365))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage([EKU.CLIENT_AUTH if client else EKU.SERVER_AUTH]), critical=False)
         # SKI/AKI: OpenSSL's X509_STRICT (Python 3.13 default contexts)
         # rejects leaf certificates without an Authority Key Identifier
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if server_sans:
        names = []
        for s in server_sans:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                names.append(x509.DNSName(s))
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = b.sign(ca_key, hashes.SHA256())
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


# --------------------------------------------------------------------------
# HTTPS servers: TLS handshake in the connection's thread, HTTP/1.1
# keep-alive (client-go and requests reuse connections).
# --------------------------------------------------------------------------
class TLSServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, ctx, app):
        self.ctx, self.app = ctx, app
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        request.settimeout(300)
        # One segment per reply: without this, headers and body go out in
        # two writes and Nagle + the client's delayed ACK add ~40 ms each.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            conn = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log(f"{self.app.name}: TLS handshake from {client_address[0]} failed: {e}")
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.close()
            except OSError:
                pass


def server_context(cert_file, key_file, ca_file=None, ca_data=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    if ca_file:
        ctx.load_verify_locations(cafile=ca_file)
    if ca_data:
        ctx.load_verify_locations(cadata=ca_data)
    # Like kube-apiserver (--client-ca-file): a client certificate is
    # verified if given; a token client sends none.
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class BaseHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mgmt-cluster-test"

    def log_message(self, fmt, *args):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send_json(self, code, body, ctype="application/json"):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self._code = code

    def user(self):
        """The authenticated user, or None ([1] authentication: x509 client
        certificate CN/O, or a bearer token)."""
        cert = self.connection.getpeercert()
        if cert:
            subj = dict(x[0] for x in cert.get("subject", ()))
            return "x509:" + subj.get("commonName", "?")
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and self.server.app.token_ok(auth[7:].strip()):
            return "token:" + auth[7:20] + "..."
        return None


# --------------------------------------------------------------------------
# The management cluster's API server.
# --------------------------------------------------------------------------
class MgmtHandler(BaseHandler):
    def _dispatch(self):
        # timed from the parsed request line, not from the wait on a
        # kept-alive connection
        self._code = 0
        self._t0 = time.monotonic()
        app = self.server.app
        who = self.user()
        try:
            if who is None:
                # [1] anonymous requests are rejected (--anonymous-auth=false)
                raise ApiError(401, "Unauthorized", "Unauthorized")
            app.handle(self)
        except ApiError as e:
            self.send_json(e.code, e.status())
        except (ValueError, KeyError, TypeError, yaml.YAMLError) as e:
            traceback.print_exc()
            self.send_json(400, ApiError(400, "BadRequest", f"{type(e).__name__}: {e}").status())
        except Exception as e:  # noqa: BLE001 - answer 500 as the apiserver would
            traceback.print_exc()
            self.send_json(500, ApiError(500, "InternalError", str(e)).status())
        ua = self.headers.get("User-Agent", "-").split(" ")[0]
        ct = self.headers.get("Content-Type")
        ct = f" [{ct.split(';')[0]}]" if ct and self.command not in ("GET", "HEAD") else ""
        log(f"mgmt-api: {self.command} {self.path}{ct} {self._code} {who or 'anonymous'} {ua} "
            f"{(time.monotonic() - self._t0) * 1000:.0f}ms")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


class MgmtCluster:
    name = "mgmt-api"

    def __init__(self, args):
        self.args = args
        self.store = Store()
        self.token_prefixes = args.token_prefix or []
        self.tokens = set(args.token or [])
        served = set()
        without = set(args.without_version or [])
        with_ = set(args.with_version or [])
        self.resources = []
        for g, v, kind, plural, namespaced, flags in RESOURCES:
            gv = f"{g}/{v}" if g else v
            if gv in without:
                continue
            if "optional" in flags and gv not in with_:
                continue
            r = Resource(g, v, kind, plural, namespaced, flags)
            self.resources.append(r)
            served.add(gv)
            self.store.kinds.setdefault(r.store_key, r)
        unknown = (without | with_) - {f"{g}/{v}" if g else v for g, v, *_ in RESOURCES}
        if unknown:
            sys.exit(f"unknown group/version: {', '.join(sorted(unknown))}")
        self.by_path = {(r.gv, r.plural): r for r in self.resources}
        self.controllers = Controllers(self)

    def token_ok(self, token):
        return token in self.tokens or any(token.startswith(p) for p in self.token_prefixes)

    # ---- discovery [1] "Discovery API", [5] -------------------------------
    def groups(self):
        groups = {}
        for r in self.resources:
            if r.group:
                groups.setdefault(r.group, set()).add(r.version)
        return groups

    def group_json(self, g, versions):
        vs = sorted(versions, key=kube_version_key, reverse=True)
        items = [{"groupVersion": f"{g}/{v}", "version": v} for v in vs]
        return {"name": g, "versions": items, "preferredVersion": items[0]}

    def resource_list(self, gv):
        res = []
        for r in self.resources:
            if r.gv != gv:
                continue
            res.append({"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                        "kind": r.kind, "verbs": CORE_VERBS, "shortNames": SHORT_NAMES.get(r.plural, []),
                        "storageVersionHash": base64.b64encode(r.kind.encode()).decode()[:12]})
            for sub in ("status", "scale"):
                if sub in r.flags:
                    res.append({"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                                "kind": "Scale" if sub == "scale" else r.kind,
                                "group": "autoscaling" if sub == "scale" else None,
                                "version": "v1" if sub == "scale" else None,
                                "verbs": ["get", "patch", "update"]})
        for item in res:
            for k in ("group", "version"):
                if item.get(k) is None:
                    item.pop(k, None)
        if not res:
            return None
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": res}

    # ---- request routing ---------------------------------------------------
    def handle(self, h):
        url = urllib.parse.urlsplit(h.path)
        path = url.path.rstrip("/") or "/"
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        if h.command in ("GET", "HEAD"):
            if path == "/version":
                return h.send_json(200, {"major": "1", "minor": "31", "gitVersion": "v1.31.6",
                                         "gitCommit": "0" * 40, "gitTreeState": "clean",
                                         "buildDate": "2025-02-12T00:00:00Z", "goVersion": "go1.22.12",
                                         "compiler": "gc", "platform": "linux/amd64"})
            if path in ("/healthz", "/livez", "/readyz"):
                h.send_response(200)
                h.send_header("Content-Type", "text/plain")
                h.send_header("Content-Length", "2")
                h.end_headers()
                h.wfile.write(b"ok")
                h._code = 200
                return None
            # Discovery.  client-go (>= 0.26) first asks /api and /apis for
            # the aggregated form (Accept: application/json;g=apidiscovery.
            # k8s.io;v=v2;as=APIGroupDiscoveryList, ..., application/json) and
            # falls back to the legacy documents when the reply's
            # Content-Type is plain application/json [5].  We answer only the
            # legacy documents.
            if path == "/api":
                return h.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                         "serverAddressByClientCIDRs": [
                                             {"clientCIDR": "0.0.0.0/0", "serverAddress": self.args.listen}]})
            if path == "/apis":
                return h.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                         "groups": [self.group_json(g, vs) for g, vs in sorted(self.groups().items())]})
            m = re.fullmatch(r"/apis/([^/]+)", path)
            if m:
                vs = self.groups().get(m.group(1))
                if not vs:
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                return h.send_json(200, dict(kind="APIGroup", apiVersion="v1", **self.group_json(m.group(1), vs)))
            m = re.fullmatch(r"/api/(v1)|/apis/([^/]+/[^/]+)", path)
            if m:
                doc = self.resource_list(m.group(1) or m.group(2))
                if not doc:
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                return h.send_json(200, doc)
            if path == "/openapi/v2":
                # helm install/upgrade validates the rendered manifest
                # client-side (pkg/kube/client.go Build(validate=true) ->
                # kubectl's openapi validator), which REQUIRES /openapi/v2:
                # a 404 fails the install with "failed to download openapi".
                # client-go's DiscoveryClient.OpenAPISchema asks for protobuf
                # (application/com.github.proto-openapi.spec.v2@v1.0+protobuf)
                # and proto-unmarshals the body; zero bytes is a valid, empty
                # openapi_v2.Document. With no schema for a kind, the
                # validator skips it (kubectl validation: "resource is not
                # present, let's just skip validation"), so helm validates
                # nothing here: the chart's own values.schema.json does.
                h.send_response(200)
                h.send_header("Content-Type", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
                h.send_header("Content-Length", "0")
                h.end_headers()
                h._code = 200
                return None
            if path.startswith("/openapi/"):
                # No OpenAPI v3: client-go's query-param verifier falls back
                # to v2 on 404 (kubectl pkg/cmd/util QueryParamVerifierV3).
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return self.handle_resource(h, path, q)

    def parse_resource_path(self, path):
        m = re.fullmatch(r"/api/v1(/.*)", path) or re.fullmatch(r"/apis/([^/]+/[^/]+)(/.*)", path)
        if not m:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        gv, rest = (("v1", m.group(1)) if path.startswith("/api/") else (m.group(1), m.group(2)))
        segs = rest.strip("/").split("/")
        ns = None
        if segs[0] == "namespaces" and len(segs) >= 3 and segs[2] not in ("status", "finalize"):
            ns, segs = segs[1], segs[2:]
        res = self.by_path.get((gv, segs[0]))
        if res is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = segs[1] if len(segs) > 1 else None
        sub = segs[2] if len(segs) > 2 else None
        if res.namespaced and name is not None and ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not res.namespaced and ns is not None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return res, ns, name, sub

    def handle_resource(self, h, path, q):
        res, ns, name, sub = self.parse_resource_path(path)
        method = h.command
        if q.get("watch") in ("true", "1"):
            # Neither the driver nor helm (without --wait) watches.
            raise ApiError(405, "MethodNotAllowed", "watch is not supported by this test server")
        if "dryRun" in q:
            raise ApiError(400, "BadRequest", "dryRun is not supported by this test server")
        st = self.store
        with st.lock:
            if method in ("GET", "HEAD"):
                if name is None:
                    return h.send_json(200, self.list_json(res, ns, q))
                obj = st.get(res, ns, name)
                if obj is None:
                    raise not_found(res, name)
                if sub == "scale":
                    return h.send_json(200, self.scale_json(res, obj))
                return h.send_json(200, self.out(res, obj))
            body = h.read_body()
            ctype = h.headers.get("Content-Type", "")
            if method == "POST":
                if name is not None:
                    raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
                obj = decode_body(body, ctype, res.kind)
                created = self.create(res, ns, obj, q)
                return h.send_json(201, self.out(res, created))
            if method == "PUT":
                obj = decode_body(body, ctype, res.kind)
                updated, code = self.update(res, ns, name, obj, sub, q)
                return h.send_json(code, self.out(res, updated))
            if method == "PATCH":
                obj, code = self.patch(res, ns, name, sub, h.headers.get("Content-Type", ""), body, q)
                return h.send_json(code, self.out(res, obj))
            if method == "DELETE":
                opts = decode_body(body, ctype, "DeleteOptions")
                if name is None:
                    # deletecollection [1]: answers the list of what it deleted
                    items = st.list(res, ns, q.get("labelSelector"), q.get("fieldSelector"))
                    deleted = [self.delete(res, o["metadata"].get("namespace"), o["metadata"]["name"], opts)[0]
                               for o in list(items)]
                    lst = self.list_json(res, ns, {})
                    lst["items"] = [self.out(res, o) for o in deleted]
                    return h.send_json(200, lst)
                obj, gone = self.delete(res, ns, name, opts)
                if gone and not res.custom:
                    # Built-in kinds answer a Status; CRs the deleted object
                    # (customresource_handler ReturnDeletedObject).
                    return h.send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                             "status": "Success",
                                             "details": {"name": name, "group": res.group, "kind": res.plural,
                                                         "uid": obj["metadata"]["uid"]}})
                # [4] delete.go: 202 Accepted when the object still exists
                # (finalizers pending), 200 when it is gone.
                return h.send_json(200 if gone else 202, self.out(res, obj))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    # ---- object lifecycle ---------------------------------------------------
    def out(self, res, obj):
        o = copy.deepcopy(obj)
        o["apiVersion"], o["kind"] = res.gv, res.kind
        return o

    def list_json(self, res, ns, q):
        items = self.store.list(res, ns, q.get("labelSelector"), q.get("fieldSelector"))
        meta = {"resourceVersion": str(self.store.rv)}
        if res.custom:
            # UnstructuredList.SetContinue always writes the field [10]; the
            # 1.4.0 driver reads response_data["metadata"]["continue"]
            # unconditionally (kubernetes.py fetch_all_by_label), which works
            # only because it lists custom resources.
            meta["continue"] = ""
        out = []
        for o in items:
            o = self.out(res, o)
            if not res.custom:
                # typed lists encode items without apiVersion/kind
                o.pop("apiVersion", None)
                o.pop("kind", None)
            out.append(o)
        return {"kind": res.kind + "List", "apiVersion": res.gv, "metadata": meta, "items": out}

    def scale_json(self, res, obj):
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: obj["metadata"][k] for k in ("name", "namespace", "uid", "resourceVersion")
                             if k in obj["metadata"]},
                "spec": {"replicas": obj.get("spec", {}).get("replicas", 0)},
                "status": {"replicas": obj.get("status", {}).get("replicas", 0)}}

    def normalize(self, res, obj, old=None):
        """What the apiserver does to every write ([3], registry strategies)."""
        obj["apiVersion"], obj["kind"] = res.gv, res.kind
        md = obj.setdefault("metadata", {})
        if res.kind == "Secret":
            # core/v1 conversion: stringData is merged into data, write-only
            data = obj.get("data") or {}
            for k, v in (obj.pop("stringData", None) or {}).items():
                data[k] = base64.b64encode(v.encode()).decode()
            obj["data"] = data
            obj.setdefault("type", "Opaque")
            if old is not None and old.get("type") != obj["type"]:
                raise ApiError(422, "Invalid", f'Secret "{md["name"]}" is invalid: type: Invalid value: '
                                               f'"{obj["type"]}": field is immutable')
        if res.kind == "Namespace":
            md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md["name"]
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj.setdefault("status", {})["phase"] = "Terminating" if md.get("deletionTimestamp") else "Active"
        for k, v in (md.get("labels") or {}).items():
            if not isinstance(v, str):
                raise ApiError(400, "BadRequest", f"label {k}: value must be a string")
        return obj

    def check_namespace(self, res, ns):
        if not res.namespaced:
            return
        nsres = self.by_path[("v1", "namespaces")]
        nsobj = self.store.get(nsres, None, ns)
        # NamespaceLifecycle admission plugin
        if nsobj is None:
            raise ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                           {"name": ns, "kind": "namespaces"})
        if nsobj["metadata"].get("deletionTimestamp"):
            raise ApiError(403, "Forbidden", f"unable to create new content in namespace {ns} because it is being terminated")

    def create(self, res, ns, obj, q, manager=None):
        md = obj.setdefault("metadata", {})
        if res.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
            md["namespace"] = ns
        if not md.get("name"):
            if md.get("generateName"):
                md["name"] = md["generateName"] + rand_suffix()
            else:
                raise ApiError(422, "Invalid", f"{res.kind} is invalid: metadata.name: Required value: name or generateName is required")
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", md["name"]) or len(md["name"]) > 253:
            raise ApiError(422, "Invalid", f'{res.kind} "{md["name"]}" is invalid: metadata.name: Invalid value')
        self.check_namespace(res, ns)
        if self.store.get(res, ns, md["name"]) is not None:
            gr = res.plural + ("." + res.group if res.group else "")
            raise ApiError(409, "AlreadyExists", f'{gr} "{md["name"]}" already exists',
                           {"name": md["name"], "group": res.group, "kind": res.plural})
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            md.pop(k, None)
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = now_rfc3339()
        md["generation"] = 1
        md["resourceVersion"] = self.store.next_rv()
        if "status" in res.flags and res.custom:
            obj.pop("status", None)     # the status subresource ignores status on create
        if manager or q.get("fieldManager"):
            md["managedFields"] = [{"manager": manager or q.get("fieldManager"), "operation": "Update",
                                    "apiVersion": res.gv, "time": md["creationTimestamp"],
                                    "fieldsType": "FieldsV1", "fieldsV1": fields_v1({k: v for k, v in obj.items()
                                                                                      if k not in ("apiVersion", "kind")})}]
        self.normalize(res, obj)
        self.store.bucket(res)[(ns or "", md["name"])] = obj
        self.controllers.kick()
        return obj

    def write(self, res, ns, name, new, old, sub=None):
        """Common path of update/patch: immutable metadata, status
        subresource rules, generation, finalizer-driven removal."""
        md, omd = new.setdefault("metadata", {}), old["metadata"]
        for k in ("uid", "creationTimestamp", "namespace", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if k in omd:
                md[k] = omd[k]
            else:
                md.pop(k, None)
        md["name"] = name
        if "status" in res.flags:
            if sub == "status":
                # /status writes change only status (and metadata)
                new = dict(old, status=new.get("status"), metadata=md)
            else:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
        elif sub == "scale":
            pass
        strip = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status")}  # noqa: E731
        md["generation"] = omd.get("generation", 1) + (1 if strip(new) != strip(old) else 0)
        md["resourceVersion"] = self.store.next_rv()
        self.normalize(res, new, old)
        if md.get("deletionTimestamp") and not md.get("finalizers"):
            self.remove(res, ns, name)
            return new, True
        self.store.bucket(res)[(ns or "", name)] = new
        self.controllers.kick()
        return new, False

    def update(self, res, ns, name, obj, sub, q):
        old = self.store.get(res, ns, name)
        if old is None:
            # PUT creates when the kind allows create-on-update (Secrets,
            # ConfigMaps do not); answer 404 as the apiserver does.
            raise not_found(res, name)
        rv = obj.get("metadata", {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            # optimistic concurrency [3] "Concurrency Control and Consistency"
            gr = res.plural + ("." + res.group if res.group else "")
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {gr} "{name}": the object has been '
                                            "modified; please apply your changes to the latest version and try again")
        if sub == "scale":
            new = copy.deepcopy(old)
            new.setdefault("spec", {})["replicas"] = obj.get("spec", {}).get("replicas")
            obj = new
        new, _ = self.write(res, ns, name, copy.deepcopy(obj), old, sub)
        return new, 200

    def patch(self, res, ns, name, sub, ctype, body, q):
        ctype = ctype.split(";")[0].strip()
        old = self.store.get(res, ns, name)
        if ctype == "application/apply-patch+yaml":
            # Server-side apply [2]: fieldManager is required; create if
            # absent; force=true takes over conflicting fields.
            manager = q.get("fieldManager")
            if not manager:
                raise ApiError(400, "BadRequest", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: "
                                                  "Required value: is required for apply patch")
            applied = yaml.safe_load(body) or {}
            if applied.get("kind") not in (None, res.kind) or applied.get("apiVersion") not in (None, res.gv):
                raise ApiError(400, "BadRequest", "apply: kind/apiVersion of the body do not match the request")
            amd = applied.get("metadata", {})
            if amd.get("name") not in (None, name):
                raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
            key = (res.group, res.plural, ns or "", name, manager)
            if old is None:
                created = self.create(res, ns, copy.deepcopy(applied), q, manager=manager)
                created["metadata"]["managedFields"][0]["operation"] = "Apply"
                self.store.applied[key] = copy.deepcopy(applied)
                return created, 201
            new = copy.deepcopy(old)
            remove_unapplied(new, self.store.applied.get(key), applied)
            merge_applied(new, {k: v for k, v in applied.items() if k not in ("status",) or sub == "status"})
            if res.kind == "Secret" and "stringData" in applied:
                # applied stringData replaces the same keys of data
                for k in applied["stringData"]:
                    new.get("data", {}).pop(k, None)
            new["metadata"]["managedFields"] = [
                mf for mf in new["metadata"].get("managedFields", []) if mf["manager"] != manager
            ] + [{"manager": manager, "operation": "Apply", "apiVersion": res.gv, "time": now_rfc3339(),
                  "fieldsType": "FieldsV1", "fieldsV1": fields_v1({k: v for k, v in applied.items()
                                                                   if k not in ("apiVersion", "kind")})}]
            self.store.applied[key] = copy.deepcopy(applied)
            obj, _ = self.write(res, ns, name, new, old, sub)
            return obj, 200
        if old is None:
            raise not_found(res, name)
        if sub == "scale":
            target = self.scale_json(res, old)
        else:
            target = copy.deepcopy(old)
        patch = json.loads(body)
        if ctype == "application/merge-patch+json":
            new = json_merge_patch(target, patch)
        elif ctype == "application/strategic-merge-patch+json":
            if res.custom:
                # [2] / apiextensions: SMP is not defined for custom resources
                raise ApiError(415, "UnsupportedMediaType",
                               "the body of the request was in an unknown format - accepted media types include: "
                               "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
            new = strategic_merge_patch(target, patch)
        elif ctype == "application/json-patch+json":
            new = json_patch(target, patch)
        else:
            raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {ctype}")
        if sub == "scale":
            replicas = new.get("spec", {}).get("replicas")
            new = copy.deepcopy(old)
            new.setdefault("spec", {})["replicas"] = replicas
        rv = (new.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        obj, _ = self.write(res, ns, name, new, old, sub)
        return obj, 200

    def delete(self, res, ns, name, opts):
        """Graceful deletion with finalizers [11]: an object with finalizers
        gets deletionTimestamp and stays until they are removed; an object
        without is removed, and its dependents are collected."""
        obj = self.store.get(res, ns, name)
        if obj is None:
            raise not_found(res, name)
        precond = (opts.get("preconditions") or {})
        if precond.get("uid") and precond["uid"] != obj["metadata"]["uid"]:
            raise ApiError(409, "Conflict", "Precondition failed: UID in precondition does not match")
        md = obj["metadata"]
        policy = opts.get("propagationPolicy") or "Background"
        if policy == "Foreground" and "foregroundDeletion" not in md.get("finalizers", []):
            md.setdefault("finalizers", []).append("foregroundDeletion")
        if res.kind == "Namespace":
            # namespace controller: empties the namespace, then removes it
            md.setdefault("finalizers", [])
        if md.get("finalizers") or (res.kind == "Namespace"):
            if not md.get("deletionTimestamp"):
                md["deletionTimestamp"] = now_rfc3339()
                md["deletionGracePeriodSeconds"] = 0
                md["resourceVersion"] = self.store.next_rv()
                if res.kind == "Namespace":
                    obj["status"]["phase"] = "Terminating"
            self.controllers.kick()
            return obj, False
        self.remove(res, ns, name)
        return obj, True

    def remove(self, res, ns, name):
        obj = self.store.bucket(res).pop((ns or "", name), None)
        for key in [k for k in self.store.applied if k[:4] == (res.group, res.plural, ns or "", name)]:
            del self.store.applied[key]
        self.store.rv += 1
        if obj is not None:
            log(f"mgmt-api: removed {res.kind} {ns + '/' if ns else ''}{name}")
        self.controllers.kick()
        return obj

    # ---- helpers for the controllers ------------------------------------------
    def res(self, group, plural):
        return self.store.kinds.get((group, plural))

    def objects(self, group, plural, ns=None, selector=None):
        r = self.res(group, plural)
        return [] if r is None else self.store.list(r, ns, selector)

    def set_status(self, group, plural, obj, status):
        if obj.get("status") != status:
            obj["status"] = status
            obj["metadata"]["resourceVersion"] = self.store.next_rv()

    def sys_create(self, group, plural, ns, obj):
        return self.create(self.res(group, plural), ns, obj, {}, manager=self.controllers.manager_for(group))

    def sys_delete(self, group, plural, ns, name):
        try:
            self.delete(self.res(group, plural), ns, name, {})
        except ApiError:
            pass

    def owner_ref(self, res_group, plural, obj, controller=True):
        r = self.res(res_group, plural)
        return {"apiVersion": r.gv, "kind": r.kind, "name": obj["metadata"]["name"],
                "uid": obj["metadata"]["uid"], "controller": controller, "blockOwnerDeletion": True}


# --------------------------------------------------------------------------
# The controllers: Cluster API core + kubeadm control plane + CAPO + the
# azimuth addon provider, reduced to the state transitions the driver reads
# (driver.py update_cluster_status and its helpers, capi_monitor.py) [7][8][9].
# --------------------------------------------------------------------------
CAPI = "cluster.x-k8s.io"
KCPG = "controlplane.cluster.x-k8s.io"
INFRA = "infrastructure.cluster.x-k8s.io"
ADDONS = "addons.stackhpc.com"

# Finalizers the real controllers add ([7] api/v1beta1 *_types.go, [8]).
FINALIZERS = {
    (CAPI, "clusters"): "cluster.cluster.x-k8s.io",
    (CAPI, "machinedeployments"): "cluster.x-k8s.io/machinedeployment",
    (CAPI, "machines"): "machine.cluster.x-k8s.io",
    (KCPG, "kubeadmcontrolplanes"): "kubeadm.controlplane.cluster.x-k8s.io",
    (INFRA, "openstackclusters"): "openstackcluster.infrastructure.cluster.x-k8s.io",
    (ADDONS, "helmreleases"): "addons.stackhpc.com/finalizer",
    (ADDONS, "manifests"): "addons.stackhpc.com/finalizer",
}


def cond(type_, status=True, reason=None, severity=None):
    """A CAPI v1beta1 Condition (api/v1beta1/condition_types.go): True
    conditions carry no reason/severity."""
    c = {"type": type_, "status": "True" if status else "False", "lastTransitionTime": now_rfc3339()}
    if not status:
        c["reason"] = reason or "Waiting"
        c["severity"] = severity or "Info"
    return c


def conds(*pairs):
    return [cond(t, ok, r) for t, ok, r in pairs]


class Controllers:
    def __init__(self, app):
        self.app = app
        self.delay = app.args.delay
        self.event = threading.Event()
        self.seen = {}           # uid -> monotonic time the controller first saw it
        self.marks = {}          # (uid, mark) -> time a phase was reached
        self.workloads = {}      # (ns, cluster) -> WorkloadAPI
        lo, hi = (int(x) for x in app.args.workload_ports.split("-"))
        self.free_ports = list(range(lo, hi + 1))

    @staticmethod
    def manager_for(group):
        return {CAPI: "manager", KCPG: "manager", INFRA: "capo-controller-manager",
                ADDONS: "cluster-api-addon-provider"}.get(group, "kube-controller-manager")

    def kick(self):
        self.event.set()

    def run(self):
        while True:
            self.event.wait(0.25)
            self.event.clear()
            try:
                with self.app.store.lock:
                    self.reconcile()
            except Exception:  # noqa: BLE001 - a controller crash must not stop the server
                traceback.print_exc()

    def age(self, obj, mark=None):
        """Seconds since the controller first saw obj (or reached mark)."""
        key = (obj["metadata"]["uid"], mark)
        t = self.marks.setdefault(key, time.monotonic())
        return time.monotonic() - t

    def reached(self, obj, mark, after):
        return self.age(obj, mark) >= after

    def reconcile(self):
        app = self.app
        self.add_finalizers()
        for cl in app.objects(CAPI, "clusters"):
            self.reconcile_cluster(cl)
        for md in app.objects(CAPI, "machinedeployments"):
            if md["metadata"].get("deletionTimestamp"):
                self.finish_delete(CAPI, "machinedeployments", md, children=self.machines_of(md))
        for kcp in app.objects(KCPG, "kubeadmcontrolplanes"):
            if kcp["metadata"].get("deletionTimestamp"):
                self.finish_delete(KCPG, "kubeadmcontrolplanes", kcp, children=self.machines_of(kcp))
        for m in app.objects(CAPI, "machines"):
            if m["metadata"].get("deletionTimestamp") and self.reached(m, "deleting", self.delay):
                self.drop_finalizer(CAPI, "machines", m)
        for g, p in ((INFRA, "openstackclusters"), (ADDONS, "helmreleases"), (ADDONS, "manifests")):
            for o in app.objects(g, p):
                if not o["metadata"].get("deletionTimestamp"):
                    continue
                if p == "openstackclusters" and app.objects(
                        CAPI, "machines", o["metadata"]["namespace"],
                        f"{CLUSTER_NAME_LABEL}={o['metadata'].get('labels', {}).get(CLUSTER_NAME_LABEL, '')}"):
                    # CAPO's reconcileDelete keeps the network and load
                    # balancer while the cluster's machines (ports) exist
                    continue
                if self.reached(o, "deleting", self.delay):
                    self.drop_finalizer(g, p, o)
        self.reconcile_addons()
        self.collect_garbage()
        self.reconcile_namespaces()

    def add_finalizers(self):
        for (g, p), fin in FINALIZERS.items():
            for o in self.app.objects(g, p):
                md = o["metadata"]
                if not md.get("deletionTimestamp") and fin not in md.get("finalizers", []):
                    md.setdefault("finalizers", []).append(fin)
                    md["resourceVersion"] = self.app.store.next_rv()

    def drop_finalizer(self, g, p, o):
        md = o["metadata"]
        fin = FINALIZERS.get((g, p))
        md["finalizers"] = [f for f in md.get("finalizers", []) if f != fin]
        md["resourceVersion"] = self.app.store.next_rv()
        if not md["finalizers"]:
            self.app.remove(self.app.res(g, p), md.get("namespace"), md["name"])

    def finish_delete(self, g, p, o, children):
        # MachineDeployment/KCP deletion: delete the machines, wait for them.
        for m in children:
            self.app.sys_delete(CAPI, "machines", m["metadata"]["namespace"], m["metadata"]["name"])
        if not children and self.reached(o, "deleting", self.delay):
            self.drop_finalizer(g, p, o)

    def machines_of(self, owner):
        uid = owner["metadata"]["uid"]
        return [m for m in self.app.objects(CAPI, "machines", owner["metadata"]["namespace"])
                if any(r.get("uid") == uid for r in m["metadata"].get("ownerReferences", []))]

    def ref(self, ns, ref, group, plural):
        if not ref:
            return None
        r = self.app.res(group, plural)
        return None if r is None else self.app.store.get(r, ns, ref.get("name"))

    # ---- Cluster ------------------------------------------------------------
    def reconcile_cluster(self, cl):
        app, d = self.app, self.delay
        md, spec = cl["metadata"], cl.setdefault("spec", {})
        ns, name = md["namespace"], md["name"]
        infra = self.ref(ns, spec.get("infrastructureRef"), INFRA, "openstackclusters")
        kcp = self.ref(ns, spec.get("controlPlaneRef"), KCPG, "kubeadmcontrolplanes")
        mds = [x for x in app.objects(CAPI, "machinedeployments", ns) if x.get("spec", {}).get("clusterName") == name]
        addons = [a for g, p in ((ADDONS, "helmreleases"), (ADDONS, "manifests"))
                  for a in app.objects(g, p, ns) if a.get("spec", {}).get("clusterName") == name]

        if md.get("deletionTimestamp"):
            # cluster controller reconcileDelete: delete descendants (machine
            # deployments, control plane, infrastructure), wait until gone,
            # then drop the finalizer [7].
            self.set_phase(cl, "Deleting")
            desc = [(CAPI, "machinedeployments", x) for x in mds]
            desc += [(CAPI, "machines", m) for m in app.objects(CAPI, "machines", ns, f"{CLUSTER_NAME_LABEL}={name}")]
            if kcp:
                desc.append((KCPG, "kubeadmcontrolplanes", kcp))
            if infra and not mds and not kcp:
                desc.append((INFRA, "openstackclusters", infra))
            for g, p, o in desc:
                if not o["metadata"].get("deletionTimestamp"):
                    app.sys_delete(g, p, ns, o["metadata"]["name"])
            if not desc and not infra:
                self.stop_workload(ns, name)
                self.drop_finalizer(CAPI, "clusters", cl)
            return

        # owner references the CAPI controllers set (cluster owns its
        # infra cluster and control plane; machine deployments too)
        for g, p, o in [(INFRA, "openstackclusters", infra), (KCPG, "kubeadmcontrolplanes", kcp)] + \
                [(CAPI, "machinedeployments", x) for x in mds]:
            if o is not None and not any(r.get("uid") == md["uid"] for r in o["metadata"].get("ownerReferences", [])):
                o["metadata"].setdefault("ownerReferences", []).append(app.owner_ref(CAPI, "clusters", cl, controller=False))
                o["metadata"].setdefault("labels", {})[CLUSTER_NAME_LABEL] = name

        # CAPO: network, router, load balancer, then the endpoint [8]
        infra_ready = False
        if infra is not None and not infra["metadata"].get("deletionTimestamp"):
            ispec = infra.setdefault("spec", {})
            if self.reached(infra, "created", d):
                if not ispec.get("controlPlaneEndpoint"):
                    ispec["controlPlaneEndpoint"] = {"host": self.app.args.workload_host,
                                                     "port": self.alloc_port(ns, name)}
                ep = ispec["controlPlaneEndpoint"]
                app.set_status(INFRA, "openstackclusters", infra, {
                    "ready": True,
                    "network": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, md["uid"] + "net")), "name": f"k8s-clusterapi-cluster-{ns}-{name}"},
                    "router": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, md["uid"] + "router")), "name": f"k8s-clusterapi-cluster-{ns}-{name}"},
                    "apiServerLoadBalancer": {"name": f"k8s-clusterapi-cluster-{ns}-{name}-kubeapi",
                                              "id": str(uuid.uuid5(uuid.NAMESPACE_URL, md["uid"] + "lb")),
                                              "ip": ep["host"], "internalIP": "10.0.0.10"},
                    "failureDomains": {"nova": {"controlPlane": True}},
                    "conditions": conds(("Ready", True, None)),
                })
                infra_ready = True
                if spec.get("controlPlaneEndpoint") != ep:
                    # the cluster controller copies the infra endpoint to
                    # Cluster.spec.controlPlaneEndpoint [7]; the driver turns
                    # it into api_address (driver.py _update_cluster_api_address)
                    spec["controlPlaneEndpoint"] = dict(ep)
                    md["resourceVersion"] = app.store.next_rv()
            else:
                app.set_status(INFRA, "openstackclusters", infra, {"ready": False,
                               "conditions": conds(("Ready", False, "NetworkReconciling"))})

        # KCP: machines, certificates, kubeconfig, then Ready [7]
        cp_ready, cp_init = False, False
        if kcp is not None and not kcp["metadata"].get("deletionTimestamp"):
            cp_ready, cp_init = self.reconcile_kcp(cl, kcp, infra_ready)

        # machine deployments once the control plane is initialized
        for x in mds:
            if not x["metadata"].get("deletionTimestamp"):
                self.reconcile_md(cl, x, cp_init)

        ready = infra_ready and cp_ready
        # Cluster.status: v1beta1 fields and conditions the driver checks:
        # InfrastructureReady, ControlPlaneReady, Ready all True
        # (driver.py _update_status_updating); capi_monitor.py _poll_cluster
        # wants every condition True.
        status = {
            "phase": "Provisioned" if infra_ready and spec.get("controlPlaneEndpoint") else
                     ("Provisioning" if infra is not None else "Pending"),
            "infrastructureReady": infra_ready,
            "controlPlaneReady": cp_ready,
            "observedGeneration": md.get("generation", 1),
            "conditions": conds(("Ready", ready, "WaitingForControlPlane" if infra_ready else "WaitingForInfrastructure"),
                                ("ControlPlaneInitialized", cp_init, "WaitingForControlPlaneProviderInitialized"),
                                ("ControlPlaneReady", cp_ready, "WaitingForControlPlane"),
                                ("InfrastructureReady", infra_ready, "WaitingForInfrastructure")),
        }
        if infra_ready:
            status["failureDomains"] = {"nova": {"controlPlane": True}}
        self.keep_transition_times(cl, status)
        app.set_status(CAPI, "clusters", cl, status)
        for a in addons:
            self.mark_addon(a, ready)

    def set_phase(self, cl, phase):
        st = dict(cl.get("status") or {})
        if st.get("phase") != phase:
            st["phase"] = phase
            self.app.set_status(CAPI, "clusters", cl, st)

    @staticmethod
    def keep_transition_times(obj, status):
        old = {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}
        for c in status.get("conditions", []):
            o = old.get(c["type"])
            if o and o["status"] == c["status"]:
                c["lastTransitionTime"] = o["lastTransitionTime"]

    def reconcile_kcp(self, cl, kcp, infra_ready):
        app, d = self.app, self.delay
        ns, name = cl["metadata"]["namespace"], cl["metadata"]["name"]
        spec = kcp.get("spec", {})
        want = spec.get("replicas", 1)
        version = spec.get("version")
        machines = self.machines_of(kcp)
        initialized = ready = False
        if infra_ready and self.reached(kcp, "infra-ready", d):
            self.ensure_certificates(cl, kcp)
            self.scale_machines(cl, kcp, machines, want, version, control_plane=True)
            machines = self.machines_of(kcp)
            initialized = True
            self.ensure_workload(cl)
        running = [m for m in machines if m.get("status", {}).get("phase") == "Running"
                   and m["spec"].get("version") == version and not m["metadata"].get("deletionTimestamp")]
        updated = [m for m in machines if m["spec"].get("version") == version and not m["metadata"].get("deletionTimestamp")]
        all_ready = initialized and len(running) == want and len(machines) == want
        ready = all_ready
        # KCP status: replicas == updatedReplicas == readyReplicas ==
        # spec.replicas and the conditions of [capi_helm]
        # k8s_control_plane_resource_conditions (MachinesReady, Ready,
        # EtcdClusterHealthy, ControlPlaneComponentsHealthy) True
        # (driver.py _update_control_plane_nodegroup_status); status.version
        # becomes the cluster's coe_version.
        st = {
            "selector": f"{CLUSTER_NAME_LABEL}={name},cluster.x-k8s.io/control-plane",
            "replicas": len(machines), "updatedReplicas": len(updated), "readyReplicas": len(running),
            "unavailableReplicas": len(machines) - len(running),
            "initialized": initialized, "ready": ready,
            "observedGeneration": kcp["metadata"].get("generation", 1),
            "conditions": conds(("Ready", ready, "ScalingUp"),
                                ("Available", initialized, "WaitingForKubeadmInit"),
                                ("CertificatesAvailable", initialized, "WaitingForInfrastructure"),
                                ("ControlPlaneComponentsHealthy", all_ready, "ControlPlaneComponentsInspectionFailed"),
                                ("EtcdClusterHealthy", all_ready, "EtcdClusterInspectionFailed"),
                                ("MachinesCreated", initialized, "WaitingForInfrastructure"),
                                ("MachinesReady", all_ready, "WaitingForMachines"),
                                ("MachinesSpecUpToDate", len(updated) == len(machines), "RollingUpdateInProgress"),
                                ("Resized", len(machines) == want, "ScalingUp")),
        }
        if initialized:
            st["version"] = version if ready else (machines[0]["spec"].get("version") if machines else version)
        self.keep_transition_times(kcp, st)
        app.set_status(KCPG, "kubeadmcontrolplanes", kcp, st)
        return ready, initialized

    def reconcile_md(self, cl, mdp, cp_init):
        app = self.app
        spec = mdp.get("spec", {})
        ann = mdp["metadata"].get("annotations") or {}
        # The chart omits replicas when autoscaling; the autoscaler then
        # keeps at least min-size (cluster-autoscaler clusterapi provider).
        want = spec.get("replicas")
        if want is None:
            want = int(ann.get("cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size", "1"))
        version = spec.get("template", {}).get("spec", {}).get("version")
        machines = self.machines_of(mdp)
        if cp_init and self.reached(mdp, "cp-initialized", self.delay):
            self.scale_machines(cl, mdp, machines, want, version, control_plane=False)
            machines = self.machines_of(mdp)
        live = [m for m in machines if not m["metadata"].get("deletionTimestamp")]
        running = [m for m in live if m.get("status", {}).get("phase") == "Running"]
        updated = [m for m in live if m["spec"].get("version") == version]
        if not machines:
            phase = "ScalingUp" if cp_init else "Pending"
        elif len(live) > want:
            phase = "ScalingDown"
        elif len(running) < want:
            phase = "ScalingUp"
        else:
            phase = "Running"
        # MachineDeployment.status.phase Running is what the driver reads
        # as the node group ready (driver.py _update_worker_nodegroup_status)
        st = {
            "selector": f"{CLUSTER_NAME_LABEL}={cl['metadata']['name']},"
                        f"cluster.x-k8s.io/deployment-name={mdp['metadata']['name']}",
            "replicas": len(live), "updatedReplicas": len(updated), "readyReplicas": len(running),
            "availableReplicas": len(running), "unavailableReplicas": max(0, want - len(running)),
            "phase": phase, "observedGeneration": mdp["metadata"].get("generation", 1),
            "conditions": conds(("Ready", phase == "Running", "WaitingForAvailableMachines"),
                                ("Available", phase == "Running", "WaitingForAvailableMachines"),
                                ("MachineSetReady", phase == "Running", "WaitingForAvailableMachines")),
        }
        self.keep_transition_times(mdp, st)
        app.set_status(CAPI, "machinedeployments", mdp, st)

    def scale_machines(self, cl, owner, machines, want, version, control_plane):
        """Create/delete Machines towards want, one step per delay; a new
        machine turns Running after the delay (CAPO server ACTIVE, node
        joined). Labels follow CAPI: cluster-name, control-plane or
        deployment-name, plus the MachineDeployment template's labels (the
        chart's capi.stackhpc.com/* labels, which the driver lists machines
        by: driver.py _nodegroup_machines_exist)."""
        app, d = self.app, self.delay
        ns, cname = cl["metadata"]["namespace"], cl["metadata"]["name"]
        oname = owner["metadata"]["name"]
        live = [m for m in machines if not m["metadata"].get("deletionTimestamp")]
        # rolling update: replace machines whose version differs
        stale = [m for m in live if m["spec"].get("version") != version]
        if len(live) < want or (stale and len(live) == want):
            if self.reached(owner, f"scale-{len(live)}-{len(stale)}", 0 if not live else d):
                if control_plane:
                    labels = {CLUSTER_NAME_LABEL: cname, "cluster.x-k8s.io/control-plane": "",
                              "cluster.x-k8s.io/control-plane-name": oname}
                    mname = f"{oname}-{rand_suffix()}"
                    gp = (KCPG, "kubeadmcontrolplanes")
                else:
                    labels = dict((owner["spec"].get("template", {}).get("metadata") or {}).get("labels") or {})
                    labels.update({CLUSTER_NAME_LABEL: cname, "cluster.x-k8s.io/deployment-name": oname,
                                   "cluster.x-k8s.io/set-name": f"{oname}-{owner['metadata']['uid'][:5]}"})
                    mname = f"{oname}-{owner['metadata']['uid'][:5]}-{rand_suffix()}"
                    gp = (CAPI, "machinedeployments")
                app.sys_create(CAPI, "machines", ns, {
                    "metadata": {"name": mname, "labels": labels,
                                 "ownerReferences": [app.owner_ref(gp[0], gp[1], owner)]},
                    "spec": {"clusterName": cname, "version": version,
                             "bootstrap": {"dataSecretName": mname},
                             "infrastructureRef": {"apiVersion": app.res(INFRA, "openstackclusters").gv,
                                                   "kind": "OpenStackMachine", "name": mname},
                             "providerID": f"openstack:///{uuid.uuid4()}", "failureDomain": "nova"}})
        elif len(live) > want or stale:
            victim = (stale or live)[0]
            if self.reached(owner, f"scaledown-{len(live)}", d):
                app.sys_delete(CAPI, "machines", ns, victim["metadata"]["name"])
        for m in self.machines_of(owner):
            if m["metadata"].get("deletionTimestamp"):
                continue
            running = self.reached(m, "created", d)
            st = {"phase": "Running" if running else "Provisioning",
                  "bootstrapReady": True, "infrastructureReady": running,
                  "observedGeneration": m["metadata"].get("generation", 1),
                  "addresses": [{"type": "InternalIP", "address": "10.0.0.%d" % (10 + abs(hash(m["metadata"]["name"])) % 200)}],
                  "conditions": conds(("Ready", running, "WaitingForInfrastructure"),
                                      ("BootstrapReady", True, None),
                                      ("InfrastructureReady", running, "InstanceCreating"),
                                      ("NodeHealthy", running, "WaitingForNodeRef"))}
            if running:
                st["nodeRef"] = {"apiVersion": "v1", "kind": "Node", "name": m["metadata"]["name"]}
                st["nodeInfo"] = {"kubeletVersion": m["spec"].get("version"), "osImage": "Ubuntu 22.04.5 LTS",
                                  "architecture": "amd64", "operatingSystem": "linux"}
            self.keep_transition_times(m, st)
            app.set_status(CAPI, "machines", m, st)

    def ensure_certificates(self, cl, kcp):
        """KCP's certificates: it uses `<cluster>-ca`, `-etcd`, `-proxy`,
        `-sa` if present (the driver writes them from magnum's CA, driver.py
        _ensure_certificate_secrets) and generates the missing ones, owned
        by the KCP (util/secret/certificates.go LookupOrGenerate) [7]."""
        app = self.app
        ns, name = cl["metadata"]["namespace"], cl["metadata"]["name"]
        sres = app.by_path[("v1", "secrets")]
        for purpose in ("ca", "etcd", "proxy", "sa"):
            sname = f"{name}-{purpose}"
            if app.store.get(sres, ns, sname) is None:
                crt, key = make_ca(f"{name}-{purpose}" if purpose != "ca" else "kubernetes")
                app.create(sres, ns, {"metadata": {"name": sname, "labels": {CLUSTER_NAME_LABEL: name},
                                                   "ownerReferences": [app.owner_ref(KCPG, "kubeadmcontrolplanes", kcp)]},
                                      "type": "cluster.x-k8s.io/secret",
                                      "data": {"tls.crt": base64.b64encode(crt).decode(),
                                               "tls.key": base64.b64encode(key).decode()}}, {}, manager="manager")

    def cluster_ca(self, ns, name):
        sres = self.app.by_path[("v1", "secrets")]
        s = self.app.store.get(sres, ns, f"{name}-ca")
        if s is None:
            return None, None
        return base64.b64decode(s["data"]["tls.crt"]), base64.b64decode(s["data"]["tls.key"])

    def alloc_port(self, ns, name):
        if not self.free_ports:
            raise ApiError(500, "InternalError", "no free workload port")
        return self.free_ports.pop(0)

    def ensure_workload(self, cl):
        """Start the workload cluster's API at the endpoint, and write
        `<cluster>-kubeconfig` as KCP does (util/kubeconfig: data key
        "value", type cluster.x-k8s.io/secret, label cluster-name, owned by
        the KCP) [7]."""
        app = self.app
        ns, name = cl["metadata"]["namespace"], cl["metadata"]["name"]
        ep = cl["spec"].get("controlPlaneEndpoint")
        if not ep or (ns, name) in self.workloads:
            return
        ca_crt, ca_key = self.cluster_ca(ns, name)
        if ca_crt is None:
            return
        wl = WorkloadAPI(app, ns, name, ep["host"], int(ep["port"]), ca_crt, ca_key)
        wl.start()
        self.workloads[(ns, name)] = wl
        sres = app.by_path[("v1", "secrets")]
        kname = f"{name}-kubeconfig"
        if app.store.get(sres, ns, kname) is None:
            crt, key = issue_cert(ca_crt, ca_key, "kubernetes-admin", orgs=["system:masters"], client=True)
            kubeconfig = {
                "apiVersion": "v1", "kind": "Config",
                "clusters": [{"name": name, "cluster": {"server": f"https://{ep['host']}:{ep['port']}",
                                                        "certificate-authority-data": base64.b64encode(ca_crt).decode()}}],
                "contexts": [{"name": f"{name}-admin@{name}", "context": {"cluster": name, "user": f"{name}-admin"}}],
                "current-context": f"{name}-admin@{name}",
                "users": [{"name": f"{name}-admin", "user": {"client-certificate-data": base64.b64encode(crt).decode(),
                                                              "client-key-data": base64.b64encode(key).decode()}}],
                "preferences": {},
            }
            kcp = self.ref(ns, cl["spec"].get("controlPlaneRef"), KCPG, "kubeadmcontrolplanes")
            app.create(sres, ns, {"metadata": {"name": kname, "labels": {CLUSTER_NAME_LABEL: name},
                                               "ownerReferences": [app.owner_ref(KCPG, "kubeadmcontrolplanes", kcp)]},
                                  "type": "cluster.x-k8s.io/secret",
                                  "data": {"value": base64.b64encode(yaml.safe_dump(kubeconfig).encode()).decode()}},
                       {}, manager="manager")

    def stop_workload(self, ns, name):
        wl = self.workloads.pop((ns, name), None)
        if wl:
            wl.stop()
            self.free_ports.append(wl.port)

    def nodes_for(self, ns, name):
        """One Node per Running machine of the cluster (its nodeRef)."""
        out = []
        for m in self.app.objects(CAPI, "machines", ns, f"{CLUSTER_NAME_LABEL}={name}"):
            st = m.get("status", {})
            if st.get("phase") != "Running" or m["metadata"].get("deletionTimestamp"):
                continue
            cp = "cluster.x-k8s.io/control-plane" in m["metadata"].get("labels", {})
            labels = {"kubernetes.io/hostname": m["metadata"]["name"], "kubernetes.io/os": "linux",
                      "kubernetes.io/arch": "amd64", "topology.kubernetes.io/zone": "nova"}
            if cp:
                labels["node-role.kubernetes.io/control-plane"] = ""
            out.append({
                "metadata": {"name": m["metadata"]["name"], "uid": m["metadata"]["uid"], "labels": labels,
                             "creationTimestamp": m["metadata"]["creationTimestamp"]},
                "spec": {"providerID": m["spec"].get("providerID"), "podCIDR": "172.16.0.0/24",
                         **({"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]} if cp else {})},
                "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                           "message": "kubelet is posting ready status",
                                           "lastHeartbeatTime": now_rfc3339(),
                                           "lastTransitionTime": m["metadata"]["creationTimestamp"]}],
                           "addresses": st.get("addresses", []) + [{"type": "Hostname", "address": m["metadata"]["name"]}],
                           "nodeInfo": dict(st.get("nodeInfo") or {}, containerRuntimeVersion="containerd://1.7.24",
                                            kubeProxyVersion=m["spec"].get("version"))},
            })
        return out

    # ---- addons (azimuth cluster-api-addon-provider) ------------------------------
    def mark_addon(self, a, cluster_ready):
        """HelmRelease/Manifests: Deployed once the target cluster is
        ready; the driver waits for every addon labelled
        addons.stackhpc.com/cluster=<release> to be Deployed (Failed/Unknown
        fail the create) (driver.py _update_status_updating)."""
        if a["metadata"].get("deletionTimestamp"):
            return
        g, p = (ADDONS, "helmreleases" if a["kind"] == "HelmRelease" else "manifests")
        if not cluster_ready:
            phase = "Pending"
        elif self.reached(a, "cluster-ready", self.delay):
            phase = self.app.args.addon_phase
        else:
            phase = "Installing"
        st = {"phase": phase}
        if phase in ("Deployed", "Failed"):
            st["revision"] = 1
            if phase == "Failed":
                st["failureMessage"] = "test: addon install failed (--addon-phase Failed)"
        self.app.set_status(g, p, a, st)

    def reconcile_addons(self):
        pass

    # ---- garbage collection and namespaces [11] ---------------------------------
    def collect_garbage(self):
        app = self.app
        uids = {o["metadata"]["uid"] for _, o in app.store.all_objects()}
        for key, o in list(app.store.all_objects()):
            refs = o["metadata"].get("ownerReferences") or []
            if refs and not any(r.get("uid") in uids for r in refs) and not o["metadata"].get("deletionTimestamp"):
                r = app.store.kinds[key]
                app.delete(r, o["metadata"].get("namespace"), o["metadata"]["name"], {})
        # foregroundDeletion: dropped once no dependents remain
        for key, o in list(app.store.all_objects()):
            md = o["metadata"]
            if md.get("deletionTimestamp") and "foregroundDeletion" in md.get("finalizers", []):
                if not any(r.get("uid") == md["uid"] for _, x in app.store.all_objects()
                           for r in x["metadata"].get("ownerReferences") or []):
                    md["finalizers"].remove("foregroundDeletion")
                    if not md["finalizers"]:
                        app.remove(app.store.kinds[key], md.get("namespace"), md["name"])

    def reconcile_namespaces(self):
        app = self.app
        nsres = app.by_path[("v1", "namespaces")]
        for nso in list(app.store.list(nsres)):
            if not nso["metadata"].get("deletionTimestamp"):
                continue
            ns = nso["metadata"]["name"]
            left = [(key, o) for key, o in app.store.all_objects() if o["metadata"].get("namespace") == ns]
            for key, o in left:
                if not o["metadata"].get("deletionTimestamp"):
                    app.delete(app.store.kinds[key], ns, o["metadata"]["name"], {})
            if not left:
                app.remove(nsres, None, ns)


# --------------------------------------------------------------------------
# A workload cluster's API.
# --------------------------------------------------------------------------
class WorkloadHandler(BaseHandler):
    def _dispatch(self):
        wl = self.server.app
        t0 = time.monotonic()
        self._code = 0
        cert = self.connection.getpeercert()
        who = None
        if cert:
            subj = dict(x[0] for x in cert.get("subject", ()))
            who = "x509:" + subj.get("commonName", "?")
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        try:
            if self.command != "GET":
                raise ApiError(405, "MethodNotAllowed", "this test workload API is read-only")
            if path == "/version":
                # system:public-info-viewer: /version, /healthz for anyone
                v = wl.version()
                self.send_json(200, {"major": "1", "minor": v.split(".")[1] if "." in v else "0",
                                     "gitVersion": "v" + v.lstrip("v"), "platform": "linux/amd64"})
            elif path in ("/healthz", "/readyz", "/livez"):
                self.send_json(200, {"status": "ok"})
            elif who is None:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            elif path == "/api":
                self.send_json(200, {"kind": "APIVersions", "versions": ["v1"]})
            elif path == "/apis":
                self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
            elif path == "/api/v1":
                self.send_json(200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                    {"name": "nodes", "singularName": "node", "namespaced": False, "kind": "Node",
                     "verbs": ["get", "list"], "shortNames": ["no"]},
                    {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
                     "verbs": ["get", "list"], "shortNames": ["ns"]}]})
            elif path == "/api/v1/nodes":
                self.send_json(200, {"kind": "NodeList", "apiVersion": "v1",
                                     "metadata": {"resourceVersion": "1"}, "items": wl.nodes()})
            elif path.startswith("/api/v1/nodes/"):
                n = [x for x in wl.nodes() if x["metadata"]["name"] == path.rsplit("/", 1)[1]]
                if not n:
                    raise ApiError(404, "NotFound", f'nodes "{path.rsplit("/", 1)[1]}" not found')
                self.send_json(200, dict(n[0], kind="Node", apiVersion="v1"))
            elif path == "/api/v1/namespaces":
                self.send_json(200, {"kind": "NamespaceList", "apiVersion": "v1", "metadata": {}, "items": [
                    {"metadata": {"name": n}, "status": {"phase": "Active"}}
                    for n in ("default", "kube-node-lease", "kube-public", "kube-system")]})
            else:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
        except ApiError as e:
            self.send_json(e.code, e.status())
        log(f"workload-api[{wl.ns}/{wl.cluster}:{wl.port}]: {self.command} {self.path} {self._code} "
            f"{who or 'anonymous'} {(time.monotonic() - t0) * 1000:.0f}ms")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


class WorkloadAPI:
    def __init__(self, mgmt, ns, cluster, host, port, ca_crt, ca_key):
        self.mgmt, self.ns, self.cluster, self.host, self.port = mgmt, ns, cluster, host, port
        self.name = f"workload-api[{ns}/{cluster}]"
        d = os.path.join(mgmt.args.state_dir, f"{ns}-{cluster}")
        os.makedirs(d, mode=0o700, exist_ok=True)
        crt, key = issue_cert(ca_crt, ca_key, "kube-apiserver",
                              server_sans=[host, "kubernetes", "kubernetes.default",
                                           "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
                                           "localhost", "127.0.0.1"])
        for fname, data in (("server.crt", crt), ("server.key", key), ("ca.crt", ca_crt)):
            with open(os.path.join(d, fname), "wb") as f:
                f.write(data)
        ctx = server_context(os.path.join(d, "server.crt"), os.path.join(d, "server.key"),
                             ca_file=os.path.join(d, "ca.crt"))
        self.server = TLSServer((host, port), WorkloadHandler, ctx, self)

    def version(self):
        with self.mgmt.store.lock:
            kcps = [k for k in self.mgmt.objects(KCPG, "kubeadmcontrolplanes", self.ns)
                    if k["metadata"].get("labels", {}).get(CLUSTER_NAME_LABEL) == self.cluster]
            return (kcps[0].get("status", {}).get("version") or kcps[0]["spec"].get("version", "v1.31.0")) if kcps else "v1.31.0"

    def nodes(self):
        with self.mgmt.store.lock:
            return self.mgmt.controllers.nodes_for(self.ns, self.cluster)

    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        log(f"{self.name}: serving https://{self.host}:{self.port}")

    def stop(self):
        threading.Thread(target=self.server.shutdown, daemon=True).start()
        self.server.server_close()
        log(f"{self.name}: stopped")


# --------------------------------------------------------------------------
# Plain HTTP side port: the chart repository and the debug view.
# --------------------------------------------------------------------------
def decode_release(secret):
    """helm's Secrets driver stores base64(gzip(json(release))) in
    data.release (pkg/storage/driver/util.go encodeRelease) [6]."""
    raw = base64.b64decode(base64.b64decode(secret["data"]["release"]))
    if raw[:3] == b"\x1f\x8b\x08":
        raw = gzip.decompress(raw)
    return json.loads(raw)


class SideHandler(BaseHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        app = self.server.app
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        self._code = 0
        try:
            if path.startswith("/charts/"):
                return self.serve_file(app.args.repo_dir, path[len("/charts/"):])
            with app.store.lock:
                if path == "/debug/releases":
                    # helm releases: Secrets labelled owner=helm [6]
                    out = []
                    for s in app.store.list(app.by_path[("v1", "secrets")], None, "owner=helm"):
                        rel = decode_release(s)
                        ch = rel.get("chart", {}).get("metadata", {})
                        out.append({"namespace": s["metadata"]["namespace"], "name": rel["name"],
                                    "version": rel["version"], "status": rel["info"]["status"],
                                    "chart": f"{ch.get('name')}-{ch.get('version')}",
                                    "secret": s["metadata"]["name"]})
                    return self.send_json(200, out)
                if path == "/debug/objects":
                    out = []
                    for key, o in app.store.all_objects():
                        r = app.store.kinds[key]
                        if q.get("namespace") and o["metadata"].get("namespace") != q["namespace"]:
                            continue
                        if q.get("kind") and r.kind != q["kind"]:
                            continue
                        out.append({"kind": r.kind, "namespace": o["metadata"].get("namespace"),
                                    "name": o["metadata"]["name"],
                                    "deleting": bool(o["metadata"].get("deletionTimestamp")),
                                    "labels": o["metadata"].get("labels", {}),
                                    "phase": (o.get("status") or {}).get("phase")})
                    return self.send_json(200, sorted(out, key=lambda x: (x["kind"], x["namespace"] or "", x["name"])))
                if path == "/debug/clusters":
                    out = []
                    for cl in app.objects(CAPI, "clusters"):
                        ns, name = cl["metadata"]["namespace"], cl["metadata"]["name"]
                        wl = app.controllers.workloads.get((ns, name))
                        out.append({"namespace": ns, "name": name, "phase": cl.get("status", {}).get("phase"),
                                    "endpoint": cl["spec"].get("controlPlaneEndpoint"),
                                    "conditions": {c["type"]: c["status"] for c in cl.get("status", {}).get("conditions", [])},
                                    "workloadApi": f"https://{wl.host}:{wl.port}" if wl else None,
                                    "nodes": len(app.controllers.nodes_for(ns, name))})
                    return self.send_json(200, out)
                if path == "/healthz":
                    return self.send_json(200, {"status": "ok"})
            raise ApiError(404, "NotFound", "not found")
        except ApiError as e:
            self.send_json(e.code, e.status())
        finally:
            log(f"side-http: GET {self.path} {self._code}")

    def serve_file(self, root, rel):
        if not root:
            raise ApiError(404, "NotFound", "no --repo-dir")
        rel = urllib.parse.unquote(rel)
        full = os.path.realpath(os.path.join(root, rel))
        if not full.startswith(os.path.realpath(root) + os.sep) or not os.path.isfile(full):
            raise ApiError(404, "NotFound", "not found")
        with open(full, "rb") as f:
            data = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-yaml" if rel.endswith(".yaml") else "application/gzip")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self._code = 200


class SideServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def hostport(s):
    host, _, port = s.rpartition(":")
    return host or "127.0.0.1", int(port)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", default="127.0.0.1:6443")
    p.add_argument("--cert", required=True, help="serving certificate (SAN = the listen address)")
    p.add_argument("--key", required=True)
    p.add_argument("--client-ca", help="CA that signs accepted client certificates")
    p.add_argument("--token", action="append", help="an accepted bearer token (repeatable)")
    p.add_argument("--token-prefix", action="append",
                   help="accept bearer tokens starting with this (repeatable), e.g. the real-unit tier's "
                        "rotated canary tokens")
    p.add_argument("--http", default="127.0.0.1:8879", help="chart repository and debug port ('' to disable)")
    p.add_argument("--repo-dir", help="directory served at http://<--http>/charts/ (index.yaml + .tgz)")
    p.add_argument("--without-version", action="append", metavar="GROUP/VERSION",
                   help="do not serve this group version, e.g. infrastructure.cluster.x-k8s.io/v1beta1 "
                        "(a management cluster with an old CAPO)")
    p.add_argument("--with-version", action="append", metavar="GROUP/VERSION",
                   help="also serve an optional group version (infrastructure.cluster.x-k8s.io/v1alpha7, v1alpha6)")
    p.add_argument("--delay", type=float, default=1.0, help="seconds per provisioning step")
    p.add_argument("--workload-host", default="127.0.0.1")
    p.add_argument("--workload-ports", default="16443-16542")
    p.add_argument("--addon-phase", default="Deployed", choices=["Deployed", "Failed", "Unknown"],
                   help="the phase addons reach once their cluster is ready")
    p.add_argument("--state-dir", default="/run/mgmt-cluster")
    args = p.parse_args(argv)
    os.makedirs(args.state_dir, mode=0o700, exist_ok=True)

    app = MgmtCluster(args)
    ctx = server_context(args.cert, args.key, ca_file=args.client_ca)
    api = TLSServer(hostport(args.listen), MgmtHandler, ctx, app)
    threading.Thread(target=app.controllers.run, daemon=True).start()
    if args.http:
        side = SideServer(hostport(args.http), SideHandler)
        side.app = app
        threading.Thread(target=side.serve_forever, daemon=True).start()
    served = sorted({r.gv for r in app.resources})
    log(f"mgmt-api: serving https://{args.listen} ({' '.join(served)}); "
        f"chart repo http://{args.http}/charts/ from {args.repo_dir}")
    api.serve_forever()


if __name__ == "__main__":
    main()
