#!/usr/bin/env bash
# The GPU measurements the speed and training issues ask for, as one prepared script (run it from the repo
# root on a CUDA machine; nothing is installed: it runs from the source tree with PYTHONPATH).
#   OUT=/tmp/gpu bash bench/gpu.sh      # JSON lines in $OUT/gpu.jsonl, log in $OUT/gpu.log, files in $OUT/*.tar.gz
# Stages, most important first, each under its own time limit so one failure or overrun never costs the others:
#   1. `bench --what train` for auto-128 and lite-128 at batch 32: plain fp32 (TF32 on), bf16 autocast and
#      the official fp16 scheme; generator and discriminator inference;
#   2. a short real training run (lite-128, bf16, 10 kimg);
#   3. compiled bf16 training; 4. optionally (SWEEP=1) bench/sweep.py: tiny training variants, FID vs kimg.
# The whole script needs about 10-15 minutes on an H100; trim the stages to fit a smaller device budget.
set -uo pipefail
OUT=${OUT:-bench/out/gpu}
WORK=${WORK:-/tmp/flowergan-gpu}
mkdir -p "$OUT" "$WORK"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
DEV=${DEVICE:-cuda}
B=${BATCH:-32}
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/gpu.log"; }
bench() {
  local limit=$1; shift
  log "bench $*"
  timeout "$limit" $PY -m flowergan bench --device "$DEV" "$@" 2>>"$OUT/gpu.log" | tee -a "$OUT/gpu.jsonl"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | tee -a "$OUT/gpu.log"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.log"

bench 120 --what train --preset auto-128 --batch "$B" --repeats 3
bench 120 --what train --preset auto-128 --batch "$B" --repeats 3 --amp bf16
bench 120 --what train --preset lite-128 --batch "$B" --repeats 3 --amp bf16
bench 120 --what train --preset auto-128 --batch "$B" --repeats 3 --amp fp16
bench 120 --what train --preset lite-128 --batch "$B" --repeats 3 --amp fp16
bench 60 --what generator --preset auto-128 --batch 64 --repeats 5
bench 60 --what discriminator --preset auto-128 --batch "$B" --repeats 5

log "short training run"
$PY -m flowergan prepare synthetic --out "$WORK/flowers128.zip" --count "${COUNT:-1000}" --resolution 128 --seed 0 --overwrite \
  >>"$OUT/gpu.log" 2>&1
timeout "${TRAIN_LIMIT:-150}" $PY -m flowergan train --data "$WORK/flowers128.zip" --out "$WORK/runs" \
  --preset lite-128 --batch "$B" --kimg "${KIMG:-10}" --snap 5 --mirror --device "$DEV" --amp bf16 --no-progress \
  >>"$OUT/gpu.log" 2>&1
log "training exit $?"
tail -n 3 "$WORK"/runs/*/log.jsonl >>"$OUT/gpu.log" 2>/dev/null
(cd "$WORK" && tar czf "$OUT/train-run.tar.gz" runs/*/log.jsonl runs/*/*.png runs/*/*.json 2>/dev/null)

bench "${COMPILE_LIMIT:-150}" --what train --preset auto-128 --batch "$B" --repeats 3 --amp bf16 --compile

if [ "${SWEEP:-0}" = 1 ]; then
  log "sweep"
  timeout "${SWEEP_LIMIT:-300}" $PY bench/sweep.py --device "$DEV" --out "$WORK/sweep" --kimg "${SWEEP_KIMG:-48}" \
    --every 24 --jobs "${SWEEP_JOBS:-4}" ${SWEEP_VARIANTS:+--variants "$SWEEP_VARIANTS"} ${SWEEP_DATA:+--data "$SWEEP_DATA"} \
    ${SWEEP_INCEPTION:+--inception "$SWEEP_INCEPTION"} >>"$OUT/gpu.log" 2>&1
  log "sweep exit $?"
  cat "$WORK"/sweep/*.jsonl >"$OUT/sweep.jsonl" 2>/dev/null
  (cd "$WORK" && tar czf "$OUT/sweep-grids.tar.gz" sweep/*.png 2>/dev/null)
fi
log "done"
