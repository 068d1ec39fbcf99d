"""The four training phases with lazy regularisation (G main, G path-length, D main, D R1), built on
the pure losses. Each phase accumulates gradients into the module it trains and reports its statistics (and,
for ADA, the signs of D on reals); the training step steps the optimisers and drives ADA's controller."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from flowergan.augment import real_sign_stats
from flowergan.training import losses


@dataclass
class Phase:
    name: str            # 'Gmain' | 'Greg' | 'Dmain' | 'Dreg' | 'Gboth' | 'Dboth'
    module: str          # 'G' or 'D'
    interval: int        # run every N minibatches
    lr_ratio: float      # lazy-regularisation correction mb_ratio = interval / (interval + 1) (1 if not lazy)


def make_phases(r1_interval: int, pl_interval: int) -> list[Phase]:
    """Official phase list: a main + reg pair per network when regularisation is lazy, else one 'both'."""
    phases = []
    for module, interval in (("G", pl_interval), ("D", r1_interval)):
        if interval and interval > 0:
            ratio = interval / (interval + 1)
            phases += [Phase(f"{module}main", module, 1, ratio), Phase(f"{module}reg", module, interval, ratio)]
        else:
            phases += [Phase(f"{module}both", module, 1, 1.0)]
    return phases


class PhaseRunner:
    """Runs one phase: computes its loss and calls backward on it; keeps the path-length running mean.
    (The official code calls this object the loss, StyleGAN2Loss.)"""

    def __init__(self, G, D, augment_pipe=None, r1_gamma: float = 10.0, style_mixing: float = 0.9,
                 pl_weight: float = 2.0, pl_decay: float = 0.01, pl_batch_shrink: int = 2,
                 noise_mode: str = "random", autocast=None, synthesis_main=None, D_main=None):
        self.G, self.D, self.augment_pipe = G, D, augment_pipe
        # Possibly torch.compile'd callables sharing G's and D's parameters, used by the main phases only.
        self.synthesis_main = synthesis_main if synthesis_main is not None else G.synthesis
        self.D_main = D_main if D_main is not None else D
        self.r1_gamma, self.style_mixing = r1_gamma, style_mixing
        self.pl_weight, self.pl_decay, self.pl_batch_shrink = pl_weight, pl_decay, pl_batch_shrink
        self.noise_mode = noise_mode
        self.autocast = autocast         # a context-manager factory for mixed precision (or None)
        dev = next(G.parameters()).device
        self.pl_mean = torch.zeros([], device=dev)

    def has_work(self, phase: str) -> bool:
        """Whether `phase` computes any loss (a reg phase with a zero weight does not)."""
        if phase == "Greg":
            return self.pl_weight != 0
        if phase == "Dreg":
            return self.r1_gamma != 0
        return True

    # ---- forward helpers ------------------------------------------------------------------------
    def _ctx(self):
        import contextlib

        return self.autocast() if self.autocast is not None else contextlib.nullcontext()

    def run_G(self, z: torch.Tensor, c: torch.Tensor, main: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """z [N, z_dim], c [N, c_dim] -> (img [N, C, H, W], ws [N, num_ws, w_dim]) with style mixing."""
        G = self.G
        ws = G.mapping(z, c)
        if self.style_mixing > 0:
            num_ws = ws.shape[1]
            cutoff = torch.randint(1, num_ws, [], device=ws.device)
            cutoff = torch.where(torch.rand([], device=ws.device) < self.style_mixing, cutoff,
                                 torch.full_like(cutoff, num_ws))
            ws2 = G.mapping(torch.randn_like(z), c, update_w_avg=False)
            layer = torch.arange(num_ws, device=ws.device).reshape(1, -1, 1)
            ws = torch.where(layer < cutoff, ws, ws2)  # no host sync, unlike slicing at `cutoff`
        with self._ctx():
            synth = self.synthesis_main if main else G.synthesis
            img = synth(ws, noise_mode=self.noise_mode)
        return img.float(), ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor, main: bool = False) -> torch.Tensor:
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        with self._ctx():
            D = self.D_main if main else self.D
            return D(img, c).float()

    # ---- phases ---------------------------------------------------------------------------------
    def accumulate(self, phase: str, real_img: torch.Tensor, real_c: torch.Tensor, gen_z: torch.Tensor,
                   gen_c: torch.Tensor, gain: float) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Back-propagate `phase`'s loss times `gain` (its interval). Returns (detached statistics for the
        log, D's sign statistics on reals [sum of signs, count] for ADA, or None when D saw no reals)."""
        stats: dict[str, torch.Tensor] = {}
        real_signs = None
        do_Gmain = phase in ("Gmain", "Gboth")
        do_Dmain = phase in ("Dmain", "Dboth")
        do_Gpl = phase in ("Greg", "Gboth") and self.pl_weight != 0
        do_Dr1 = phase in ("Dreg", "Dboth") and self.r1_gamma != 0

        if do_Gmain:
            img, _ = self.run_G(gen_z, gen_c, main=True)
            logits = self.run_D(img, gen_c, main=True)
            loss = losses.g_nonsaturating(logits)
            loss.mean().mul(gain).backward()
            stats["Loss/G/loss"] = loss.detach().mean()
            stats["Loss/scores/fake"] = logits.detach().mean()

        if do_Gpl:
            n = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
            img, ws = self.run_G(gen_z[:n], gen_c[:n])
            lengths = losses.path_lengths(img, ws)
            penalty, new_mean = losses.path_length_penalty(lengths, self.pl_mean, self.pl_decay)
            self.pl_mean.copy_(new_mean.detach())
            loss = penalty * self.pl_weight
            (img[:, 0, 0, 0] * 0 + loss).mean().mul(gain).backward()
            stats["Loss/pl_penalty"] = penalty.detach().mean()
            stats["Loss/G/reg"] = loss.detach().mean()

        if do_Dmain:
            with torch.no_grad():
                img, _ = self.run_G(gen_z, gen_c, main=True)
            logits = self.run_D(img, gen_c, main=True)
            loss = losses.d_logistic_fake(logits)
            loss.mean().mul(gain).backward()
            stats["Loss/D/loss_fake"] = loss.detach().mean()

        if do_Dmain or do_Dr1:
            real = real_img.detach().requires_grad_(do_Dr1)
            logits = self.run_D(real, real_c, main=not do_Dr1)
            total = logits * 0
            stats["Loss/scores/real"] = logits.detach().mean()
            stats["Loss/signs/real"] = logits.detach().sign().mean()
            real_signs = real_sign_stats(logits)
            if do_Dmain:
                loss = losses.d_logistic_real(logits)
                total = total + loss
                stats["Loss/D/loss_real"] = loss.detach().mean()
            if do_Dr1:
                penalty = losses.r1_penalty(logits, real)
                total = total + (penalty * (self.r1_gamma / 2)).unsqueeze(1)
                stats["Loss/r1_penalty"] = penalty.detach().mean()
            total.mean().mul(gain).backward()
        return stats, real_signs
