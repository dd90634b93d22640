#!/usr/bin/env bash
# tests/realunit/unit.sh - run a rootfs (see build-rootfs.sh) as a "real
# unit": systemd as PID 1 under systemd-nspawn, private network, driven from
# the host.
#
# CLI:
#   unit.sh boot ROOT NAME [NSPAWN_ARGS...]  boot, wait for systemd, print leader PID
#   unit.sh exec NAME CMD [ARGS...]          run CMD inside (clean env), return its rc
#   unit.sh copy-in NAME SRC DST             copy a host file/dir into the unit
#   unit.sh stop NAME                        power off; kill only our own nspawn if needed
#   unit.sh leader NAME                      print the leader (container PID 1) host PID
#   unit.sh list                             list units with state under $REALUNIT_STATE
#
# Library: `source unit.sh` defines realunit_boot, realunit_exec,
# realunit_copy_in, realunit_stop, realunit_leader, realunit_list (same
# arguments).  Sourcing changes no shell options; the CLI runs with
# `set -euo pipefail`.
#
# State lives in $REALUNIT_STATE/NAME/ (default /run/magnum-capi-realunit/NAME/):
#   root, nspawn.pid, nspawn.start (starttime from /proc/PID/stat),
#   leader.pid, console.log (nspawn + console output; kept after stop).
#
# A boot with --volatile=overlay (or yes/state) keeps ROOT unchanged: all
# writes go to a tmpfs thrown away at stop. Any other boot may write to ROOT,
# so it removes ROOT.pristine (see build-rootfs.sh), and the next
# build-rootfs.sh restores ROOT from the cache.
#
# Host without systemd (this setup): nspawn is started in its own cgroup
# <hierarchy>/magnum-capi-realunit/NAME (removed on stop), so units do not
# share the payload/supervisor cgroups nspawn creates below it.  On a host
# where systemd is PID 1, run unit.sh from a delegated scope instead
# (systemd-run --scope -p Delegate=yes ...); that path is untested.
#
# Tunables: REALUNIT_BOOT_TIMEOUT (s, default 120), REALUNIT_STOP_TIMEOUT
# (s, default 60).

REALUNIT_STATE=${REALUNIT_STATE:-/run/magnum-capi-realunit}
REALUNIT_CGROUP=magnum-capi-realunit
REALUNIT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

_ru_log() { printf '[unit] %s\n' "$*" >&2; }
_ru_die() { _ru_log "ERROR: $*"; return 1; }

_ru_check_name() {
    [[ "${1:-}" =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,62}$ ]] || _ru_die "bad unit name '${1:-}' (use [A-Za-z0-9-])"
}

# Field 22 of /proc/PID/stat (process start time): guards against PID reuse.
_ru_starttime() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }              # drop "pid (comm) " (comm may contain spaces)
    # shellcheck disable=SC2086
    set -- $stat
    echo "${20}"
}

