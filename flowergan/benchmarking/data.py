"""`flowergan bench --what data`: prepare throughput on ~500x600 photos, training-reader throughput, flower
rendering, and the training loader at 128/256/1024 (in memory and lazy) against what a training step consumes.

The photos are generated here (smooth colour fields + shapes + sensor noise, saved as JPEG q90, so they decode
like camera photos), in a temporary folder that is deleted afterwards.
"""

from __future__ import annotations

import io
import os
import resource
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw


def make_photos(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """`count` photo-like JPEGs of about 500x600 (short side 500, long side 500-700, either orientation)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        long = int(rng.integers(500, 701))
        w, h = (500, long) if rng.random() < 0.5 else (long, 500)
        small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)
        d = ImageDraw.Draw(img)
        for _ in range(6):
            x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(20, 120)
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            d.ellipse([x - r, y - r * 0.6, x + r, y + r * 0.6], fill=colour)
        a = np.asarray(img, np.int16) + rng.normal(0, 6, (h, w, 3)).astype(np.int16)
        p = folder / f"photo_{i:05d}.jpg"
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(p, quality=90)
        paths.append(p)
    return paths


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished, waited-for children (worker processes)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _replicate(src_zip: Path, dst_zip: Path, count: int) -> None:
    """A dataset of `count` images by cycling the PNGs of src_zip (realistic size for the reader)."""
    with zipfile.ZipFile(src_zip) as zs:
        pngs = [zs.read(n) for n in sorted(zs.namelist()) if n.endswith(".png")]
    with zipfile.ZipFile(dst_zip, "w", compression=zipfile.ZIP_STORED) as zd:
        for i in range(count):
            s = f"{i:08d}"
            zd.writestr(f"{s[:5]}/img{s}.png", pngs[i % len(pngs)])
        zd.writestr("dataset.json", '{"labels": null}')


def run_bench(resolution: int = 128, num_photos: int = 400, workers: int | None = None,
              batch_size: int = 32, num_batches: int = 200, reader_images: int = 2000,
              synthetic_counts: dict[int, int] | None = None, repeats: int = 3, seed: int = 0,
              workdir: str | os.PathLike | None = None,
              loader_sizes: dict[int, int] | None = None) -> list[dict[str, Any]]:
    """Benchmark records (`tools.record`), all on CPU:

    data.prepare    - `prepare` of `num_photos` generated ~500x600 JPEGs to `resolution`, `workers` processes
                      (default: all cores); one timed run after an untimed warm-up on a few photos.
    data.reader     - ImageDataset.get_batch of `batch_size` random indices (xflip on) from a dataset of
                      `reader_images` images at `resolution`, for cache = memory, mmap and none
                      (sec_per_batch is per get_batch call; median of `repeats` runs of `num_batches` calls).
    data.synthetic  - procedural flowers rendered + encoded, {resolution: count} from `synthetic_counts`
                      (default {32: 1000, 128: 128}), `workers` processes.
    data.loader     - the training loader at {resolution: images} of `loader_sizes` (default {128: 256,
                      256: 128, 1024: 32}), in memory and lazy with `workers` (at most 4) processes.
    Each record also has img_per_cpu_s: images per CPU-second of this process and its workers (start-up
    included), which stays meaningful when other jobs share the cores and wall-clock img_per_s drops.
    """
    from flowergan.benchmarking.tools import record, time_median
    from flowergan.data.dataset import ImageDataset
    from flowergan.data.prepare import default_workers, prepare_dataset
    from flowergan.data.synthetic import prepare_synthetic

    nworkers = workers or default_workers()
    synthetic_counts = synthetic_counts or {32: 1000, 128: 128}
    records = []
    with tempfile.TemporaryDirectory(dir=workdir, prefix="flowergan-bench-") as tmp:
        tmp = Path(tmp)
        make_photos(tmp / "photos", num_photos, seed)
        make_photos(tmp / "warm", 4, seed + 1)
        prepare_dataset(tmp / "warm", tmp / "warm.zip", resolution=resolution, workers=nworkers,
                        progress=False)
        out = tmp / "ds.zip"
        holder: dict[str, Any] = {}

        def prep() -> None:
            holder["s"] = prepare_dataset(tmp / "photos", out, resolution=resolution, workers=nworkers,
                                          overwrite=True, progress=False)

        c0 = cpu_seconds()
        sec, _ = time_median(prep, warmup=0, repeats=1)
        n = holder["s"]["counts"]["written"]
        records.append(record("data.prepare", images=n, seconds=sec, device="cpu",
                              config={"resolution": resolution, "photos": num_photos,
                                      "photo_size": "~500x600 jpeg", "transform": "center-crop",
                                      "workers": nworkers},
                              img_per_cpu_s=round(n / (cpu_seconds() - c0), 1)))

        big = tmp / "reader.zip"
        _replicate(out, big, reader_images)
        rng = np.random.default_rng(seed)
        for cache in ("memory", "mmap", None):
            ds = ImageDataset(big, xflip=True, cache=cache, cache_dir=tmp / "cache", progress=False)
            nb = num_batches if cache else max(5, num_batches // 20)
            batches = [rng.integers(0, len(ds), batch_size) for _ in range(nb)]

            def read(ds=ds, batches=batches) -> None:
                for b in batches:
                    ds.get_batch(b)

            c0 = cpu_seconds()
            sec, _ = time_median(read, warmup=1, repeats=repeats)
            cpu = (cpu_seconds() - c0) / (repeats + 1)
            per_cpu_s = round(nb * batch_size / cpu, 1) if cpu > 0 else None
            records.append(record("data.reader", images=batch_size, seconds=sec / nb, device="cpu",
                                  config={"resolution": resolution, "cache": cache or "none",
                                          "batch": batch_size, "dataset_images": reader_images,
                                          "xflip": True},
                                  batches=nb, img_per_cpu_s=per_cpu_s))
            ds.close()

        for res, count in synthetic_counts.items():
            def synth(res=res, count=count) -> None:
                prepare_synthetic(tmp / f"syn{res}.zip", count=count, resolution=res, seed=seed,
                                  workers=nworkers, overwrite=True, progress=False)

            c0 = cpu_seconds()
            sec, _ = time_median(synth, warmup=0, repeats=1)
            records.append(record("data.synthetic", images=count, seconds=sec, device="cpu",
                                  config={"resolution": res, "count": count, "workers": nworkers},
                                  img_per_cpu_s=round(count / (cpu_seconds() - c0), 1)))
        records += loader_records(tmp, sizes=loader_sizes, workers=min(nworkers, 4), seed=seed)
    return records


# The bar of issue #12: auto-128 at 3.4 s/kimg consumes 1000 / 3.4 = 294 real images/s.
BAR_IMG_PER_S = 1000 / 3.4


def write_smooth_zip(path: Path, count: int, resolution: int, seed: int = 0) -> Path:
    """A dataset zip of `count` smooth, noisy PNGs at `resolution` (they decode like prepared photos)."""
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for i in range(count):
            small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            img = Image.fromarray(small).resize((resolution, resolution), Image.Resampling.BICUBIC)
            img = np.asarray(img)
            img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG", compress_level=1)
            s = f"{i:08d}"
            zf.writestr(f"{s[:5]}/img{s}.png", buf.getvalue())
        zf.writestr("dataset.json", '{"labels": null}')
    return path


def loader_records(tmp: Path, *, sizes: dict[int, int] | None = None, batch: int = 32, batches: int = 8,
                   workers: int = 2, seed: int = 0) -> list[dict[str, Any]]:
    """data.loader: the training loader (BatchLoader: background workers, one batch ahead) at each resolution,
    cached in memory and lazy from the zip; img_per_s against BAR_IMG_PER_S (what the GPU step needs)."""
    import time

    from flowergan.benchmarking.tools import record
    from flowergan.data.dataset import ImageDataset, InfiniteSampler
    from flowergan.data.loader import BatchLoader

    sizes = sizes or {128: 256, 256: 128, 1024: 32}
    out = []
    for res, count in sizes.items():
        z = write_smooth_zip(tmp / f"loader{res}.zip", count, res, seed)
        for cache, nw in (("memory", 0), ("lazy", workers)):
            ds = ImageDataset(z, xflip=True, cache="memory" if cache == "memory" else None, progress=False)
            loader = BatchLoader(ds, InfiniteSampler(len(ds), seed=seed), batch, "cpu", workers=nw)
            loader.next()  # start-up (worker processes) outside the timing
            t0 = time.perf_counter()
            for _ in range(batches):
                loader.next()
            sec = (time.perf_counter() - t0) / batches
            loader.close()
            ds.close()
            ips = batch / sec
            out.append(record("data.loader", images=batch, seconds=sec, device="cpu",
                              config={"resolution": res, "cache": cache, "workers": nw, "batch": batch,
                                      "dataset_images": count},
                              bar_img_per_s=round(BAR_IMG_PER_S, 1), vs_bar=round(ips / BAR_IMG_PER_S, 3)))
    return out

