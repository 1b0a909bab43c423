"""Augmentation for forgery detection (notebook 03): pipelines that respect forensic traces and masks.

Three rules shape this package.

1. **Geometry moves image and mask together; photometry touches the image only**, and forensic inputs are
   computed after augmentation, from the augmented image: :mod:`helpers.augment.transforms` (the albumentations
   pipelines, grid-aligned crops, :func:`with_forensics`).
2. **Augmenting a forensic map is not augmenting a photo**; crops off the JPEG grid raise ELA everywhere; variants
   of one photo on both sides of a split inflate the score: :mod:`helpers.augment.demos` measures all three.
3. **Augment only after the split**: :mod:`helpers.augment.offline` writes variants of training rows only.

Every public name of the three modules is importable from here, as the notebooks and the input pipeline do.
"""

from __future__ import annotations

import os

# albumentations asks PyPI for a newer version on every import (every spawned worker too) unless told not to;
# this runs before any submodule imports albumentations.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from helpers.augment.demos import ElaPitfall, LeakageResult, ela_pitfall, grid_alignment_ela, leakage_demo  # noqa: E402
from helpers.augment.offline import augment_offline  # noqa: E402
from helpers.augment.transforms import (  # noqa: E402
    GEOMETRIC_STRENGTHS,
    JPEG_GRID,
    STREAMS,
    GridAlignedCrop,
    augment,
    build_pipeline,
    clean_mask,
    geometric_transforms,
    grid_crop_around,
    photometric_transforms,
    reseed,
    transform_gallery,
    with_forensics,
)

__all__ = [
    "JPEG_GRID",
    "STREAMS",
    "GEOMETRIC_STRENGTHS",
    "GridAlignedCrop",
    "grid_crop_around",
    "geometric_transforms",
    "photometric_transforms",
    "transform_gallery",
    "build_pipeline",
    "reseed",
    "augment",
    "with_forensics",
    "clean_mask",
    "ElaPitfall",
    "ela_pitfall",
    "grid_alignment_ela",
    "LeakageResult",
    "leakage_demo",
    "augment_offline",
]
