"""Class labels for `prepare`: Oxford's imagelabels.mat (1-based), dataset.json or CSV, matched to source files.

Every mismatch between a labels file and the images is a DataError naming the files involved, raised before
anything is written.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from flowergan import readers
from flowergan.data.errors import DataError
from flowergan.data.limits import check_class_count

_OXFORD_NAME = re.compile(r"^image_(\d+)\.[A-Za-z0-9]+$")


def _few(items: Sequence[str], k: int = 8) -> str:
    shown = ", ".join(items[:k])
    return shown + (f" ... ({len(items)} in all)" if len(items) > k else "")


def _as_classes(values: np.ndarray, where: str) -> np.ndarray:
    v = np.asarray(values).ravel()
    if v.size == 0:
        raise DataError(f"{where}: the labels array is empty")
    try:
        f = v.astype(np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{where}: labels must be integers, got values like {v[:3].tolist()}") from None
    if not np.all(np.isfinite(f)) or not np.all(f == np.round(f)):
        raise DataError(f"{where}: labels must be whole numbers, got values like {f[:3].tolist()}")
    return f.astype(np.int64)


def oxford_mat_labels(mat_path: Path, candidates: Sequence[str], subset: bool) -> dict[str, int]:
    """Match Oxford-style `image_NNNNN.jpg` files to the 1-based `labels` array of a .mat file -> 0-based classes."""
    try:
        import scipy.io
    except ImportError:  # pragma: no cover - scipy is a dependency
        raise DataError("reading .mat labels needs scipy: pip install scipy") from None
    try:
        mat = scipy.io.loadmat(str(mat_path))
    except Exception as e:  # scipy raises many types for non-.mat content
        raise DataError(f"cannot read labels file {mat_path} as a MATLAB .mat file ({e}). Pass Oxford's "
                        f"imagelabels.mat, a dataset.json, or a CSV of 'name,class' lines.") from None
    if "labels" not in mat:
        found = ", ".join(k for k in mat if not k.startswith("__")) or "nothing"
        raise DataError(f"{mat_path} has no 'labels' variable (found: {found}); Oxford's imagelabels.mat has one.")
    labels = _as_classes(mat["labels"], str(mat_path))
    check_class_count(int(labels.max()) - 1, f"labels file {mat_path}")
    if labels.min() < 1:
        raise DataError(f"{mat_path}: contains class {labels.min()}, but .mat labels are expected 1-based as in "
                        f"Oxford's imagelabels.mat (1..102). Convert it to a 0-based dataset.json or CSV instead.")
    n = len(labels)
    bad_names, out_of_range, by_number = [], [], {}
    for name in candidates:
        m = _OXFORD_NAME.match(name.rsplit("/", 1)[-1])
        if not m:
            bad_names.append(name)
            continue
        k = int(m.group(1))
        if not 1 <= k <= n:
            out_of_range.append(name)
            continue
        by_number.setdefault(k, []).append(name)
    problems = []
    if bad_names:
        problems.append(f"{len(bad_names)} image(s) are not named image_NNNNN.jpg, so the .mat labels cannot be "
                        f"matched to them: {_few(bad_names)}")
    if out_of_range:
        problems.append(f"{len(out_of_range)} image(s) have numbers beyond the {n} labels in the file: "
                        f"{_few(out_of_range)}")
    dups = [f"{' and '.join(v)}" for v in by_number.values() if len(v) > 1]
    if dups:
        problems.append(f"{len(dups)} image number(s) appear more than once: {_few(dups, 4)}")
    if not subset:
        missing = [f"image_{k:05d}" for k in range(1, n + 1) if k not in by_number]
        if missing:
            problems.append(f"the labels file has {n} labels but {len(missing)} of those images are missing from "
                            f"the source: {_few(missing)}")
    if problems:
        raise DataError(f"labels file {mat_path} does not match the images:\n  - " + "\n  - ".join(problems) +
                        "\nFix: pass the archive these labels belong to (102flowers.tgz for imagelabels.mat), "
                        "remove the extra files, or drop --labels.")
    return {name: int(labels[k - 1]) - 1 for k, names in by_number.items() for name in names}


def _table_labels(table: dict[str, int], candidates: Sequence[str], subset: bool, where: str) -> dict[str, int]:
    """Match name -> class entries (exact relative path, else unique basename) to candidates."""
    by_base: dict[str, list[str]] = {}
    for c in candidates:
        by_base.setdefault(c.rsplit("/", 1)[-1], []).append(c)
    out, used, unmatched = {}, set(), []
    for c in candidates:
        key = c if c in table else None
        if key is None:
            base = c.rsplit("/", 1)[-1]
            if base in table and len(by_base[base]) == 1:
                key = base
        if key is None:
            unmatched.append(c)
        else:
            out[c] = table[key]
            used.add(key)
    problems = []
    if unmatched:
        problems.append(f"{len(unmatched)} image(s) have no label: {_few(unmatched)}")
    extra = sorted(set(table) - used)
    if extra and not subset:
        problems.append(f"{len(extra)} label(s) name files that are not among the images: {_few(extra)}")
    bad = sorted(f"{k}={v}" for k, v in table.items() if v < 0)
    if bad:
        problems.append(f"negative classes: {_few(bad)}")
    if out:
        check_class_count(max(out.values()), f"labels file {where}")
    if problems:
        raise DataError(f"labels file {where} does not match the images:\n  - " + "\n  - ".join(problems) +
                        "\nFix: make the labels list exactly the image files (relative paths or unique file "
                        "names), with 0-based integer classes.")
    return out


def dataset_json_labels(data: bytes, candidates: Sequence[str], subset: bool, where: str) -> dict[str, int] | None:
    """Labels from an official dataset.json ({"labels": [[name, class], ...]} or null); None when null."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{where} is not valid JSON ({e})") from None
    if isinstance(obj, dict) and "labels" in obj:
        if obj["labels"] is None:
            return None
        try:
            table = {str(name): cls for name, cls in obj["labels"]}
        except (TypeError, ValueError):
            raise DataError(f"{where}: 'labels' must be a list of [file name, class] pairs") from None
    elif isinstance(obj, dict):
        table = dict(obj)
    else:
        raise DataError(f"{where}: expected {{\"labels\": [[name, class], ...]}} or {{name: class}}")
    for k, v in table.items():
        if isinstance(v, bool) or not isinstance(v, int):
            raise DataError(f"{where}: the class of {k!r} is {v!r}; flowergan prepare needs integer classes")
    return _table_labels(table, candidates, subset, where)


