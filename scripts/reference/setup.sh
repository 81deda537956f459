#!/usr/bin/env bash
# Create a Python venv for the reference scripts and install the pinned requirements.
# Usage: scripts/reference/setup.sh [VENV_DIR]   (default: .venv-ref)
set -euo pipefail
VENV="${1:-.venv-ref}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --upgrade pip
"$VENV/bin/python" -m pip install -r "$HERE/requirements.txt"
"$VENV/bin/python" -m pip install --no-deps -r "$HERE/requirements-nodeps.txt"
echo "reference venv ready: $VENV (run scripts with $VENV/bin/python)"
