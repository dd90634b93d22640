# tests/venvs/lib.sh - sourced by oslo.sh and openstack.sh: what building a
# pinned CPython 3.11 venv takes, whatever goes into it.
#
# The script sets NAME (its own name: oslo, openstack), START, VENV, PYTHON,
# CONSTRAINTS (exact pins), WANT (everything that decides the content) and
# MARKER (where WANT is recorded once the venv is built), and defines
# check(): the venv's own view of what it holds.
# shellcheck shell=bash

done_in() {
    echo "$NAME venv: $1 in $(( $(date +%s) - START ))s ($VENV)"
}

# Exit now when the venv is as WANT says, has EXE, and passes check: a
# half-built or hand-edited venv is not mistaken for a good one.
exit_if_current() {
    if [[ -f $MARKER && $(cat "$MARKER") == "$WANT" && -x $1 ]] && check; then
        done_in "already up to date"
        exit 0
    fi
}

# A new, empty venv (after refusing a Python other than 3.11, for which the
# pins are), with the constraints file beside it. Sets CONSTRAINTS_FILE and
# PIP.
fresh_venv() {
    "$PYTHON" - "$NAME" <<'PY'
import sys
if sys.version_info[:2] != (3, 11):
    sys.exit(f"tests/venvs/{sys.argv[1]}.sh needs CPython 3.11 (the pins are 3.11's), got {sys.version.split()[0]}: set PYTHON=python3.11")
PY
    echo "$NAME venv: building $VENV ($WANT)"
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv "$VENV"
    CONSTRAINTS_FILE=$VENV/constraints.txt
    printf '%s\n' "$CONSTRAINTS" > "$CONSTRAINTS_FILE"
    PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input)
}

# pip's own consistency check, the venv's check, then the marker.
finish_venv() {
    "${PIP[@]}" check
    if ! check; then
        echo "$NAME venv: $VENV was built but fails its own check" >&2
        exit 1
    fi
    echo "$WANT" > "$MARKER"
    done_in "built"
}
