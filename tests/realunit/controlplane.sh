# tests/realunit/controlplane.sh - sourced after lib.sh: a REAL OpenStack
# control plane beside magnum in a booted unit, from the Debian packages in
# its rootfs, offline, every service started by the unit's systemd:
#
#   MariaDB (mariadb.service)         keystone, magnum and glance databases
#   RabbitMQ (rabbitmq-server.service) user magnum, vhost openstack
#   Keystone 22 (keystone.service: uwsgi, --http-socket :5000)
#                                     the catalog, the magnum service user,
#                                     the trustee domain, an operator with an
#                                     application credential
#   magnum-api, magnum-conductor      magnum.conf as charm-magnum renders it,
#                                     on MariaDB and RabbitMQ
#   Glance 25 (glance-api.service)    file store, one image (CP_GLANCE=real)
#   fake-cloud (systemd-run)          Nova and Neutron (and Glance with
#                                     CP_GLANCE=fake): tests/fakes/fake_cloud.rs,
#                                     the fake of tests/support/openstack/,
#                                     checking every token against Keystone
#
# The rootfs needs, beside magnum (see build-rootfs.sh):
#   keystone rabbitmq-server mariadb-server python3-pymysql [glance-api]
# installed with their debconf questions answered "no" (no database, no
# endpoint registration at install), and mariadb, rabbitmq-server, epmd,
# keystone and glance-api disabled at boot (controlplane_up starts them).
#
# It needs from lib.sh: U, realunit_copy_in, wait_for, ru_die, ru_log, now,
# since, $NAME, $REPO. Host input: the static fake-cloud
#   cargo build --release --locked --target x86_64-unknown-linux-musl --features fake-cloud --bin fake-cloud
#
#   controlplane_up        start and configure it all; prints TIMING lines
#   controlplane_env       KEY=VALUE lines: auth url, app credential, names
#   controlplane_secret    the openstack-credentials-secret content (JSON)
#   controlplane_memory    PSS of each service and the total (MiB)
#
# Knobs: CP_GLANCE=real|fake (default real: 7-9 s and ~200 MiB more),
# CP_UNRESTRICTED=1|0 (the operator's application credential; default 1).
# Either way Debian's keystone (bookworm 22.0.2-0+deb12u4+, trixie
# 27.0.0-3+deb13u6) refuses trusts to application-credential tokens
# ("Delegated tokens cannot manage trusts", CVE-2026-80184), so a cluster
# create made with the credential fails in the conductor before the driver:
# use the operator's password (controlplane_secret password) to reach it.
# shellcheck shell=bash

CP_GLANCE=${CP_GLANCE:-real}
CP_UNRESTRICTED=${CP_UNRESTRICTED:-1}
CP_REGION=RegionOne
CP_KEYSTONE=http://127.0.0.1:5000
CP_FAKE_CLOUD_ADDR=127.0.0.1:8999
CP_FAKE_CLOUD=$REPO/target/x86_64-unknown-linux-musl/release/fake-cloud
# Written in the unit by controlplane_up: passwords and the credential.
CP_ENV=/root/controlplane.env
CP_SERVICES=(mariadb rabbitmq-server keystone magnum-api magnum-conductor fake-cloud)

cp_timing() { printf 'TIMING %s: %s s\n' "$1" "$(since "$2")"; }

# cp_get KEY: a value from the unit's $CP_ENV.
cp_get() { U sh -c ". $CP_ENV; printf '%s\\n' \"\$$1\""; }

# cp_ini FILE SECTION KEY=VALUE...: set keys in an oslo.config file in the
# unit, in place (comments and other keys kept, owner and mode too).
cp_ini() {
    U python3 - "$@" <<'PY'
import os, re, sys
path, section, pairs = sys.argv[1], sys.argv[2], [a.split("=", 1) for a in sys.argv[3:]]
lines = open(path).read().splitlines()
start = next((i for i, l in enumerate(lines) if l.strip() == f"[{section}]"), None)
if start is None:
    lines += ["", f"[{section}]"]
    start = len(lines) - 1
end = next((i for i in range(start + 1, len(lines)) if re.match(r"^\[.*\]\s*$", lines[i])), len(lines))
for key, value in pairs:
    hit = next((i for i in range(start + 1, end) if re.match(rf"^{re.escape(key)}\s*=", lines[i])), None)
    if hit is None:
        lines.insert(start + 1, f"{key} = {value}")
        end += 1
    else:
        lines[hit] = f"{key} = {value}"
st = os.stat(path)
open(path + ".tmp", "w").write("\n".join(lines) + "\n")
os.chown(path + ".tmp", st.st_uid, st.st_gid)
os.chmod(path + ".tmp", st.st_mode & 0o7777)
os.rename(path + ".tmp", path)
PY
}

