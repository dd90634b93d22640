#!/usr/bin/python3
# The shebang is the system python by absolute path (charmcraft's template
# says `/usr/bin/env python3`): on the fake unit PATH holds only the fake
# tools, whose `python3` is a fake. Skipping env makes ops slightly faster,
# never slower.
"""The magnum-capi no-op path as a typical ops charm writes it (benchmark).

Every hook it observes runs one reconcile: read config, read the kubeconfig
secret, render the two files the charm owns, write each only if it differs,
and set the unit's status, as most ops charms do (`self.unit.status = ...`
every time). Files go under $MAGNUM_CAPI_ROOT/var/lib/bench-ops so that
they never touch what the Rust charm owns on the same fake unit.
"""

import logging
import os
from pathlib import Path

import ops

logger = logging.getLogger(__name__)


class CapiCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        for event in (
            self.on.install,
            self.on.config_changed,
            self.on.upgrade_charm,
            self.on.secret_changed,
            self.on.update_status,
        ):
            framework.observe(event, self._reconcile)
        self.root = Path(os.environ.get("MAGNUM_CAPI_ROOT", "/"))

    def _reconcile(self, event: ops.EventBase):
        uri = self.config.get("kubeconfig-secret", "")
        if not uri:
            self.unit.status = ops.BlockedStatus("kubeconfig-secret unset")
            return
        try:
            kubeconfig = self.model.get_secret(id=uri).get_content()["kubeconfig"]
        except (ops.SecretNotFoundError, ops.ModelError, KeyError) as e:
            self.unit.status = ops.BlockedStatus(f"secret {uri}: {e}")
            return
        disabled = self.config.get("disabled-drivers", "auto")
        conf = (
            "# managed by magnum-capi\n[capi_helm]\n"
            "kubeconfig_file = /etc/magnum/kubeconfig\n\n[drivers]\n"
            f"disabled_drivers = {disabled}\n"
        )
        state = self.root / "var/lib/bench-ops"
        changed = self._write_if_different(state / "kubeconfig", kubeconfig, 0o640)
        changed |= self._write_if_different(state / "99-capi.conf", conf, 0o640)
        if changed:
            logger.info("files changed: would restart magnum")
        version = self.config.get("driver-version", "1.1.0")
        self.unit.status = ops.ActiveStatus(f"magnum-capi-helm {version} ready")

    @staticmethod
    def _write_if_different(path: Path, text: str, mode: int) -> bool:
        try:
            if path.read_text() == text:
                return False
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        return True


if __name__ == "__main__":
    ops.main(CapiCharm)
