"""Hostile official-style pickles: shared references ('billion laughs'), deep nesting, cycles, too many objects,
oversized files, truncation, tensor views past their storage. Each is refused fast, memory bounded, nothing built."""

from __future__ import annotations

import pickle
import time

import pytest
import torch
from core_kit import g_kwargs, official_pickle, run_capped

from flowergan.compat.official import RefusedPickleError, load_official_pickle, read_official_pickle


def laughs(levels: int = 9) -> list:
    """10**levels leaves as a tree, 10 * levels list cells in memory: every level shares one list."""
    a = [0] * 10
    for _ in range(levels - 1):
        a = [a] * 10
    return a


def test_billion_laughs_pickle_is_refused_fast_with_memory_bounded(tmp_path):
    path = tmp_path / "laughs.pkl"
    data = official_pickle(g_kwargs(mapping_kwargs={"layer_features": laughs(9)}))
    assert len(data) < 600  # the 531-byte payload, give or take the stand-in names
    path.write_bytes(data)
    t0 = time.perf_counter()
    with pytest.raises(RefusedPickleError, match=r"expand to more than 2,000,000 objects \(a 'billion laughs'"):
        load_official_pickle(path)
    assert time.perf_counter() - t0 < 5
    # In a fresh process capped at 1.5 GB (torch alone maps ~0.7): refused, not killed for memory.
    res = run_capped(f"from flowergan.compat.official import load_official_pickle\ntry:\n"
                     f"    load_official_pickle({str(path)!r})\nexcept Exception as e:\n    print(type(e).__name__)",
                     mem_mb=1536, timeout=120)
    assert res.stdout.strip() == "RefusedPickleError", res.stdout + res.stderr[-2000:]


def test_shared_references_within_limits_load_and_stay_shared(tmp_path):
    """The root fix: a shared object is converted once (not per reference), so legitimate sharing is cheap."""
    from flowergan.compat.official import _to_plain

    a = laughs(4)  # 10**4 leaves: allowed
    out = _to_plain({"x": a, "y": a})
    assert out["x"] is out["y"] and out["x"][0] is out["x"][1]


def test_deep_nesting_is_refused(tmp_path):
    deep = 0
    for _ in range(300):
        deep = [deep]
    path = tmp_path / "deep.pkl"
    path.write_bytes(official_pickle(g_kwargs(), {"_buffers": {"x": deep}}))
    with pytest.raises(RefusedPickleError, match="nest more than 100 deep"):
        read_official_pickle(path)


def test_self_reference_is_refused(tmp_path):
    cyc: list = []
    cyc.append(cyc)
    path = tmp_path / "cycle.pkl"
    path.write_bytes(official_pickle(g_kwargs(mapping_kwargs={"layer_features": cyc})))
    with pytest.raises(RefusedPickleError, match="refers to itself"):
        read_official_pickle(path)


def test_object_count_and_size_limits_say_how_to_raise_them(tmp_path, monkeypatch):
    path = tmp_path / "many.pkl"
    path.write_bytes(pickle.dumps({"G_ema": None, "junk": list(range(5000))}))
    monkeypatch.setenv("FLOWERGAN_PICKLE_MAX_OPS", "1000")
    with pytest.raises(RefusedPickleError, match=r"more than 1,000 pickle opcodes.*FLOWERGAN_PICKLE_MAX_OPS"):
        read_official_pickle(path)
    monkeypatch.delenv("FLOWERGAN_PICKLE_MAX_OPS")
    monkeypatch.setenv("FLOWERGAN_PICKLE_MAX_MB", "0.001")
    with pytest.raises(RefusedPickleError, match=r"over the 0.001 MB limit.*FLOWERGAN_PICKLE_MAX_MB"):
        read_official_pickle(path)
    monkeypatch.delenv("FLOWERGAN_PICKLE_MAX_MB")
    assert read_official_pickle(path)["junk"][-1] == 4999


@pytest.mark.parametrize("cut", [0, 1, 40, -1])
def test_truncated_pickle_is_a_clear_error(tmp_path, cut):
    data = official_pickle(g_kwargs())
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[:cut] if cut >= 0 else data[:-1])
    with pytest.raises(RefusedPickleError, match="not a valid pickle|truncated or corrupt"):
        read_official_pickle(path)


def test_tensor_view_past_its_storage_is_refused():
    """A recorded tensor claiming size 10**9 x 10**9 over a 4-byte storage: refused, not viewed."""
    from flowergan.compat.official import ALLOWED

    rebuild = ALLOWED[("torch._utils", "_rebuild_tensor_v2")]  # what the unpickler calls for a tensor
    storage = torch.storage.TypedStorage(wrap_storage=torch.zeros(1).untyped_storage(), dtype=torch.float32,
                                         _internal=True)
    assert rebuild(storage, 0, (1,), (1,), False, None).tolist() == [0.0]
    with pytest.raises(RefusedPickleError, match="reaches past its storage"):
        rebuild(storage, 0, (10**9, 10**9), (1, 1), False, None)
    with pytest.raises(RefusedPickleError, match="refused"):
        rebuild(storage, 0, ("32",), (1,), False, None)
