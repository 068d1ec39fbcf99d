"""Class names kept beside the labels in dataset.json ("class_names": [name of class 0, ...]).

Oxford 102 Flowers' category names are those published with the dataset (Nilsback & Zisserman 2008), in
the order of imagelabels.mat (label 1 -> index 0).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from flowergan.data.errors import DataError
from flowergan.readers import check_file

__all__ = ["OXFORD102_CLASS_NAMES", "check_class_names", "read_class_names", "MAX_NAME_LEN"]

MAX_NAME_LEN = 80

OXFORD102_CLASS_NAMES = (
    "pink primrose", "hard-leaved pocket orchid", "canterbury bells", "sweet pea", "english marigold",
    "tiger lily", "moon orchid", "bird of paradise", "monkshood", "globe thistle", "snapdragon", "colt's foot",
    "king protea", "spear thistle", "yellow iris", "globe-flower", "purple coneflower", "peruvian lily",
    "balloon flower", "giant white arum lily", "fire lily", "pincushion flower", "fritillary", "red ginger",
    "grape hyacinth", "corn poppy", "prince of wales feathers", "stemless gentian", "artichoke", "sweet william",
    "carnation", "garden phlox", "love in the mist", "mexican aster", "alpine sea holly", "ruby-lipped cattleya",
    "cape flower", "great masterwort", "siam tulip", "lenten rose", "barbeton daisy", "daffodil", "sword lily",
    "poinsettia", "bolero deep blue", "wallflower", "marigold", "buttercup", "oxeye daisy", "common dandelion",
    "petunia", "wild pansy", "primula", "sunflower", "pelargonium", "bishop of llandaff", "gaura", "geranium",
    "orange dahlia", "pink-yellow dahlia", "cautleya spicata", "japanese anemone", "black-eyed susan",
    "silverbush", "californian poppy", "osteospermum", "spring crocus", "bearded iris", "windflower",
    "tree poppy", "gazania", "azalea", "water lily", "rose", "thorn apple", "morning glory", "passion flower",
    "lotus", "toad lily", "anthurium", "frangipani", "clematis", "hibiscus", "columbine", "desert-rose",
    "tree mallow", "magnolia", "cyclamen", "watercress", "canna lily", "hippeastrum", "bee balm", "ball moss",
    "foxglove", "bougainvillea", "camellia", "mallow", "mexican petunia", "bromelia", "blanket flower",
    "trumpet creeper", "blackberry lily",
)
assert len(OXFORD102_CLASS_NAMES) == 102


def check_class_names(names, num_classes: int | None, where: str) -> list[str]:
    """A list of `num_classes` distinct non-empty strings of at most MAX_NAME_LEN characters, or DataError."""
    if not isinstance(names, list) or not all(isinstance(n, str) and 0 < len(n) <= MAX_NAME_LEN for n in names):
        raise DataError(f"{where}: class_names must be a list of non-empty strings of at most {MAX_NAME_LEN} "
                        f"characters")
    if num_classes is not None and len(names) != num_classes:
        raise DataError(f"{where}: {len(names)} class names for {num_classes} classes; give one name per class "
                        f"(class 0 first)")
    if len(set(names)) != len(names):
        raise DataError(f"{where}: class names must be distinct")
    return names


def read_class_names(path: str | os.PathLike) -> list[str] | None:
    """The class names of a dataset (zip or folder with dataset.json, or a dataset.json), None when absent."""
    p = Path(path)
    try:
        if p.is_file() and p.suffix.lower() == ".zip":
            with zipfile.ZipFile(p) as zf:
                if "dataset.json" not in zf.namelist():
                    return None
                if zf.getinfo("dataset.json").file_size > 64 << 20:
                    raise DataError(f"{p}: dataset.json is larger than 64 MiB")
                data = zf.read("dataset.json")
        else:
            f = p / "dataset.json" if p.is_dir() else p
            if not f.exists():
                return None
            if check_file(f, "dataset.json") > 64 << 20:  # a regular file; its size before reading
                raise DataError(f"{f}: dataset.json is larger than 64 MiB")
            data = f.read_bytes()
        meta = json.loads(data)
    except DataError:
        raise
    except (OSError, zipfile.BadZipFile, ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{p}: cannot read dataset.json ({e})") from None
    names = meta.get("class_names") if isinstance(meta, dict) else None
    return None if names is None else check_class_names(names, None, f"{p} dataset.json")
