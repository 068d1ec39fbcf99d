"""Exported files, run by their own runtimes (onnxruntime on the CPU, torch.jit, torch.export), agree
with our PyTorch generator within 1e-4 (fp32) on seeded z; the official snapshot also against the
official implementation's own output (golden vectors)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from testkit import make_tiny

from flowergan.cli.main import cli
from flowergan.config import preset
from flowergan.export import ExportSpec, export_network, run_file, verify
from flowergan.inference.loader import load_networks
from flowergan.networks import build_networks

TOL = 1e-4


def _seeded_z(n: int, z_dim: int, seed: int = 5) -> torch.Tensor:
    return torch.from_numpy(np.random.RandomState(seed).randn(n, z_dim).astype(np.float32))


def _reference(G, z, c=None, psi=1.0, noise_mode="const") -> np.ndarray:
    """What the file must compute, from the generator's own forward: G(z, c) clamped to [-1, 1]."""
    with torch.no_grad():
        return G(z, c, truncation_psi=psi, noise_mode=noise_mode).clamp(-1, 1).numpy()


def _run(args, ok=True):
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    if ok:
        assert res.exit_code == 0, res.output
    return res


def test_torchscript_generator_any_batch(tmp_path):
    cfg, G, _ = make_tiny()
    info = export_network(G, ExportSpec(batch=None, truncation_psi=0.7), "torchscript", tmp_path / "g.pt")
    assert info["inputs"] == [{"name": "z", "shape": ["N", cfg.z_dim], "dtype": "float32"}]
    assert info["output"]["shape"] == ["N", 3, 32, 32] and "constant of the graph" in info["noise"]
    assert json.loads((tmp_path / "g.pt.json").read_text()) == json.loads(json.dumps(info))
    for n in (1, 3, 5):
        z = _seeded_z(n, cfg.z_dim, seed=n)
        got = run_file(tmp_path / "g.pt", "torchscript", (z,), ["z"])
        assert got.shape == (n, 3, 32, 32) and got.min() >= -1 and got.max() <= 1
        assert np.abs(got - _reference(G, z, psi=0.7)).max() <= TOL


def test_torchscript_conditional_mapping_and_synthesis(tmp_path):
    cfg, G, _ = make_tiny(c_dim=3, seed=2)
    z = _seeded_z(4, cfg.z_dim)
    c = torch.eye(3)[[0, 1, 2, 0]]
    export_network(G, ExportSpec(batch=4, truncation_psi=0.5), "torchscript", tmp_path / "g.pt")
    got = run_file(tmp_path / "g.pt", "torchscript", (z, c), ["z", "c"])
    assert np.abs(got - _reference(G, z, c, psi=0.5)).max() <= TOL

    export_network(G, ExportSpec(what="mapping", batch=4, truncation_psi=0.5), "torchscript", tmp_path / "m.pt")
    ws = run_file(tmp_path / "m.pt", "torchscript", (z, c), ["z", "c"])
    with torch.no_grad():
        want = G.mapping(z, c, truncation_psi=0.5).numpy()
    assert ws.shape == (4, G.num_ws, cfg.w_dim) and np.abs(ws - want).max() <= TOL

    export_network(G, ExportSpec(what="synthesis", batch=4, noise_mode="none"), "torchscript", tmp_path / "s.pt")
    img = run_file(tmp_path / "s.pt", "torchscript", (torch.from_numpy(ws),), ["ws"])
    with torch.no_grad():
        want = G.synthesis(torch.from_numpy(ws), noise_mode="none").clamp(-1, 1).numpy()
    assert np.abs(img - want).max() <= TOL


def test_export_spec_refuses_what_cannot_be_exported():
    with pytest.raises(ValueError, match="'random' noise cannot be exported"):
        ExportSpec(noise_mode="random").validate()
    with pytest.raises(ValueError, match="truncation applies in the mapping"):
        ExportSpec(what="synthesis", truncation_psi=0.7).validate()
    with pytest.raises(ValueError, match="batch=0"):
        ExportSpec(batch=0).validate()
    with pytest.raises(ValueError, match="what='decoder'"):
        ExportSpec(what="decoder").validate()


