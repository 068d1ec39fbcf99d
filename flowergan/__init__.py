"""flowergan: StyleGAN2-ADA in pure PyTorch (train, sample, mix, project, measure)."""

__version__ = "0.1.0"


def load(path, device="cpu", batch_size=1):
    """Load a generator for use: our model dir, a run dir (latest checkpoint) or an official pickle.

    Returns a `flowergan.inference.Pipeline`; `batch_size` is how many images it generates per forward pass.
    """
    from flowergan.inference.api import load as _load

    return _load(path, device=device, batch_size=batch_size)
