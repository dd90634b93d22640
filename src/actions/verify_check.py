# magnum-capi verify
import json, sys, warnings
warnings.simplefilter("ignore")
r = {"driver": None, "get_driver": None, "claimants": [], "conf": None, "error": None}
try:
    import importlib.metadata as md
    eps = md.entry_points()
    eps = list(eps.select(group="magnum.drivers") if hasattr(eps, "select") else eps.get("magnum.drivers", []))
    ours = [e for e in eps if e.name == "k8s_capi_helm_v1"]
    if ours:
        cls = ours[0].load()
        r["driver"] = cls.__module__ + ":" + cls.__name__
    import magnum.conf
    CONF = magnum.conf.CONF
    CONF(json.loads(sys.argv[1]), project="magnum")
    for e in eps:
        if e.name in CONF.drivers.disabled_drivers:
            continue
        try:
            provides = e.load()().provides
        except Exception:
            continue
        if any((p["server_type"], p["os"], p["coe"]) == ("vm", "ubuntu", "kubernetes") for p in provides):
            r["claimants"].append(e.name)
    from magnum.drivers.common import driver as common
    found = common.Driver.get_driver("vm", "ubuntu", "kubernetes")
    r["get_driver"] = type(found).__module__ + ":" + type(found).__name__
    import magnum_capi_helm.conf
    r["conf"] = {"kubeconfig_file": CONF.capi_helm.kubeconfig_file, "disabled_drivers": list(CONF.drivers.disabled_drivers)}
except BaseException as e:
    r["error"] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(r))
