#!/usr/bin/env bash
# The GPU measurements of issue #12 as one prepared script: at most 8 minutes in all, most important first,
# each stage under its own time limit (shrunk or skipped when the total would pass TOTAL seconds), and each
# stage's JSON written to $OUT/<stage>.json as soon as it ends. Runs from the source tree (PYTHONPATH).
#   OUT=/tmp/gpu bash bench/gpu.sh                 # on a CUDA machine
#   OUT=/tmp/gpu bash bench/gpu.sh --device cpu    # smoke mode: tiny sizes, the same stages, about a minute
# Stages (GPU): 1-2 `bench --what train` auto-128 and lite-128 at batch 32 in the default mixed precision
# (the official fp16 scheme); 3 the sync-debug check (steps under torch.cuda.set_sync_debug_mode("error"));
# 4 fp16 against fp32 learning: four `tiny` runs side by side (bench/precision_race.py), their snapshots'
# G_ema back in $OUT/learn/; 5 a 90-second lite-128 training run whose G_ema comes back as $OUT/gema/ (fp16,
# ~42 MB); 6-9 fp32 and bf16 for both; 10 generator img/s; 11 ADA's pipe; 12 compiled auto-128; 13 the same with
# CUDA graphs (--compile-mode reduce-overhead) (bf16 and compiled stages are left out in smoke mode). $OUT/gpu.log
# has the log, $OUT/summary.jsonl the stage exit codes and durations.
set -uo pipefail
DEV=cuda
if [ "${1:-}" = "--device" ]; then DEV=$2; fi
OUT=${OUT:-bench/out/gpu}
WORK=${WORK:-/tmp/flowergan-gpu}
TOTAL=${TOTAL:-480}
mkdir -p "$OUT" "$WORK"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
START=$(date +%s)
SUMMARY="$OUT/summary.jsonl"
: >"$SUMMARY"
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/gpu.log"; }

if [ "$DEV" = cpu ]; then  # smoke mode: tiny sizes, seconds per stage
  P128=tiny; PLITE=tiny; B=4; REP="--repeats 1 --warmup 0"; RES=32; COUNT=64; TRAIN_SECS=30; STEPS=2
  LKIMG=0.032; LSNAP=0.016; LEARN_SECS=90
  LSCALE=2  # limits doubled: a shared CPU starts Python and builds the networks slowly
else
  P128=auto-128; PLITE=lite-128; B=${BATCH:-32}; REP="--repeats 3 --warmup 1"; RES=128; COUNT=1000
  TRAIN_SECS=${TRAIN_SECS:-90}; STEPS=16; LSCALE=1
  LKIMG=${LKIMG:-40}; LSNAP=${LSNAP:-4}; LEARN_SECS=${LEARN_SECS:-120}
fi

# stage NAME LIMIT_SECONDS COMMAND...: stdout -> $OUT/NAME.json, stderr -> the log; skipped if no time is left.
stage() {
  local name=$1 limit=$(($2 * LSCALE)); shift 2
  local now left rc t0
  now=$(date +%s); left=$((TOTAL - (now - START)))
  if [ "$left" -lt 10 ]; then
    log "skip $name (no time left)"; echo "{\"stage\": \"$name\", \"skipped\": true}" >>"$SUMMARY"; return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  log "stage $name (limit ${limit}s): $*"
  t0=$(date +%s)
  timeout -k 5 "$limit" "$@" >"$OUT/$name.json" 2>>"$OUT/gpu.log"
  rc=$?
  echo "{\"stage\": \"$name\", \"rc\": $rc, \"seconds\": $(( $(date +%s) - t0 )), \"limit\": $limit}" >>"$SUMMARY"
  log "stage $name exit $rc"
}
BENCH=("$PY" -m flowergan bench --device "$DEV")

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } >>"$OUT/gpu.log" 2>&1

stage train-auto128-default 75 "${BENCH[@]}" --what train --preset $P128 --batch $B $REP --amp auto --profile
stage train-lite128-default 60 "${BENCH[@]}" --what train --preset $PLITE --batch $B $REP --amp auto
stage sync-check 45 $PY bench/sync_check.py --device "$DEV" --preset $PLITE --batch $B --steps $STEPS

# Does the default precision (fp16 on CUDA) learn like fp32? tiny from seeds 0 and 1, four runs side by side, every
# snapshot's G_ema back under $OUT/learn/ (~0.6 MB each); scored here: bench/precision_race.py score $OUT/learn ...
stage learn $((LEARN_SECS + 45)) $PY bench/precision_race.py train --device "$DEV" --kimg $LKIMG --snap $LSNAP \
  --seeds 0,1 --seconds $LEARN_SECS --work "$WORK/learn" --out "$OUT/learn"

# A short real run: train for TRAIN_SECS, snapshots every 4 kimg (1 in smoke mode), then pack the newest G_ema.
stage prepare-data 60 $PY -m flowergan prepare synthetic --out "$WORK/flowers.zip" --count $COUNT --resolution $RES \
  --seed 0 --overwrite
rm -rf "$WORK/runs"
SNAP=4; [ "$DEV" = cpu ] && SNAP=0.008
# (the inner timeout stops training after TRAIN_SECS by design: its 124 counts as success)
stage train-run $((TRAIN_SECS + 30)) bash -c 'timeout -s INT "$0" "$@"; rc=$?; [ $rc -eq 124 ] && rc=0; exit $rc' \
  "$TRAIN_SECS" $PY -m flowergan train --data "$WORK/flowers.zip" \
  --out "$WORK/runs" --preset $PLITE --batch $B --kimg 100000 --snap $SNAP --mirror --device "$DEV" --no-progress
tail -n 5 "$WORK"/runs/*/log.jsonl >"$OUT/train-run.log.jsonl" 2>/dev/null
stage pack-gema 40 $PY bench/pack_gema.py "$WORK/runs" "$OUT/gema"

stage train-auto128-fp32 50 "${BENCH[@]}" --what train --preset $P128 --batch $B $REP --amp off
stage train-lite128-fp32 45 "${BENCH[@]}" --what train --preset $PLITE --batch $B $REP --amp off
if [ "$DEV" != cpu ]; then  # bf16 without native CPU support and compilation take minutes on a CPU
  stage train-auto128-bf16 50 "${BENCH[@]}" --what train --preset $P128 --batch $B $REP --amp bf16
  stage train-lite128-bf16 45 "${BENCH[@]}" --what train --preset $PLITE --batch $B $REP --amp bf16
fi
stage generator 30 "${BENCH[@]}" --what generator --preset $P128 --batch 64 --repeats 5
stage augment 25 "${BENCH[@]}" --what augment --preset $P128 --batch $B --repeats 5  # ADA's pipe, p 0.2
[ "$DEV" != cpu ] && stage train-auto128-compiled 120 "${BENCH[@]}" --what train --preset $P128 --batch $B $REP \
  --amp auto --compile
[ "$DEV" != cpu ] && stage train-auto128-cudagraphs 120 "${BENCH[@]}" --what train --preset $P128 --batch $B $REP \
  --amp auto --compile --compile-mode reduce-overhead
log "done in $(( $(date +%s) - START ))s"
