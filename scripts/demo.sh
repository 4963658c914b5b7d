#!/usr/bin/env bash
# The project's "run the main job" command: set up .venv (no system packages
# needed), then hand every argument to `alertwire demo`.
set -euo pipefail
# shellcheck source=scripts/_venv.sh
. "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
aw_ensure_venv
exec "$ALERTWIRE_VENV/bin/alertwire" demo "$@"
