"""`prepare`: turn a folder, zip or tar of photos into an official-layout dataset zip, skipping bad files with reasons.

Work runs in worker processes (spawned) over a bounded window, so memory stays flat on huge archives; a worker
that dies on a poisonous file costs only that file. The output zip appears only when complete, and a JSON summary
(counts, every skipped or ignored file with its reason, source -> output names) is saved beside it.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from flowergan.data.archive import (
    DatasetZipWriter,
    archive_name,
    check_output,
    summary_path,
    write_json_atomic,
)
from flowergan.data.classes import OXFORD102_CLASS_NAMES, check_class_names, read_class_names
from flowergan.data.errors import DataError
from flowergan.data.images import RESAMPLE, TRANSFORMS, SkipImage, convert_image
from flowergan.data.labels import dataset_json_labels, load_labels
from flowergan.data.sources import DATASET_JSON, open_source

log = logging.getLogger(__name__)

_BATCH = 4  # images per worker task
Result = tuple[int, str, bool, Any, Any, list]  # (index, name, ok, png | reason, source size, notes)


def default_workers() -> int:
    """Worker processes to use by default: the CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def check_resolution(resolution: int) -> None:
    if resolution < 4 or resolution > 8192 or resolution & (resolution - 1):
        raise DataError(f"--resolution {resolution}: StyleGAN2 needs a power of two between 4 and 8192 "
                        f"(e.g. 32, 64, 128, 256)")


def _convert_batch(batch: list[tuple[int, str, bytes | None, str | None]], resolution: int, transform: str,
                   min_size: int) -> list[Result]:
    """Worker task: convert each (index, name, bytes, read error) item; never raises for a bad image."""
    out = []
    for idx, name, data, err in batch:
        if err is not None:
            out.append((idx, name, False, err, None, []))
            continue
        try:
            c = convert_image(data, resolution, transform, min_size)
            out.append((idx, name, True, c.png, c.source_size, c.notes))
        except SkipImage as e:
            out.append((idx, name, False, str(e), None, []))
        except Exception as e:  # a bug or an exotic decoder failure must cost one file, not the run
            out.append((idx, name, False, f"unexpected error while converting ({type(e).__name__}: {e})", None, []))
    return out


