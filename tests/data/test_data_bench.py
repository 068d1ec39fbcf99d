"""`run_bench` for `flowergan bench --what data`, at a toy size: records have the shared keys and sane values."""

from __future__ import annotations

from PIL import Image

from flowergan.benchmarking.data import make_photos, run_bench


def test_photos_are_about_500x600_jpegs(tmp_path):
    for p in make_photos(tmp_path, 3):
        im = Image.open(p)
        assert im.format == "JPEG" and min(im.size) == 500 and 500 <= max(im.size) <= 700


def test_run_bench_records(tmp_path):
    recs = run_bench(resolution=32, num_photos=6, workers=1, batch_size=4, num_batches=5, reader_images=12,
                     synthetic_counts={32: 3}, repeats=1, workdir=tmp_path, loader_sizes={32: 8})
    assert [r["what"] for r in recs] == ["data.prepare"] + ["data.reader"] * 3 + ["data.synthetic"] + \
        ["data.loader"] * 2
    assert [r["config"]["cache"] for r in recs[-2:]] == ["memory", "lazy"]
    assert [r["config"]["cache"] for r in recs[1:4]] == ["memory", "mmap", "none"]
    for r in recs:
        assert r["img_per_s"] > 0 and r["device"].startswith("cpu")
        assert {"what", "img_per_s", "sec_per_batch", "peak_mem_mb", "device", "torch", "config"} <= set(r)
    assert list(tmp_path.iterdir()) == []  # the temporary photos are gone
