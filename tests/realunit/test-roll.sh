#!/usr/bin/env bash
# tests/realunit/test-roll.sh - part of `make test-real`: three booted
# magnum units (real systemd, real magnum) of one magnum-capi application,
# sharing the peer relation `restart` through the fake hook tools (one store,
# bind-mounted into each unit; relation settings committed only when a hook
# exits 0, as Juju's agent does). Hooks are delivered one at a time, as
# Juju's agents would deliver them: restart-relation-changed to the others
# whenever a hook changed the relation.
#
#   - a bundle deploy onto running magnum: no install restarts magnum (none
#     sees its peers yet; goal-state says they are coming), then the roll
#     restarts each unit in turn (issue 19, item 5);
#   - a change whose restart systemd refuses (an ExecStartPre fails): the
#     first unit rolls back once, the roll halts, and every unit says so;
#     the others keep the config they run and never restart (issue 23).
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SETTLE=3
BASE=${NAME:-magnum-capi-roll}
UNITS=("$BASE-0" "$BASE-1" "$BASE-2")
UNIT_PEERS=/var/lib/juju/peers
PEERS_HOST=$LOGDIR/peers
FAKE_PEERS=$UNIT_PEERS
source "$RU_HERE/assert.sh"
svc() { U systemctl show -p "$2" --value "$1.service"; }
start_ts() { svc "$1" ExecMainStartTimestampMonotonic; }

# use I: the commands below (U, run_dispatch, world_set, juju_status) act
# on unit I, as Juju unit magnum-capi/I.
use() { NAME=${UNITS[$1]}; UNIT_NAME=magnum-capi/$1; }
starts() { local i out=""; for i in 0 1 2; do use "$i"; out+="$(start_ts magnum-conductor) "; done; echo "${out% }"; }
statuses() { local i; for i in 0 1 2; do use "$i"; printf 'magnum-capi/%s %s\n' "$i" "$(juju_status)"; done; }

teardown_all() {
    local rc=$? n
    for n in "${UNITS[@]}"; do
        if realunit_leader "$n" >/dev/null 2>&1; then
            timeout 10 nsenter -t "$(realunit_leader "$n")" -a env -i PATH="$UNIT_PATH" \
                systemctl kill --signal=SIGKILL magnum-api.service magnum-conductor.service >/dev/null 2>&1 || true
            realunit_stop "$n" >/dev/null 2>>"$LOGDIR/stop.log" || rc=1
        fi
    done
    exit "$rc"
}

# The peer store: every unit of the application in goal-state, none in
# the relation's scope before its install; the leader is magnum-capi/0.
store() { python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))[sys.argv[2]], sort_keys=True))' "$PEERS_HOST/peers.json" "$1"; }
members() { python3 -c 'import json,sys; print(" ".join(m.split("/")[1] for m in json.load(open(sys.argv[1]))["members"]))' "$PEERS_HOST/peers.json"; }

# commit I RC: Juju's Flush (context.go): what the hook relation-set goes to
# the store only when it exited 0.
commit() {
    local pending
    use "$1"
    pending=$(U sh -c "cat $FAKE_DIR/relation-pending.json 2>/dev/null; rm -f $FAKE_DIR/relation-pending.json")
    [[ "$2" -eq 0 && -n "$pending" ]] || return 0
    python3 - "$PEERS_HOST/peers.json" "magnum-capi/$1" "$pending" <<'PY'
import json, os, sys
path, me, changes = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
w = json.load(open(path))
for scope, target in (("app", w.setdefault("app", {})), ("unit", w.setdefault("units", {}).setdefault(me, {}))):
    for k, v in (changes.get(scope) or {}).items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = v
json.dump(w, open(path + ".tmp", "w"), indent=1)
os.rename(path + ".tmp", path)
PY
}

