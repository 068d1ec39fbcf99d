"""Project a photo into W or W+ (the StyleGAN2-ADA projector: Karras et al. 2020, sec. 5 / appendix D).

Start at the mean w, optimise w (one vector, or one per layer in W+) with Adam under a ramped
learning rate and a decaying Gaussian perturbation of w, while the per-layer noise maps (used with
noise_mode='const') are optimised too, kept unit-variance and regularised towards spatially
uncorrelated noise at every scale. The image loss is the LPIPS distance of NVlabs' VGG16 when
available, otherwise the documented pixel-pyramid fallback (see perceptual.py).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from flowergan.inference.images import psnr, to_uint8
from flowergan.inference.perceptual import lpips_features, pyramid_loss, resolve_vgg16

log = logging.getLogger(__name__)

__all__ = ["ProjectionResult", "project", "render_result", "w_stats"]

SPACES = ("w", "w+")


@dataclass
class ProjectionResult:
    """What `project` found. `w` [num_ws, w_dim] renders `image` with `G.synthesis(w[None], noise_mode='const')`."""

    w: np.ndarray                 # float32 [num_ws, w_dim] (in W space all rows are the same vector)
    image: np.ndarray             # uint8 [H, W, C]: the projection, rendered with the model's own const noise
    target: np.ndarray            # uint8 [H, W, C]: the (cropped, resized) target
    psnr: float                   # dB between image and target
    loss_name: str                # "lpips-vgg16" or "pixel-pyramid" (the fallback)
    space: str                    # "w" or "w+"
    w_steps: np.ndarray           # float32 [steps, num_ws, w_dim]: w after every step (for the progress video)
    losses: list[float] = field(default_factory=list)

    def save_npz(self, path) -> None:
        """Save `w` as the official projector does: key 'w', shape [1, num_ws, w_dim]."""
        from flowergan.inference.images import atomic_write

        def _write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, w=self.w[None].astype(np.float32))

        atomic_write(path, _write)


def w_stats(G, c: torch.Tensor | None = None, samples: int = 10000, seed: int = 123,
            batch: int = 2000) -> tuple[torch.Tensor, float]:
    """Mean w [1, 1, w_dim] and the scalar std of w over `samples` z ~ N(0, I) (the official statistics)."""
    device = G.mapping.w_avg.device if hasattr(G.mapping, "w_avg") else next(G.parameters()).device
    z_all = np.random.RandomState(seed).randn(samples, G.z_dim)
    ws = []
    with torch.no_grad():
        for i in range(0, samples, batch):
            z = torch.from_numpy(z_all[i:i + batch]).to(device)
            cc = None if c is None else c[:1].expand(z.shape[0], -1)
            ws.append(G.mapping(z, cc)[:, :1, :].to(torch.float32))
    w = torch.cat(ws)  # [N, 1, C]
    w_avg = w.mean(dim=0, keepdim=True)
    w_std = float(((w - w_avg).square().sum() / samples).sqrt())
    return w_avg, w_std


def _noise_reg(noise_bufs: list[torch.Tensor]) -> torch.Tensor:
    """Squared autocorrelation (1 px shifts in x and y) of each noise map, at every octave down to 8x8."""
    reg = torch.zeros([], device=noise_bufs[0].device) if noise_bufs else torch.zeros([])
    for v in noise_bufs:
        noise = v[None, None, :, :]
        while True:
            reg = reg + (noise * torch.roll(noise, shifts=1, dims=3)).mean() ** 2
            reg = reg + (noise * torch.roll(noise, shifts=1, dims=2)).mean() ** 2
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, kernel_size=2)
    return reg


def project(
    G,
    target: np.ndarray,                   # uint8 [H, W, C] at G's resolution (see images.load_target)
    *,
    steps: int = 1000,
    space: str = "w",
    c: torch.Tensor | None = None,        # one-hot label [1, c_dim] for conditional models
    seed: int = 303,
    lr: float = 0.1,
    vgg16: Any = None,                    # see perceptual.resolve_vgg16
    vgg16_sha256: str | None = None,
    w_avg_samples: int = 10000,
    initial_noise_factor: float = 0.05,
    lr_rampdown_length: float = 0.25,
    lr_rampup_length: float = 0.05,
    noise_ramp_length: float = 0.75,
    regularize_noise_weight: float = 1e5,
    optimize_noise: bool = True,
    progress: bool = True,
    callback: Callable[[int, float], None] | None = None,
    preview: Callable[[int, torch.Tensor], None] | None = None,  # (step, image [1, C, H, W] in ~[-1, 1])
) -> ProjectionResult:
    """Find w (or w+) whose image matches `target`. The defaults are the official projector's.

    The random draws come from a generator of its own (seeded with `seed`), never the global RNG, so a
    projection running beside other work (the explorer's generation) neither disturbs it nor is disturbed.
    `preview`, when given, receives every step's image (detached), as the official projector's video shows it.
    """
    if space not in SPACES:
        raise ValueError(f"space {space!r}: choose 'w' or 'w+'")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    res, ch = G.img_resolution, G.img_channels
    target = np.asarray(target)
    if target.dtype != np.uint8 or target.shape != (res, res, ch):
        raise ValueError(f"target must be uint8 [{res}, {res}, {ch}] (use load_target to crop/resize a photo), "
                         f"got {target.dtype} {target.shape}")
    device = next(G.parameters()).device
    net = resolve_vgg16(vgg16, device=device, sha256=vgg16_sha256, progress=progress)
    loss_name = "lpips-vgg16" if net is not None else "pixel-pyramid"
    log.info("projecting into %s for %d steps with the %s loss", space.upper(), steps, loss_name)

    G_orig = G
    G = copy.deepcopy(G).eval().requires_grad_(False)
    num_ws = G.num_ws
    gen = torch.Generator(device=device).manual_seed(seed)  # the same stream torch.manual_seed(seed) gives
    w_avg, w_std = w_stats(G, c, samples=w_avg_samples)

    noise_bufs = [buf for name, buf in G.synthesis.named_buffers() if "noise_const" in name]
    target_t = torch.from_numpy(target.copy()).to(device).permute(2, 0, 1)[None].to(torch.float32)  # [1, C, H, W]
    if net is not None:
        target_feat = lpips_features(net, target_t)
    target_f = target_t / 127.5 - 1

    w_init = w_avg if space == "w" else w_avg.repeat(1, num_ws, 1)
    w_opt = w_init.clone().detach().requires_grad_(True)
    params = [w_opt] + (noise_bufs if optimize_noise else [])
    optimizer = torch.optim.Adam(params, betas=(0.9, 0.999), lr=lr)
    if optimize_noise:
        for buf in noise_bufs:
            buf[:] = torch.randn(buf.shape, generator=gen, device=device, dtype=buf.dtype)
            buf.requires_grad = True

    w_steps = torch.zeros([steps, num_ws, G.w_dim], device=device)
    losses: list[float] = []
    from tqdm.auto import tqdm

    # leave=True: the bar ends on steps/steps (cleared, it was last drawn one step short, e.g. 999/1000)
    bar = tqdm(range(steps), desc=f"project ({loss_name})", disable=not progress, leave=True)
    for step in bar:
        t = step / steps
        w_noise_scale = w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2
        lr_ramp = min(1.0, (1.0 - t) / lr_rampdown_length)
        lr_ramp = 0.5 - 0.5 * np.cos(lr_ramp * np.pi)
        lr_ramp = lr_ramp * min(1.0, t / lr_rampup_length)
        for group in optimizer.param_groups:
            group["lr"] = lr * lr_ramp

        ws = w_opt + torch.randn(w_opt.shape, generator=gen, device=device, dtype=w_opt.dtype) * w_noise_scale
        if space == "w":
            ws = ws.repeat(1, num_ws, 1)
        synth = G.synthesis(ws, noise_mode="const")  # [1, C, H, W], ~[-1, 1]
        if net is not None:
            dist = (target_feat - lpips_features(net, (synth + 1) * (255 / 2))).square().sum()
        else:
            dist = pyramid_loss(synth, target_f)
        loss = dist
        if optimize_noise and noise_bufs:
            loss = dist + _noise_reg(noise_bufs) * regularize_noise_weight
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        d = float(dist.detach())
        losses.append(d)
        bar.set_postfix(dist=f"{d:.4f}")
        w_steps[step] = (w_opt.detach() if space == "w+" else w_opt.detach().repeat(1, num_ws, 1))[0]
        if optimize_noise:
            with torch.no_grad():
                for buf in noise_bufs:
                    buf -= buf.mean()
                    buf *= buf.square().mean().rsqrt()
        if callback is not None:
            callback(step, d)
        if preview is not None:
            preview(step, synth.detach())
    result = ProjectionResult(w=w_steps[-1].cpu().numpy().astype(np.float32), image=np.empty(0), target=target,
                              psnr=float("nan"), loss_name=loss_name, space=space,
                              w_steps=w_steps.cpu().numpy().astype(np.float32), losses=losses)
    return render_result(G_orig, result)


def render_result(G, result: ProjectionResult) -> ProjectionResult:
    """Render `result.w` with the model's own const noise (not the optimised copy) and fill image/psnr."""
    device = next(G.parameters()).device
    with torch.no_grad():
        img = G.synthesis(torch.from_numpy(result.w[None]).to(device), noise_mode="const")
    result.image = to_uint8(img)[0]
    result.psnr = psnr(result.image, result.target)
    return result
