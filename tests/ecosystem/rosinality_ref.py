"""rosinality's stylegan2-pytorch Generator and Discriminator written out for the tests: an independent, minimal
plain-torch re-implementation (no code copied) with its module and tensor names, so
`load_state_dict(strict=True)` checks every key and shape a pSp / e4e / GANSpace loader expects, and its forward
is the oracle for our exports.

Read from the published architecture: PixelNorm then n_mlp EqualLinear (lr_mul 0.01, bias then leaky ReLU
times sqrt 2); a learned 4x4 constant; styled convs = modulated conv (weight [1, O, I, k, k] times 1/sqrt(fan_in),
modulation EqualLinear with bias 1, demodulation), the 2x ones as a stride-2 transposed conv followed by a 4x4
blur padded (1, 1); per-pixel noise times a scalar weight; bias + leaky ReLU times sqrt 2; ToRGB a 1x1
modulated conv without demodulation plus a [1, 3, 1, 1] bias, adding the 2x-upsampled previous image.
The Discriminator: a 1x1 from-RGB conv layer, residual blocks (3x3 conv; blur then stride-2 3x3 conv; a
blurred stride-2 1x1 skip without bias; sum over sqrt 2), minibatch stddev (groups of 4), a 3x3 conv and two
EqualLinears."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def blur_taps() -> torch.Tensor:
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = k[:, None] * k[None, :]
    return k / k.sum()


def fir(x: torch.Tensor, k: torch.Tensor, up: int, pad: tuple[int, int]) -> torch.Tensor:
    """Zero-stuff by `up`, pad (p0, p1) on both axes, then convolve (true convolution) with k, per channel."""
    N, C, H, W = x.shape
    if up > 1:
        z = x.new_zeros([N, C, H * up, W * up])
        z[:, :, ::up, ::up] = x
        x = z
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    w = k.flip([0, 1])[None, None].repeat(C, 1, 1, 1).to(x.dtype)
    return F.conv2d(x, w, groups=C)


class EqualLinear(nn.Module):
    def __init__(self, i: int, o: int, bias_init: float = 0.0, lr_mul: float = 1.0, act: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(o, i) / lr_mul)
        self.bias = nn.Parameter(torch.full([o], float(bias_init)))
        self.scale, self.lr_mul, self.act = lr_mul / math.sqrt(i), lr_mul, act

    def forward(self, x):
        y = x @ (self.weight * self.scale).t() + self.bias * self.lr_mul
        return F.leaky_relu(y, 0.2) * math.sqrt(2) if self.act else y


class PixelNorm(nn.Module):
    def forward(self, x):
        return x / torch.sqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class Blur(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("kernel", blur_taps() * 4)

    def forward(self, x):
        return fir(x, self.kernel, 1, (1, 1))


class ModulatedConv2d(nn.Module):
    def __init__(self, i: int, o: int, k: int, style_dim: int, demodulate: bool = True, upsample: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, o, i, k, k))
        self.modulation = EqualLinear(style_dim, i, bias_init=1)
        if upsample:
            self.blur = Blur()
        self.scale, self.demodulate, self.upsample, self.pad = 1 / math.sqrt(i * k * k), demodulate, upsample, k // 2

    def forward(self, x, style):
        N = x.shape[0]
        s = self.modulation(style)                                  # [N, I]
        w = self.scale * self.weight * s[:, None, :, None, None]    # [N, O, I, k, k]
        if self.demodulate:
            w = w / torch.sqrt(w.pow(2).sum([2, 3, 4], keepdim=True) + 1e-8)
        outs = []
        for n in range(N):  # one sample at a time: plain, no grouped-conv tricks
            xn = x[n:n + 1]
            if self.upsample:
                y = F.conv_transpose2d(xn, w[n].transpose(0, 1), stride=2)  # weight [I, O, k, k]
                y = self.blur(y)
            else:
                y = F.conv2d(xn, w[n], padding=self.pad)
            outs.append(y)
        return torch.cat(outs)


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x, noise):
        return x + self.weight * noise


class FusedLeakyReLU(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        return F.leaky_relu(x + self.bias[None, :, None, None], 0.2) * math.sqrt(2)


class StyledConv(nn.Module):
    def __init__(self, i: int, o: int, style_dim: int, upsample: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(i, o, 3, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(o)

    def forward(self, x, style, noise):
        return self.activate(self.noise(self.conv(x, style), noise))


class Upsample(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("kernel", blur_taps() * 4)

    def forward(self, x):
        return fir(x, self.kernel, 2, (2, 1))


class ToRGB(nn.Module):
    def __init__(self, i: int, style_dim: int, upsample: bool = True):
        super().__init__()
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(i, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, style, skip=None):
        y = self.conv(x, style) + self.bias
        return y + self.upsample(skip) if skip is not None else y


class ConstantInput(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, c, 4, 4))


class RosGenerator(nn.Module):
    def __init__(self, size: int, style_dim: int, n_mlp: int, channel_multiplier: int = 2, lr_mlp: float = 0.01):
        super().__init__()
        m = channel_multiplier
        ch = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * m, 128: 128 * m, 256: 64 * m, 512: 32 * m, 1024: 16 * m}
        self.log_size = int(math.log2(size))
        self.style = nn.Sequential(PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, act=True)
                                                  for _ in range(n_mlp)])
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], style_dim)
        self.to_rgb1 = ToRGB(ch[4], style_dim, upsample=False)
        self.convs, self.upsamples, self.to_rgbs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.noises = nn.Module()
        self.num_layers = 2 * (self.log_size - 2) + 1
        for j in range(self.num_layers):
            r = 2 ** ((j + 5) // 2)
            self.noises.register_buffer(f"noise_{j}", torch.randn(1, 1, r, r))
        c_in = ch[4]
        for lg in range(3, self.log_size + 1):
            c = ch[2**lg]
            self.convs.append(StyledConv(c_in, c, style_dim, upsample=True))
            self.convs.append(StyledConv(c, c, style_dim))
            self.to_rgbs.append(ToRGB(c, style_dim))
            c_in = c
        self.n_latent = 2 * self.log_size - 2

    def forward(self, z=None, latent=None, truncation=1.0, truncation_latent=None):
        """z [N, style_dim] (mapped) or latent [N, n_latent, style_dim] (W+); the stored noises."""
        if latent is None:
            w = self.style(z)
            if truncation < 1:
                w = truncation_latent + truncation * (w - truncation_latent)
            latent = w[:, None].repeat(1, self.n_latent, 1)
        noise = [getattr(self.noises, f"noise_{j}") for j in range(self.num_layers)]
        x = self.input.input.repeat(latent.shape[0], 1, 1, 1)
        x = self.conv1(x, latent[:, 0], noise[0])
        skip = self.to_rgb1(x, latent[:, 1])
        i = 1
        for k in range(len(self.to_rgbs)):
            x = self.convs[2 * k](x, latent[:, i], noise[2 * k + 1])
            x = self.convs[2 * k + 1](x, latent[:, i + 1], noise[2 * k + 2])
            skip = self.to_rgbs[k](x, latent[:, i + 2], skip)
            i += 2
        return skip


# ---- the Discriminator: residual blocks, minibatch stddev (group 4, 1 feature), conv, two linears ----------


class EqualConv2d(nn.Module):
    def __init__(self, i: int, o: int, k: int, stride: int = 1, padding: int = 0, bias: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(o, i, k, k))
        self.bias = nn.Parameter(torch.zeros(o)) if bias else None
        self.scale, self.stride, self.padding = 1 / math.sqrt(i * k * k), stride, padding

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class DownBlur(nn.Module):
    def __init__(self, pad: tuple[int, int]):
        super().__init__()
        self.register_buffer("kernel", blur_taps())
        self.pad = pad

    def forward(self, x):
        return fir(x, self.kernel, 1, self.pad)


def conv_layer(i: int, o: int, k: int, downsample: bool = False, activate: bool = True) -> nn.Sequential:
    """Sequential([blur (2x down only), conv, bias + leaky ReLU * sqrt 2 (if activate)]), padded 'same'."""
    mods: list[nn.Module] = []
    if downsample:
        p = 2 + (k - 1)  # filter taps minus the factor, plus the kernel's reach
        mods += [DownBlur(((p + 1) // 2, p // 2)), EqualConv2d(i, o, k, stride=2)]
    else:
        mods.append(EqualConv2d(i, o, k, padding=k // 2))
    if activate:
        mods.append(FusedLeakyReLU(o))
    return nn.Sequential(*mods)


class ResBlock(nn.Module):
    def __init__(self, i: int, o: int):
        super().__init__()
        self.conv1 = conv_layer(i, i, 3)
        self.conv2 = conv_layer(i, o, 3, downsample=True)
        self.skip = conv_layer(i, o, 1, downsample=True, activate=False)

    def forward(self, x):
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


class RosDiscriminator(nn.Module):
    def __init__(self, size: int, channel_multiplier: int = 2):
        super().__init__()
        m = channel_multiplier
        ch = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * m, 128: 128 * m, 256: 64 * m, 512: 32 * m, 1024: 16 * m}
        log_size = int(math.log2(size))
        mods: list[nn.Module] = [conv_layer(3, ch[size], 1)]
        c_in = ch[size]
        for lg in range(log_size, 2, -1):
            mods.append(ResBlock(c_in, ch[2 ** (lg - 1)]))
            c_in = ch[2 ** (lg - 1)]
        self.convs = nn.Sequential(*mods)
        self.final_conv = conv_layer(c_in + 1, ch[4], 3)
        self.final_linear = nn.Sequential(EqualLinear(ch[4] * 16, ch[4], act=True), EqualLinear(ch[4], 1))

    def forward(self, img):
        x = self.convs(img)
        N, C, H, W = x.shape
        g = min(N, 4)
        y = x.view(g, -1, 1, C, H, W)                                  # sample n in group n mod (N / g)
        y = torch.sqrt(y.var(0, unbiased=False) + 1e-8).mean([2, 3, 4])  # [N / g, 1]
        y = y[:, :, None, None].repeat(g, 1, H, W)
        x = self.final_conv(torch.cat([x, y], 1))
        return self.final_linear(x.view(N, -1))
