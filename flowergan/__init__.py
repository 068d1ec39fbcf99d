"""flowergan: StyleGAN2-ADA in pure PyTorch (train, sample, mix, project, measure)."""

__version__ = "0.1.0"


def load(path, device="cpu", batch_size=1, **hub_kwargs):
    """Load a generator for use: our model dir, a run dir (latest checkpoint), an official pickle, or a
    Hub repo id 'owner/name' (needs huggingface_hub; `hub_kwargs`: revision, cache_dir, token,
    local_files_only).

    Returns a `flowergan.inference.Pipeline` (with `save_pretrained` / `push_to_hub`); `batch_size` is how
    many images it generates per forward pass.
    """
    from flowergan.inference.api import load as _load

    return _load(path, device=device, batch_size=batch_size, **hub_kwargs)