def test_cli_export_torchscript_and_its_errors(tiny_dir, tmp_path):
    out = tmp_path / "g.pt"
    res = _run(["export", "--network", str(tiny_dir), "--format", "torchscript", "--out", str(out),
                "--batch", "dynamic", "--truncation-psi", "0.7"])
    assert "checked: max |torchscript - PyTorch|" in res.output and out.is_file()
    G = load_networks(tiny_dir).G
    z = _seeded_z(2, G.z_dim)
    assert np.abs(run_file(out, "torchscript", (z,), ["z"]) - _reference(G, z, psi=0.7)).max() <= TOL
    res = _run(["export", "--network", str(tiny_dir), "--format", "torchscript", "--out", str(out)], ok=False)
    assert res.exit_code == 2 and "already exists; pass --overwrite" in res.output
    res = _run(["export", "--network", str(tiny_dir), "--format", "onnx", "--out", str(tmp_path / "x.onnx"),
                "--batch", "0"], ok=False)
    assert res.exit_code == 2 and "a batch size >= 1, or 'dynamic'" in res.output
    res = _run(["export", "--network", str(tiny_dir), "--format", "torchscript", "--out", str(tmp_path / "s.pt"),
                "--what", "synthesis", "--truncation-psi", "0.5"], ok=False)
    assert res.exit_code == 2 and "truncation applies in the mapping" in res.output
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "s.pt").exists()


def test_cli_onnx_without_onnx_installed_says_which_extra(monkeypatch, tiny_dir, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)
    res = _run(["export", "--network", str(tiny_dir), "--format", "onnx", "--out", str(tmp_path / "g.onnx")],
               ok=False)
    assert res.exit_code == 1 and "pip install 'flowergan[export]'" in res.output
    assert not (tmp_path / "g.onnx").exists()


@pytest.mark.slow
def test_onnx_and_exported_program_tiny(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    cfg, G, _ = make_tiny()
    info = export_network(G, ExportSpec(batch=None, truncation_psi=0.7), "onnx", tmp_path / "g.onnx")
    assert info["onnx_opset"] == 18
    import onnx

    model = onnx.load(str(tmp_path / "g.onnx"))
    assert [i.name for i in model.graph.input] == ["z"] and [o.name for o in model.graph.output] == ["img"]
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 18
    for n in (1, 4):
        z = _seeded_z(n, cfg.z_dim, seed=n)
        got = run_file(tmp_path / "g.onnx", "onnx", (z,), ["z"])
        assert np.abs(got - _reference(G, z, psi=0.7)).max() <= TOL
    export_network(G, ExportSpec(batch=2), "exported-program", tmp_path / "g.pt2")
    z = _seeded_z(2, cfg.z_dim)
    assert np.abs(run_file(tmp_path / "g.pt2", "exported-program", (z,), ["z"]) - _reference(G, z)).max() <= TOL


@pytest.mark.slow
def test_onnx_official_snapshot_matches_the_official_outputs(golden_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    G = load_networks(golden_dir / "official_tiny.pkl").G
    gold = np.load(golden_dir / "golden_public.npz")
    z = torch.from_numpy(gold["in/z"].astype(np.float32))
    c = torch.from_numpy(gold["in/c"].astype(np.float32)) if G.c_dim else None
    res = _run(["export", "--network", str(golden_dir / "official_tiny.pkl"), "--format", "onnx",
                "--out", str(tmp_path / "off.onnx"), "--batch", "dynamic", "--truncation-psi", "0.7"])
    assert "checked" in res.output
    got = run_file(tmp_path / "off.onnx", "onnx", (z,) if c is None else (z, c), ["z"] if c is None else ["z", "c"])
    assert np.abs(got - _reference(G, z, c, psi=0.7)).max() <= TOL
    official = np.clip(gold["out/img_psi07"], -1, 1)  # computed by the official code, noise 'const'
    assert np.abs(got - official).max() <= 1e-4 * max(1.0, np.abs(gold["out/img_psi07"]).max())


@pytest.mark.slow
def test_onnx_auto_128(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    G, _ = build_networks(preset("auto-128"), seed=0)
    spec = ExportSpec(batch=2, truncation_psi=0.7)
    export_network(G.eval(), spec, "onnx", tmp_path / "g.onnx")
    assert verify(G, spec, "onnx", tmp_path / "g.onnx") <= TOL
    z = _seeded_z(2, G.z_dim)
    assert np.abs(run_file(tmp_path / "g.onnx", "onnx", (z,), ["z"]) - _reference(G, z, psi=0.7)).max() <= TOL