def _batches(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _run_isolated(batch, cfg, fn) -> list[Result]:
    """Re-run a batch whose worker died, one image per fresh process, to find and skip the poisonous file."""
    results = []
    for item in batch:
        with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as ex:
            try:
                results += ex.submit(fn, [item], *cfg).result()
            except BrokenProcessPool:
                results.append((item[0], item[1], False, "the image decoder crashed on this file (worker process "
                                "died)", None, []))
    return results


def run_conversions(items: Iterable[tuple[int, str, bytes | None, str | None]], cfg: tuple, workers: int,
                    on_result: Callable[[Result], None], fn: Callable = _convert_batch) -> None:
    """Convert items in order with `workers` processes (1 = in this process), calling `on_result` in input order.

    `fn(batch, *cfg) -> list[Result]` is the picklable worker task (the default converts images).
    """
    if workers <= 1:
        for batch in _batches(items, _BATCH):
            for r in fn(batch, *cfg):
                on_result(r)
        return
    ctx = mp.get_context("spawn")
    window = workers * 4
    ex = ProcessPoolExecutor(workers, mp_context=ctx)
    pending: deque = deque()

    def finish_one() -> None:
        nonlocal ex
        batch, fut = pending.popleft()
        try:
            results = fut.result()
        except BrokenProcessPool:
            log.warning("a worker process died; retrying its images one by one")
            ex.shutdown(wait=True, cancel_futures=True)
            results = _run_isolated(batch, cfg, fn)
            ex = ProcessPoolExecutor(workers, mp_context=ctx)
            for i, (b, _) in enumerate(list(pending)):
                pending[i] = (b, ex.submit(fn, b, *cfg))
        for r in results:
            on_result(r)

    try:
        for batch in _batches(items, _BATCH):
            pending.append((batch, ex.submit(fn, batch, *cfg)))
            while len(pending) >= window:
                finish_one()
        while pending:
            finish_one()
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def _names_in(data: bytes) -> list[str] | None:
    """The "class_names" of a source's dataset.json, or None (absent, or not a list)."""
    try:
        meta = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    names = meta.get("class_names") if isinstance(meta, dict) else None
    return names if isinstance(names, list) else None


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("flowergan")
    except Exception:  # not installed (running from a source tree)
        return "unknown"


def prepare_dataset(source: str | os.PathLike, out: str | os.PathLike, *, resolution: int = 128,
                    transform: str = "center-crop", labels: str | os.PathLike | None = None,
                    max_images: int | None = None, workers: int | None = None, overwrite: bool = False,
                    min_size: int = 16, progress: bool = True) -> dict[str, Any]:
    """Convert every image in `source` (folder, zip or tar) to a [resolution, resolution] RGB PNG in the zip `out`.

    labels: Oxford imagelabels.mat (1-based -> 0-based), dataset.json or CSV; without it a top-level dataset.json
    in the source (an official dataset) is used when present. max_images: use only the first N image files in
    sorted path order. Returns the summary dict, which is also saved as `out` + ".summary.json".
    Raises DataError (nothing written) for a bad source, output or labels file, or when no image survives.
    """
    t0 = time.perf_counter()
    check_resolution(resolution)
    if transform not in TRANSFORMS:
        raise DataError(f"--transform {transform!r}: choose one of {', '.join(TRANSFORMS)}")
    out_path = check_output(out, overwrite)
    summ_path = summary_path(out_path)
    src = open_source(source, exclude=(out_path, summ_path))
    listing = src.list()
    for w in listing.warnings:
        log.warning("%s: %s", source, w)
    if not listing.candidates:
        reasons = Counter(r for _, r in listing.ignored).most_common(3)
        detail = "; ".join(f"{n} x {r}" for r, n in reasons) or "it is empty"
        raise DataError(f"no image files found in {source} ({detail}). Point SOURCE at the folder or archive "
                        f"holding your .jpg/.png photos.")
    candidates = listing.candidates[:max_images] if max_images else listing.candidates
    subset = bool(max_images) and max_images < len(listing.candidates)

    label_map: dict[str, int] | None = None
    label_source = None
    names: list[str] | None = None  # class names, when the source has them
    if labels is not None:
        label_map = load_labels(labels, candidates, subset=subset)
        label_source = str(labels)
        if str(labels).lower().endswith(".mat"):
            names = list(OXFORD102_CLASS_NAMES)  # Oxford's imagelabels.mat: the published category names
        elif str(labels).lower().endswith(".json"):
            names = read_class_names(labels)
    elif listing.has_dataset_json:
        data = src.read_member(DATASET_JSON)
        if data is not None:
            label_map = dataset_json_labels(data, candidates, subset, f"{source}/{DATASET_JSON}")
            label_source = f"{source}/{DATASET_JSON}" if label_map is not None else None
            names = _names_in(data)

    index = {name: i for i, name in enumerate(candidates)}
    cfg = (resolution, transform, min_size)
    nworkers = max(1, min(workers or default_workers(), len(candidates)))
    written: list[tuple[str, str]] = []  # (archive name, source name)
    skipped: list[dict[str, str]] = []
    upscaled: list[dict[str, Any]] = []
    notes_count: Counter = Counter()

    from tqdm import tqdm

    bar = tqdm(total=len(candidates), unit="img", desc="prepare", disable=not progress, leave=False)
    with DatasetZipWriter(out_path, overwrite) as writer:
        def on_result(r: Result) -> None:
            idx, name, ok, payload, size, notes = r
            bar.update(1)
            if not ok:
                skipped.append({"file": name, "reason": payload})
                return
            aname = archive_name(idx)
            writer.add(aname, payload)
            written.append((aname, name))
            notes_count.update(notes)
            if "upscaled" in notes:
                upscaled.append({"file": name, "size": list(size)})

        items = ((index[name], name, data, err) for name, data, err in src.iter_files(candidates))
        run_conversions(items, cfg, nworkers, on_result)
        bar.close()
        if not written:
            reasons = "\n".join(f"  {s['file']}: {s['reason']}" for s in skipped[:10])
            raise DataError(f"all {len(candidates)} image files in {source} were skipped, so no dataset was "
                            f"written. First reasons:\n{reasons}")
        written.sort()
        label_list = [[a, label_map[s]] for a, s in written] if label_map is not None else None
        if names is not None and label_list:
            num_classes = max(c for _, c in label_list) + 1
            if len(names) < num_classes:
                log.warning("%s: %d class names for %d classes; dataset.json keeps no class names", source,
                            len(names), num_classes)
                names = None
            else:
                names = check_class_names(names[:num_classes], num_classes, f"{source} class names")
        writer.commit(label_list, class_names=names)

    skipped.sort(key=lambda s: s["file"])
    seconds = time.perf_counter() - t0
    per_class = Counter(c for _, c in (label_list or []))
    summary = {
        "output": str(out_path),
        "source": str(source),
        "source_kind": src.kind,
        "resolution": resolution,
        "transform": transform,
        "resize_filter": f"PIL {RESAMPLE.name.title()}",
        "counts": {
            "files_found": len(listing.candidates) + len(listing.ignored),
            "image_files": len(listing.candidates),
            "considered": len(candidates),
            "written": len(written),
            "skipped": len(skipped),
            "ignored": len(listing.ignored),
            **{k.replace("-", "_"): v for k, v in sorted(notes_count.items())},
        },
        "labels": None if label_list is None else {
            "source": label_source, "num_classes": max(per_class) + 1, "class_names": names,
            "per_class": {str(k): per_class[k] for k in sorted(per_class)}},
        "skipped": skipped,
        "ignored": [{"file": n, "reason": r} for n, r in listing.ignored],
        "upscaled": upscaled,
        "warnings": listing.warnings,
        "images": [[a, s] for a, s in written],
        "workers": nworkers,
        "seconds": round(seconds, 3),
        "images_per_s": round(len(candidates) / seconds, 1) if seconds > 0 else None,
        "flowergan_version": _version(),
    }
    write_json_atomic(summ_path, summary)
    log.debug("wrote %s: %d images, %d skipped, %d ignored (%.1f s)", out_path, len(written), len(skipped),
             len(listing.ignored), seconds)
    return summary
