"""The NVlabs bilinear resize: closed-form expectations and agreement with the grid_sample formulation."""

from __future__ import annotations

import pytest
import torch
from metrics_testkit import import_fid_helper

from flowergan.metrics.resize import nv_bilinear_resize


def _grid_sample_reference(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The formulation inside NVlabs' Inception TorchScript: affine_grid + grid_sample, border padding."""
    n, c, h, w = x.shape
    oh, ow = size
    theta = torch.eye(2, 3, dtype=torch.float64)
    theta[0, 2] += 1 / w - 1 / ow
    theta[1, 2] += 1 / h - 1 / oh
    grid = torch.nn.functional.affine_grid(theta.unsqueeze(0).repeat(n, 1, 1), [n, c, oh, ow], align_corners=False)
    return torch.nn.functional.grid_sample(x.double(), grid, mode="bilinear", padding_mode="border",
                                           align_corners=False)


def test_constant_image_stays_constant():
    x = torch.full([2, 3, 37, 64], 173, dtype=torch.uint8)
    y = nv_bilinear_resize(x, (299, 299))
    assert y.shape == (2, 3, 299, 299) and y.dtype == torch.float32
    assert torch.allclose(y, torch.full_like(y, 173.0), atol=1e-4)


@pytest.mark.parametrize("w", [64, 100, 600])
def test_linear_ramp_stays_linear(w):
    # x[j] = 2 j + 5 along the width. TF/NVlabs resize samples source coordinate i * w / 299, clamped to w - 1
    # (border), so out[i] = 2 * min(i * w / 299, w - 1) + 5 exactly.
    x = (2 * torch.arange(w, dtype=torch.float32) + 5).expand(1, 1, 9, w).contiguous()
    y = nv_bilinear_resize(x, (9, 299))
    i = torch.arange(299, dtype=torch.float64)
    expected = 2 * torch.clamp(i * w / 299, max=w - 1) + 5
    assert torch.allclose(y[0, 0].double(), expected.expand(9, 299), atol=1e-3)
    # rows (unchanged height) stay identical
    assert torch.equal(y[0, 0, 0], y[0, 0, 8])


@pytest.mark.parametrize("hw", [(32, 32), (48, 80), (299, 299), (512, 384)])
def test_matches_grid_sample_formulation(hw):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, [2, 3, *hw], generator=g, dtype=torch.uint8)
    ours = nv_bilinear_resize(x, (299, 299)).double()
    ref = _grid_sample_reference(x.float(), (299, 299))
    assert (ours - ref).abs().max().item() < 2e-3


def test_matches_fid_helper_nv_bilinear(monkeypatch):
    import_fid_helper(monkeypatch)
    from fid_helper_pytorch import _resample_func as resample

    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, [2, 3, 96, 70], generator=g).float()
    ref = resample.nv_bilinear(x, (299, 299))
    # the reference builds its sampling grid in float32 (coordinate error ~1e-5 px), ours in float64
    assert (nv_bilinear_resize(x, (299, 299)) - ref).abs().max().item() < 5e-3


def test_rejects_non_4d():
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        nv_bilinear_resize(torch.zeros(3, 8, 8))
