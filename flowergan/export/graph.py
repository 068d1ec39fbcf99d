"""The modules that get exported: the generator (or its mapping / synthesis half) with truncation and
noise fixed, inputs as plain tensors, images clamped to [-1, 1]. What a file computes is decided here."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from flowergan.bounds import check_count, check_float

WHATS = ("generator", "synthesis", "mapping")
EXPORT_NOISE_MODES = ("const", "none")  # 'random' would need an RNG inside the graph: not exported


@dataclass(frozen=True)
class ExportSpec:
    """What an exported file holds: which part, fixed truncation and noise, the batch (None: dynamic)."""

    what: str = "generator"
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    noise_mode: str = "const"
    batch: int | None = 1

    def validate(self) -> None:
        if self.what not in WHATS:
            raise ValueError(f"what={self.what!r}: choose one of {', '.join(WHATS)}")
        if self.noise_mode not in EXPORT_NOISE_MODES:
            raise ValueError(f"noise_mode={self.noise_mode!r}: exported graphs take 'const' (the model's stored "
                             f"noise, a constant of the graph) or 'none'; 'random' noise cannot be exported")
        if self.batch is not None and (isinstance(self.batch, bool) or not isinstance(self.batch, int)
                                       or self.batch < 1):
            raise ValueError(f"batch={self.batch!r}: an integer >= 1, or None for a dynamic batch")
        if self.batch is not None:
            check_count(self.batch, "batch", "batch")
        check_float(self.truncation_psi, "truncation_psi", -2.0, 2.0)  # NaN would be baked into the file
        if self.what == "synthesis" and (self.truncation_psi != 1 or self.truncation_cutoff is not None):
            raise ValueError("truncation applies in the mapping network: export 'generator' or 'mapping' "
                             "to fix --truncation-psi")


class _Generator(nn.Module):
    def __init__(self, G: nn.Module, spec: ExportSpec):
        super().__init__()
        self.G, self.spec = G, spec

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """z [N, z_dim], c [N, c_dim] (conditional models only) -> img [N, C, H, W] in [-1, 1]."""
        ws = self.G.mapping(z, c, truncation_psi=self.spec.truncation_psi,
                            truncation_cutoff=self.spec.truncation_cutoff, update_w_avg=False)
        img = self.G.synthesis(ws, noise_mode=self.spec.noise_mode, fused_modconv=False)
        return img.clamp(-1, 1)


class _Mapping(nn.Module):
    def __init__(self, G: nn.Module, spec: ExportSpec):
        super().__init__()
        self.G, self.spec = G, spec

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """z [N, z_dim], c [N, c_dim] (conditional models only) -> ws [N, num_ws, w_dim] (truncated)."""
        return self.G.mapping(z, c, truncation_psi=self.spec.truncation_psi,
                              truncation_cutoff=self.spec.truncation_cutoff, update_w_avg=False)


class _Synthesis(nn.Module):
    def __init__(self, G: nn.Module, spec: ExportSpec):
        super().__init__()
        self.G, self.spec = G, spec

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> img [N, C, H, W] in [-1, 1]."""
        return self.G.synthesis(ws, noise_mode=self.spec.noise_mode, fused_modconv=False).clamp(-1, 1)


def export_module(G: nn.Module, spec: ExportSpec) -> nn.Module:
    """The eval-mode, gradient-free module to export for `spec`."""
    spec.validate()
    G = G.eval().requires_grad_(False)
    return {"generator": _Generator, "mapping": _Mapping, "synthesis": _Synthesis}[spec.what](G, spec).eval()


def input_names(G: nn.Module, spec: ExportSpec) -> list[str]:
    if spec.what == "synthesis":
        return ["ws"]
    return ["z", "c"] if G.c_dim else ["z"]


def output_name(spec: ExportSpec) -> str:
    return "ws" if spec.what == "mapping" else "img"


def example_inputs(G: nn.Module, spec: ExportSpec, batch: int | None = None, seed: int = 0
                   ) -> tuple[torch.Tensor, ...]:
    """Seeded float32 inputs of the exported signature: (z [N, z_dim],), with c [N, c_dim] (one-hot classes
    0, 1, ...) for a conditional model, or (ws [N, num_ws, w_dim],) for the synthesis network."""
    n = batch or spec.batch or 2
    g = torch.Generator().manual_seed(seed)
    z = torch.randn([n, G.z_dim], generator=g)
    if spec.what == "synthesis":
        with torch.no_grad():
            return (G.mapping(z, torch.zeros([n, G.c_dim]), update_w_avg=False),)
    if not G.c_dim:
        return (z,)
    c = torch.zeros([n, G.c_dim])
    c[torch.arange(n), torch.arange(n) % G.c_dim] = 1
    return z, c
