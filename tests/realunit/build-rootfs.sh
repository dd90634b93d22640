#!/usr/bin/env bash
# tests/realunit/build-rootfs.sh [--rebuild] [ROOT]
#
# A pristine "magnum unit" root filesystem for the real-unit tier (make
# test-real, make demo): Debian bookworm with the real Debian magnum-api and
# magnum-conductor packages (15.0.1), systemd, dbus (the charm reads systemd
# over the system bus), pip and python3; bootable with
# `systemd-nspawn --boot` (see unit.sh).
#
# On top of the packages, the unit is made to run magnum without a database
# server or a message bus, as a unit deployed by the magnum charm would run
# it: `[DEFAULT] transport_url = fake:/`, an sqlite `[database] connection`
# with magnum's tables created, and both services enabled (they start at
# boot, as on a deployed unit).
#
# First run: debootstrap + apt-get install in a chroot (~2 min, needs the
# Debian mirror), then the result is cached as ROOT.tar.zst. Later runs: if
# ROOT is still pristine (only ever booted with --volatile=overlay, which
# unit.sh records), nothing to do; otherwise ROOT is replaced by a fresh copy
# from the cache (seconds). --rebuild ignores the cache. The cache is also
# rebuilt when RECIPE below changes.
#
# Defaults: ROOT=$MAGNUM_CAPI_REALUNIT_DIR/root with
# MAGNUM_CAPI_REALUNIT_DIR=/var/tmp/magnum-capi-realunit; the cache is
# ROOT.tar.zst (MAGNUM_CAPI_REALUNIT_CACHE=path overrides). Recommends are
# not installed (REALUNIT_RECOMMENDS=1 installs them: ~4x bigger).
#
# The Debian mirror is taken from the host's apt configuration (apt's own
# parse of /etc/apt/sources.list and /etc/apt/sources.list.d/*), so no
# hostname is baked in.  MIRROR=... / SECURITY_MIRROR=... override it.
set -euo pipefail

# SUITE=trixie builds a Debian 13 unit (magnum 20.0.0, 2025.1, Python 3.13,
# systemd 257) from the same archive as the host's bookworm sources.
SUITE=${SUITE:-bookworm}
case "$SUITE" in bookworm | trixie) ;; *) echo "SUITE must be bookworm or trixie, not $SUITE" >&2; exit 2 ;; esac
INCLUDE=systemd,systemd-sysv,dbus,python3-pip,ca-certificates
PACKAGES=(magnum-api magnum-conductor)
# The control plane the end-to-end test runs beside magnum (test-e2e.sh,
# controlplane.sh): installed, but masked at boot, so a unit boots as the
# magnum charm leaves one (magnum-api and magnum-conductor only; trixie's
# magnum units Want= keystone, rabbitmq-server and mysql, which a mere
# `disable` would not stop). controlplane_up unmasks and starts them.
CONTROL_PLANE=(keystone rabbitmq-server mariadb-server python3-pymysql glance-api)
CONTROL_PLANE_UNITS=(mariadb.service rabbitmq-server.service epmd.service epmd.socket keystone.service glance-api.service)
PACKAGES+=("${CONTROL_PLANE[@]}")
APT_OPTS=(-o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-unsafe-io)
[[ "${REALUNIT_RECOMMENDS:-0}" == 1 ]] || APT_OPTS+=(--no-install-recommends)
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
SQLITE=sqlite:////var/lib/magnum/magnum.sqlite
# Bump when what build() makes changes: a cache from another recipe is rebuilt.
RECIPE=magnum-capi-realunit-2-$SUITE
REALUNIT_DIR=${MAGNUM_CAPI_REALUNIT_DIR:-/var/tmp/magnum-capi-realunit}
# Each release has its own rootfs and cache (bookworm keeps the old names).
DEFAULT_ROOT=$REALUNIT_DIR/root
[[ $SUITE == bookworm ]] || DEFAULT_ROOT=$REALUNIT_DIR/root-$SUITE
REALUNIT_STATE=${REALUNIT_STATE:-/run/magnum-capi-realunit}