# True while the recorded nspawn process of unit $1 is alive (not a zombie).
_ru_nspawn_alive() {
    local d=$REALUNIT_STATE/$1 pid st state
    [[ -f "$d/nspawn.pid" ]] || return 1
    pid=$(cat "$d/nspawn.pid")
    st=$(_ru_starttime "$pid") || return 1
    [[ "$st" == "$(cat "$d/nspawn.start" 2>/dev/null)" ]] || return 1
    state=$(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || return 1
    [[ "$state" != Z && "$state" != X ]]
}

# Print the host PID of the container's PID 1: the child of nspawn that is
# PID 1 in its own PID namespace (last NSpid field is 1).  nspawn briefly has
# other children during setup, so the namespace alone is not enough.
_ru_find_leader() {
    local npid=$1 c nspid
    for c in $(cat /proc/"$npid"/task/*/children 2>/dev/null); do
        nspid=$(awk '/^NSpid:/ { print $NF }' "/proc/$c/status" 2>/dev/null) || continue
        if [[ "$nspid" == 1 && "$c" != 1 ]]; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

# Cgroup directories for unit $1, one per hierarchy systemd uses
# (cgroup2-only host: one; hybrid: unified + name=systemd; legacy: systemd).
_ru_cgroup_dirs() {
    local h
    if [[ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" == cgroup2fs ]]; then
        echo "/sys/fs/cgroup/$REALUNIT_CGROUP/$1"
        return
    fi
    for h in unified systemd; do
        mountpoint -q "/sys/fs/cgroup/$h" && echo "/sys/fs/cgroup/$h/$REALUNIT_CGROUP/$1"
    done
    return 0
}

# Remove unit $1's (now empty) cgroup trees, deepest first, and their
# parent when no other unit uses it.
_ru_cgroup_cleanup() {
    local cg
    for cg in $(_ru_cgroup_dirs "$1"); do
        [[ -d "$cg" ]] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
        rmdir "$(dirname "$cg")" 2>/dev/null || true
    done
    return 0
}

realunit_leader() {
    _ru_check_name "${1:-}" || return 1
    local d=$REALUNIT_STATE/$1
    _ru_nspawn_alive "$1" || _ru_die "unit '$1' is not running" || return 1
    cat "$d/leader.pid"
}

# realunit_exec NAME CMD...: run CMD in all of the unit's namespaces, with its
# root and cwd, a clean environment and the standard PATH.  Returns CMD's rc.
realunit_exec() {
    local name=${1:-} leader
    _ru_check_name "$name" || return 1
    shift
    [[ $# -gt 0 ]] || _ru_die "exec: no command given" || return 1
    leader=$(realunit_leader "$name") || return 1
    nsenter -t "$leader" -a env -i PATH="$REALUNIT_PATH" "$@"
}

# Boot failed: show the console tail, tear the half-booted unit down.
_ru_boot_fail() {
    local name=$1
    shift
    tail -n 20 "$REALUNIT_STATE/$name/console.log" >&2 2>/dev/null || true
    _ru_log "ERROR: boot: $*"
    realunit_stop "$name" || true
    return 1
}

# realunit_boot ROOT NAME [NSPAWN_ARGS...]: prints the leader PID on stdout.
realunit_boot() {
    local root=${1:-} name=${2:-} d npid leader state t0 deadline
    [[ -n "$root" && -d "$root" ]] || _ru_die "boot: ROOT '$root' is not a directory" || return 1
    _ru_check_name "$name" || return 1
    shift 2
    root=$(realpath -- "$root")
    [[ -x "$root/lib/systemd/systemd" ]] || _ru_die "boot: $root has no systemd" || return 1
    d=$REALUNIT_STATE/$name
    if _ru_nspawn_alive "$name"; then
        _ru_die "boot: unit '$name' is already running (nspawn pid $(cat "$d/nspawn.pid"))"
        return 1
    fi
    rm -rf -- "$d"
    mkdir -p -- "$d"
    echo "$root" > "$d/root"
    # Only a volatile boot leaves ROOT as it was (build-rootfs.sh's stamp).
    case " $* " in
        *" --volatile=overlay "*|*" --volatile=yes "*|*" --volatile=state "*|*" --volatile "*) ;;
        *) rm -f -- "$root.pristine" ;;
    esac
    _ru_cgroup_cleanup "$name"

    t0=$(date +%s.%N)
    # setsid: detach from the caller's session/process group so the unit
    # outlives this command.  The inner shell records its own PID, moves
    # itself into the unit's cgroups, then execs nspawn (so the PID is
    # nspawn's even if setsid had to fork).
    # shellcheck disable=SC2016
    # shellcheck disable=SC2046
    setsid /bin/sh -ec '
        echo $$ > "$1"; shift
        while [ "$1" != -- ]; do mkdir -p "$1"; echo $$ > "$1/cgroup.procs"; shift; done
        shift; exec "$@"' sh "$d/nspawn.pid" $(_ru_cgroup_dirs "$name") -- \
        systemd-nspawn -D "$root" --boot --register=no --keep-unit -M "$name" \
        --private-network --console=read-only "$@" \
        < /dev/null > "$d/console.log" 2>&1 &

    # Wait for the pid file, then for nspawn's child in a new PID namespace.
    deadline=$((SECONDS + ${REALUNIT_BOOT_TIMEOUT:-120}))
    while [[ ! -s "$d/nspawn.pid" ]]; do
        ((SECONDS < deadline)) || { _ru_boot_fail "$name" "nspawn did not start"; return 1; }
        sleep 0.02
    done
    npid=$(cat "$d/nspawn.pid")
    _ru_starttime "$npid" > "$d/nspawn.start" || true
    until leader=$(_ru_find_leader "$npid"); do
        if ! _ru_nspawn_alive "$name" || ((SECONDS >= deadline)); then
            _ru_boot_fail "$name" "no container leader under nspawn pid $npid"
            return 1
        fi
        sleep 0.05
    done
    echo "$leader" > "$d/leader.pid"

    # Wait until systemd inside reports running (or degraded).
    while :; do
        if ! _ru_nspawn_alive "$name"; then
            _ru_boot_fail "$name" "nspawn exited during boot"
            return 1
        fi
        state=$(timeout 10 nsenter -t "$leader" -a env -i PATH="$REALUNIT_PATH" \
                systemctl is-system-running 2>/dev/null) || true
        case "$state" in
            running) break ;;
            degraded)
                _ru_log "warning: '$name' is degraded; failed units:"
                timeout 10 nsenter -t "$leader" -a env -i PATH="$REALUNIT_PATH" \
                    systemctl --failed --no-legend --plain >&2 || true
                break ;;
            maintenance|stopping)
                _ru_boot_fail "$name" "systemd in '$name' is '$state'"
                return 1 ;;
        esac
        if ((SECONDS >= deadline)); then
            _ru_boot_fail "$name" "timed out waiting for '$name' (last state: '${state:-none}')"
            return 1
        fi
        sleep 0.2
    done
    _ru_log "booted '$name' from $root in $(awk -v a="$t0" -v b="$(date +%s.%N)" \
        'BEGIN { printf "%.1f", b - a }') s (nspawn pid $npid, leader pid $leader, state $state)"
    echo "$leader"
}

# realunit_copy_in NAME SRC DST: a file goes to path DST (or into DST/ if DST
# is an existing directory inside), keeping its mode; a directory's contents
# are copied into directory DST (created).  Owner becomes root.
realunit_copy_in() {
    local name=${1:-} src=${2:-} dst=${3:-}
    _ru_check_name "$name" || return 1
    [[ -n "$src" && -n "$dst" ]] || _ru_die "usage: copy-in NAME SRC DST" || return 1
    if [[ -d "$src" ]]; then
        tar -C "$src" -cf - . | realunit_exec "$name" /bin/sh -ec \
            'mkdir -p "$1"; tar -C "$1" -xf - --no-same-owner' sh "$dst"
    elif [[ -f "$src" ]]; then
        realunit_exec "$name" /bin/sh -ec \
            'd=$1; [ -d "$d" ] && d=${d%/}/$3; cat > "$d"; chmod "$2" "$d"' \
            sh "$dst" "$(stat -c %a -- "$src")" "$(basename -- "$src")" < "$src"
    else
        _ru_die "copy-in: '$src' is not a file or directory"
    fi
}

# realunit_stop NAME: systemctl poweroff inside, then SIGTERM (nspawn turns it
# into an orderly halt), then SIGKILL — each only to the recorded nspawn PID
# (verified by start time) and, last, the leader PID under it.
realunit_stop() {
    local name=${1:-} d npid leader t0 deadline
    _ru_check_name "$name" || return 1
    d=$REALUNIT_STATE/$name
    [[ -d "$d" ]] || { _ru_log "unit '$name' has no state; nothing to stop"; return 0; }
    t0=$(date +%s.%N)
    if _ru_nspawn_alive "$name"; then
        npid=$(cat "$d/nspawn.pid")
        leader=$(cat "$d/leader.pid" 2>/dev/null || true)
        if [[ -n "$leader" ]]; then
            # timeout: systemctl blocks for minutes if PID 1 is hung.
            timeout 15 nsenter -t "$leader" -a env -i PATH="$REALUNIT_PATH" \
                systemctl poweroff --no-block >/dev/null 2>&1 || true
            deadline=$((SECONDS + ${REALUNIT_STOP_TIMEOUT:-60}))
            while _ru_nspawn_alive "$name" && ((SECONDS < deadline)); do sleep 0.1; done
        fi
        if _ru_nspawn_alive "$name"; then
            _ru_log "still running; sending SIGTERM (orderly halt) to nspawn pid $npid"
            kill -TERM "$npid" 2>/dev/null || true
            deadline=$((SECONDS + 20))
            while _ru_nspawn_alive "$name" && ((SECONDS < deadline)); do sleep 0.1; done
        fi
        if _ru_nspawn_alive "$name"; then
            _ru_log "still alive; sending SIGKILL to nspawn pid $npid and leader $leader"
            if [[ -n "$leader" ]]; then kill -KILL "$leader" 2>/dev/null || true; fi
            kill -KILL "$npid" 2>/dev/null || true
            sleep 0.5
        fi
        _ru_nspawn_alive "$name" && { _ru_die "could not stop '$name' (pid $npid)"; return 1; }
    fi
    _ru_cgroup_cleanup "$name"
    rm -f -- "$d/nspawn.pid" "$d/nspawn.start" "$d/leader.pid"
    _ru_log "stopped '$name' in $(awk -v a="$t0" -v b="$(date +%s.%N)" \
        'BEGIN { printf "%.1f", b - a }') s"
}

realunit_list() {
    local d n
    for d in "$REALUNIT_STATE"/*/; do
        [[ -f "$d/root" ]] || continue
        n=$(basename "$d")
        if _ru_nspawn_alive "$n"; then
            echo "$n running nspawn=$(cat "$d/nspawn.pid") leader=$(cat "$d/leader.pid" 2>/dev/null) root=$(cat "$d/root")"
        elif [[ -f "$d/nspawn.pid" ]]; then
            echo "$n dead (run: unit.sh stop $n) root=$(cat "$d/root")"
        else
            echo "$n stopped root=$(cat "$d/root")"
        fi
    done
}

_ru_main() {
    local cmd=${1:-}
    shift || true
    case "$cmd" in
        boot)    [[ $# -ge 2 ]] || { echo "usage: $0 boot ROOT NAME [NSPAWN_ARGS...]" >&2; return 2; }
                 realunit_boot "$@" ;;
        exec)    realunit_exec "$@" ;;
        copy-in) [[ $# -eq 3 ]] || { echo "usage: $0 copy-in NAME SRC DST" >&2; return 2; }
                 realunit_copy_in "$@" ;;
        stop)    [[ $# -eq 1 ]] || { echo "usage: $0 stop NAME" >&2; return 2; }
                 realunit_stop "$1" ;;
        leader)  realunit_leader "$@" ;;
        list)    realunit_list ;;
        *)       sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; return 2 ;;
    esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    _ru_main "$@"
fi
