"""Hostile inputs of the models/files/runs kind, each in a fresh process: wall time, peak RSS and the outcome.

    PYTHONPATH=$PWD python bench/hostile_core.py --out bench/out/hostile_core.json

Cases: the issue's 'billion laughs' official pickle; a model config.json asking for 1e9 channels; a ~1 MB zip
with a 1 GiB member; a dataset.json with class 99999999999; and the bare imports (the baseline RSS).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "robustness"))
from core_kit import g_kwargs, official_pickle  # noqa: E402  (the test fixtures' builders)


def _child(code: str) -> dict:
    """Run `code` in a fresh Python; wall seconds, peak RSS (MB, from wait4) and its last output line."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = p.stdout.read(), p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    lines = (out.decode().strip() or err.decode().strip()).splitlines()
    return {"seconds": round(time.perf_counter() - t0, 2), "peak_rss_mb": round(ru.ru_maxrss / 1024, 1),
            "exit": os.waitstatus_to_exitcode(status), "outcome": lines[-1][:300] if lines else ""}


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


TRY = "try:\n    {call}\nexcept Exception as e:\n    print(type(e).__name__ + ': ' + str(e))\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/out/hostile_core.json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hostile-core-"))
    results = {}
    results["import compat (baseline)"] = _child("import flowergan.compat.official; print('ok')")
    results["import data (baseline)"] = _child("import flowergan.data.prepare, flowergan.data.dataset; print('ok')")

    pkl = tmp / "laughs.pkl"
    a = [0] * 10
    for _ in range(8):
        a = [a] * 10
    pkl.write_bytes(official_pickle(g_kwargs(mapping_kwargs={"layer_features": a})))
    results[f"billion-laughs pickle ({pkl.stat().st_size} bytes)"] = _child(
        "from flowergan.compat.official import load_official_pickle\n"
        + TRY.format(call=f"load_official_pickle({str(pkl)!r})"))

    model = tmp / "model"
    model.mkdir()
    from flowergan.config import PRESETS

    doc = {"format": "flowergan-model", "format_version": 1,
           "model": {**PRESETS["tiny"].to_dict(), "channel_base": 10**9, "channel_max": 10**9}}
    (model / "config.json").write_text(json.dumps(doc))
    results["config.json with 1e9 channels"] = _child(
        "from flowergan.networks.store import load_model_dir\n" + TRY.format(call=f"load_model_dir({str(model)!r})"))

    bomb = tmp / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("huge.png")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as f:
            for _ in range(64):
                f.write(bytes(16 * 2**20))
        zf.writestr("ok.png", _png())
    results[f"zip with a 1 GiB member ({bomb.stat().st_size / 2**20:.1f} MB)"] = _child(
        "from flowergan.data.prepare import prepare_dataset\n"
        + TRY.format(call=f"s = prepare_dataset({str(bomb)!r}, {str(tmp / 'o.zip')!r}, resolution=16, workers=1, "
                          f"progress=False); print('written', s['counts']['written'], '; ignored:', s['ignored'])"))

    ds = tmp / "labels.zip"
    with zipfile.ZipFile(ds, "w") as zf:
        zf.writestr("dataset.json", json.dumps({"labels": [["00000/img00000000.png", 99999999999]]}))
        zf.writestr("00000/img00000000.png", _png())
    results["dataset.json with class 99999999999"] = _child(
        "from flowergan.data.dataset import ImageDataset\n"
        + TRY.format(call=f"ImageDataset({str(ds)!r}, use_labels=True)"))

    shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    for k, v in results.items():
        print(f"{k:45s} {v['seconds']:6.2f} s {v['peak_rss_mb']:7.1f} MB  {v['outcome'][:160]}")


if __name__ == "__main__":
    main()
