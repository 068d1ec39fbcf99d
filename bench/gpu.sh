#!/usr/bin/env bash
# The GPU measurements the speed and training issues ask for, as one prepared script (run it from the repo
# root on a CUDA machine; nothing is installed: it runs from the source tree with PYTHONPATH).
#   OUT=/tmp/gpu bash bench/gpu.sh            # results as JSON lines in $OUT/gpu.jsonl, log in $OUT/gpu.log
# Measures `bench --what train` for auto-128 and lite-128 at batch 32: plain fp32 (TF32 on), bf16 autocast,
# the official fp16 scheme, and compiled main phases; generator inference; then a short real training run.
set -uo pipefail
OUT=${OUT:-bench/out/gpu}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
DEV=${DEVICE:-cuda}
B=${BATCH:-32}
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/gpu.log"; }
bench() { log "bench $*"; $PY -m flowergan bench --device "$DEV" "$@" 2>>"$OUT/gpu.log" | tee -a "$OUT/gpu.jsonl"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | tee -a "$OUT/gpu.log"
for preset in auto-128 lite-128; do
  bench --what train --preset "$preset" --batch "$B" --repeats 3
  bench --what train --preset "$preset" --batch "$B" --repeats 3 --amp bf16
  bench --what train --preset "$preset" --batch "$B" --repeats 3 --amp fp16
  bench --what train --preset "$preset" --batch "$B" --repeats 3 --amp bf16 --compile
done
bench --what generator --preset auto-128 --batch 64 --repeats 5
bench --what generator --preset auto-128 --batch 64 --repeats 5 --compile
bench --what discriminator --preset auto-128 --batch "$B" --repeats 5
log "short training run"
$PY -m flowergan prepare synthetic --out "$OUT/flowers128.zip" --count 2000 --resolution 128 --seed 0 --overwrite \
  >>"$OUT/gpu.log" 2>&1
$PY -m flowergan train --data "$OUT/flowers128.zip" --out "$OUT/runs" --preset lite-128 --batch "$B" --kimg "${KIMG:-20}" \
  --snap 10 --mirror --device "$DEV" --amp bf16 --no-progress 2>&1 | tail -n 5 | tee -a "$OUT/gpu.log"
tail -n 3 "$OUT"/runs/*/log.jsonl >>"$OUT/gpu.log" 2>/dev/null
log "done"
