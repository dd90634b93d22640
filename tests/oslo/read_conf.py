"""Read magnum's configuration the way magnum does, and print it as JSON.

    python read_conf.py --config-file /etc/magnum/magnum.conf \
                        --config-dir /etc/magnum/magnum.conf.d

Run with the venv of tests/venvs/oslo.sh (the real magnum and
magnum-capi-helm). The arguments are the service's own: they go to
oslo.config unchanged. `--driver-wheel W` reads the driver's options from
the wheel W (a zip on sys.path, ahead of the installed driver) instead: the
other release's option layout. One more, `--default-config-dir D`, stands for the
directory oslo.config reads by default (/etc/magnum/magnum.conf.d on a
unit) when the service is started without --config-dir; nothing on this
machine's own /etc is ever read.

The sequence is a magnum service's start (magnum.common.service
.prepare_service): magnum's options (`import magnum.conf`) and oslo.log's are
registered, the command line and files are parsed, and every registered value
is read once as `log_opt_values` does at start. Only then are the driver's
`[capi_helm]` options registered, as magnum does when it first loads the
driver, and read.

Prints {"capi_helm": {...every option...}, "capi_helm_cluster_labels":
{...} (1.4.0 and later), "drivers": {...}, "ignored": [...]} where "ignored"
lists the `[capi_helm]`/`[capi_helm_cluster_labels]`/`[drivers]` keys found in the files
that no registered option reads (oslo.config drops them silently). On any
error prints {"error": "..."} and exits 1. No database, no network.
"""

import argparse
import glob
import json
import logging
import os
import sys
import warnings

warnings.simplefilter("ignore")  # eventlet and friends; stdout is JSON only


def main(argv):
    pre = argparse.ArgumentParser(allow_abbrev=False, add_help=False)
    pre.add_argument("--default-config-dir", action="append", default=[])
    pre.add_argument("--driver-wheel")
    ours, service_args = pre.parse_known_args(argv)
    if ours.driver_wheel:
        sys.path.insert(0, ours.driver_wheel)

    try:
        from oslo_config import cfg
        from oslo_log import log as oslo_log

        import magnum.conf
        from magnum import version

        CONF = magnum.conf.CONF
        oslo_log.register_options(CONF)
        # default_config_files=[] / default_config_dirs: the unit's files are
        # under a test root, so the host's ~/.magnum, /etc/magnum are kept out.
        CONF(
            service_args,
            project="magnum",
            version=version.version_info.release_string(),
            default_config_files=[],
            default_config_dirs=ours.default_config_dir,
        )
        quiet = logging.getLogger("read_conf")
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
        # What magnum-api and magnum-conductor do at start: reads every
        # registered value, so a bad interpolation or type fails here.
        CONF.log_opt_values(quiet, logging.DEBUG)

        # magnum registers the driver's options when it loads the driver.
        import magnum_capi_helm.conf as capi_conf

        capi = {opt.dest: CONF.capi_helm[opt.dest] for opt in capi_conf.capi_helm_opts}
        label_opts = getattr(capi_conf, "capi_helm_cluster_labels_opts", None)
        labels = None
        if label_opts is not None:
            labels = {opt.dest: CONF.capi_helm_cluster_labels[opt.dest] for opt in label_opts}
        drivers = {
            "disabled_drivers": list(CONF.drivers.disabled_drivers),
            "enabled_beta_drivers": list(CONF.drivers.enabled_beta_drivers),
            "openstack_ca_file": CONF.drivers.openstack_ca_file,
        }
        CONF.log_opt_values(quiet, logging.DEBUG)

        # The files read: --config-file ones and each config dir's *.conf
        # in name order (config_dir is the default dirs when none is given).
        files = list(CONF.config_file or [])
        dir_files = []
        for d in CONF.config_dir or []:
            dir_files += sorted(glob.glob(os.path.join(d, "*.conf")))
        known = {
            "capi_helm": {o.dest for o in capi_conf.capi_helm_opts},
            "capi_helm_cluster_labels": {o.dest for o in (label_opts or [])},
            "drivers": {o.dest for o in magnum.conf.drivers.drivers_opts},
        }
        ignored = []
        for f in files + dir_files:
            sections = {}
            cfg.ConfigParser(f, sections).parse()
            for section, keys in sections.items():
                for key in keys:
                    if section in known and key not in known[section]:
                        ignored.append(f"{os.path.basename(f)}: [{section}] {key}")
    except BaseException as e:  # SystemExit from oslo's CLI parser too
        if isinstance(e, KeyboardInterrupt):
            raise
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return 1

    print(
        json.dumps(
            {
                "capi_helm": capi,
                "capi_helm_cluster_labels": labels,
                "driver": capi_conf.__file__,
                "drivers": drivers,
                "config_file": files,
                "config_dir_files": dir_files,
                "ignored": ignored,
            },
            sort_keys=True,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