QUEUE=()
# hook I HOOK: run it on unit I; the others get restart-relation-changed
# when it changed the relation; after install the unit enters the scope and
# each side gets restart-relation-joined.
hook() {
    local i=$1 h=$2 before after rc=0 j
    before="$(store app)$(store units)"
    use "$i"
    run_dispatch "hooks/$h" || rc=$?
    commit "$i" "$rc"
    [[ $rc -eq 0 ]] || fail "magnum-capi/$i $h exits 0 (rc=$rc)" "$(tail -n 12 "$HOOK_LOG")"
    if [[ $h == install ]]; then
        for j in $(members); do QUEUE+=("$j:restart-relation-joined" "$i:restart-relation-joined"); done
        python3 -c 'import json,sys; p=sys.argv[1]; w=json.load(open(p)); w["members"].append(sys.argv[2]); json.dump(w, open(p,"w"), indent=1)' \
            "$PEERS_HOST/peers.json" "magnum-capi/$i"
    fi
    after="$(store app)$(store units)"
    if [[ "$before" != "$after" ]]; then
        for j in $(members); do [[ $j == "$i" ]] || QUEUE+=("$j:restart-relation-changed"); done
    fi
}
# settle: deliver the queue in order; when it is empty, update-status on
# every unit (grants time out, units retry); done when that changes nothing.
settle() {
    local step e
    for step in $(seq 1 80); do
        if [[ ${#QUEUE[@]} -eq 0 ]]; then
            for e in $(members); do hook "$e" update-status; done
            [[ ${#QUEUE[@]} -eq 0 ]] && return 0
            continue
        fi
        e=${QUEUE[0]}
        QUEUE=("${QUEUE[@]:1}")
        hook "${e%%:*}" "${e#*:}"
    done
    fail "the roll settles within 80 hooks" "$(statuses)"
}

section "three magnum units boot"
ensure_inputs
"$RU_HERE/build-rootfs.sh" "$ROOT" >"$LOGDIR/build-rootfs.log" 2>&1 || { tail -n 20 "$LOGDIR/build-rootfs.log" >&2; ru_die "build-rootfs.sh failed"; }
mkdir -p "$PEERS_HOST"
printf '%s\n' '{"leader": "magnum-capi/0", "application": ["magnum-capi/0", "magnum-capi/1", "magnum-capi/2"], "members": [], "app": {}, "units": {}}' \
    >"$PEERS_HOST/peers.json"
trap teardown_all EXIT
trap 'exit 130' INT TERM
for i in 0 1 2; do
    use "$i"
    realunit_boot "$ROOT" "$NAME" --volatile=overlay --bind="$PEERS_HOST:$UNIT_PEERS" >/dev/null 2>"$LOGDIR/boot-$i.log" ||
        { cat "$LOGDIR/boot-$i.log" >&2; ru_die "boot of $NAME failed"; }
done
for i in 0 1 2; do
    use "$i"
    wait_for 90 services_healthy || ru_die "$NAME: magnum did not come up after boot"
    install_charm
done
printf 'units %s booted, magnum up, charm installed (%ss)\n' "${UNITS[*]}" "$(since "$T_START")"

section "a bundle deploy onto running magnum: no install restarts, then one unit at a time"
booted=$(starts)
for i in 0 1 2; do hook "$i" install; done
expect "no unit restarted magnum in its install (none sees its peers yet)" "$booted" "$(starts)"
for i in 0 1 2; do
    use "$i"
    st=$(juju_status)
    check "magnum-capi/$i waits for its turn ($st)" grep -q '^waiting: restart queued: .*deploying too' <<<"$st"
done
settle
for i in 0 1 2; do
    use "$i"
    expect "magnum-capi/$i active after the roll" "active: magnum-capi-helm $DRIVER_VERSION ready" "$(juju_status)"
    check "magnum-capi/$i: both services healthy" services_healthy
done
after=$(starts)
read -r -a b <<<"$booted"; read -r -a a <<<"$after"
for i in 0 1 2; do check "magnum-capi/$i restarted in its turn" test "${a[$i]}" != "${b[$i]}"; done

section "a change systemd refuses to start: the first unit rolls back, the roll halts, every unit says so"
for i in 0 1 2; do
    use "$i"
    printf '%s\n' '[Service]' \
        "ExecStartPre=/bin/sh -c '! grep -qx \"namespace_prefix = refused\" /etc/magnum/magnum.conf.d/99-capi.conf'" |
        U sh -ec "mkdir -p /etc/systemd/system/magnum-conductor.service.d && cat > /etc/systemd/system/magnum-conductor.service.d/50-test-precheck.conf"
    U systemctl daemon-reload
    good[$i]=$(U sha256sum /etc/magnum/magnum.conf.d/99-capi.conf | cut -d' ' -f1)
    world_set config.namespace-prefix '"refused"'
done
before=$(starts)
# Juju delivers config-changed to every unit; the leader last here.
for i in 1 2 0; do hook "$i" config-changed; done
settle
statuses >"$LOGDIR/roll-statuses.txt"
cat "$LOGDIR/roll-statuses.txt"
rolled=$(grep -c 'blocked: restart unhealthy, rolled back to the last good config: magnum-conductor: start job failed' "$LOGDIR/roll-statuses.txt")
halted=$(grep -c 'blocked: rolling restart halted: ' "$LOGDIR/roll-statuses.txt")
expect "one unit tried the change: its start job failed and it rolled back" 1 "$rolled"
expect "the two others say the roll halted" 2 "$halted"
read -r -a b <<<"$before"; read -r -a a <<<"$(starts)"
changed=0
for i in 0 1 2; do [[ "${a[$i]}" != "${b[$i]}" ]] && changed=$((changed + 1)); done
expect "only that unit's magnum-conductor was (re)started" 1 "$changed"
for i in 0 1 2; do
    use "$i"
    expect "magnum-capi/$i runs on its last good 99-capi.conf" "${good[$i]}" "$(U sha256sum /etc/magnum/magnum.conf.d/99-capi.conf | cut -d' ' -f1)"
    check "magnum-capi/$i: both services healthy" wait_for 30 services_healthy
done
check "the leader recorded the halt in the application data" grep -q '"halted"' <<<"$(store app)"

section "the good config again: every unit active, nothing restarted"
before=$(starts)
for i in 0 1 2; do
    use "$i"
    U rm -f /etc/systemd/system/magnum-conductor.service.d/50-test-precheck.conf
    U systemctl daemon-reload
    world_set config.namespace-prefix null
done
for i in 1 2 0; do hook "$i" config-changed; done
settle
for i in 0 1 2; do
    use "$i"
    expect "magnum-capi/$i active" "active: magnum-capi-helm $DRIVER_VERSION ready" "$(juju_status)"
done
expect "nothing restarted" "$before" "$(starts)"

section "done"
printf 'logs: %s\n' "$LOGDIR"
finish test-roll
