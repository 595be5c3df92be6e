#!/usr/bin/env bash
# Create .venv (if needed) and install BlockZero with its dev tools.
# CPU torch is installed first, pinned, so the package's `torch` requirement is already met and pip
# never pulls a multi-GB CUDA build. Set BLOCKZERO_TORCH to choose another torch spec.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install -q "${BLOCKZERO_TORCH:-torch==2.13.0}"
fi
.venv/bin/python -m pip install -q -e ".[dev]"
