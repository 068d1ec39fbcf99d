"""SeFa against its definition (eigenvectors of A^T A, with A found by autograd), PCA against numpy, class
directions against class means computed here, the file round trip and the edit's semantics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from testkit import make_tiny, one_thread

from flowergan.inference import Pipeline
from flowergan.inference.directions import (
    Directions,
    class_directions,
    find_directions,
    generator_fingerprint,
    parse_strengths,
    pca,
    sample_w,
)

_one_thread = pytest.fixture(autouse=True)(one_thread)


@pytest.fixture(scope="module")
def G():
    return make_tiny()[1]


def _styles_by_ws_index(G) -> dict[int, list]:
    """ws index -> the style functions w -> s [I] that read it, found by running synthesis with hooks:
    every ws row gets a distinct vector and each affine module reports which row it was given."""
    num_ws, w_dim = G.num_ws, G.w_dim
    ws = torch.randn(1, num_ws, w_dim)
    seen: dict[int, list] = {}
    hooks = []
    for name, mod in G.synthesis.named_modules():
        if name.endswith("affine"):
            parent = G.synthesis.get_submodule(name.rsplit(".", 1)[0])

            def hook(mod, inp, out, parent=parent):
                i = int(torch.argmin((ws[0] - inp[0][0]).abs().sum(dim=1)))
                gain = getattr(parent, "weight_gain", 1.0) if type(parent).__name__ == "ToRGBLayer" else 1.0
                seen.setdefault(i, []).append(lambda w, m=mod, g=gain: m(w[None])[0] * g)
            hooks.append(mod.register_forward_hook(hook))
    with torch.no_grad():
        G.synthesis(ws, noise_mode="const")
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("layers", ["all", "coarse", "fine", "2-4"])
def test_sefa_is_the_eigenvectors_of_AtA(G, layers):
    from flowergan.inference.latents import parse_styles

    idx = parse_styles(layers, G.num_ws)
    styles = _styles_by_ws_index(G)
    M = np.zeros([G.w_dim, G.w_dim])
    w0 = torch.randn(G.w_dim, dtype=torch.float32)
    for i in idx:
        for fn in styles[i]:
            J = torch.autograd.functional.jacobian(fn, w0).double().numpy()  # [I, w_dim] = A of that layer
            M += J.T @ J
    evals, evecs = np.linalg.eigh(M)
    order = np.argsort(evals)[::-1][:6]
    d = find_directions(G, "sefa", layers, num=6, samples=200)
    np.testing.assert_allclose(d.scores, evals[order], rtol=1e-4)
    cos = np.abs(np.sum(d.vectors.double().numpy() * evecs[:, order].T, axis=1))
    np.testing.assert_allclose(cos, 1.0, atol=1e-4)
    # std is that of w . d over the sampled w
    w = sample_w(G, 200, 0).numpy()
    np.testing.assert_allclose(d.std.numpy(), (w @ d.vectors.double().numpy().T).std(axis=0, ddof=1), rtol=1e-5)


def test_pca_matches_numpy(G):
    w = sample_w(G, 3000, seed=5)
    # sample_w is the mapping of RandomState(seed) z
    z = np.random.RandomState(5).randn(3000, G.z_dim)
    with torch.no_grad():
        ref_w = G.mapping(torch.from_numpy(z), None if G.c_dim else torch.zeros(3000, 0))[:, 0].double()
    torch.testing.assert_close(w, ref_w)
    vec, std = pca(w, 5)
    evals, evecs = np.linalg.eigh(np.cov(w.numpy(), rowvar=False))
    order = np.argsort(evals)[::-1][:5]
    np.testing.assert_allclose(std.numpy(), np.sqrt(evals[order]), rtol=1e-6)
    cos = np.abs(np.sum(vec.numpy() * evecs[:, order].T, axis=1))
    np.testing.assert_allclose(cos, 1.0, atol=1e-6)


def test_class_directions_are_centred_class_means():
    G = make_tiny(c_dim=3, seed=1)[1]
    z = torch.from_numpy(np.random.RandomState(0).randn(500, G.z_dim))
    means = []
    with torch.no_grad():
        for k in range(3):
            c = torch.zeros(500, 3)
            c[:, k] = 1
            means.append(G.mapping(z, c)[:, 0].double().mean(0))
    means = torch.stack(means)
    ref = means - means.mean(0)
    ref = ref / ref.norm(dim=1, keepdim=True)
    torch.testing.assert_close(class_directions(G, 500, 0), ref)
    d = find_directions(G, "class", samples=500)
    assert len(d) == 3 and d.names == ["class 0", "class 1", "class 2"]
    with pytest.raises(ValueError, match="conditional model"):
        class_directions(make_tiny()[1], 10)


def test_file_round_trip_and_refusals(G, tmp_path):
    d = find_directions(G, "pca", "coarse", num=4, samples=300)
    p = d.save(tmp_path / "pca.safetensors")
    info = json.loads((tmp_path / "pca.json").read_text())
    assert info["method"] == "pca" and info["layers"] == [0, 1, 2] and info["fingerprint"] == generator_fingerprint(G)
    assert len(info["std"]) == 4 and info["samples"] == 300
    e = Directions.load(p)
    torch.testing.assert_close(e.vectors, d.vectors)
    torch.testing.assert_close(e.std, d.std)
    assert e.layers == d.layers and e.names == d.names and e.method == "pca"
    # the halves must belong together
    info["sha256"] = "0" * 64
    (tmp_path / "pca.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="sha256 does not match"):
        Directions.load(p)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Directions.load(tmp_path / "nothing.safetensors")
    with pytest.raises(ValueError, match=r"\.safetensors"):
        d.save(tmp_path / "x.npz")
    # another model (different weights or w_dim) is refused with the reason
    other = Pipeline(make_tiny(seed=3)[1])
    with pytest.raises(ValueError, match="another model"):
        other.edit([0], d, 1.0)
    wide = Directions(vectors=torch.ones(1, 8) / 8**0.5, std=torch.ones(1), method="pca", layers=[0])
    with pytest.raises(ValueError, match="8-dimensional"):
        other.edit([0], wide, 1.0)


def test_edit_semantics(G):
    pipe = Pipeline(G)
    d = find_directions(G, "sefa", "fine", num=3, samples=300)
    imgs = pipe.edit([3, 4], d, "-2:2:5", index=1, truncation_psi=0.7)
    assert imgs.shape == (2, 5, 32, 32, 3) and imgs.dtype == np.uint8
    # strength 0 is the unedited (truncated) image, exactly
    np.testing.assert_array_equal(imgs[:, 2], pipe.generate([3, 4], truncation_psi=0.7))
    assert not np.array_equal(imgs[:, 0], imgs[:, 2])
    # the edit adds strength * std * d to the chosen layers only
    ws = pipe.seeds_to_ws([3], 0.7)
    moved = pipe.edit_latents(ws, d, [2.0], index=1)[:, 0]
    delta = (moved - ws)[0]
    fine = d.layers
    torch.testing.assert_close(delta[fine], (2.0 * d.std[1] * d.vectors[1]).expand(len(fine), -1))
    assert delta[[i for i in range(G.num_ws) if i not in fine]].abs().max() == 0
    # truncation psi 0 puts every seed on w_avg before the edit
    z0 = pipe.edit([1, 2], d, [0.0], truncation_psi=0.0)
    np.testing.assert_array_equal(z0[0, 0], z0[1, 0])
    # given ws (a projection) are used as they are; a raw vector moves every layer in w units
    ws_np = ws.numpy()[None]                         # [1, 1, num_ws, w_dim] like projected_w.npz's [1, ...]
    np.testing.assert_array_equal(pipe.edit(ws_np, d, [0.0])[0, 0], pipe.synthesize(ws)[0])
    v = torch.zeros(G.w_dim)
    v[0] = 1
    moved = pipe.edit_latents(ws, v, [0.5])[:, 0]
    torch.testing.assert_close(moved - ws, (0.5 * v).expand_as(ws))
    with pytest.raises(ValueError, match="direction index 3"):
        pipe.edit([0], d, 1.0, index=3)
    with pytest.raises(ValueError, match="ws must be"):
        pipe.edit(np.zeros([2, 5]), d, 1.0)


def test_parse_strengths():
    assert parse_strengths("-3:3:7") == [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    assert parse_strengths("1:1:1") == [1.0]
    assert parse_strengths("-2,0,2") == [-2.0, 0.0, 2.0]
    assert parse_strengths(1.5) == [1.5]
    for bad, msg in [("1:2", "start:stop:count"), ("0:1:0", "step count"), ("0:1:100000", "step count"),
                     ("a,b", "cannot parse")]:
        with pytest.raises(ValueError, match=msg):
            parse_strengths(bad)


def test_find_directions_refuses_bad_arguments(G):
    for kw, msg in [(dict(method="ica"), "method 'ica'"), (dict(num=0), "num 0"), (dict(num=10**6), "num"),
                    (dict(samples=1), "samples 1"), (dict(layers="9-12"), "out of range"),
                    (dict(layers="none"), "empty")]:
        with pytest.raises(ValueError, match=msg):
            find_directions(G, **{"method": "sefa", **kw})