# A TCP port in the unit answers.
cp_listening() { U python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1).close()"; }

# HTTP GET in the unit gives a status below 500.
cp_http_up() {
    U python3 -c "
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen('$1', timeout=3)
except urllib.error.HTTPError as e:
    sys.exit(e.code >= 500)
"
}

controlplane_up() {
    local t0 t_all
    t_all=$(now)
    [[ -x "$CP_FAKE_CLOUD" ]] || ru_die "no $CP_FAKE_CLOUD: cargo build --release --locked --target x86_64-unknown-linux-musl --features fake-cloud --bin fake-cloud"
    U sh -c 'command -v keystone-manage && command -v rabbitmqctl && command -v mariadb' >/dev/null ||
        ru_die "the unit has no keystone, rabbitmq-server or mariadb-server: build the rootfs with them"
    if [[ $CP_GLANCE == real ]] && ! U sh -c 'command -v glance-manage' >/dev/null; then
        ru_log "no glance-api in the unit: the fake serves Glance"
        CP_GLANCE=fake
    fi

    # Passwords for this unit only (it is thrown away at power-off).
    U sh -c "umask 077; { for k in ADMIN MAGNUM DOMAIN_ADMIN RABBIT DB OPERATOR GLANCE; do
        echo \"CP_PW_\$k=\$(tr -dc a-zA-Z0-9 </dev/urandom | head -c 24)\"; done; } > $CP_ENV" ||
        ru_die "cannot write $CP_ENV"

    # build-rootfs.sh masks the control plane's units (a unit boots as the
    # magnum charm leaves one): unmask them.
    U systemctl unmask mariadb.service rabbitmq-server.service epmd.service epmd.socket keystone.service glance-api.service >/dev/null 2>&1 ||
        ru_die "cannot unmask the control plane's units"

    # The tier's rootfs starts magnum DB-less (fake:/, sqlite) at boot. On
    # trixie its units also Want= keystone, rabbitmq-server and mysql, so
    # those start at boot too, unconfigured. Stop what runs before it is
    # configured; uwsgi waits out a 15 s stop timeout on SIGTERM: kill it.
    t0=$(now)
    U systemctl kill --signal=SIGKILL magnum-api.service magnum-conductor.service keystone.service glance-api.service 2>/dev/null || true
    U systemctl stop magnum-api.service magnum-conductor.service keystone.service glance-api.service 2>/dev/null || true
    cp_timing services-stop "$t0"

    t0=$(now)
    U systemctl start mariadb.service || ru_die "mariadb did not start: $(U journalctl -u mariadb -n 20 --no-pager)"
    local db
    db=$(cp_get CP_PW_DB)
    sed "s/@DB@/$db/g" <<'SQL' | U mariadb -u root || ru_die "cannot create the databases"
CREATE DATABASE keystone; CREATE DATABASE magnum; CREATE DATABASE glance;
CREATE USER 'keystone'@'localhost' IDENTIFIED BY '@DB@';
CREATE USER 'magnum'@'localhost' IDENTIFIED BY '@DB@';
CREATE USER 'glance'@'localhost' IDENTIFIED BY '@DB@';
GRANT ALL PRIVILEGES ON keystone.* TO 'keystone'@'localhost';
GRANT ALL PRIVILEGES ON magnum.* TO 'magnum'@'localhost';
GRANT ALL PRIVILEGES ON glance.* TO 'glance'@'localhost';
SQL
    cp_timing mariadb "$t0"

    t0=$(now)
    # The node is rabbit@<hostname> (the unit's machine name): make the name
    # resolve for the CLI (/etc/hosts has only localhost). It may already run
    # (trixie: pulled in at boot by magnum's Wants=).
    U sh -c 'grep -qw "$(hostname)" /etc/hosts || echo "127.0.1.1 $(hostname)" >> /etc/hosts'
    U systemctl start rabbitmq-server.service || ru_die "rabbitmq-server did not start: $(U journalctl -u rabbitmq-server -n 20 --no-pager)"
    U rabbitmqctl -q await_startup >/dev/null || ru_die "rabbitmq-server did not start up"
    U sh -c ". $CP_ENV; rabbitmqctl -q add_user magnum \"\$CP_PW_RABBIT\" >/dev/null &&
        rabbitmqctl -q add_vhost openstack && rabbitmqctl -q set_permissions -p openstack magnum '.*' '.*' '.*'" ||
        ru_die "cannot add rabbitmq's magnum user"
    cp_timing rabbitmq "$t0"

    t0=$(now)
    controlplane_keystone
    cp_timing keystone "$t0"

    t0=$(now)
    controlplane_fake_cloud
    cp_timing fake-cloud "$t0"

    if [[ $CP_GLANCE == real ]]; then
        t0=$(now)
        controlplane_glance
        cp_timing glance "$t0"
    fi

    t0=$(now)
    controlplane_magnum
    cp_timing magnum "$t0"
    cp_timing controlplane-total "$t_all"
}

