#!/usr/bin/env bash
# Issue #23's GPU measurements as ONE prepared device call: at most TOTAL=480 s, most important first, each stage
# under its own time limit (shrunk or skipped when the total would pass TOTAL), every line a stage prints stamped
# with the clock and the seconds since the stage began (a stage stopped at its limit shows where its time went).
#   OUT=/tmp/gpu OFFICIAL=.gpu-carry/official bash bench/gpu.sh       # on a CUDA machine
#   OUT=/tmp/gpu-smoke PYTHON=.venv/bin/python bash bench/gpu.sh --device cpu   # smoke mode: tiny sizes, 2-5 min
# The official code (stage 3) travels in an ignored folder named in the device call's `carry` (the call sends the
# checkout only). Make it once, from the repository root (MIRROR: the fetch tool's git directory for
# github:NVlabs/stylegan2-ada-pytorch):
#   mkdir -p .gpu-carry/official && git -C MIRROR archive d72cc7d | tar -x -C .gpu-carry/official
#   cp -r ../shared/official-bench .gpu-carry/        # official_gpu.sh + patch_torch2.py (patches a copy only)
# then: run(command="OUT=$OUT OFFICIAL=.gpu-carry/official bash bench/gpu.sh", carry=[".gpu-carry"], timeout_s=540).
# OFFICIAL unset: the official stage is skipped (the log says so); OFFICIAL_BENCH: where official_gpu.sh lies
# (default: official-bench beside OFFICIAL).
# Stages: 1 data (1,000 procedural flowers at 128, seed 0, as the issue's table); 2 `flowergan train` defaults
# (auto-128, batch 32) for TRAIN_SECS=150 s, a log line per kimg with that tick's peak GPU memory; 3 the official
# train.py on the same data (--cfg auto, OFFICIAL_KIMG=12); 4 a 1-kimg auto-128 b32 run capped at 12 GiB
# (--cuda-memory-gb 12; passes when it completes); 5 lite-128 for LITE_SECS=60 s; 6 `tiny` img/s (bench, batch
# 16); 7 `bench --what train --profile` at auto-128 b32 (operator calls, MiB saved for backward per phase);
# 8 the precision race (four `tiny` runs, fp16 vs fp32 learning, bench/precision_race.py).
# What comes back (5 files): $OUT/gpu.log (every stamped line), $OUT/summary.jsonl (one JSON line per stage: rc,
# start, seconds, limit), $OUT/stages.tar.gz (each stage's stdout, its stamped log, each run's log.jsonl, the
# card), $OUT/learn.tar (the race's G_ema snapshots) and $OUT/report.md (bench/gpu_report.py: the issue's table).
set -uo pipefail
export LC_ALL=C
DEV=cuda
if [ "${1:-}" = "--device" ]; then DEV=$2; fi
OUT=${OUT:-bench/out/gpu}
WORK=${WORK:-/tmp/flowergan-gpu}
OFFICIAL=${OFFICIAL:-}
RES_DIR=$WORK/stages  # each stage's files, packed into $OUT/stages.tar.gz after every stage
rm -rf "$RES_DIR" "$WORK/runs" "$WORK"/.stop-*
mkdir -p "$OUT" "$WORK" "$RES_DIR"
OUT=$(readlink -f "$OUT")
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
START=$(date +%s)
SUMMARY="$OUT/summary.jsonl"
: >"$SUMMARY"
: >"$OUT/gpu.log"

if [ "$DEV" = cpu ]; then  # smoke mode: tiny sizes, seconds per stage
  TOTAL=${TOTAL:-900}; PRE=(--preset tiny); PLITE=(--preset tiny); B=4; RES=32; COUNT=64
  TRAIN_SECS=20; LITE_SECS=15; LOGK=0.016; CAPK=0.032; REP="--repeats 1 --warmup 0"; TINY_REP="--repeats 1 --warmup 0"
  LKIMG=0.032; LSNAP=0.016; LEARN_SECS=90
  LSCALE=2  # limits doubled: a shared CPU starts Python and builds the networks slowly
else
  TOTAL=${TOTAL:-480}; PRE=(); PLITE=(--preset lite-128); B=${BATCH:-32}; RES=128; COUNT=1000
  TRAIN_SECS=${TRAIN_SECS:-150}; LITE_SECS=${LITE_SECS:-60}; LOGK=1; CAPK=1; REP="--repeats 3 --warmup 1"
  TINY_REP="--repeats 5 --warmup 2"; LKIMG=${LKIMG:-40}; LSNAP=${LSNAP:-4}; LEARN_SECS=${LEARN_SECS:-120}
  LSCALE=1
