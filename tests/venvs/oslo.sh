#!/usr/bin/env bash
# A Python venv with the REAL magnum and magnum-capi-helm, for
# tests/oslo_config.rs: it feeds the charm's 99-capi.conf to oslo.config with
# magnum's options and the driver's [capi_helm] options registered.
#
#   bash tests/venvs/oslo.sh            # creates ${OSLO_VENV:-target/venv-oslo}
#   MAGNUM_CAPI_REQUIRE_REAL=1 cargo test --test oslo_config
#
# Idempotent: a venv whose marker matches the pins below is left alone.
# Needs CPython 3.11 (PYTHON=... to choose one) and PyPI. Nothing here
# touches a database or the network at test time.
#
# magnum 18.0.1 is OpenStack 2024.1 (Caracal), the release the magnum charm
# deploys on 22.04/24.04. Its dependencies are pinned to the 2024.1
# upper-constraints of openstack/requirements (the subset magnum pulls in;
# certifi, which upper-constraints leaves unpinned on purpose, is pinned here
# too), so oslo.config is 9.4.0 as on a Caracal unit. The driver is installed
# with --no-deps as the charm does, then its imports are checked.
set -euo pipefail

START=$(date +%s)
NAME=oslo
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${OSLO_VENV:-$REPO/target/venv-oslo}
PYTHON=${PYTHON:-python3}

MAGNUM_VERSION=18.0.1
# The charm's default driver is installed; 1.1.0's wheel sits beside it
# (PyPI's, hash-checked) for read_conf.py --driver-wheel: its conf.py is
# imported from the wheel (a zip on sys.path) instead, so both option
# layouts are read by the real oslo.config.
DRIVER_VERSION=1.4.0
OLD_DRIVER=1.1.0
OLD_DRIVER_SHA256=a90b39640c9f79763d23d3e319b49f9eab917e8349f6e1cc686eb64bfb5819a0

# Exact pins, one per line: `pip freeze` of magnum==18.0.1 installed with the
# 2024.1 upper-constraints on CPython 3.11.
CONSTRAINTS='alembic==1.9.4
amqp==5.2.0
attrs==23.2.0
automaton==3.2.0
autopage==0.5.2
bcrypt==4.0.1
cachetools==5.3.2
certifi==2024.2.2
cffi==1.16.0
charset-normalizer==3.3.2
cliff==4.6.0
cmd2==2.4.3
cryptography==42.0.4
debtcollector==3.0.0
decorator==5.1.1
dnspython==2.5.0
docker==7.0.0
dogpile.cache==1.3.1
eventlet==0.35.1
fasteners==0.19
futurist==3.0.0
greenlet==3.0.3
idna==3.6
importlib-metadata==6.11.0
iso8601==2.1.0
Jinja2==3.1.3
jmespath==1.0.1
jsonpatch==1.33
jsonpointer==2.4
jsonschema==4.19.2
jsonschema-specifications==2023.12.1
keystoneauth1==5.6.1
keystonemiddleware==10.6.0
kombu==5.3.5
logutils==0.3.5
Mako==1.3.2
MarkupSafe==2.1.5
msgpack==1.0.7
netaddr==0.10.1
netifaces==0.11.0
networkx==3.2.1
openstacksdk==3.0.0
os-client-config==2.1.0
os-service-types==1.7.0
osc-lib==3.0.1
oslo.cache==3.7.0
oslo.concurrency==6.0.0
oslo.config==9.4.0
oslo.context==5.5.0
oslo.db==15.0.0
oslo.i18n==6.3.0
oslo.log==5.5.1
oslo.messaging==14.7.2
oslo.metrics==0.8.0
oslo.middleware==6.1.0
oslo.policy==4.3.0
oslo.reports==3.3.0
oslo.serialization==5.4.1
oslo.service==3.4.1
oslo.upgradecheck==2.3.0
oslo.utils==7.1.0
oslo.versionedobjects==3.3.0
packaging==23.2
Paste==3.7.1
PasteDeploy==3.1.0
pbr==6.0.0
pecan==1.5.1
platformdirs==4.2.0
prettytable==3.9.0
prometheus_client==0.20.0
psutil==5.9.8
pycadf==3.1.1
pycparser==2.21
pydot==2.0.0
pyinotify==0.9.6
PyJWT==2.8.0
pyOpenSSL==24.0.0
pyparsing==3.1.1
pyperclip==1.8.2
python-barbicanclient==5.7.0
python-cinderclient==9.5.0
python-dateutil==2.8.2
python-glanceclient==4.5.0
python-heatclient==3.5.0
python-keystoneclient==5.4.0
python-neutronclient==11.2.0
python-novaclient==18.6.0
python-octaviaclient==3.7.1
python-openstackclient==6.6.1
python-swiftclient==4.5.0
pytz==2024.1
PyYAML==6.0.1
referencing==0.33.0
repoze.lru==0.7
requests==2.31.0
requestsexceptions==1.4.0
rfc3986==2.0.0
Routes==2.5.1
rpds-py==0.18.0
simplegeneric==0.8.1
simplejson==3.19.2
six==1.16.0
SQLAlchemy==1.4.51
statsd==4.0.1
stevedore==5.2.0
taskflow==5.6.0
tenacity==8.2.3
testresources==2.0.1
testscenarios==0.5.0
testtools==2.7.1
tzdata==2024.1
urllib3==1.26.18
vine==5.1.0
warlock==2.0.1
wcwidth==0.2.13
WebOb==1.8.7
Werkzeug==3.0.1
wrapt==1.16.0
WSME==0.12.1
yappi==1.6.0
zipp==3.17.0'

