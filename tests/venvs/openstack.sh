#!/usr/bin/env bash
# A Python venv with the REAL OpenStack command line client and its Magnum
# plugin, for tests/openstack_fake.rs: `openstack coe cluster template
# create/list/show/delete`, `coe cluster show` and `coe cluster config` are
# run against the in-process fake (tests/support/openstack/), so the fake
# speaks the APIs as the real clients expect them to be spoken.
#
#   bash tests/venvs/openstack.sh        # creates ${OPENSTACK_VENV:-target/venv-openstack}
#   MAGNUM_CAPI_REQUIRE_REAL=1 cargo test --test openstack_fake
#
# Idempotent: a venv whose marker matches the pins below is left alone.
# Needs CPython 3.11 (PYTHON=... to choose one) and PyPI. Nothing here talks
# to a real cloud, at build time or at test time.
#
# python-magnumclient 5.0.0 is the client FACTS.md was measured with;
# python-openstackclient 10.5.0 is the current release, what an operator
# installs today. Every other distribution is pinned to what pip resolved
# for the two on CPython 3.11 (`pip freeze`), so a rebuild gives the same
# keystoneauth1, openstacksdk and osc-lib.
set -euo pipefail

START=$(date +%s)
NAME=openstack
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${OPENSTACK_VENV:-$REPO/target/venv-openstack}
PYTHON=${PYTHON:-python3}

OSC_VERSION=10.5.0
MAGNUMCLIENT_VERSION=5.0.0

# Exact pins, one per line: `pip freeze` of the two above on CPython 3.11.
CONSTRAINTS='autopage==0.6.0
certifi==2026.10.19.post1
cffi==2.1.1
charset-normalizer==3.5.2
cliff==4.17.0
cmd2==4.3.1
cryptography==50.0.2
debtcollector==3.1.0
decorator==5.3.1
dogpile.cache==1.5.0
idna==3.20
iso8601==2.1.0
jmespath==1.1.0
jsonpatch==1.48
jsonpointer==3.12
keystoneauth1==5.18.1
markdown-it-py==4.3.0
mdurl==0.1.2
msgpack==1.2.4
netaddr==1.3.0
openstacksdk==4.22.0
os-service-types==1.9.0
osc-lib==4.7.0
oslo.config==10.7.0
oslo.context==6.5.0
oslo.i18n==6.9.0
oslo.log==8.3.2
oslo.serialization==5.11.0
oslo.utils==10.2.0
packaging==26.3
pbr==7.1.3
platformdirs==4.14.8
prettytable==3.18.0
prompt_toolkit==3.0.53
psutil==7.2.2
pycparser==3.12
Pygments==2.21.0
pyparsing==3.3.3
pyperclip==1.11.0
python-dateutil==4.0.0
python-keystoneclient==6.0.0
python-magnumclient==5.0.0
python-manilaclient==6.3.0
python-openstackclient==10.5.0
PyYAML==6.0.4
requests==2.34.2
rfc3986==2.0.0
rich==15.0.0
rich-argparse==1.8.0
stevedore==5.10.0
typing_extensions==4.16.0
tzdata==2026.6
urllib3==2.8.0
wcwidth==0.9.4
wrapt==2.5.2'

# The marker records everything that decides the venv's content.
WANT="python-openstackclient==$OSC_VERSION python-magnumclient==$MAGNUMCLIENT_VERSION constraints:$(printf '%s' "$CONSTRAINTS" | sha256sum | cut -c1-16)"
MARKER=$VENV/.magnum-capi-openstack

# The venv's own view of what it holds, so a half-built or hand-edited venv
# is not mistaken for a good one: the versions, the `coe` commands reachable
# through the plugin entry point, and a CLI that starts.
check() {
    "$VENV/bin/python" - "$OSC_VERSION" "$MAGNUMCLIENT_VERSION" <<'PY' || return 1
import importlib, importlib.metadata as md, sys, warnings
warnings.simplefilter("ignore")
want = {"python-openstackclient": sys.argv[1], "python-magnumclient": sys.argv[2]}
for dist, version in want.items():
    have = md.version(dist)
    if have != version:
        sys.exit(f"{dist} is {have}, want {version}")
for mod in ["openstackclient.shell", "magnumclient.osc.plugin", "keystoneauth1", "cryptography"]:
    importlib.import_module(mod)
plugins = {e.name: e.value for e in md.entry_points(group="openstack.cli.extension")}
if plugins.get("container_infra") != "magnumclient.osc.plugin":
    sys.exit(f"the magnum OSC plugin is not registered: {plugins}")
cmds = {e.name for e in md.entry_points(group="openstack.container_infra.v1")}
for c in ["coe_cluster_template_create", "coe_cluster_template_list",
          "coe_cluster_template_delete", "coe_cluster_show", "coe_cluster_config"]:
    if c not in cmds:
        sys.exit(f"command {c} missing from the magnum plugin")
PY
    "$VENV/bin/openstack" --version >/dev/null 2>&1
}

exit_if_current "$VENV/bin/openstack"

fresh_venv
"${PIP[@]}" install --quiet -c "$CONSTRAINTS_FILE" \
    "python-openstackclient==$OSC_VERSION" "python-magnumclient==$MAGNUMCLIENT_VERSION"
finish_venv
