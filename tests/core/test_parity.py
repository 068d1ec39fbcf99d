"""Our networks reproduce the official implementation's golden outputs (and load its pickles safely)."""

import json
import pickle

import numpy as np
import pytest
import torch

from flowergan.compat import RefusedPickleError, check_golden, load_official_pickle, read_official_pickle


def _tolerances(golden_dir):
    meta = json.loads((golden_dir / "golden_public.json").read_text())
    return {k: 1e-4 * max(v["max_abs"], 1e-6) for k, v in meta["outputs"].items()}


@pytest.mark.parametrize("fused", [None, False, True], ids=["default", "unfused", "fused"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
def test_golden_parity(golden_dir, fused, channels_last):
    errors = check_golden(golden_dir / "golden_public.npz", golden_dir / "golden_public.json",
                          fused_modconv=fused, channels_last=channels_last)
    tol = _tolerances(golden_dir)
    assert set(errors) == set(tol), "every golden output must be checked"
    bad = {k: (e, tol[k]) for k, e in errors.items() if not e <= tol[k]}
    assert not bad, f"outputs off beyond 1e-4*max_abs: {bad}"


def test_importer_reproduces_golden(golden_dir):
    d = load_official_pickle(golden_dir / "official_tiny.pkl")
    a = np.load(golden_dir / "golden_public.npz")
    tol = _tolerances(golden_dir)
    assert abs(d["augment_p"] - 0.2) < 1e-6
    for key in ("G", "G_ema"):
        G = d[key]
        with torch.no_grad():
            ws = G.mapping(torch.from_numpy(a["in/z"]), None)
            img = G.synthesis(ws, noise_mode="const")
            logits = d["D"](img, None)
        assert float((img - torch.from_numpy(a["out/img_const"])).abs().max()) <= tol["out/img_const"]
        assert float((logits - torch.from_numpy(a["out/d_logits"])).abs().max()) <= tol["out/d_logits"]


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G": _Evil(marker)}))
    with pytest.raises(RefusedPickleError, match=r"refused to load global '(posix|os|nt)\.system'"):
        load_official_pickle(path)
    assert not marker.exists()


def test_pickle_importing_os_module_is_refused(tmp_path):
    path = tmp_path / "evil2.pkl"
    # GLOBAL 'builtins eval' then call it: protocol-0 opcodes written by hand
    marker = tmp_path / "pwned2"
    payload = f"cbuiltins\neval\n(V__import__('os').system('touch {marker}')\ntR.".encode()
    path.write_bytes(payload)
    with pytest.raises(RefusedPickleError, match="builtins.eval"):
        read_official_pickle(path)
    assert not marker.exists()


def test_embedded_source_is_never_executed(golden_dir, tmp_path, monkeypatch):
    """Rewrite the fixture's placeholder module source into code with a side effect: still not run."""
    monkeypatch.chdir(tmp_path)
    raw = (golden_dir / "official_tiny.pkl").read_bytes()
    placeholder = b"# module source omitted from this test fixture\n"
    assert placeholder in raw
    evil_src = b"open('ran_marker', 'w').write('x')"
    evil_src = evil_src + b"#" * (len(placeholder) - len(evil_src) - 1) + b"\n"  # same length: frames stay valid
    assert len(evil_src) == len(placeholder)
    p = tmp_path / "patched.pkl"
    p.write_bytes(raw.replace(placeholder, evil_src))
    d = load_official_pickle(p)
    assert d["G_ema"] is not None
    assert not (tmp_path / "ran_marker").exists()


@pytest.mark.slow
def test_golden_parity_compiled(golden_dir):
    """torch.compile'd synthesis and D (the speed option for inference and the main phases) stay on the golden
    outputs."""
    from flowergan.compat.golden import golden_networks

    G, D, arrays, meta = golden_networks(golden_dir / "golden_public.npz", golden_dir / "golden_public.json")
    tol = _tolerances(golden_dir)
    synth, disc = torch.compile(G.synthesis), torch.compile(D)
    with torch.no_grad():
        ws = G.mapping(torch.from_numpy(arrays["in/z"]), None)
        img = synth(ws, noise_mode="const")
        logits = disc(torch.from_numpy(arrays["in/real"]), None)
    assert float((img - torch.from_numpy(arrays["out/img_const"])).abs().max()) <= tol["out/img_const"]
    assert float((logits - torch.from_numpy(arrays["out/d_logits_real"])).abs().max()) <= tol["out/d_logits_real"]
