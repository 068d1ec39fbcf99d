"""Building blocks: FIR resampling, bias+activation, (modulated) convolution; plain PyTorch, with fused Triton
kernels on CUDA where they pass a self-check."""

from flowergan.ops.bias_act import ACTIVATIONS, bias_act
from flowergan.ops.conv import conv2d_resample, modulated_conv2d
from flowergan.ops.upfirdn import downsample2d, filter2d, filter_size, setup_filter, upfirdn2d, upsample2d

__all__ = [
    "ACTIVATIONS", "bias_act", "conv2d_resample", "modulated_conv2d", "downsample2d", "filter2d",
    "filter_size", "setup_filter", "upfirdn2d", "upsample2d",
]
