# shellcheck shell=bash
# Sourced by scripts/test.sh (after scripts/_venv.sh): make .venv-airflow exist
# and hold real Apache Airflow plus alertwire installed editable.
#
# Why a venv of its own: Airflow pins hundreds of packages (SQLAlchemy, Flask,
# pydantic, ...). Installed beside alertwire[dev] those pins would decide our
# own dependency versions. The tests in tests/airflow/ drive this venv
# only through subprocesses (`.venv-airflow/bin/airflow ...`), so it never
# shares an interpreter with the suite.
#
# Installed against scripts/airflow-constraints.txt (every package pinned, so a
# new release of one of Airflow's dependencies cannot break CI overnight; the
# file says how to move the pins). Cached like .venv: the stamp records the
# Airflow version, the constraints, a hash of pyproject.toml and the
# interpreter; while they match and both packages import, nothing is
# installed (a cold install takes about a minute and a half).

ALERTWIRE_AIRFLOW_VERSION="${ALERTWIRE_AIRFLOW_VERSION:-3.3.2}"
ALERTWIRE_AIRFLOW_VENV="${ALERTWIRE_AIRFLOW_VENV:-$alertwire_root/.venv-airflow}"
ALERTWIRE_AIRFLOW_CONSTRAINTS="${ALERTWIRE_AIRFLOW_CONSTRAINTS:-$alertwire_root/scripts/airflow-constraints.txt}"

aw_ensure_airflow_venv() {
    local base_python="${PYTHON:-python3}"
    if ! [ -x "$ALERTWIRE_AIRFLOW_VENV/bin/python" ]; then
        _aw_log "creating $ALERTWIRE_AIRFLOW_VENV for apache-airflow==$ALERTWIRE_AIRFLOW_VERSION"
        rm -rf "$ALERTWIRE_AIRFLOW_VENV" || return 1
        "$base_python" -m venv "$ALERTWIRE_AIRFLOW_VENV" || return 1
    fi

    local stamp="$ALERTWIRE_AIRFLOW_VENV/.alertwire-install-stamp"
    local want
    want="$(
        {
            printf 'apache-airflow==%s\n' "$ALERTWIRE_AIRFLOW_VERSION"
            cat "$ALERTWIRE_AIRFLOW_CONSTRAINTS"
            cat "$alertwire_root/pyproject.toml"
            "$ALERTWIRE_AIRFLOW_VENV/bin/python" -c 'import sys; print(sys.version)'
        } | sha256sum | cut -d' ' -f1
    )" || return 1
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
        && "$ALERTWIRE_AIRFLOW_VENV/bin/python" -c 'import airflow.sdk, alertwire.airflow' 2>/dev/null; then
        return 0
    fi
    # alertwire without extras: the airflow extra names only apache-airflow,
    # which the first install already put there at the version we test.
    _aw_log "installing apache-airflow==$ALERTWIRE_AIRFLOW_VERSION and alertwire into $ALERTWIRE_AIRFLOW_VENV"
    (cd "$alertwire_root" && "$ALERTWIRE_AIRFLOW_VENV/bin/python" -m pip install \
        --disable-pip-version-check --quiet -c "$ALERTWIRE_AIRFLOW_CONSTRAINTS" \
        "apache-airflow==$ALERTWIRE_AIRFLOW_VERSION" -e .) >&2 || return 1
    printf '%s\n' "$want" >"$stamp"
}