# The marker records everything that decides the venv's content.
WANT="magnum==$MAGNUM_VERSION magnum-capi-helm==$DRIVER_VERSION wheel:$OLD_DRIVER constraints:$(printf '%s' "$CONSTRAINTS" | sha256sum | cut -c1-16)"
MARKER=$VENV/.magnum-capi-oslo

# The venv's own view of what it holds, so a half-built or hand-edited venv
# is not mistaken for a good one.
check() {
    [[ -f "$VENV/wheels/magnum_capi_helm-$OLD_DRIVER-py3-none-any.whl" ]] || return 1
    "$VENV/bin/python" - "$MAGNUM_VERSION" "$DRIVER_VERSION" <<'PY'
import importlib, importlib.metadata as md, sys, warnings
warnings.simplefilter("ignore")
want = {"magnum": sys.argv[1], "magnum-capi-helm": sys.argv[2]}
for dist, version in want.items():
    have = md.version(dist)
    if have != version:
        sys.exit(f"{dist} is {have}, want {version}")
# What magnum and the driver import (FACTS.md), and the modules that
# register the options the test reads.
for mod in ["magnum.conf", "magnum_capi_helm.conf", "magnum_capi_helm.driver",
            "oslo_log", "oslo_utils", "pbr", "requests", "yaml", "certifi",
            "keystoneauth1", "oslo_concurrency"]:
    importlib.import_module(mod)
eps = [e for e in md.entry_points(group="magnum.drivers") if e.name == "k8s_capi_helm_v1"]
if not eps or eps[0].value != "magnum_capi_helm.driver:Driver":
    sys.exit(f"entry point k8s_capi_helm_v1 missing or wrong: {eps}")
PY
}

exit_if_current "$VENV/bin/python"

fresh_venv
"${PIP[@]}" install --quiet -c "$CONSTRAINTS_FILE" "magnum==$MAGNUM_VERSION"
# As the charm installs it: the driver alone, against the magnum already there.
"${PIP[@]}" install --quiet --no-deps "magnum-capi-helm==$DRIVER_VERSION"
mkdir -p "$VENV/wheels"
printf 'magnum-capi-helm==%s --hash=sha256:%s\n' "$OLD_DRIVER" "$OLD_DRIVER_SHA256" > "$VENV/wheels/requirements.txt"
"${PIP[@]}" download --quiet --no-deps --only-binary=:all: --require-hashes -r "$VENV/wheels/requirements.txt" -d "$VENV/wheels"
finish_venv