def csv_labels(path: Path, candidates: Sequence[str], subset: bool) -> dict[str, int]:
    """Labels from 'name,class' lines (an optional header line is skipped)."""
    table = {}
    text = readers.read_text(path, "labels file", "labels_mb").removeprefix("\ufeff")  # a BOM, as utf-8-sig
    rows = list(csv.reader(io.StringIO(text)))
    for i, row in enumerate(rows):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise DataError(f"{path}:{i + 1}: expected 'name,class', got {','.join(row)!r}")
        try:
            table[row[0].strip()] = int(row[1])
        except ValueError:
            if i == 0:
                continue  # header
            raise DataError(f"{path}:{i + 1}: class {row[1]!r} is not an integer") from None
    return _table_labels(table, candidates, subset, str(path))


def load_labels(path: str | Path, candidates: Sequence[str], subset: bool = False) -> dict[str, int]:
    """Class (0-based) for every candidate file, from a .mat (Oxford, 1-based), .json or .csv/.txt file.

    `subset` (true with --max-images) allows the labels file to list more images than are used.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"labels file {p} does not exist. For Oxford 102 it is imagelabels.mat from "
                        f"https://www.robots.ox.ac.uk/~vgg/data/flowers/102/")
    readers.check_file(p, "labels file", "labels_mb")  # a regular file of bounded size (no FIFO, no /dev/zero)
    suffix = p.suffix.lower()
    if suffix == ".mat":
        return oxford_mat_labels(p, candidates, subset)
    if suffix == ".json":
        out = dataset_json_labels(readers.read_bytes(p, "labels file", "labels_mb"), candidates, subset, str(p))
        if out is None:
            raise DataError(f"{p} says \"labels\": null, so it has no labels to use; drop --labels.")
        return out
    if suffix in (".csv", ".txt", ".tsv"):
        return csv_labels(p, candidates, subset)
    raise DataError(f"labels file {p}: unknown type {suffix!r}; use Oxford's .mat, a dataset.json, or a .csv "
                    f"with 'name,class' lines")
