"""The StyleGAN2 generator (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN").

Mapping z -> w, then a synthesis network that starts from a learned 4x4 constant and, block by
block, applies modulated convolutions with weight demodulation, per-pixel noise and skip toRGB
outputs. Names of modules and tensors follow the official implementation so state dicts match.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from flowergan.config import NOISE_MODES, ModelConfig
from flowergan.networks import layers
from flowergan.networks.layers import Conv2dLayer, FullyConnectedLayer, MappingNetwork
from flowergan.ops import bias_act, modulated_conv2d, setup_filter, upsample2d
from flowergan.ops.bias_act import ACTIVATIONS, bias_lrelu_


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally upsampling 2x) + noise + bias + lrelu."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,                 # output resolution of this layer
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = None,
        channels_last: bool = False,
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp = activation, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))  # [4, 4], as in official files
        # The same filter as separable taps (rank 1): two 1-D passes are cheaper than one 2-D pass.
        self.register_buffer("resample_filter_1d", setup_filter(resample_filter, separable=True), persistent=False)
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation].def_gain
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(
            memory_format=fmt))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", fused_modconv: bool = True,
                gain: float = 1) -> torch.Tensor:
        """x [N, I, H, W], w [N, w_dim] -> [N, O, H*up, W*up]."""
        N = x.shape[0]
        styles = self.affine(w)  # [N, I]
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([N, 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        g = self.act_gain * gain
        if self.activation == "lrelu":
            # lrelu(z) * g == lrelu(z * g): fold g into the demodulation coefficients, noise and bias.
            x = modulated_conv2d(x, self.weight, styles, noise=noise * g if noise is not None else None,
                                 up=self.up, padding=self.padding, resample_filter=self.resample_filter_1d,
                                 flip_weight=(self.up == 1), fused_modconv=fused_modconv, out_gain=g)
            return bias_lrelu_(x, self.bias * g, clamp=clamp)
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter_1d, flip_weight=(self.up == 1),
                             fused_modconv=fused_modconv)
        return bias_act(x, self.bias, act=self.activation, gain=g, clamp=clamp)

    def extra_repr(self) -> str:
        return f"in={self.in_channels}, out={self.out_channels}, res={self.resolution}, up={self.up}"


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation: features -> image channels."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None, channels_last: bool = False):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(
            memory_format=fmt))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain  # [N, I]
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: (upsampling conv0), conv1, toRGB."""

    def __init__(
        self,
        in_channels: int,               # 0 for the first (4x4) block, which starts from a constant
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",     # 'orig', 'skip' or 'resnet'
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        channels_last: bool = False,
    ):
        super().__init__()
        self.in_channels, self.w_dim, self.resolution = in_channels, w_dim, resolution
        self.img_channels, self.is_last, self.architecture = img_channels, is_last, architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and channels_last
        self.activations_channels_last = True  # NHWC activations: faster convs on CPU and GPU (set_channels_last)
        self.register_buffer("resample_filter", setup_filter(resample_filter))  # [4, 4], as in official files
        # The same filter as separable taps (rank 1): two 1-D passes are cheaper than one 2-D pass.
        self.register_buffer("resample_filter_1d", setup_filter(resample_filter, separable=True), persistent=False)
        self.num_conv = 0
        self.num_torgb = 0
        kw = dict(resample_filter=resample_filter, conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2, **kw)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, **kw)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp,
                                    channels_last=self.channels_last)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                noise_mode: str = "random", fused_modconv: bool | None = None, force_fp32: bool = False):
        """ws [N, num_conv + num_torgb, w_dim]; x [N, I, R/2, R/2] or None; img [N, C, R/2, R/2] or None."""
        w_iter = iter(ws.unbind(dim=1))
        N = ws.shape[0]
        use_fp16 = self.use_fp16 and not force_fp32 and ws.device.type in layers.FP16_DEVICE_TYPES
        dtype = torch.float16 if use_fp16 else torch.float32
        fmt = (torch.channels_last if (self.channels_last and use_fp16) or self.activations_channels_last
               else torch.contiguous_format)
        if fused_modconv is None:
            # One grouped conv with per-sample weights wins on GPUs at inference; on CPUs the shared conv
            # between two scalings is ~2x faster (oneDNN's grouped conv is slow), so use it there.
            fused_modconv = (not self.training) and ws.device.type == "cuda" and (dtype == torch.float32 or N == 1)
        if self.in_channels == 0:
            x = self.const.to(dtype=dtype).unsqueeze(0).expand(N, -1, -1, -1).contiguous(memory_format=fmt)
        else:
            x = x.to(dtype=dtype, memory_format=fmt)
        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv,
                           gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv)
        if img is not None:
            img = upsample2d(img, self.resample_filter_1d)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv).to(torch.float32)
            img = img + y if img is not None else y
        return x, img

    def extra_repr(self) -> str:
        return f"res={self.resolution}, arch={self.architecture}, fp16={self.use_fp16}"


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, C, R, R]."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_fp16_res: int = 0, architecture: str = "skip",
                 conv_clamp: float | None = None, channels_last: bool = False):
        super().__init__()
        assert img_resolution >= 4 and img_resolution & (img_resolution - 1) == 0
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        channels = {r: min(channel_base // r, channel_max) for r in self.block_resolutions}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            in_ch = channels[res // 2] if res > 4 else 0
            is_last = res == img_resolution
            block = SynthesisBlock(in_ch, channels[res], w_dim, res, img_channels, is_last,
                                   architecture=architecture, conv_clamp=conv_clamp,
                                   use_fp16=res >= fp16_resolution, channels_last=channels_last)
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", fused_modconv: bool | None = None,
                force_fp32: bool = False) -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        assert ws.ndim == 3 and ws.shape[1:] == (self.num_ws, self.w_dim), \
            f"ws must be [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}"
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            cur = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, cur, noise_mode=noise_mode, fused_modconv=fused_modconv, force_fp32=force_fp32)
        return img