# Keystone on MariaDB (sqlite locks under uwsgi: FACTS.md), 2 uwsgi
# processes instead of the packaged 8 (memory), then its objects.
controlplane_keystone() {
    local t0
    # Debian's keystone-uwsgi.ini, unlike its magnum-api and glance-api
    # ones, lacks `add-header = Connection: close`: uwsgi's --http-socket
    # drops a kept-alive connection, and the client's next POST on it gets
    # ECONNRESET (keystoneauth does not retry a POST).
    U sed -i -e 's/^processes = .*/processes = 2/' -e 's/^threads = .*/threads = 8/' \
        -e '/^listen = /a add-header = Connection: close' /etc/keystone/keystone-uwsgi.ini
    cp_ini /etc/keystone/keystone.conf database "connection=mysql+pymysql://keystone:$(cp_get CP_PW_DB)@localhost/keystone"
    cp_ini /etc/keystone/keystone.conf token "provider=fernet"
    t0=$(now)
    # As the keystone user: keystone-manage logs to keystone.log, which
    # uwsgi (User=keystone) must be able to open afterwards.
    # (Their stderr goes to the log: at exit each prints eventlet's harmless
    # "Exception ignored in: <function _removeHandlerRef ...>".)
    U runuser -u keystone -- keystone-manage db_sync 2>>"$LOGDIR/keystone-manage.log" || ru_die "keystone-manage db_sync failed"
    U keystone-manage fernet_setup --keystone-user keystone --keystone-group keystone 2>>"$LOGDIR/keystone-manage.log" ||
        ru_die "fernet_setup failed"
    U keystone-manage credential_setup --keystone-user keystone --keystone-group keystone 2>>"$LOGDIR/keystone-manage.log" ||
        ru_die "credential_setup failed"
    U sh -c ". $CP_ENV; runuser -u keystone -- keystone-manage bootstrap --bootstrap-password \"\$CP_PW_ADMIN\" \
        --bootstrap-admin-url $CP_KEYSTONE/v3/ --bootstrap-internal-url $CP_KEYSTONE/v3/ \
        --bootstrap-public-url $CP_KEYSTONE/v3/ --bootstrap-region-id $CP_REGION" 2>>"$LOGDIR/keystone-manage.log" ||
        ru_die "keystone-manage bootstrap failed"
    cp_timing keystone-manage "$t0"
    t0=$(now)
    U systemctl start keystone.service || ru_die "keystone did not start"
    wait_for 60 cp_http_up "$CP_KEYSTONE/v3" || ru_die "keystone does not answer on :5000: $(U tail -n 20 /var/log/keystone/keystone.log)"
    cp_timing keystone-start "$t0"
    t0=$(now)
    local image_url=http://$CP_FAKE_CLOUD_ADDR/image
    [[ $CP_GLANCE == real ]] && image_url=http://127.0.0.1:9292
    # One python3 in the unit (keystoneclient, a magnum dependency), not ~25
    # `openstack` runs at 1-2 s each.
    U sh -c ". $CP_ENV; export CP_PW_ADMIN CP_PW_MAGNUM CP_PW_DOMAIN_ADMIN CP_PW_OPERATOR CP_PW_GLANCE;
        python3 - $CP_KEYSTONE/v3 $CP_REGION http://$CP_FAKE_CLOUD_ADDR $image_url $CP_UNRESTRICTED >> $CP_ENV" <<'PY' ||
import os, sys
from keystoneauth1 import session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client
auth_url, region, fake, image_url, unrestricted = sys.argv[1:6]
pw = lambda k: os.environ["CP_PW_" + k]
def sess(user, password, project, domain="default"):
    return session.Session(auth=v3.Password(auth_url=auth_url, username=user, password=password,
        project_name=project, user_domain_id=domain, project_domain_id="default"))
ks = client.Client(session=sess("admin", pw("ADMIN"), "admin"), interface="public", region_name=region)
roles = {r.name: r for r in ks.roles.list()}
service = ks.projects.create("service", domain="default", description="Service project")
def service_user(name, password):
    u = ks.users.create(name, domain="default", password=password)
    ks.roles.grant(roles["admin"], user=u, project=service)
for name, password in (("magnum", pw("MAGNUM")), ("glance", pw("GLANCE"))):
    service_user(name, password)
catalog = [
    ("magnum", "container-infra", "http://127.0.0.1:9511/v1"),
    ("glance", "image", image_url),
    ("nova", "compute", fake + "/compute/v2.1"),
    ("neutron", "network", fake + "/network"),
    # The capi-helm driver lists Cinder's volume types at cluster create
    # (magnum's cinder client looks up service type block-storage).
    ("cinderv3", "block-storage", fake + "/volume/v3"),
]
for name, kind, url in catalog:
    s = ks.services.create(name, type=kind)
    for interface in ("public", "internal", "admin"):
        ks.endpoints.create(s, url, interface=interface, region=region)
# [trust]: the domain magnum makes its trustee users in, and its admin.
domain = ks.domains.create("magnum", description="Owns users and projects created by magnum")
dadmin = ks.users.create("magnum_domain_admin", domain=domain, password=pw("DOMAIN_ADMIN"))
ks.roles.grant(roles["admin"], user=dadmin, domain=domain)
# The operator of the runbook: a project, a member, an application credential.
demo = ks.projects.create("demo", domain="default")
op = ks.users.create("demo", domain="default", password=pw("OPERATOR"))
ks.roles.grant(roles["member"], user=op, project=demo)
opc = client.Client(session=sess("demo", pw("OPERATOR"), "demo"), interface="public", region_name=region)
ac = opc.application_credentials.create("magnum-capi", user=op.id, unrestricted=unrestricted == "1",
                                        description="magnum-capi real-unit tier")
print(f"CP_PROJECT_ID={demo.id}")
print(f"CP_OPERATOR_ID={op.id}")
print(f"CP_APP_CRED_ID={ac.id}")
print(f"CP_APP_CRED_SECRET={ac.secret}")
PY
        ru_die "cannot make keystone's objects"
    cp_timing keystone-objects "$t0"
}

