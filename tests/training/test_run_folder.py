"""One owner of the run-folder layout (flowergan/networks/run_folder.py): its functions, and that `--network` and
`--resume` find runs and checkpoints through it, so they give one answer."""

import re
from pathlib import Path

from flowergan.networks import run_folder as layout
from flowergan.networks.locate import locate_candidates
from flowergan.training import checkpoint as ckpt

PKG = Path(__file__).resolve().parents[2] / "flowergan"


def _checkpoint(run: Path, nimg: int, complete: bool = True) -> Path:
    d = run / layout.CHECKPOINTS_DIR / layout.checkpoint_name(nimg)
    d.mkdir(parents=True)
    if complete:  # what is_model_dir looks for: a model folder's two files
        (d / "config.json").write_text("{}")
        (d / "weights.safetensors").write_bytes(b"")
    return d


def test_names_and_numbers():
    assert layout.checkpoint_name(1234) == "snapshot-0000001234"
    assert layout.checkpoint_nimg("snapshot-0000001234") == 1234 and layout.checkpoint_nimg("best") is None
    assert layout.checkpoint_nimg(layout.checkpoint_name(10**12)) == 10**12


def test_checkpoints_sorted_by_images_and_complete_ones(tmp_path):
    run = tmp_path / "00000-tiny"
    a, b = _checkpoint(run, 8), _checkpoint(run, 1000)
    half = _checkpoint(run, 2000, complete=False)
    (run / layout.CHECKPOINTS_DIR / ".snapshot-0000003000.tmp-1").mkdir()  # an interrupted save
    (run / layout.CHECKPOINTS_DIR / "notes").mkdir()
    assert layout.checkpoint_dirs(run) == [a, b, half]
    assert layout.list_checkpoints(run) == [a, b]
    assert ckpt._candidates(run) == [half, b, a]  # --resume tries every one, newest first, and says why it skips


def test_network_and_resume_agree_on_the_newest_run(tmp_path):
    old, new = tmp_path / "00000-tiny", tmp_path / "00001-tiny"
    _checkpoint(old, 8)
    newest = _checkpoint(new, 16)
    (tmp_path / "00002-tiny").mkdir()  # a run that has no checkpoint yet is not a run to load or resume
    assert layout.runs_in(tmp_path) == [old, new]
    assert ckpt._latest_run_with_checkpoints(tmp_path) == new
    kind, found = locate_candidates(tmp_path)
    assert kind == "run" and found == [newest]


def test_next_run_number(tmp_path):
    assert layout.next_run_dir(tmp_path / "none", "x").name == "00000-x"
    (tmp_path / "00007-a").mkdir()
    (tmp_path / "notes").mkdir()
    made = layout.new_run_dir(tmp_path, "tiny-b16")
    assert made.name == "00008-tiny-b16" and made.is_dir()


def test_no_other_module_spells_the_layout():
    """The layout's names are written once: other modules use run_folder's constants and functions."""
    names = re.compile(r"""/ *["'](checkpoints|log\.jsonl|progress\.png|latest\.json|samples)["']"""
                       r"""|["']checkpoints["']|snapshot-\(|snapshot-\{|snapshot-\\d""")
    bad = [f"{f.relative_to(PKG.parent)}:{i}" for f in PKG.rglob("*.py") if f.name != "run_folder.py"
           for i, line in enumerate(f.read_text().splitlines(), 1)
           if names.search(line.split("#")[0]) and '"""' not in line]
    assert not bad, bad