class Generator(nn.Module):
    """G(z, c) = synthesis(mapping(z, c)). z [N, z_dim], c [N, c_dim] -> image [N, C, R, R] in ~[-1, 1]."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict | None = None, synthesis_kwargs: dict | None = None):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, **(synthesis_kwargs or {}))
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, **(mapping_kwargs or {}))
        self.config: ModelConfig | None = None  # the config it was built from (set by from_config)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> Generator:
        """Build from a ModelConfig; the module keeps it as `G.config` (save/load needs nothing else)."""
        G = cls(
            z_dim=cfg.z_dim, c_dim=cfg.c_dim, w_dim=cfg.w_dim, img_resolution=cfg.resolution,
            img_channels=cfg.img_channels,
            mapping_kwargs=dict(num_layers=cfg.map_layers, layer_features=cfg.map_hidden,
                                embed_features=cfg.map_embed, lr_multiplier=cfg.map_lr_mult,
                                w_avg_beta=cfg.w_avg_beta),
            synthesis_kwargs=dict(channel_base=cfg.channel_base, channel_max=cfg.channel_max,
                                  num_fp16_res=cfg.num_fp16_res, architecture=cfg.g_architecture,
                                  conv_clamp=cfg.conv_clamp),
        )
        G.config = cfg
        return G

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, noise_mode: str = "random",
                fused_modconv: bool | None = None, force_fp32: bool = False,
                update_w_avg: bool | None = None) -> torch.Tensor:
        if c is None:
            c = torch.zeros([z.shape[0], self.c_dim], device=z.device)
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_w_avg=update_w_avg)
        return self.synthesis(ws, noise_mode=noise_mode, fused_modconv=fused_modconv, force_fp32=force_fp32)


__all__ = ["Generator", "SynthesisNetwork", "SynthesisBlock", "SynthesisLayer", "ToRGBLayer", "NOISE_MODES",
           "FullyConnectedLayer"]