# The fake Nova/Neutron(/Glance) as a transient service of the unit's systemd.
controlplane_fake_cloud() {
    U mkdir -p /usr/local/lib/magnum-capi-test
    realunit_copy_in "$NAME" "$CP_FAKE_CLOUD" /usr/local/lib/magnum-capi-test/fake-cloud
    U sh -c ". $CP_ENV; systemd-run --quiet --unit=fake-cloud --description='fake Nova/Neutron/Glance (magnum-capi real-unit tier)' \
        -p DynamicUser=yes /usr/local/lib/magnum-capi-test/fake-cloud --listen $CP_FAKE_CLOUD_ADDR \
        --keystone $CP_KEYSTONE/v3 --user magnum --password \"\$CP_PW_MAGNUM\" --project service" ||
        ru_die "cannot start fake-cloud"
    wait_for 20 cp_listening "${CP_FAKE_CLOUD_ADDR##*:}" || ru_die "fake-cloud does not listen: $(U journalctl -u fake-cloud -n 20 --no-pager)"
}

# Real Glance: file store, MariaDB, keystonemiddleware; one small public
# raw image with the properties magnum and the CAPI driver read.
controlplane_glance() {
    local t0 pw_db pw
    pw_db=$(cp_get CP_PW_DB)
    pw=$(cp_get CP_PW_GLANCE)
    U sed -i -e 's/^processes = .*/processes = 1/' -e 's/^threads = .*/threads = 8/' /etc/glance/glance-api-uwsgi.ini
    cp_ini /etc/glance/glance-api.conf database "connection=mysql+pymysql://glance:$pw_db@localhost/glance"
    cp_ini /etc/glance/glance-api.conf keystone_authtoken "www_authenticate_uri=$CP_KEYSTONE" "auth_url=$CP_KEYSTONE" \
        auth_type=password project_domain_name=Default user_domain_name=Default project_name=service \
        username=glance "password=$pw" "region_name=$CP_REGION"
    cp_ini /etc/glance/glance-api.conf paste_deploy flavor=keystone
    cp_ini /etc/glance/glance-api.conf glance_store stores=file,http default_store=file \
        filesystem_store_datadir=/var/lib/glance/images
    t0=$(now)
    U runuser -u glance -- glance-manage db_sync >/dev/null 2>&1 || ru_die "glance-manage db_sync failed"
    cp_timing glance-db-sync "$t0"
    t0=$(now)
    U systemctl start glance-api.service || ru_die "glance-api did not start"
    wait_for 60 cp_http_up http://127.0.0.1:9292/v2/images || ru_die "glance-api does not answer on :9292: $(U tail -n 20 /var/log/glance/glance-api.log)"
    cp_timing glance-start "$t0"
    t0=$(now)
    U sh -c ". $CP_ENV; export CP_PW_ADMIN; python3 - $CP_KEYSTONE/v3 $CP_REGION" <<'PY' || ru_die "cannot upload the image"
import io, os, sys
from keystoneauth1 import session
from keystoneauth1.identity import v3
from glanceclient import Client
auth_url, region = sys.argv[1:3]
s = session.Session(auth=v3.Password(auth_url=auth_url, username="admin", password=os.environ["CP_PW_ADMIN"],
    project_name="admin", user_domain_id="default", project_domain_id="default"))
g = Client("2", session=s, region_name=region)
# raw: 1 MiB of zeros is a valid image of that format (not of qcow2).
img = g.images.create(name="ubuntu-jammy-kube-v1.30.4", disk_format="raw", container_format="bare",
                      visibility="public", os_distro="ubuntu", os_version="22.04", kube_version="v1.30.4")
g.images.upload(img.id, io.BytesIO(b"\0" * 1048576))
PY
    cp_timing glance-image "$t0"
}

