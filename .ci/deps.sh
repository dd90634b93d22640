#!/usr/bin/env bash
# The one set-up step: what every make target needs, installed only when it
# is missing. `make deps` runs it for everything; each make target runs it
# for its own groups first (Makefile DEPS_*), and .ci/run calls it too, so
# this file is the only list of what the project needs from a machine.
#
#   bash .ci/deps.sh [GROUP...]      (no GROUP: all)
#
# Groups:
#   build   the static amd64 charm: musl rustup target, musl-tools (ring
#           compiles C with x86_64-linux-musl-gcc), zip, file
#   arm64   the arm64 charm: aarch64 musl target, zig + cargo-zigbuild (a
#           venv), qemu-user-static (CI runs the arm64 binary)
#   test    make test: kubectl (kubernetes-client), python3-venv, the
#           oslo and openstack venvs (tests/venvs)
#   lint    rustfmt, clippy, charmcraft and charm-tools (a venv)
#   real    make test-real/demo/bench: debootstrap, systemd-container,
#           zstd, strace, openssl, file (and root: systemd-nspawn)
#   fuzz    cargo-fuzz
#   bench   the system Python's venv module (the ops charm's venv)
#
# A machine that has everything gets one line and no work. Missing Debian
# packages are installed with one `apt-get update` and one install when
# root; when not root, the script names them and the exact command, and
# fails before any build starts. Rust targets, components, venvs and cargo
# tools are per-user and installed either way.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

# Pins (the venvs' pins stay in tests/venvs/*.sh with their checks).
ZIG_PINS="ziglang==0.17.1 cargo-zigbuild==0.24.1"
LINT_PINS="charmcraft==4.5.0 charm-tools==3.0.9"
CARGO_FUZZ_VERSION=0.13.2

