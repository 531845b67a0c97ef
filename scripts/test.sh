#!/usr/bin/env bash
# Installs (idempotently), lints (scripts/lint.sh) and runs the whole test suite, offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/lint.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# Ray must bind loopback only (docs/ARCHITECTURE.md, "Ray").
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_AUTH_MODE=disabled
exec .venv/bin/python -m pytest -q "$@"
