#!/usr/bin/env bash
# Create bench/.peers-venv with the peer task queues (Procrastinate, PgQueuer) that
# `python bench/run.py --peers` measures against runlane. Idempotent; git-ignored.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/../.peers-venv"
python="${PYTHON:-python3}"
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
"$venv/bin/python" -c 'import importlib.metadata as m; print("peers venv ready:", ", ".join(f"{p} {m.version(p)}" for p in ("procrastinate", "pgqueuer", "asyncpg", "psycopg")))'