# magnum.conf as charm-magnum renders it (templates/ussuri/magnum.conf and
# parts/keystone-authtoken: the whole file), on this unit's services.
controlplane_magnum() {
    local t0
    U sh -c ". $CP_ENV; umask 027; cat > /etc/magnum/magnum.conf.new" <<EOF
[DEFAULT]
debug = False
pybasedir = /usr/lib/python3/dist-packages/magnum
bindir = /usr/bin
state_path = /var/lib/magnum
transport_url = rabbit://magnum:$(cp_get CP_PW_RABBIT)@127.0.0.1:5672/openstack

[database]
connection = mysql+pymysql://magnum:$(cp_get CP_PW_DB)@localhost/magnum

[keystone_authtoken]
auth_version = v3
www_authenticate_uri = $CP_KEYSTONE/v3
auth_url = $CP_KEYSTONE
auth_type = password
project_domain_name = default
user_domain_name = default
username = magnum
password = $(cp_get CP_PW_MAGNUM)
project_name = service
# Not in charm-magnum's template; without it magnum looks for regionOne
# (FACTS.md: template create answers 500 EndpointNotFound).
region_name = $CP_REGION

[keystone_auth]
auth_version = v3
www_authenticate_uri = $CP_KEYSTONE/v3
auth_url = $CP_KEYSTONE
auth_type = password
project_domain_name = default
user_domain_name = default
username = magnum
password = $(cp_get CP_PW_MAGNUM)
project_name = service
region_name = $CP_REGION

[oslo_messaging_rabbit]

[api]
port = 9511

[barbican_client]
region_name = $CP_REGION

[certificates]
cert_manager_type = x509keypair

[cinder_client]
region_name = $CP_REGION

[drivers]

[oslo_concurrency]
lock_path = /var/lock/magnum

[trust]
trustee_domain_name = magnum
trustee_domain_admin_name = magnum_domain_admin
trustee_domain_admin_password = $(cp_get CP_PW_DOMAIN_ADMIN)
cluster_user_trust = False
EOF
    U sh -c 'chown root:magnum /etc/magnum/magnum.conf.new && mv /etc/magnum/magnum.conf.new /etc/magnum/magnum.conf &&
        install -d -o magnum -g magnum /var/lock/magnum' || ru_die "cannot write magnum.conf"
    t0=$(now)
    U runuser -u magnum -- magnum-db-manage upgrade >/dev/null 2>&1 || ru_die "magnum-db-manage upgrade failed"
    cp_timing magnum-db-manage "$t0"
    t0=$(now)
    U systemctl restart magnum-api.service magnum-conductor.service || ru_die "magnum did not restart"
    wait_for 90 cp_http_up http://127.0.0.1:9511/ || ru_die "magnum-api does not answer on :9511: $(U tail -n 20 /var/log/magnum/magnum-api.log)"
    cp_timing magnum-restart "$t0"
}

