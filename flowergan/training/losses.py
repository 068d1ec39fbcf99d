"""The StyleGAN2 losses as small pure functions (Goodfellow et al. 2014; Mescheder et al. 2018;
Karras et al. 2020, sec. 3.2 for path-length regularisation)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """Per-sample G loss softplus(-D(G(z))) = -log sigmoid(D(G(z))). [N, 1] -> [N, 1]."""
    return F.softplus(-fake_logits)


def d_logistic_fake(fake_logits: torch.Tensor) -> torch.Tensor:
    """Per-sample D loss on fakes softplus(D(G(z))) = -log(1 - sigmoid(D(G(z))))."""
    return F.softplus(fake_logits)


def d_logistic_real(real_logits: torch.Tensor) -> torch.Tensor:
    """Per-sample D loss on reals softplus(-D(x)) = -log sigmoid(D(x))."""
    return F.softplus(-real_logits)


def r1_penalty(real_logits: torch.Tensor, real_img: torch.Tensor) -> torch.Tensor:
    """Per-sample ||grad_x D(x)||^2 on reals [N]; differentiable (create_graph) for the D update."""
    (grads,) = torch.autograd.grad(real_logits.sum(), real_img, create_graph=True, only_inputs=True)
    return grads.square().sum(dim=[1, 2, 3])


def path_lengths(fake_img: torch.Tensor, ws: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample ||J_w^T y|| with y ~ N(0, I) / sqrt(H*W) [N]; differentiable.

    fake_img [N, C, H, W] must be computed from ws [N, num_ws, w_dim]; the squared gradient is summed over
    w_dim and averaged over num_ws, as in the official implementation.
    """
    N, C, H, W = fake_img.shape
    if noise is None:
        noise = torch.randn_like(fake_img) / math.sqrt(H * W)
    (grads,) = torch.autograd.grad((fake_img * noise).sum(), ws, create_graph=True, only_inputs=True)
    return grads.square().sum(dim=2).mean(dim=1).sqrt()


def path_length_penalty(lengths: torch.Tensor, pl_mean: torch.Tensor, decay: float
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (per-sample (length - a')^2 [N], updated running mean a'), a' = a + decay * (mean(lengths) - a).

    As in the official definition, the penalty is differentiated through a': only the stored running mean
    `pl_mean` (a) is a constant; the batch mean of the lengths inside a' carries gradient (a term of
    relative size ~decay). Store `a'.detach()` as the next running mean.
    """
    new_mean = pl_mean.detach().lerp(lengths.mean(), decay)
    return (lengths - new_mean).square(), new_mean
