"""flowergan: StyleGAN2-ADA in pure PyTorch (train, sample, mix, project, measure)."""

__version__ = "0.1.0"


def load(path, device="cpu"):
    """Load a generator for use: our model dir, a run dir (latest checkpoint) or an official pickle."""
    from flowergan.inference.api import load as _load

    return _load(path, device=device)