ALL=(build arm64 test lint real fuzz bench)
groups=("$@")
[[ ${#groups[@]} -gt 0 ]] || groups=("${ALL[@]}")
for g in "${groups[@]}"; do
    [[ " ${ALL[*]} all " == *" $g "* ]] || { echo "deps: unknown group '$g' (groups: ${ALL[*]} all)" >&2; exit 2; }
    [[ $g != all ]] || groups=("${ALL[@]}")
done
want() { [[ " ${groups[*]} " == *" $1 "* ]]; }

start=$(date +%s%N)
did=()          # what this run installed, for the summary line
say() { echo "deps: $*"; }
die() { echo "deps: $*" >&2; exit 1; }

command -v cargo >/dev/null && command -v rustup >/dev/null ||
    die "cargo and rustup are needed (https://rustup.rs), and are not on PATH"

# --- Debian packages: PACKAGE PROBE WHY --------------------------------------
# PROBE is a command that succeeds when the package's part is present (a
# command on PATH, mostly), so a tool installed another way also counts.
apt_need=() apt_why=() apt_norec=()
need_apt() {   # need_apt PACKAGE WHY PROBE...
    local pkg=$1 why=$2
    shift 2
    "$@" >/dev/null 2>&1 && return 0
    [[ " ${apt_need[*]} " == *" $pkg "* ]] && return 0
    apt_need+=("$pkg")
    apt_why+=("$pkg ($why)")
}
has() { command -v "$1"; }

if want build; then
    need_apt musl-tools "x86_64-linux-musl-gcc: ring's C in the static build" has x86_64-linux-musl-gcc
    need_apt zip "packs the .charm" has zip
    need_apt file "checks the binary is static" has file
fi
if want arm64; then
    need_apt qemu-user-static "runs the arm64 binary in CI" has qemu-aarch64-static
fi
if want test; then
    need_apt kubernetes-client "kubectl, the real client the test Kubernetes API is checked against" has kubectl
fi
if want test || want lint || want arm64 || want bench; then
    # The venvs are made with python3 (tests/venvs, lint, zig) and, for
    # bench, with the system /usr/bin/python3: both need venv + ensurepip.
    need_apt python3-venv "python3 -m venv" python3 -c 'import venv, ensurepip'
    if [[ -x /usr/bin/python3 ]]; then
        need_apt python3-venv "python3 -m venv" /usr/bin/python3 -c 'import venv, ensurepip'
    fi
fi
if want real; then
    need_apt debootstrap "builds the real unit's root filesystem" has debootstrap
    need_apt systemd-container "systemd-nspawn boots the real unit" has systemd-nspawn
    need_apt zstd "the root filesystem cache" has zstd
    need_apt strace "traces the hooks on the real unit" has strace
    need_apt openssl "the test Kubernetes API's certificates" has openssl
    need_apt file "checks the binary is static" has file
fi

if [[ ${#apt_need[@]} -gt 0 ]]; then
    # No recommends: systemd-container would pull libnss-mymachines, which
    # edits the host's /etc/nsswitch.conf.
    cmd="apt-get install -y --no-install-recommends ${apt_need[*]}"
    if [[ $EUID -ne 0 ]]; then
        {
            echo "deps: missing Debian packages:"
            printf '  %s\n' "${apt_why[@]}"
            echo "deps: install them as root, then run make again:"
            echo "  sudo apt-get update && sudo $cmd"
        } >&2
        exit 1
    fi
    say "installing Debian packages: ${apt_why[*]}"
    log=$(mktemp)
    apt-get update -qq >"$log" 2>&1 || { cat "$log" >&2; die "apt-get update failed"; }
    DEBIAN_FRONTEND=noninteractive $cmd -qq >"$log" 2>&1 || { tail -30 "$log" >&2; die "'$cmd' failed"; }
    rm -f "$log"
    did+=("apt: ${apt_need[*]}")
fi

# --- Rust targets and components -----------------------------------------------
sysroot=$(rustc --print sysroot)
rust_targets=() rust_components=()
for t in $(want build || want real && echo x86_64-unknown-linux-musl) $(want arm64 && echo aarch64-unknown-linux-musl); do
    [[ -d $sysroot/lib/rustlib/$t/lib ]] || rust_targets+=("$t")
done
if want lint; then
    [[ -x $sysroot/bin/rustfmt ]] || rust_components+=(rustfmt)
    [[ -x $sysroot/bin/cargo-clippy ]] || rust_components+=(clippy)
fi
if [[ ${#rust_targets[@]} -gt 0 ]]; then
    say "adding rust targets: ${rust_targets[*]}"
    rustup target add "${rust_targets[@]}" >/dev/null 2>&1 || rustup target add "${rust_targets[@]}" ||
        die "rustup target add ${rust_targets[*]} failed"
    did+=("rustup targets: ${rust_targets[*]}")
fi
if [[ ${#rust_components[@]} -gt 0 ]]; then
    say "adding rust components: ${rust_components[*]}"
    rustup component add "${rust_components[@]}" || die "rustup component add ${rust_components[*]} failed"
    did+=("rustup components: ${rust_components[*]}")
fi

# --- venvs and cargo tools -----------------------------------------------------
# A pip venv at DIR with PINS, marked by DIR/.pins once it has them all.
pip_venv() {   # pip_venv DIR EXE PINS
    local dir=$1 exe=$2 pins=$3
    if [[ -x $dir/bin/$exe && -f $dir/.pins && $(cat "$dir/.pins") == "$pins" ]]; then
        return 0
    fi
    say "building venv $dir ($pins)"
    rm -rf "$dir"
    python3 -m venv "$dir" || die "python3 -m venv $dir failed"
    # shellcheck disable=SC2086
    "$dir/bin/pip" install --quiet --disable-pip-version-check $pins || die "pip install $pins failed"
    echo "$pins" > "$dir/.pins"
    did+=("venv $(basename "$dir"): $pins")
}
want arm64 && pip_venv target/venv-zig cargo-zigbuild "$ZIG_PINS"
want lint && pip_venv target/venv-lint charm-proof "$LINT_PINS"

# The real-client venvs: each script says "already up to date" when it has
# nothing to do (its own check, not only a marker); otherwise show its work.
if want test; then
    for v in oslo openstack; do
        out=$(bash "tests/venvs/$v.sh" 2>&1) || { echo "$out" >&2; die "tests/venvs/$v.sh failed"; }
        if [[ $out != *"already up to date"* ]]; then
            echo "$out"
            did+=("venv $v")
        fi
    done
fi

if want fuzz; then
    have=$(cargo fuzz --version 2>/dev/null || true)
    if [[ $have != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
        say "installing cargo-fuzz $CARGO_FUZZ_VERSION (had: ${have:-none})"
        cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" || die "cargo install cargo-fuzz failed"
        did+=("cargo-fuzz $CARGO_FUZZ_VERSION")
    fi
fi

ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [[ ${#did[@]} -eq 0 ]]; then
    say "nothing to install (${groups[*]}: all present, checked in ${ms} ms)"
else
    say "installed in $(( ms / 1000 )) s: $(IFS=';'; echo "${did[*]}")"
fi
