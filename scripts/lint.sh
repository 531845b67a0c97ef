#!/usr/bin/env bash
# Lint and types, as CI runs them: ruff over the code (rules and line length in pyproject.toml),
# mypy strict on search_spaces (the torch-free core every other package builds on).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check nas search_spaces supernet tests benchmarks
.venv/bin/mypy search_spaces
