#!/usr/bin/env bash
# The main job: set up .venv (CPU torch) and run BlockZero on this machine with no network.
# Extra arguments are passed to the command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/blockzero smoke "$@"
