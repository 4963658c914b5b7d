# shellcheck shell=bash
# Sourced by scripts/test.sh and scripts/demo.sh: make .venv exist and hold the
# project installed editable with its dev extra.
#
# Why a stamp file: `pip install -e '.[dev]'` re-resolves every dependency and
# takes many seconds even when nothing changed. The stamp records a hash of
# pyproject.toml and the interpreter version; while both match and the package
# still imports, the install is skipped. Any edit to pyproject.toml (a new
# dependency) makes the next run install again.
#
# Progress goes to stderr so a command's own stdout stays clean.

alertwire_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ALERTWIRE_VENV="${ALERTWIRE_VENV:-$alertwire_root/.venv}"

_aw_log() { printf '[alertwire] %s\n' "$*" >&2; }

_aw_python_ok() {
    "$1" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null
}

aw_ensure_venv() {
    local base_python="${PYTHON:-python3}"
    if ! [ -x "$ALERTWIRE_VENV/bin/python" ] || ! "$ALERTWIRE_VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
        if ! command -v "$base_python" >/dev/null 2>&1 || ! _aw_python_ok "$base_python"; then
            _aw_log "need Python >= 3.10 with the venv module as '$base_python' (set PYTHON=...)"
            return 1
        fi
        _aw_log "creating $ALERTWIRE_VENV with $("$base_python" --version 2>&1)"
        rm -rf "$ALERTWIRE_VENV" || return 1
        "$base_python" -m venv "$ALERTWIRE_VENV" || return 1
    fi

    local stamp="$ALERTWIRE_VENV/.alertwire-install-stamp"
    local want
    # Callers may run this inside `if`, where `set -e` is off: check each step.
    want="$(
        {
            cat "$alertwire_root/pyproject.toml"
            "$ALERTWIRE_VENV/bin/python" -c 'import sys; print(sys.version)'
        } | sha256sum | cut -d' ' -f1
    )" || return 1
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
        && "$ALERTWIRE_VENV/bin/python" -c 'import alertwire' 2>/dev/null; then
        return 0
    fi
    _aw_log "installing alertwire[dev] into $ALERTWIRE_VENV"
    (cd "$alertwire_root" && "$ALERTWIRE_VENV/bin/python" -m pip install \
        --disable-pip-version-check --quiet -e '.[dev]') >&2 || return 1
    printf '%s\n' "$want" >"$stamp"
}
