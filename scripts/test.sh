#!/usr/bin/env bash
# The project's test command, the same on a laptop, a fresh Debian machine and CI:
#
#   scripts/test.sh                         # everything
#   scripts/test.sh tests/outbox -k foo    # extra arguments go to pytest
#
# It (1) makes .venv and installs alertwire[dev] into it, and .venv-airflow
# with real Apache Airflow and alertwire (scripts/_airflow_venv.sh), (2) installs the
# Debian packages whose real servers the tests start (PostgreSQL, Prometheus
# Alertmanager, Chromium, curl) when any is missing, (3) runs ruff check, ruff
# format --check, mypy --strict and pytest. Every step runs even when an earlier
# one failed, so one CI run reports everything; the exit code is non-zero if any
# step failed.
#
# Skips are failures here: ALERTWIRE_REQUIRE_ALL=1 (the default; CI=true forces
# it) makes tests/conftest.py turn every skip into a failure, because this
# script has installed everything a test could need, so a skip can only mean a
# test silently did not run. pytest's exit code 5 (no test collected) is a
# failure too.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/_venv.sh
. scripts/_venv.sh
# shellcheck source=scripts/_airflow_venv.sh
. scripts/_airflow_venv.sh

# --- Debian packages -------------------------------------------------------

# The programs the tests start, by package. Checked with dpkg, not by path, so
# a half-removed package is reinstalled. Installed without Recommends (which for
# chromium means printer, desktop and GPU packages headless runs never use);
# fonts-liberation, one of those Recommends, is named so that screenshots render
# text with the same metric-compatible fonts on every machine.
APT_PACKAGES=(postgresql prometheus-alertmanager chromium fonts-liberation curl tinyproxy)

aw_missing_packages() {
    local pkg status
    for pkg in "${APT_PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
        [ "$status" = "installed" ] || printf '%s\n' "$pkg"
    done
}

aw_install_packages() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        _aw_log "not a Debian system: install ${APT_PACKAGES[*]} yourself (the tests need them)"
        return 0
    fi
    local missing
    mapfile -t missing < <(aw_missing_packages)
    [ "${#missing[@]}" -eq 0 ] && return 0

    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            _aw_log "missing Debian packages: ${missing[*]}; run as root or install them: apt-get install ${missing[*]}"
            return 1
        fi
    fi

    # Packages must not start their services: a Debian postgresql install
    # creates a "main" cluster and would start it on port 5432, and
    # alertmanager would take port 9093. The tests start their own servers on
    # free loopback ports. A policy-rc.d that answers 101 ("action forbidden")
    # is Debian's documented switch for that; put one in place only if the
    # machine has none, and remove only the one we made.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod 755 "$policy"
        made_policy=1
    fi

    _aw_log "installing Debian packages: ${missing[*]}"
    local rc=0
    {
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -qq update &&
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -qq -y \
                --no-install-recommends install "${missing[@]}"
    } >&2 || rc=$?

    if [ "$made_policy" -eq 1 ]; then
        "${sudo[@]}" rm -f "$policy"
    fi
    [ "$rc" -eq 0 ] || return "$rc"

    # Belt and braces for machines where services start anyway (systemd
    # ignores policy-rc.d for some units): stop any cluster the install just
    # created. Only after an install of postgresql, so a developer's own
    # running server is never touched.
    if printf '%s\n' "${missing[@]}" | grep -qx postgresql && command -v pg_lsclusters >/dev/null 2>&1; then
        local ver name _port status _rest
        while read -r ver name _port status _rest; do
            if [ "$status" = "online" ]; then
                _aw_log "stopping the PostgreSQL cluster $ver/$name the install started"
                "${sudo[@]}" pg_ctlcluster "$ver" "$name" stop || true
            fi
        done < <(pg_lsclusters -h 2>/dev/null)
    fi
    local service
    for service in prometheus-alertmanager tinyproxy; do
        if printf '%s\n' "${missing[@]}" | grep -qx "$service" \
            && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
            "${sudo[@]}" systemctl disable --now "$service" >/dev/null 2>&1 || true
        fi
    done
}

# --- the checks ------------------------------------------------------------

failed=()

step() {
    local name="$1"
    shift
    printf '\n==> %s\n' "$name"
    if "$@"; then
        return 0
    fi
    failed+=("$name")
}

step "venv (.venv, pip install -e '.[dev]')" aw_ensure_venv
if [ "${#failed[@]}" -ne 0 ]; then
    echo "scripts/test.sh: FAILED: could not set up .venv" >&2
    exit 1
fi
step "Debian packages (${APT_PACKAGES[*]})" aw_install_packages
# Real Airflow for tests/airflow/test_airflow_real.py, in a venv of its own so its pins never touch .venv.
step "Airflow venv (.venv-airflow, apache-airflow==$ALERTWIRE_AIRFLOW_VERSION)" aw_ensure_airflow_venv

bin="$ALERTWIRE_VENV/bin"
lint_paths=()
for p in src tests bench; do
    [ -e "$p" ] && lint_paths+=("$p")
done

step "ruff check ${lint_paths[*]}" "$bin/ruff" check "${lint_paths[@]}"
step "ruff format --check ${lint_paths[*]}" "$bin/ruff" format --check "${lint_paths[@]}"
step "mypy (strict, config in pyproject.toml)" "$bin/mypy"

run_pytest() {
    local rc=0
    if [ "${CI:-}" = "true" ]; then
        export ALERTWIRE_REQUIRE_ALL=1
    else
        export ALERTWIRE_REQUIRE_ALL="${ALERTWIRE_REQUIRE_ALL:-1}"
    fi
    "$bin/python" -m pytest -ra "$@" </dev/null || rc=$?
    if [ "$rc" -eq 5 ]; then
        echo "pytest collected no tests: that is a failure here" >&2
        return 1
    fi
    return "$rc"
}
step "pytest${*:+ $*}" run_pytest "$@"

echo
if [ "${#failed[@]}" -ne 0 ]; then
    printf 'scripts/test.sh: FAILED step(s): %s\n' "$(IFS=';'; echo "${failed[*]}")"
    exit 1
fi
echo "scripts/test.sh: all checks passed (ruff, ruff format, mypy, pytest)"
