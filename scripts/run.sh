#!/usr/bin/env bash
# The main job end to end on the embedded default: venv + install, DAGSTER_HOME = this repo,
# then materialize every asset (local Dagster instance, local Parquet, local sandbox, CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system_deps.sh
bash scripts/setup.sh
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD}"
export CODECORPUS_DATA="${CODECORPUS_DATA:-$PWD/data}"
exec .venv/bin/codecorpus run "$@"