log() { printf '[build-rootfs] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

usage() { echo "usage: $0 [--rebuild] [ROOT]" >&2; exit 2; }

REBUILD=0
[[ "${1:-}" == --rebuild ]] && { REBUILD=1; shift; }
[[ $# -le 1 ]] || usage
[[ $EUID -eq 0 ]] || die "must run as root"

ROOT=$(realpath -m -- "${1:-$DEFAULT_ROOT}")
[[ "$ROOT" != / ]] || die "refusing to use / as ROOT"
CACHE=${MAGNUM_CAPI_REALUNIT_CACHE:-$ROOT.tar.zst}
PARTIAL=$ROOT.partial
# Written after a restore or build; unit.sh removes it when it boots ROOT
# writable. Holds the cache's identity, so a new cache forces a restore.
PRISTINE=$ROOT.pristine
T_TOTAL=$(now)

# --- host tools ------------------------------------------------------------
ensure_host_tools() {
    local missing=0 t out
    for t in debootstrap systemd-nspawn zstd unshare nsenter; do
        command -v "$t" >/dev/null 2>&1 || missing=1
    done
    [[ $missing -eq 0 ]] && return 0
    # The project's one set-up step (group real) has the package list.
    out=$(bash "$(dirname "${BASH_SOURCE[0]}")/../../.ci/deps.sh" real) || die "the set-up step (.ci/deps.sh real) failed"
    log "$out"
}

# Refuse to touch a ROOT that a running unit (unit.sh boot) is using.
ensure_not_in_use() {
    local d pid
    for d in "$REALUNIT_STATE"/*/; do
        [[ -f "$d/root" && -f "$d/nspawn.pid" ]] || continue
        [[ "$(cat "$d/root")" == "$ROOT" ]] || continue
        pid=$(cat "$d/nspawn.pid")
        if kill -0 "$pid" 2>/dev/null; then
            die "$ROOT is in use by running unit $(basename "$d") (nspawn pid $pid); run unit.sh stop first"
        fi
    done
}

# Print "MIRROR SECURITY_MIRROR HAS_UPDATES" from the host's apt sources.
detect_mirrors() {
    local targets main sec upd
    targets=$(apt-get indextargets --format '$(TARGET_OF) $(REPO_URI) $(RELEASE) $(IDENTIFIER)' 2>/dev/null |
              awk '$1 == "deb" && $4 == "Packages" { print $2, $3 }' | sort -u)
    main=$(awk -v s="$SUITE" '$2 == s { sub(/\/$/, "", $1); print $1; exit }' <<<"$targets")
    sec=$(awk -v s="$SUITE-security" '$2 == s { sub(/\/$/, "", $1); print $1; exit }' <<<"$targets")
    upd=$(awk -v s="$SUITE-updates" '$2 == s { n = 1 } END { print n + 0 }' <<<"$targets")
    # Another suite than the host's: the same archives serve it.
    if [[ -z "$main" ]]; then
        local host_suite
        host_suite=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-bookworm}")
        main=$(awk -v s="$host_suite" '$2 == s { sub(/\/$/, "", $1); print $1; exit }' <<<"$targets")
        sec=$(awk -v s="$host_suite-security" '$2 == s { sub(/\/$/, "", $1); print $1; exit }' <<<"$targets")
        upd=$(awk -v s="$host_suite-updates" '$2 == s { n = 1 } END { print n + 0 }' <<<"$targets")
    fi
    echo "${MIRROR:-$main} ${SECURITY_MIRROR:-${sec:--}} $upd"
}

# Run a command chrooted into $PARTIAL with /proc, /sys and /dev mounted in
# a private mount namespace: the mounts vanish when the command exits.
in_chroot() {
    unshare --mount --propagation private -- /bin/sh -ec '
        t=$1; shift
        mount -t proc proc "$t/proc"
        mount -t sysfs -o ro sysfs "$t/sys"
        mount --rbind /dev "$t/dev"
        exec chroot "$t" "$@"' sh "$PARTIAL" \
        env -i PATH="$CHROOT_PATH" HOME=/root LC_ALL=C \
        DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true "$@"
}

# --- restore from cache ------------------------------------------------------
# Extract next to ROOT, then swap: ROOT is never half-restored, and the old
# tree is deleted last (on filesystems mounted with `discard`, a big delete
# slows the writes that follow it).
restore() {
    local t0
    t0=$(now)
    log "restoring $ROOT from cache $CACHE"
    rm -rf --one-file-system -- "$PARTIAL" "$ROOT.old"
    mkdir -p -- "$PARTIAL"
    zstd -dc -T0 -- "$CACHE" |
        tar -x -C "$PARTIAL" --numeric-owner -p --xattrs --xattrs-include='*' --acls
    [[ -e "$ROOT" ]] && mv -- "$ROOT" "$ROOT.old"
    mv -- "$PARTIAL" "$ROOT"
    rm -rf --one-file-system -- "$ROOT.old"
    log "TIMING restore-from-cache: $(elapsed "$t0") s"
}

# --- build from scratch ------------------------------------------------------
build() {
    local t0 mirror sec upd
    read -r mirror sec upd < <(detect_mirrors)
    [[ -n "$mirror" ]] || die "no '$SUITE' deb source found in the host's apt config; set MIRROR=..."
    log "mirror: $mirror  security: $sec  updates: $upd"

    rm -rf --one-file-system -- "$PARTIAL"

    t0=$(now)
    debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$PARTIAL" "$mirror" \
        > "$PARTIAL.debootstrap.log" 2>&1 ||
        { tail -n 30 "$PARTIAL.debootstrap.log" >&2; die "debootstrap failed"; }
    log "TIMING debootstrap: $(elapsed "$t0") s"

    # apt sources mirroring the host's (main, -updates, -security).
    {
        echo "deb $mirror $SUITE main"
        [[ "$upd" == 1 ]] && echo "deb $mirror $SUITE-updates main"
        [[ "$sec" != - ]] && echo "deb $sec $SUITE-security main"
    } > "$PARTIAL/etc/apt/sources.list"

    # No daemon may start inside the build chroot.
    printf '#!/bin/sh\nexit 101\n' > "$PARTIAL/usr/sbin/policy-rc.d"
    chmod 755 "$PARTIAL/usr/sbin/policy-rc.d"

    # Answer "no" to every DB / rabbit / keystone question so that no
    # database server or network is needed at install time.
    in_chroot debconf-set-selections <<'EOF'
magnum-common magnum/configure_db boolean false
magnum-common magnum/configure_rabbit boolean false
magnum-common magnum/configure_ksat boolean false
magnum-common magnum/configure_with_debconf boolean false
magnum-common magnum-common/dbconfig-install boolean false
magnum-api magnum/configure_api-endpoint boolean false
keystone keystone/configure_db boolean false
keystone keystone/dbconfig-install boolean false
keystone keystone/create-admin-tenant boolean false
keystone keystone/register-endpoint boolean false
keystone keystone/configure_rabbit boolean false
keystone keystone/configure_ksat boolean false
glance-common glance/configure_db boolean false
glance-common glance/configure_rabbit boolean false
glance-common glance/configure_ksat boolean false
glance-api glance/configure_api-endpoint boolean false
EOF

    t0=$(now)
    # Check-Valid-Until=false: tolerate a snapshot mirror with an old Release.
    in_chroot apt-get -q -o Acquire::Check-Valid-Until=false update > "$PARTIAL.apt.log" 2>&1 ||
        { tail -n 30 "$PARTIAL.apt.log" >&2; die "apt-get update failed"; }
    in_chroot apt-get -q -y "${APT_OPTS[@]}" install "${PACKAGES[@]}" >> "$PARTIAL.apt.log" 2>&1 ||
        { tail -n 30 "$PARTIAL.apt.log" >&2; die "apt-get install failed"; }
    log "TIMING apt-get install ${PACKAGES[*]}: $(elapsed "$t0") s"

    # Magnum as a deployed unit runs it, minus the servers: no database
    # server, no rabbit. The services start at boot.
    t0=$(now)
    in_chroot sed -i -e '/^\[DEFAULT\]/a transport_url = fake:/' \
        -e "/^\\[database\\]/a connection = $SQLITE" /etc/magnum/magnum.conf
    grep -q '^transport_url = fake:/' "$PARTIAL/etc/magnum/magnum.conf" &&
        grep -q "^connection = $SQLITE" "$PARTIAL/etc/magnum/magnum.conf" ||
        die "could not make magnum.conf DB-less (no [DEFAULT] or [database] section?)"
    in_chroot python3 -W ignore -c "from magnum.db.sqlalchemy import models; from sqlalchemy import create_engine; models.Base.metadata.create_all(create_engine('$SQLITE'))" ||
        die "could not create magnum's tables"
    in_chroot chown magnum:magnum /var/lib/magnum/magnum.sqlite
    in_chroot systemctl enable magnum-api.service magnum-conductor.service >> "$PARTIAL.apt.log" 2>&1 ||
        { tail -n 10 "$PARTIAL.apt.log" >&2; die "systemctl enable failed"; }
    in_chroot systemctl mask "${CONTROL_PLANE_UNITS[@]}" >> "$PARTIAL.apt.log" 2>&1 ||
        { tail -n 10 "$PARTIAL.apt.log" >&2; die "systemctl mask of the control plane failed"; }
    log "TIMING DB-less magnum: $(elapsed "$t0") s"

    # Tidy up: drop build-only bits and host-specific state.
    # Debian's python3-pip .deb of this release, kept outside apt's cache:
    # the unit-without-pip check serves it from a local apt repository (the
    # host cannot download another release's package).
    mkdir -p "$PARTIAL/var/cache/realunit-debs"
    cp "$PARTIAL"/var/cache/apt/archives/python3-pip_*.deb "$PARTIAL/var/cache/realunit-debs/" ||
        die "no python3-pip .deb in the build's apt cache"
    in_chroot apt-get clean
    rm -f "$PARTIAL/usr/sbin/policy-rc.d"
    rm -rf "$PARTIAL"/var/lib/apt/lists/* "$PARTIAL"/tmp/* "$PARTIAL"/var/tmp/*
    : > "$PARTIAL/etc/resolv.conf"      # host resolver is meaningless inside
    rm -f "$PARTIAL/etc/hostname"       # debootstrap copied the host's; use -M NAME
    : > "$PARTIAL/etc/machine-id"       # fresh id per boot (nspawn provides one)
    rm -f "$PARTIAL/var/lib/dbus/machine-id"
    {
        echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "suite=$SUITE"
        echo "recipe=$RECIPE"
        in_chroot dpkg-query -W -f='pkg ${Package}=${Version}\n' \
            "${PACKAGES[@]}" magnum-common python3-magnum systemd python3-pip
    } > "$PARTIAL/etc/realunit-release"
    mv "$PARTIAL.debootstrap.log" "$PARTIAL.apt.log" "$PARTIAL/var/log/" 2>/dev/null || true

    t0=$(now)
    tar -C "$PARTIAL" -c --numeric-owner --xattrs --xattrs-include='*' --acls . |
        zstd -q -T0 -3 -o "$CACHE.tmp" -f
    mv -f -- "$CACHE.tmp" "$CACHE"
    log "TIMING cache tarball ($(du -h "$CACHE" | cut -f1)): $(elapsed "$t0") s"

    rm -rf --one-file-system -- "$ROOT"
    mv -- "$PARTIAL" "$ROOT"
}

# The cache's identity: recipe, size and mtime.
cache_id() { echo "$RECIPE $(stat -c '%s %Y' -- "$CACHE")"; }

ensure_host_tools
mkdir -p -- "$(dirname "$ROOT")" "$(dirname "$CACHE")"
if [[ $REBUILD -eq 0 && -f "$CACHE" && "$(cat -- "$CACHE.recipe" 2>/dev/null)" != "$RECIPE" ]]; then
    log "cache $CACHE is from another recipe ($(cat -- "$CACHE.recipe" 2>/dev/null || echo none), want $RECIPE): rebuilding"
    REBUILD=1
fi
if [[ $REBUILD -eq 0 && -f "$CACHE" && -d "$ROOT" && "$(cat -- "$PRISTINE" 2>/dev/null)" == "$(cache_id)" ]]; then
    log "$ROOT is pristine (from the current cache, booted only read-only since)"
elif [[ $REBUILD -eq 0 && -f "$CACHE" ]]; then
    ensure_not_in_use
    rm -f -- "$PRISTINE"
    restore
    cache_id > "$PRISTINE"
else
    ensure_not_in_use
    rm -f -- "$PRISTINE"
    build
    echo "$RECIPE" > "$CACHE.recipe"
    cache_id > "$PRISTINE"
fi
log "ready: $ROOT ($(grep -m1 '^pkg magnum-api=' "$ROOT/etc/realunit-release" | cut -d' ' -f2))"
log "TIMING total: $(elapsed "$T_TOTAL") s"
