#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages, venv + install, services, ruff, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system_deps.sh
bash scripts/setup.sh
bash scripts/services.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