# The operator's credentials: the application credential, and the same
# user's password (user demo, project demo, domain Default).
controlplane_env() {
    U sh -c ". $CP_ENV; printf 'CP_AUTH_URL=%s\nCP_REGION=%s\nCP_APP_CRED_ID=%s\nCP_APP_CRED_SECRET=%s\nCP_PROJECT_ID=%s\nCP_USERNAME=demo\nCP_PASSWORD=%s\nCP_PROJECT_NAME=demo\n' \
        $CP_KEYSTONE/v3 $CP_REGION \"\$CP_APP_CRED_ID\" \"\$CP_APP_CRED_SECRET\" \"\$CP_PROJECT_ID\" \"\$CP_PW_OPERATOR\""
}

# The content of the charm's openstack-credentials-secret (the keys
# src/plan/credentials.rs reads), for the fakes' world.json secrets:
# the application credential, or with `password` the operator's password.
controlplane_secret() {
    U sh -c ". $CP_ENV; python3 -c '
import json, sys
url, region, method, acid, acsecret, pw = sys.argv[1:7]
s = {\"auth-url\": url, \"region-name\": region}
if method == \"password\":
    s.update({\"username\": \"demo\", \"password\": pw, \"project-name\": \"demo\"})
else:
    s.update({\"application-credential-id\": acid, \"application-credential-secret\": acsecret})
print(json.dumps(s))' $CP_KEYSTONE/v3 $CP_REGION '${1:-appcred}' \"\$CP_APP_CRED_ID\" \"\$CP_APP_CRED_SECRET\" \"\$CP_PW_OPERATOR\""
}

# PSS (MiB) of every process in each control-plane service's cgroup, and
# the total: what the control plane costs the unit's memory.
controlplane_memory() {
    local svcs=("${CP_SERVICES[@]}")
    # The real Glance runs unless controlplane_up fell back to the fake.
    ! U systemctl -q is-active glance-api.service || svcs+=(glance-api)
    U python3 - "${svcs[@]}" <<'PY'
import glob, subprocess, sys
total = 0
for svc in sys.argv[1:]:
    cg = subprocess.run(["systemctl", "show", "-p", "ControlGroup", "--value", svc + ".service"],
                        capture_output=True, text=True).stdout.strip()
    pids = set()
    for f in glob.glob(f"/sys/fs/cgroup/**{cg}/**/cgroup.procs", recursive=True) if cg else []:
        pids.update(open(f).read().split())
    kib = 0
    for pid in pids:
        try:
            kib += next(int(l.split()[1]) for l in open(f"/proc/{pid}/smaps_rollup") if l.startswith("Pss:"))
        except (OSError, StopIteration):
            pass
    total += kib
    print(f"MEMORY {svc}: {kib / 1024:.0f} MiB PSS ({len(pids)} processes)")
print(f"MEMORY control plane total: {total / 1024:.0f} MiB PSS")
PY
}
