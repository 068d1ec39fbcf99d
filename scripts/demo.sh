#!/usr/bin/env bash
# The main job: set up .venv, make a small procedural-flower dataset, train the `tiny` preset on the
# CPU for a few minutes, and finish with real and generated images side by side and the progress plot under runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh demo
FG=.venv/bin/flowergan
KIMG=${DEMO_KIMG:-10}
mkdir -p data runs/demo
if [ ! -f data/demo-flowers-32.zip ]; then
  $FG prepare synthetic --out data/demo-flowers-32.zip --count 2000 --resolution 32 --seed 0
fi
# The quick small-image recipe (docs/training.md): batch 16 with R1 gamma 0.0128 and EMA 5 kimg (the auto
# formulas applied to batch 16), no path length or style mixing, lr 0.004.
$FG train --data data/demo-flowers-32.zip --out runs/demo --preset tiny --kimg "$KIMG" --batch 16 --snap 2 \
  --gamma 0.0128 --ema 5 --lr 0.004 --pl-weight 0 --style-mixing 0 --aug ada --mirror --seed 0 --device cpu
run=$(ls -d runs/demo/*/ | sort | tail -n 1); run=${run%/}
$FG generate --network "$run" --seeds 0-63 --trunc 1 --outdir "$run/samples" --grid
.venv/bin/python scripts/side_by_side.py "$run/reals.png" "$run/samples/grid.png" "$run/real-vs-generated.png"
echo "Done. Real beside generated: $run/real-vs-generated.png   Sample grid: $run/samples/grid.png"
echo "     Progress plot: $run/progress.png"
echo "After $KIMG kimg the images are still blobs of colour. Flowers appear at about 100 kimg:"
echo "DEMO_KIMG=100 bash scripts/demo.sh (about half an hour on 2 CPU cores; README.md, 'Measured')."
echo "Next: the README's quick tour (source .venv/bin/activate first)."
