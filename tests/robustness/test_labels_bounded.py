"""`prepare --labels FILE` reads its file through the bounded readers: regular files of bounded size only."""

import os
import threading

import pytest

from flowergan.data.labels import load_labels
from flowergan.errors import BadInput, BoundsError


def test_oversized_labels_file_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWERGAN_MAX_LABELS_MB", "1")
    path = tmp_path / "labels.csv"
    with open(path, "wb") as f:  # a sparse 2 GiB file: reading it would cost 2 GiB
        f.truncate(2 * 2**30)
    with pytest.raises(BoundsError, match="FLOWERGAN_MAX_LABELS_MB"):
        load_labels(path, ["a.png"])


@pytest.mark.parametrize("suffix", [".csv", ".json", ".mat"])
def test_a_fifo_is_refused_at_once(tmp_path, suffix):
    fifo = tmp_path / f"labels{suffix}"
    os.mkfifo(fifo)
    done = []

    def call():
        try:
            load_labels(fifo, ["a.png"])
        except (BadInput, BoundsError) as e:
            done.append(e)

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(10)
    assert done, "load_labels blocked on a named pipe"
    assert "pipe" in str(done[0]) and str(fifo) in str(done[0])


def test_a_device_is_refused(tmp_path):
    link = tmp_path / "labels.csv"
    link.symlink_to("/dev/zero")
    with pytest.raises((BadInput, BoundsError)):
        load_labels(link, ["a.png"])


def test_a_small_csv_still_reads(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("\ufeffname,class\na.png,3\n", encoding="utf-8")
    assert load_labels(path, ["a.png"]) == {"a.png": 3}