fi
DATA=$WORK/flowers-$RES-$COUNT-s0.zip

to_ms() { local s=${1%.*} f=${1#*.}000; MS=$((s * 1000 + 10#${f:0:3})); }  # "1733350000.123456" -> ms in $MS
now() { NOW=${EPOCHREALTIME:-$(date +%s.%N)}; NOW=${NOW/,/.}; }
# stamp NAME T0: prefix each line with the clock, the seconds since T0 and the stage's name
stamp() {
  local line t0ms
  to_ms "$2"; t0ms=$MS
  while IFS= read -r line; do
    now; to_ms "$NOW"
    printf '[%s +%d.%ds] %s| %s\n' "$(date +%T)" $(((MS - t0ms) / 1000)) $(((MS - t0ms) % 1000 / 100)) "$1" "$line"
  done
}
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/gpu.log"; }
pack() { tar -czf "$OUT/stages.tar.gz.tmp" -C "$WORK" stages && mv "$OUT/stages.tar.gz.tmp" "$OUT/stages.tar.gz"; }
skip() { log "skip $1 ($2)"; echo "{\"stage\": \"$1\", \"skipped\": true, \"why\": \"$2\"}" >>"$SUMMARY"; }

# stage NAME LIMIT_SECONDS COMMAND...: stdout -> stages/NAME.out; stderr stamped into the log and stages/NAME.log;
# one summary line with the exit code, the start (epoch seconds) and the duration; skipped if no time is left.
stage() {
  local name=$1 limit=$(($2 * LSCALE)); shift 2
  local left rc t0 t0ms
  left=$((TOTAL - ($(date +%s) - START)))
  if [ "$left" -lt 10 ]; then skip "$name" "no time left"; return; fi
  [ "$limit" -gt "$left" ] && limit=$left
  log "stage $name (limit ${limit}s): $*"
  now; t0=$NOW; to_ms "$t0"; t0ms=$MS
  STAGE_T0=$t0
  timeout -k 5 "$limit" "$@" 2>&1 >"$RES_DIR/$name.out" | stamp "$name" "$t0" | tee -a "$RES_DIR/$name.log" >>"$OUT/gpu.log"
  rc=${PIPESTATUS[0]}
  now; to_ms "$NOW"
  echo "{\"stage\": \"$name\", \"rc\": $rc, \"start\": $t0, \"seconds\": $(((MS - t0ms) / 1000)).$(((MS - t0ms) % 1000 / 100)), \"limit\": $limit}" >>"$SUMMARY"
  log "stage $name exit $rc after $(((MS - t0ms) / 1000))s"
  pack
}

# brief LINE: the figures of one log.jsonl line, for the stamped log (the full line stays in the run's log.jsonl)
brief() {
  local out="" key
  for key in kimg Timing/sec_per_kimg Resources/peak_gpu_mem_gb Progress/augment Timing/first_call_sec/Gmain \
      Timing/first_call_sec/Greg Timing/first_call_sec/Dmain Timing/first_call_sec/Dreg; do
    [[ $1 =~ \"$key\":\ ([-0-9.e]+) ]] && out+="${key##*/} ${BASH_REMATCH[1]}  "
  done
  echo "$out"
}
# follow DIR NAME: stream DIR/*/log.jsonl into the log as it grows, until $WORK/.stop-NAME appears
follow() {
  local f="" n=0 total stop line
  while :; do
    stop=0; [ -e "$WORK/.stop-$2" ] && stop=1
    [ -z "$f" ] && f=$(ls "$1"/*/log.jsonl 2>/dev/null | head -n 1)
    if [ -n "$f" ]; then
      total=$(wc -l <"$f")
      if [ "$total" -gt "$n" ]; then
        tail -n +$((n + 1)) "$f" | head -n $((total - n)) | while IFS= read -r line; do
          [[ $line == \{\"config\"* ]] || echo "log.jsonl: $(brief "$line")"; done | stamp "$2" "$STAGE_T0"
        n=$total
      fi
    fi
    [ "$stop" = 1 ] && return
    sleep 1
  done
}
# train_stage NAME LIMIT SECONDS ARGS...: `flowergan train` on the flowers; SECONDS > 0: stopped (SIGINT) after
# that long, which counts as success; 0: runs to its --kimg. Its log.jsonl is followed into the log as it grows and
# kept as stages/NAME.log.jsonl.
train_stage() {
  local name=$1 limit=$2 secs=$3 fpid left; shift 3
  left=$((TOTAL - ($(date +%s) - START) - 15))  # when the total shrinks the stage, stop the run itself in time
  [ "$secs" -gt 0 ] && [ "$secs" -gt "$left" ] && [ "$left" -gt 0 ] && secs=$left
  rm -rf "$WORK/runs/$name" "$WORK/.stop-$name"
  now; STAGE_T0=$NOW
  follow "$WORK/runs/$name" "$name" >>"$OUT/gpu.log" &
  fpid=$!
  stage "$name" "$limit" bash -c 'if [ "$0" -gt 0 ]; then timeout -s INT "$0" "$@"; rc=$?; [ $rc -eq 124 ] && rc=0
    exit $rc; fi; exec "$@"' "$secs" "$PY" -m flowergan train --data "$DATA" --out "$WORK/runs/$name" \
    --device "$DEV" --no-progress "$@"
  touch "$WORK/.stop-$name"
  wait "$fpid"
  cp "$WORK"/runs/"$name"/*/log.jsonl "$RES_DIR/$name.log.jsonl" 2>/dev/null
  pack
}
BENCH=("$PY" -m flowergan bench --device "$DEV")

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } >"$RES_DIR/env.txt" 2>&1
cat "$RES_DIR/env.txt" >>"$OUT/gpu.log"

# 1. The issue's data: the same bytes for both codes.
stage prepare-data 60 "$PY" -m flowergan prepare synthetic --out "$DATA" --count $COUNT --resolution $RES --seed 0 \
  --overwrite
# 2. `flowergan train` as a user runs it (defaults: auto-128; batch 32), a log line (and peak memory) per kimg.
train_stage train-auto128 $((TRAIN_SECS + 40)) "$TRAIN_SECS" "${PRE[@]}" --batch "$B" --kimg 1000 --snap 1000 \
  --log-every $LOGK
# 3. The official train.py on the same data, same card, same call (tick lines stamped: launch to 4 kimg).
OFF_KIMG=${OFFICIAL_KIMG:-12}
if [ "$DEV" = cpu ]; then
  skip official "smoke mode: the official train.py needs CUDA"
elif [ -z "$OFFICIAL" ]; then
  skip official "OFFICIAL is not set: copy the official code into .gpu-carry/ and carry it (see the top of gpu.sh)"
else
  OFFICIAL=$(readlink -f "$OFFICIAL")
  OFFICIAL_BENCH=$(readlink -f "${OFFICIAL_BENCH:-$OFFICIAL/../official-bench}")
  stage official 170 bash -c 'timeout -s INT 160 bash "$0/official_gpu.sh" "$1" "$2" "$3" "$4" 1>&2; rc=$?
    [ $rc -eq 124 ] && rc=0; exit $rc' "$OFFICIAL_BENCH" "$OFFICIAL" "$DATA" "$OFF_KIMG" "$WORK/official-runs"
fi
# 4. The 12 GB bar: 1 kimg at auto-128 b32 with the process capped at 12 GiB; passes when it completes.
train_stage cap12 110 0 "${PRE[@]}" --batch "$B" --kimg $CAPK --snap 1000 --log-every $LOGK --cuda-memory-gb 12
# 5. lite-128 (the same bar as auto-128).
train_stage train-lite128 $((LITE_SECS + 40)) "$LITE_SECS" "${PLITE[@]}" --batch "$B" --kimg 1000 --snap 1000 \
  --log-every $LOGK
# 6. tiny (32x32, batch 16), one process: img/s (the bar: >= 1,000).
stage tiny-imgs 45 "${BENCH[@]}" --what train --preset tiny --batch 16 $TINY_REP
# 7. Where a step's time and memory go: operator calls and MiB saved for backward per phase.
stage bench-profile 90 "${BENCH[@]}" --what train "${PRE[@]}" --batch "$B" $REP --amp auto --profile
# 8. Does the default precision learn like fp32? tiny from seeds 0 and 1, four runs side by side; the snapshots'
# G_ema come back in learn.tar, scored here: bench/precision_race.py score DIR --data flowers32-2000-s0.zip
stage learn $((LEARN_SECS + 45)) "$PY" bench/precision_race.py train --device "$DEV" --kimg $LKIMG --snap $LSNAP \
  --seeds 0,1 --seconds $LEARN_SECS --work "$WORK/learn-work" --out "$WORK/learn"
[ -d "$WORK/learn" ] && tar -cf "$OUT/learn.tar" -C "$WORK" learn

"$PY" bench/gpu_report.py "$OUT" >"$OUT/report.md" 2>>"$OUT/gpu.log" || log "gpu_report.py failed"
log "done in $(( $(date +%s) - START ))s"
