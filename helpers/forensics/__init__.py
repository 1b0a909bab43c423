"""Forensic traces of images: pure functions on ``uint8`` RGB arrays (or file paths, for metadata).

* :func:`ela` -- error level analysis (in-memory JPEG re-save);
* :func:`srm` -- SRM noise residuals (Zhou et al.'s three filters or Fridrich's 30);
* :func:`median_residual`, :func:`local_noise_map` -- noise residual and block-wise noise level;
* :func:`estimate_jpeg_quality`, :func:`jpeg_quantization_tables`, :func:`jpeg_ghosts` -- JPEG history;
* :func:`exif_summary` -- EXIF fields and flags;
* :mod:`helpers.forensics.blocks` -- luminance, the 8x8 block DCT, the JPEG grid from blockiness, quantisation
  steps from decoded pixels; :mod:`helpers.forensics.dq` -- per-block double-quantisation evidence (Lin et al.
  2009); both imported by module, for the compression-domain detectors;
* :func:`compute_features` -- all of the above for a manifest, cached on disk (``helpers.forensics.cache``).

Only NumPy, Pillow and OpenCV are imported here; Keras layers live in :mod:`helpers.models.layers`, and the
cache (pandas, process pools) is imported on first use of its names.
"""

from __future__ import annotations

from typing import Any

from helpers.forensics.ela import ela
from helpers.forensics.jpeg import (
    JpegQuality,
    estimate_jpeg_quality,
    jpeg_ghosts,
    jpeg_quantization_tables,
)
from helpers.forensics.metadata import exif_summary
from helpers.forensics.noise import local_noise_map, median_residual
from helpers.forensics.srm import SRMKernels, srm, srm_kernels

__all__ = [
    "ela",
    "srm",
    "srm_kernels",
    "SRMKernels",
    "median_residual",
    "local_noise_map",
    "JpegQuality",
    "estimate_jpeg_quality",
    "jpeg_quantization_tables",
    "jpeg_ghosts",
    "exif_summary",
    "FEATURE_VERSION",
    "FEATURES",
    "compute_features",
    "load_feature",
]

_LAZY = frozenset({"FEATURE_VERSION", "FEATURES", "compute_features", "load_feature"})


def __getattr__(name: str) -> Any:
    # The cache pulls in pandas and the process pool; load it only when one of its names is used.
    if name in _LAZY:
        from helpers.forensics import cache

        return getattr(cache, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
