#!/usr/bin/env bash
# The main job: set up .venv (CPU torch) and run a whole BlockZero subnet on this machine with no
# network: `blockzero localnet` with its defaults (docs/localnet.md). Extra arguments are passed
# to it, e.g. `bash scripts/run.sh --cycles 3 --block-time 3`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/blockzero localnet "$@"
