"""Image-generation metrics comparable with papers: FID, KID, precision/recall, PPL (StyleGAN2-ADA protocol).

Entry points: `compute(G, "fid,kid", data_path, num_gen, device)` (see `registry`), `fid_between(a, b)`,
the registry `METRICS`, and the formulas in `distances`. Generators are seen only through their protocol.
"""

from .detectors import KNOWN_DETECTORS, DetectorError, DetectorNotFoundError, UnknownDetectorError
from .distances import frechet_distance, kernel_inception_distance, ppl_from_lengths, precision_recall
from .registry import METRICS, MetricSpec, compute, fid_between, scalars

__all__ = [
    "KNOWN_DETECTORS", "METRICS", "DetectorError", "DetectorNotFoundError", "MetricSpec",
    "UnknownDetectorError",
    "compute", "fid_between", "frechet_distance", "kernel_inception_distance", "ppl_from_lengths",
    "precision_recall", "scalars",
]
