#!/usr/bin/env bash
# Set up (or refresh) .venv, then run the test suite. Extra arguments go to pytest.
# FLOWERGAN_SLOW=1 also runs the tests marked slow.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh test
exec .venv/bin/python -m pytest -q "$@"
