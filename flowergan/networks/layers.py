"""Equalized-learning-rate layers shared by G and D (Karras et al. 2018, sec. 4.1; 2020, sec. 2.2)."""

from __future__ import annotations

import math

import torch
from torch import nn

from flowergan.ops import bias_act, conv2d_resample, setup_filter
from flowergan.ops.bias_act import ACTIVATIONS, bias_lrelu_

# Device types on which blocks marked use_fp16 really compute in float16 (tests add "cpu" to run that path).
FP16_DEVICE_TYPES = {"cuda"}


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale x so its mean square along `dim` is 1 (the pixel norm applied to z)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class FullyConnectedLayer(nn.Module):
    """y = act(x @ (W * gain).T + b * lr_mult); stored W ~ N(0, 1 / lr_mult^2)."""

    def __init__(
        self,
        in_features: int,             # input width
        out_features: int,            # output width
        bias: bool = True,            # learn a bias?
        activation: str = "linear",   # a name from ops.ACTIVATIONS
        lr_multiplier: float = 1.0,   # learning-rate multiplier (equalized lr)
        bias_init: float = 0.0,       # initial bias value
    ):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, I] -> [N, O]
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, act={self.activation}"


class Conv2dLayer(nn.Module):
    """Equalized-lr convolution with optional FIR up/down-sampling, bias, activation and clamp."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,                          # upsampling factor
        down: int = 1,                        # downsampling factor
        resample_filter=(1, 3, 3, 1),         # FIR filter taps for resampling
        conv_clamp: float | None = None,      # clamp the output to +-conv_clamp (None: off)
        channels_last: bool = False,          # store the weight channels-last
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))  # [4, 4], as in official files
        # The same filter as separable taps (rank 1): two 1-D passes are cheaper than one 2-D pass.
        self.register_buffer("resample_filter_1d", setup_filter(resample_filter, separable=True), persistent=False)
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = ACTIVATIONS[activation].def_gain
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(
            memory_format=fmt))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:  # [N, I, H, W] -> [N, O, H', W']
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        if self.activation in ("linear", "lrelu"):
            # Both are positively homogeneous: fold the output gain into the weight and the bias, and let
            # the convolution add the bias, instead of extra full-size passes (same maths, less memory traffic).
            g = self.act_gain * gain
            w = self.weight * (self.weight_gain * g)
            b = (self.bias * g).to(x.dtype) if self.bias is not None else None
            x = conv2d_resample(x, w.to(x.dtype), f=self.resample_filter_1d, up=self.up, down=self.down,
                                padding=self.padding, flip_weight=(self.up == 1), bias=b)
            if self.activation == "lrelu":
                return bias_lrelu_(x, None, clamp=clamp)
            return x.clamp(-clamp, clamp) if clamp is not None else x
        w = self.weight * self.weight_gain
        x = conv2d_resample(x, w.to(x.dtype), f=self.resample_filter_1d, up=self.up, down=self.down,
                            padding=self.padding, flip_weight=(self.up == 1))
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        return (f"in={self.in_channels}, out={self.out_channels}, k={self.weight.shape[-1]}, "
                f"act={self.activation}, up={self.up}, down={self.down}")


class MappingNetwork(nn.Module):
    """z (and optional label c) -> w, broadcast to [N, num_ws, w_dim], with truncation around w_avg."""

    def __init__(
        self,
        z_dim: int,                      # latent z width (0 = labels only, as in D's mapping)
        c_dim: int,                      # label width (0 = unconditional)
        w_dim: int,                      # output w width
        num_ws: int | None,              # copies of w to output (None = return [N, w_dim])
        num_layers: int = 8,             # number of FC layers
        embed_features: int | None = None,   # label embedding width (None = w_dim)
        layer_features: int | None = None,   # hidden width (None = w_dim)
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.995,    # decay of the tracked w average (None = don't track)
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        embed_features = w_dim if embed_features is None else embed_features
        if c_dim == 0:
            embed_features = 0
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(features[i], features[i + 1], activation=activation,
                                                        lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, update_w_avg: bool | None = None) -> torch.Tensor:
        """z [N, z_dim], c [N, c_dim] -> ws [N, num_ws, w_dim] (or [N, w_dim] when num_ws is None).

        `update_w_avg` (default: in training mode) moves w_avg towards this batch's mean w.
        """
        x = None
        if self.z_dim > 0:
            assert z is not None and z.shape[1:] == (self.z_dim,), f"z must be [N, {self.z_dim}]"
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            assert c is not None and c.shape[1:] == (self.c_dim,), f"c must be [N, {self.c_dim}]"
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if update_w_avg is None:
            update_w_avg = self.training
        if update_w_avg and self.num_ws is not None and self.w_avg_beta is not None:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat(1, self.num_ws, 1)  # [N, num_ws, w_dim]; a copy, safe to edit
        if truncation_psi != 1:
            assert self.num_ws is not None and self.w_avg_beta is not None, "truncation needs a tracked w_avg"
            x = self.truncate(x, truncation_psi, truncation_cutoff)
        return x

    def truncate(self, ws: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> w_avg + psi * (ws - w_avg), on the first `cutoff` ws (None: all)."""
        if cutoff is None:
            return self.w_avg.lerp(ws, psi)
        ws = ws.clone()
        ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], psi)
        return ws

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"
