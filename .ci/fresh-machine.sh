#!/usr/bin/env bash
# The check to run before saying an issue is resolved: strip this machine to
# what a new machine of its kind has, clone, and run the README's two
# commands (then, with --ci, what CI runs). A green run on a machine that
# keeps what earlier sessions installed by hand proves nothing about set-up.
#
#   sudo bash .ci/fresh-machine.sh [--ci] [SOURCE]
#
# SOURCE: what to clone (a git URL or path; default: this checkout, at its
# HEAD commit, so commit first). The clone goes to FRESH_DIR (default
# /var/tmp/magnum-capi-fresh/<date>); its logs are kept beside it.
#
# Stripped (what a new machine of this kind lacks, ../shared/FACTS.md and
# the env notes): the Debian packages musl-tools, kubernetes-client,
# qemu-user-static, debootstrap and systemd-container; the musl and aarch64
# rustup targets; cargo-fuzz; the real-unit caches; pip's and cargo's
# download caches. Not stripped: what a new machine has (rustup's stable
# toolchain, gcc, python3 3.11 with pip, zip, file, zstd, strace, openssl,
# python3-venv, git).
#
# Then, each timed, each failing the run if it fails:
#   1. make demo            (cold: every set-up step runs here)
#   2. make test            (the real-client tests must run, not skip)
#   3. make demo            (again: the set-up step must say it did nothing)
#   4. CI=true bash .ci/run (with --ci)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ci=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --ci) ci=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
SOURCE=${1:-$HERE}
[[ $EUID -eq 0 ]] || { echo "fresh-machine: run as root (it removes Debian packages)" >&2; exit 1; }

stamp=$(date -u +%Y%m%dT%H%M%S)
FRESH_DIR=${FRESH_DIR:-/var/tmp/magnum-capi-fresh/$stamp}
LOGS=$FRESH_DIR.logs
mkdir -p "$LOGS"
summary=$LOGS/summary.txt
note() { echo "fresh-machine: $*" | tee -a "$summary"; }

# --- strip -----------------------------------------------------------------------
note "stripping the machine ($(date -u))"
# A running real unit holds the caches; stop any first.
if [[ -x $HERE/tests/realunit/unit.sh ]]; then
    for d in "${MAGNUM_CAPI_REALUNIT_DIR:-/var/tmp/magnum-capi-realunit}"/state/*/; do
        [[ -d $d ]] && bash "$HERE/tests/realunit/unit.sh" stop "$(basename "$d")" >/dev/null 2>&1 || true
    done
fi
# kubectl: a new machine of this kind has google-cloud-cli's `kubectl` package
# (its /usr/bin/kubectl); removed too, so the install path of Debian's
# kubernetes-client is what is checked.
pkgs=(musl-tools kubernetes-client kubectl qemu-user-static debootstrap systemd-container)
installed=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' && installed+=("$p")
done
if [[ ${#installed[@]} -gt 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${installed[@]}" >"$LOGS/strip-apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get autoremove -y -qq >>"$LOGS/strip-apt.log" 2>&1 || true
fi
note "  removed packages: ${installed[*]:-none were installed}"
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' && { note "  $p is still installed"; exit 1; }
done
for t in kubectl x86_64-linux-musl-gcc qemu-aarch64-static debootstrap systemd-nspawn; do
    if command -v "$t" >/dev/null; then note "  $t is still on PATH ($(command -v "$t")): remove it by hand"; exit 1; fi
done
for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    rustup target remove "$t" >/dev/null 2>&1 || true
done
note "  rust targets left: $(rustup target list --installed | tr '\n' ' ')"
rm -f "${CARGO_HOME:-$HOME/.cargo}/bin/cargo-fuzz" "${CARGO_HOME:-$HOME/.cargo}/bin/cargo-zigbuild"
rm -rf "${MAGNUM_CAPI_REALUNIT_DIR:-/var/tmp/magnum-capi-realunit}"
rm -rf "${XDG_CACHE_HOME:-$HOME/.cache}/pip" "${CARGO_HOME:-$HOME/.cargo}/registry" "${CARGO_HOME:-$HOME/.cargo}/git"
note "  removed cargo-fuzz, the real-unit caches, pip's and cargo's download caches"

# --- clone -----------------------------------------------------------------------
rm -rf "$FRESH_DIR"
git clone -q "$SOURCE" "$FRESH_DIR"
cd "$FRESH_DIR"
note "cloned $SOURCE at $(git rev-parse --short HEAD) into $FRESH_DIR"

# --- the README's commands -------------------------------------------------------
run() {   # run NAME CMD...: timed, logged, fatal on failure
    local name=$1 t0 rc=0
    shift
    t0=$(date +%s)
    "$@" >"$LOGS/$name.log" 2>&1 || rc=$?
    note "$name: exit $rc in $(( $(date +%s) - t0 )) s (log: $LOGS/$name.log)"
    if [[ $rc -ne 0 ]]; then
        tail -40 "$LOGS/$name.log" >&2
        exit 1
    fi
}
run make-demo make demo
grep '^deps: ' "$LOGS/make-demo.log" | tee -a "$summary"

run make-test make test
if grep -n 'SKIPPED' "$LOGS/make-test.log"; then
    note "make test skipped real-client tests (above): not a pass"
    exit 1
fi
grep '^deps: ' "$LOGS/make-test.log" | tee -a "$summary"
grep -E '^test result:' "$LOGS/make-test.log" | awk '{p+=$4; f+=$6; i+=$8} END {print "fresh-machine: make test: " p " passed, " f " failed, " i " ignored"}' | tee -a "$summary"

run make-demo-again make demo
deps_lines=$(grep -c '^deps: ' "$LOGS/make-demo-again.log" || true)
if [[ $deps_lines -ne 1 ]] || ! grep -q '^deps: nothing to install' "$LOGS/make-demo-again.log"; then
    note "the second make demo did set-up work (or said so in more than one line):"
    grep '^deps: ' "$LOGS/make-demo-again.log" >&2 || true
    exit 1
fi
note "second make demo: $(grep '^deps: ' "$LOGS/make-demo-again.log")"

if [[ $ci -eq 1 ]]; then
    run ci env CI=true bash .ci/run
fi
note "all passed; summary in $summary"
