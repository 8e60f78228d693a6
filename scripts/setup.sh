#!/usr/bin/env bash
# Create ./.venv and install codecorpus with what its tests need. Idempotent and quick when
# nothing changed. torch is pinned to 2.13.0 so pip takes the local CPU wheel, never CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip setuptools wheel
fi
stamp=.venv/.codecorpus-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d" " -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # torch first, by exact version, so no dependency can pull a CUDA build.
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[test,bench,ray]"
  echo "$want" > "$stamp"
fi
