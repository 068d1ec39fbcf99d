"""The StyleGAN2 discriminator: residual (or skip/orig) blocks down to 4x4, minibatch stddev, and a
conditional projection head (Karras et al. 2020; Miyato & Koyama 2018 for the projection)."""

from __future__ import annotations

import math

import torch
from torch import nn

from flowergan.config import ModelConfig
from flowergan.networks import layers
from flowergan.networks.layers import Conv2dLayer, FullyConnectedLayer, MappingNetwork
from flowergan.ops import downsample2d, setup_filter


class DiscriminatorBlock(nn.Module):
    """fromRGB (first block or 'skip'), conv0 3x3, conv1 3x3 down 2x, residual 1x1 skip ('resnet')."""

    def __init__(
        self,
        in_channels: int,                # 0 for the first block, which reads the image
        tmp_channels: int,               # channels of conv0
        out_channels: int,
        resolution: int,                 # input resolution of this block
        img_channels: int,
        first_layer_idx: int,            # index of this block's first layer (for freezing)
        architecture: str = "resnet",
        activation: str = "lrelu",
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        channels_last: bool = False,
    ):
        super().__init__()
        self.in_channels, self.resolution, self.img_channels = in_channels, resolution, img_channels
        self.first_layer_idx, self.architecture, self.use_fp16 = first_layer_idx, architecture, use_fp16
        self.channels_last = use_fp16 and channels_last
        self.activations_channels_last = True  # NHWC activations: faster convs on CPU and GPU (set_channels_last)
        self.register_buffer("resample_filter", setup_filter(resample_filter))  # [4, 4], as in official files
        # The same filter as separable taps (rank 1): two 1-D passes are cheaper than one 2-D pass.
        self.register_buffer("resample_filter_1d", setup_filter(resample_filter, separable=True), persistent=False)
        self.num_layers = 0
        kw = dict(conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, activation=activation, **kw)
            self.num_layers += 1
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, activation=activation, **kw)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, activation=activation, down=2,
                                 resample_filter=resample_filter, **kw)
        self.num_layers += 2
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    resample_filter=resample_filter, channels_last=self.channels_last)
            self.num_layers += 1

    def layers_in_order(self) -> list[nn.Module]:
        """Layers in the official numbering order (used to freeze the first N layers of D)."""
        names = ["fromrgb", "conv0", "conv1", "skip"]
        return [getattr(self, n) for n in names if hasattr(self, n)]

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, force_fp32: bool = False):
        """x [N, I, R, R] or None; img [N, C, R, R] or None -> (x [N, O, R/2, R/2], img or None)."""
        dev = (x if x is not None else img).device
        use_fp16 = self.use_fp16 and not force_fp32 and dev.type in layers.FP16_DEVICE_TYPES
        dtype = torch.float16 if use_fp16 else torch.float32
        fmt = (torch.channels_last if (self.channels_last and use_fp16) or self.activations_channels_last
               else torch.contiguous_format)
        if x is not None:
            x = x.to(dtype=dtype, memory_format=fmt)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype=dtype, memory_format=fmt)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter_1d) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class MinibatchStdLayer(nn.Module):
    """Append the mean (over features and pixels) of the per-group feature stddev as extra channels.

    Sample n belongs to group n mod (N / G): groups interleave across the batch, as in the official code.
    """

    def __init__(self, group_size: int, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> [N, C + F, H, W]
        N, C, H, W = x.shape
        G = min(self.group_size, N) if self.group_size else N
        if N % G != 0:
            raise ValueError(f"minibatch-stddev: batch {N} is not divisible by group size {G}; "
                             f"use a batch that is a multiple of {G} or set mbstd_group")
        F_ = self.num_channels
        c = C // F_
        y = x.reshape(G, -1, F_, c, H, W)        # [G, n, F, c, H, W]
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # [n, F, c, H, W]
        y = y.mean(dim=[2, 3, 4])                 # [n, F]
        y = y.reshape(-1, F_, 1, 1).repeat(G, 1, H, W)  # [N, F, H, W]
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: (fromRGB for 'skip'), mbstd, conv 3x3, fc, out (projected on the label embedding)."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", mbstd_group_size: int = 4, mbstd_num_channels: int = 1,
                 activation: str = "lrelu", conv_clamp: float | None = None):
        super().__init__()
        self.in_channels, self.cmap_dim, self.resolution, self.architecture = (
            in_channels, cmap_dim, resolution, architecture)
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3,
                                activation=activation, conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None) -> torch.Tensor:
        x = x.to(torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)  # [N, 1] or [N, cmap_dim]
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """D(img, c): img [N, C, R, R] in ~[-1, 1], c [N, c_dim] -> logits [N, 1]."""

    def __init__(self, c_dim: int, img_resolution: int, img_channels: int, architecture: str = "resnet",
                 channel_base: int = 32768, channel_max: int = 512, num_fp16_res: int = 0,
                 conv_clamp: float | None = None, cmap_dim: int | None = None, mbstd_group_size: int = 4,
                 mbstd_num_channels: int = 1, mapping_layers: int = 8, channels_last: bool = False):
        super().__init__()
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        channels = {r: min(channel_base // r, channel_max) for r in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0
        self.cmap_dim = cmap_dim
        layer_idx = 0
        for res in self.block_resolutions:
            in_ch = channels[res] if res < img_resolution else 0
            block = DiscriminatorBlock(in_ch, channels[res], channels[res // 2], res, img_channels, layer_idx,
                                       architecture=architecture, conv_clamp=conv_clamp,
                                       use_fp16=res >= fp16_resolution, channels_last=channels_last)
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          num_layers=mapping_layers)
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim, resolution=4, img_channels=img_channels,
                                        architecture=architecture, mbstd_group_size=mbstd_group_size,
                                        mbstd_num_channels=mbstd_num_channels, conv_clamp=conv_clamp)
        self.config: ModelConfig | None = None  # the config it was built from (set by from_config)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> Discriminator:
        """Build from a ModelConfig; the module keeps it as `D.config`."""
        D = cls(c_dim=cfg.c_dim, img_resolution=cfg.resolution, img_channels=cfg.img_channels,
                   architecture=cfg.d_architecture, channel_base=cfg.channel_base, channel_max=cfg.channel_max,
                   num_fp16_res=cfg.num_fp16_res, conv_clamp=cfg.conv_clamp, cmap_dim=cfg.d_cmap_dim,
                   mbstd_group_size=cfg.mbstd_group, mbstd_num_channels=cfg.mbstd_channels,
                   mapping_layers=cfg.d_map_layers)
        D.config = cfg
        return D

    def layers_in_order(self) -> list[nn.Module]:
        """All block layers from the input side, in the official numbering (for `freeze_d`)."""
        out = []
        for res in self.block_resolutions:
            out += getattr(self, f"b{res}").layers_in_order()
        return out

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, force_fp32: bool = False) -> torch.Tensor:
        assert img.ndim == 4 and img.shape[1:] == (self.img_channels, self.img_resolution, self.img_resolution), \
            f"D expects [N, {self.img_channels}, {self.img_resolution}, {self.img_resolution}], got {tuple(img.shape)}"
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, force_fp32=force_fp32)
        cmap = None
        if self.c_dim > 0:
            assert c is not None and c.shape[1:] == (self.c_dim,), f"c must be [N, {self.c_dim}]"
            cmap = self.mapping(None, c)
        return self.b4(x, img, cmap)
