# shellcheck shell=bash
# Shared bootstrap for scripts/test and scripts/demo. Source it; do not execute it.
#
# After sourcing:
#   - the current directory is the repository root ($RUNLANE_ROOT),
#   - .venv exists and holds an editable install of runlane with the [dev] extras,
#   - $RUNLANE_PY is the venv's python and .venv/bin is first on PATH.
#
# The install is re-run when pyproject.toml is newer than the stamp file, or when the
# stamp is missing (fresh clone, or a previous install that failed half way).

set -euo pipefail

RUNLANE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$RUNLANE_ROOT"

export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_INPUT=1

_runlane_venv=".venv"
_runlane_stamp="$_runlane_venv/.runlane-install-stamp"

if [[ ! -x "$_runlane_venv/bin/python" ]]; then
    echo "==> creating virtualenv in $_runlane_venv"
    python3 -m venv "$_runlane_venv"
    rm -f "$_runlane_stamp"
fi

if [[ ! -f "$_runlane_stamp" || pyproject.toml -nt "$_runlane_stamp" ]]; then
    echo "==> installing runlane[dev] into $_runlane_venv (editable)"
    _runlane_t0=$SECONDS
    "$_runlane_venv/bin/python" -m pip install -q -e '.[dev]'
    touch "$_runlane_stamp"
    echo "==> install done in $((SECONDS - _runlane_t0))s"
fi

RUNLANE_PY="$RUNLANE_ROOT/$_runlane_venv/bin/python"
export PATH="$RUNLANE_ROOT/$_runlane_venv/bin:$PATH"
export VIRTUAL_ENV="$RUNLANE_ROOT/$_runlane_venv"
unset _runlane_venv _runlane_stamp _runlane_t0
