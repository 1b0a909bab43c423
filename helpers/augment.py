"""Augmentation for forgery detection: albumentations pipelines that respect forensic traces and masks.

Three rules shape this module.

1. **Geometry moves image and mask together; photometry touches the image only.** Geometric transforms
   (flips, transposition, quarter turns, affine warps, elastic/grid/optical distortions) are albumentations
   *dual* transforms: one call moves the image and its mask with the same parameters. Masks are resampled with
   nearest-neighbour interpolation (``mask_interpolation=cv2.INTER_NEAREST``) so they stay binary; a linear
   mask would invent half-tampered pixels. Photometric transforms (brightness/contrast, hue/saturation, gamma,
   CLAHE) are albumentations *image-only* transforms: albumentations passes the mask through them unchanged,
   because a brighter photo has the same tampered region.

2. **Forensic inputs are computed after augmentation, from the augmented image** (:func:`with_forensics`).
   ELA and SRM maps are not photographs: a hue shift or a resize changes the error levels and the noise
   residuals themselves (the shifted image is no longer a JPEG fixed point, the resized one has resampled
   noise), so augmenting a precomputed ELA map as if it were a photo gives a map that no real image has
   (:func:`ela_pitfall` measures the difference).

3. **Augment only after the split** (:func:`augment_offline` refuses rows outside the training split).
   Variants of one photo are near-duplicates; if they land on both sides of a split the validation score
   measures recall of photos, not forgery detection (:func:`leakage_demo` measures by how much).

Crop or resize. A model with a fixed input must either **crop** at native resolution or **resize**. Resizing
resamples every pixel: it smears the 8x8 JPEG blocking and the sensor noise that ELA and SRM read, and shrinks
small tampered regions to a few pixels; it does show the whole image. Cropping keeps the traces intact but sees
only part of the image (a tampered region may lie outside the crop; tile at test time). The workbook crops.
Crops here sit **on the JPEG grid**: their corner is a multiple of :data:`JPEG_GRID` (16 pixels, the 4:2:0
macroblock), and small images are padded at the bottom and right only. A crop off that grid re-blocks the
image, and ELA of such a crop is about 1.4 to 2.5 times higher everywhere (:func:`grid_alignment_ela`, measured
on the embedded set in notebook 03), which drowns the contrast ELA exists to show. For the same reason the
lossless transforms (flips, transposition, quarter turns: pixel permutations) are applied often and the
resampling ones (affine, distortions) rarely in the ``"mild"`` setting.

Determinism. ``A.Compose(..., seed=s)`` in albumentations 2.0.x gives *every* transform its own generator
seeded with the same ``s``; transforms that draw alike then decide alike (``HorizontalFlip`` and
``VerticalFlip`` with ``p=0.5`` are applied together or not at all, every time). :func:`reseed` gives all
transforms of a pipeline one shared generator instead, and every function here uses it.
"""

from __future__ import annotations

import os

# albumentations asks PyPI for a newer version on every import (every spawned worker too) unless told not to.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import albumentations as A
import cv2
import numpy as np
import pandas as pd
from albumentations.augmentations.crops.transforms import BaseCrop
from albumentations.core.transforms_interface import BasicTransform

from helpers.datasets.manifest import load_manifest, write_manifest
from helpers.forensics.ela import ela
from helpers.forensics.srm import srm
from helpers.imageio import ImageLoadError, load_mask, load_rgb, save_jpeg, save_png

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

JPEG_GRID: int = 16
"""Crop corners snap to multiples of this: the 16x16 macroblock of 4:2:0 JPEG (8x8 luminance blocks, 8x8
chrominance blocks on the half-resolution chroma planes). Off-grid crops raise ELA everywhere."""

STREAMS: tuple[str, ...] = ("rgb", "ela", "srm")
"""Inputs :func:`with_forensics` can compute."""

GEOMETRIC_STRENGTHS: tuple[str, ...] = ("mild", "strong")

Strength = Literal["mild", "strong"]
Seed = int | Sequence[int] | np.random.SeedSequence

# One place for every transform's parameters, so the pipelines, the gallery and the tests use the same ones.
_INTERP = {"interpolation": cv2.INTER_LINEAR, "mask_interpolation": cv2.INTER_NEAREST}
# Constant black borders, mask 0: never invent image content (reflected borders duplicate regions, which looks
# like copy-move to a detector). Black is plainly not part of the photo and has zero ELA and SRM response; its
# edge with the image does light up, in authentic and tampered images alike, so it carries no label.
_BORDER = {"border_mode": cv2.BORDER_CONSTANT, "fill": 0, "fill_mask": 0}

_GEOMETRIC_PARAMS: dict[str, dict[str, dict[str, Any]]] = {
    "mild": {
        "affine": {"scale": (0.9, 1.1), "translate_percent": (-0.05, 0.05), "rotate": (-10, 10), "shear": (0, 0)},
        "elastic": {"alpha": 20.0, "sigma": 6.0},
        "grid": {"num_steps": 5, "distort_limit": (-0.15, 0.15)},
        "optical": {"distort_limit": (-0.1, 0.1), "mode": "camera"},
    },
    "strong": {
        "affine": {"scale": (0.75, 1.25), "translate_percent": (-0.1, 0.1), "rotate": (-30, 30), "shear": (-8, 8)},
        "elastic": {"alpha": 60.0, "sigma": 6.0},
        "grid": {"num_steps": 5, "distort_limit": (-0.3, 0.3)},
        "optical": {"distort_limit": (-0.3, 0.3), "mode": "camera"},
    },
}
# Probabilities inside a pipeline: lossless permutations often, resampling warps rarely (mild) or more (strong).
_GEOMETRIC_P: dict[str, dict[str, float]] = {
    "mild": {"flip": 0.5, "transpose": 0.5, "rotate90": 0.5, "affine": 0.25, "distortion": 0.15},
    "strong": {"flip": 0.5, "transpose": 0.5, "rotate90": 0.5, "affine": 0.6, "distortion": 0.5},
}


# --------------------------------------------------------------------------------------------------------------
# Transforms
# --------------------------------------------------------------------------------------------------------------
class GridAlignedCrop(BaseCrop):
    """A crop whose top-left corner is a multiple of ``grid`` pixels: random (training) or central (evaluation).

    Why not ``A.RandomCrop``/``A.CenterCrop``: their corners fall anywhere, so the crop's 8x8 JPEG blocks no
    longer match the blocks of the last compression, and every forensic map computed on it changes
    (see :data:`JPEG_GRID`). The image must already be at least ``height`` x ``width`` (pad first, at the
    bottom and right, with ``A.PadIfNeeded(position="top_left")``).
    """

    class InitSchema(BaseCrop.InitSchema):
        height: int
        width: int
        grid: int
        centre: bool

    def __init__(self, height: int, width: int, grid: int = JPEG_GRID, centre: bool = False, p: float = 1.0):
        if min(height, width, grid) < 1:
            raise ValueError(f"height, width and grid must be positive, not {(height, width, grid)}")
        super().__init__(p=p)
        self.height = int(height)
        self.width = int(width)
        self.grid = int(grid)
        self.centre = bool(centre)

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        image_height, image_width = params["shape"][:2]
        if self.height > image_height or self.width > image_width:
            raise ValueError(
                f"crop {self.height}x{self.width} is larger than the image {image_height}x{image_width}; pad first"
            )
        steps_y = (image_height - self.height) // self.grid
        steps_x = (image_width - self.width) // self.grid
        if self.centre:
            index_y, index_x = steps_y // 2, steps_x // 2
        else:
            index_y, index_x = self.py_random.randint(0, steps_y), self.py_random.randint(0, steps_x)
        top, left = index_y * self.grid, index_x * self.grid
        return {"crop_coords": (left, top, left + self.width, top + self.height)}

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("height", "width", "grid", "centre", "p")


def grid_crop_around(
    rgb: np.ndarray, mask: np.ndarray | None, size: int = 256, grid: int = JPEG_GRID
) -> tuple[np.ndarray, np.ndarray | None]:
    """A ``size`` x ``size`` grid-aligned crop centred, as near as the grid allows, on the mask's tampered pixels.

    For figures: shows the edit at native resolution and on the JPEG grid, as the training crops see it. The
    image centre is used when there is no tampered pixel; images smaller than ``size`` are returned whole.
    """
    height, width = rgb.shape[:2]
    if mask is not None and np.asarray(mask).any():
        ys, xs = np.nonzero(mask)
        cy, cx = float(ys.mean()), float(xs.mean())
    else:
        cy, cx = height / 2.0, width / 2.0

    def start(centre: float, extent: int) -> int:
        if extent <= size:
            return 0
        best = int(round((centre - size / 2.0) / grid)) * grid
        return int(min(max(best, 0), ((extent - size) // grid) * grid))

    top, left = start(cy, height), start(cx, width)
    window = (slice(top, top + size), slice(left, left + size))
    return rgb[window].copy(), None if mask is None else np.asarray(mask)[window].copy()


def _check_strength(strength: str) -> None:
    if strength not in GEOMETRIC_STRENGTHS:
        raise ValueError(f"geometric strength must be one of {GEOMETRIC_STRENGTHS} or None, not {strength!r}")


def _geometric_factories(strength: Strength) -> dict[str, Callable[[float], BasicTransform]]:
    """Name -> factory(p) for every geometric transform at ``strength`` (the single source of parameters)."""
    _check_strength(strength)
    params = _GEOMETRIC_PARAMS[strength]
    return {
        "horizontal flip": lambda p: A.HorizontalFlip(p=p),
        "vertical flip": lambda p: A.VerticalFlip(p=p),
        "transpose": lambda p: A.Transpose(p=p),
        "rotate 90": lambda p: A.RandomRotate90(p=p),
        "affine": lambda p: A.Affine(**params["affine"], **_INTERP, **_BORDER, p=p),
        "elastic": lambda p: A.ElasticTransform(**params["elastic"], **_INTERP, **_BORDER, p=p),
        "grid distortion": lambda p: A.GridDistortion(**params["grid"], **_INTERP, **_BORDER, p=p),
        "optical distortion": lambda p: A.OpticalDistortion(**params["optical"], **_INTERP, **_BORDER, p=p),
    }


_DISTORTIONS = ("elastic", "grid distortion", "optical distortion")


def _photometric_factories() -> dict[str, Callable[[float], BasicTransform]]:
    # Moderate ranges: strong photometric changes rewrite the very error levels and residuals a detector reads.
    return {
        "brightness/contrast": lambda p: A.RandomBrightnessContrast(
            brightness_limit=(-0.15, 0.15), contrast_limit=(-0.15, 0.15), p=p
        ),
        "hue/saturation": lambda p: A.HueSaturationValue(
            hue_shift_limit=(-10, 10), sat_shift_limit=(-15, 15), val_shift_limit=(-10, 10), p=p
        ),
        "gamma": lambda p: A.RandomGamma(gamma_limit=(85, 115), p=p),
        "CLAHE": lambda p: A.CLAHE(clip_limit=(1.0, 2.0), tile_grid_size=(8, 8), p=p),
    }


_PHOTOMETRIC_P = {"brightness/contrast": 0.5, "hue/saturation": 0.3, "gamma": 0.3, "CLAHE": 0.1}


def geometric_transforms(strength: Strength = "mild") -> list[BasicTransform]:
    """Geometric transforms (applied jointly to image and mask, masks by nearest neighbour).

    Flips, transposition and quarter turns are lossless pixel permutations (on a crop whose side is a multiple
    of 16 they keep the JPEG grid too); the affine warp and one of the elastic, grid and optical distortions
    resample the image and low-pass its noise, so ``"mild"`` uses them rarely and gently, ``"strong"`` more
    often and further.
    """
    factories = _geometric_factories(strength)
    p = _GEOMETRIC_P[strength]
    return [
        factories["horizontal flip"](p["flip"]),
        factories["vertical flip"](p["flip"]),
        factories["transpose"](p["transpose"]),
        factories["rotate 90"](p["rotate90"]),
        factories["affine"](p["affine"]),
        A.OneOf([factories[name](1.0) for name in _DISTORTIONS], p=p["distortion"]),
    ]


def photometric_transforms() -> list[BasicTransform]:
    """Photometric transforms: brightness/contrast, hue/saturation, gamma, CLAHE.

    All are albumentations ``ImageOnlyTransform`` s, so albumentations applies them to the image and passes
    the mask through untouched; no extra code is needed to protect the mask.
    """
    return [factory(_PHOTOMETRIC_P[name]) for name, factory in _photometric_factories().items()]


def transform_gallery(strength: Strength = "strong") -> dict[str, tuple[str, A.Compose]]:
    """Every transform alone, always applied: ``{name: ("geometric" | "photometric", pipeline)}``.

    For figures and tests that look at one transform at a time with the pipelines' own parameters.
    """
    gallery: dict[str, tuple[str, A.Compose]] = {}
    for name, factory in _geometric_factories(strength).items():
        gallery[name] = ("geometric", A.Compose([factory(1.0)]))
    for name, factory in _photometric_factories().items():
        gallery[name] = ("photometric", A.Compose([factory(1.0)]))
    return gallery


def build_pipeline(
    *,
    crop: int | None = 256,
    resize: int | None = None,
    geometric: Strength | None = "mild",
    photometric: bool = True,
    centre: bool = False,
    seed: Seed | None = None,
) -> A.Compose:
    """One training (or evaluation) pipeline: size step, then geometry, then photometry.

    Size step, exactly one of (or neither, to keep the full image):

    * ``crop=N``: pad to at least N x N at the bottom/right (black, mask 0) and take an N x N crop at native
      resolution with its corner on the JPEG grid (:class:`GridAlignedCrop`); ``centre=True`` takes the
      central grid-aligned crop instead of a random one (validation and test);
    * ``resize=N``: resize to N x N (``INTER_AREA``, masks nearest). Shows the whole image but resamples the
      traces; see the module docstring.

    The size step comes first so the warps run on N x N pixels rather than on the full photo (several times
    faster on large images). ``geometric`` is ``"mild"``, ``"strong"`` or ``None``; ``photometric`` adds
    :func:`photometric_transforms`. ``seed`` makes the pipeline's draws reproducible (see :func:`reseed`).
    """
    if crop is not None and resize is not None:
        raise ValueError("give crop or resize, not both (pass crop=None to resize)")
    transforms: list[BasicTransform] = []
    if crop is not None:
        if crop < 1:
            raise ValueError(f"crop must be a positive size, not {crop!r}")
        transforms += [
            A.PadIfNeeded(min_height=crop, min_width=crop, position="top_left", **_BORDER),
            GridAlignedCrop(crop, crop, centre=centre),
        ]
    elif resize is not None:
        if resize < 1:
            raise ValueError(f"resize must be a positive size, not {resize!r}")
        transforms.append(
            A.Resize(resize, resize, interpolation=cv2.INTER_AREA, mask_interpolation=cv2.INTER_NEAREST)
        )
    if geometric is not None:
        transforms += geometric_transforms(geometric)
    if photometric:
        transforms += photometric_transforms()
    pipeline = A.Compose(transforms)
    reseed(pipeline, seed)
    return pipeline


def _seed_int(seed: Seed) -> int:
    sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    low, high = sequence.generate_state(2, dtype=np.uint32)
    return int(low) | (int(high) << 32)


def reseed(pipeline: A.Compose, seed: Seed | None) -> A.Compose:
    """Give every transform of ``pipeline`` one shared generator seeded from ``seed`` (``None``: fresh entropy).

    A shared generator makes successive draws independent (unlike ``A.Compose(seed=...)``, which seeds each
    transform alike, see the module docstring) while the whole pipeline stays reproducible. ``seed`` may be an
    int or a sequence such as ``[seed, epoch, index]``. Returns ``pipeline`` for chaining.
    """
    value = None if seed is None else _seed_int(seed)
    pipeline.set_random_state(np.random.default_rng(value), random.Random(value))
    return pipeline


def augment(
    rgb: np.ndarray, mask: np.ndarray | None, pipeline: A.Compose, *, seed: Seed | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply ``pipeline`` to an image and its mask; returns ``(uint8 (H, W, 3), bool (H, W) or None)``.

    ``mask`` is anything :func:`helpers.imageio.load_mask` returns or a 0/1 or 0/255 array; ``None`` (an
    authentic image without mask) transforms the image alone. ``seed`` reseeds the pipeline first
    (:func:`reseed`), which makes this one call reproducible whatever ran before.
    """
    if seed is not None:
        reseed(pipeline, seed)
    image = np.ascontiguousarray(rgb)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, not {image.dtype} {image.shape}")
    if mask is None:
        return pipeline(image=image)["image"], None
    if mask.shape[:2] != image.shape[:2]:
        raise ValueError(f"mask {mask.shape[:2]} and image {image.shape[:2]} differ in size")
    out = pipeline(image=image, mask=_binary(mask))
    return out["image"], out["mask"].astype(bool)


def _binary(mask: np.ndarray) -> np.ndarray:
    """A 0/1 uint8 copy of a bool, 0/1, 0..255 or [0, 1] float mask (albumentations and OpenCV reject bool)."""
    values = np.asarray(mask)
    if values.dtype == np.bool_:
        return values.astype(np.uint8)
    if np.issubdtype(values.dtype, np.integer):
        return (values > (127 if values.size and values.max() > 1 else 0)).astype(np.uint8)
    return (values > 0.5).astype(np.uint8)


def with_forensics(
    rgb: np.ndarray,
    streams: Sequence[str] = ("rgb", "ela", "srm"),
    ela_quality: int = 90,
    *,
    srm_bank: str = "zhou3",
) -> dict[str, np.ndarray]:
    """The model inputs of an (augmented) image: ``{"rgb": uint8, "ela": uint8 raw, "srm": float32}``.

    Call it on the augmented image, never augment its output: a hue shift or a resize changes the error
    levels and noise residuals themselves, so an ELA map augmented like a photograph is a map no real image
    has. ELA is :func:`helpers.forensics.ela.ela` in ``"raw"`` mode at ``ela_quality``; SRM is
    :func:`helpers.forensics.srm.srm` with ``srm_bank`` and its default truncation.
    """
    unknown = [s for s in streams if s not in STREAMS]
    if unknown or not streams:
        raise ValueError(f"streams must be a non-empty selection of {STREAMS}, not {tuple(streams)!r}")
    out: dict[str, np.ndarray] = {}
    for stream in streams:
        if stream == "rgb":
            out["rgb"] = rgb
        elif stream == "ela":
            out["ela"] = ela(rgb, ela_quality, mode="raw")
        else:
            out["srm"] = srm(rgb, srm_bank)  # type: ignore[arg-type]
    return out


def clean_mask(mask: np.ndarray, sigma: float = 1.5, *, min_contrast: float = 0.05) -> np.ndarray:
    """Clean a noisy or soft mask: Gaussian blur, then Otsu's threshold; returns a ``bool`` mask.

    Why: masks of real datasets come as JPEGs with ringing, anti-aliased edges, speckle from the difference of
    two images (CASIA-style) or isolated pixels. Blurring averages speckle away and Otsu picks the threshold
    that best separates the two populations of the blurred values, instead of a fixed 127 that suits one
    dataset only. Accepts ``bool``, 0/1 or 0..255 integers and floats in [0, 1]. A constant mask (all
    authentic, all tampered) or one whose blurred values span less than ``min_contrast`` (of the full range)
    has no two populations to separate: it is thresholded at the middle instead.
    """
    values = np.asarray(mask)
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[:, :, 0]
    if values.ndim != 2:
        raise ValueError(f"expected a single-channel (H, W) mask, not shape {values.shape}")
    if values.size == 0:
        raise ValueError("cannot clean an empty mask")
    if values.dtype == np.bool_:
        scaled = values.astype(np.float32)
    elif np.issubdtype(values.dtype, np.integer):
        scaled = values.astype(np.float32) / (255.0 if values.max() > 1 else 1.0)
    else:
        scaled = np.clip(np.nan_to_num(values.astype(np.float32)), 0.0, 1.0)
    blurred = cv2.GaussianBlur(scaled, (0, 0), sigmaX=float(sigma)) if sigma > 0 else scaled
    low, high = float(blurred.min()), float(blurred.max())
    if high - low < min_contrast:
        return blurred > 0.5
    from skimage.filters import threshold_otsu

    return blurred > float(threshold_otsu(blurred))


# --------------------------------------------------------------------------------------------------------------
# The ELA pitfall
# --------------------------------------------------------------------------------------------------------------
@dataclass
class ElaPitfall:
    """ELA of an augmented image next to the augmented ELA of the original, for one deterministic change."""

    change: str
    augmented: np.ndarray
    """The image after the change (uint8 RGB)."""
    ela_of_augmented: np.ndarray
    """Right: ELA computed from the augmented image (uint8, raw)."""
    augmented_ela: np.ndarray
    """Wrong: the original's ELA map put through the same change as if it were a photo (uint8)."""

    @property
    def difference(self) -> np.ndarray:
        return cv2.absdiff(self.ela_of_augmented, self.augmented_ela)

    @property
    def mean_abs_difference(self) -> float:
        return float(self.difference.mean())

    @property
    def relative_difference(self) -> float:
        """Mean absolute difference over the mean of the right map (0: identical; 1: as large as the signal)."""
        return self.mean_abs_difference / max(float(self.ela_of_augmented.mean()), 1e-6)


def ela_pitfall(
    rgb: np.ndarray, change: Literal["hue", "resize"] = "hue", *, quality: int = 90, amount: float | None = None
) -> ElaPitfall:
    """Compare the right order (augment, then ELA) with the wrong one (ELA, then augment) for one change.

    ``change="hue"`` shifts the hue by ``amount`` degrees-of-OpenCV (default 15); ``"resize"`` scales by
    ``amount`` (default 0.75). Both are deterministic, so the two orders see exactly the same change.
    """
    if change == "hue":
        shift = 15.0 if amount is None else float(amount)
        transform = A.HueSaturationValue(
            hue_shift_limit=(shift, shift), sat_shift_limit=(0, 0), val_shift_limit=(0, 0), p=1.0
        )
    elif change == "resize":
        factor = 0.75 if amount is None else float(amount)
        height, width = rgb.shape[:2]
        size = (max(8, round(height * factor)), max(8, round(width * factor)))
        transform = A.Resize(*size, interpolation=cv2.INTER_AREA)
    else:
        raise ValueError(f"change must be 'hue' or 'resize', not {change!r}")
    pipeline = reseed(A.Compose([transform]), 0)
    augmented = pipeline(image=np.ascontiguousarray(rgb))["image"]
    original_ela = ela(rgb, quality)
    augmented_ela = reseed(pipeline, 0)(image=original_ela)["image"]
    return ElaPitfall(change, augmented, ela(augmented, quality), augmented_ela)


def grid_alignment_ela(
    paths: Sequence[str | os.PathLike[str]],
    *,
    size: int = 128,
    offsets: Sequence[tuple[int, int]] = ((0, 0), (16, 16), (8, 8), (0, 8), (4, 4), (3, 5), (1, 0)),
    quality: int = 90,
) -> pd.DataFrame:
    """Mean ELA of ``size`` x ``size`` crops taken at several ``(dy, dx)`` offsets from each image's corner.

    The evidence behind :class:`GridAlignedCrop`: a JPEG's 8x8 blocks (16x16 with 4:2:0 chroma) start at its
    top-left corner, so only crops at multiples of 16 keep them; crops elsewhere re-block the image and raise
    its error level everywhere. Returns one row per image and offset (``offset``, ``on_grid``, ``mean_ela``,
    and ``relative``: the mean ELA over that image's (0, 0) crop, when present). Images too small for every
    offset are left out; unreadable ones are reported with a warning.
    """
    reach = size + max(max(dy, dx) for dy, dx in offsets)
    rows = []
    for path in paths:
        try:
            rgb = load_rgb(path)
        except ImageLoadError as exc:
            warnings.warn(f"grid_alignment_ela: skipped {exc}", stacklevel=2)
            continue
        if min(rgb.shape[:2]) < reach:
            continue
        for dy, dx in offsets:
            value = float(ela(rgb[dy : dy + size, dx : dx + size], quality).mean())
            rows.append({"image": str(path), "offset": f"({dy}, {dx})",
                         "on_grid": dy % JPEG_GRID == 0 and dx % JPEG_GRID == 0, "mean_ela": value})
    frame = pd.DataFrame(rows, columns=["image", "offset", "on_grid", "mean_ela"])
    corner = frame[frame["offset"] == "(0, 0)"].set_index("image")["mean_ela"]
    frame["relative"] = frame["mean_ela"] / frame["image"].map(corner).clip(lower=1e-6)
    return frame


# --------------------------------------------------------------------------------------------------------------
# The leakage demonstration
# --------------------------------------------------------------------------------------------------------------
@dataclass
class LeakageResult:
    """1-NN accuracy on held-out images, when the split comes after augmentation and when it comes before."""

    augment_then_split: float
    """Variants made first, then a random image-level split (the seed notebook's order)."""
    split_then_augment: float
    """Split by source group first, only training images augmented, held-out originals scored."""
    chance: float
    """Share of the majority label among the held-out images of the correct split."""
    sibling_neighbour_share: float
    """In the wrong order: share of held-out items whose nearest training item is a variant of the same image."""
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_THUMB = 64
_FEATURE_SIDE = 16


def _dihedral_mean(image: np.ndarray) -> np.ndarray:
    """Average over the 8 flips/quarter turns: a model trained with them learns to be invariant to them."""
    views = [np.rot90(image, k) for k in range(4)]
    views += [v[:, ::-1] for v in views]
    return np.mean(views, axis=0)


def _features(rgb: np.ndarray, quality: int) -> np.ndarray:
    small = cv2.resize(rgb, (_FEATURE_SIDE, _FEATURE_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)
    error = cv2.resize(ela(rgb, quality), (_FEATURE_SIDE, _FEATURE_SIDE), interpolation=cv2.INTER_AREA)
    # ELA / 16: raw error levels are mostly below 16, so both halves of the vector get a similar range.
    colour = _dihedral_mean(small).ravel() / 255.0
    return np.concatenate([colour, _dihedral_mean(error.astype(np.float32)).ravel() / 16.0])


def _nearest(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Index of each test row's nearest training row (Euclidean)."""
    distances = (test**2).sum(1)[:, None] - 2.0 * test @ train.T + (train**2).sum(1)[None, :]
    return np.argmin(distances, axis=1)


def leakage_demo(
    manifest: pd.DataFrame,
    *,
    variants: int = 4,
    holdout: float = 0.3,
    geometric: Strength | None = "mild",
    photometric: bool = True,
    ela_quality: int = 90,
    seed: int = 0,
) -> LeakageResult:
    """Measure how much augmenting before splitting inflates a validation score.

    Every image becomes a 64x64 thumbnail with ``variants`` augmented copies (``geometric``/``photometric`` as
    in training); a feature vector is its 16x16 RGB and ELA maps averaged over flips and quarter turns. A
    1-nearest-neighbour classifier of the label is scored on held-out items twice:

    * **augment, then split**: originals and variants pooled, ``holdout`` of the pool drawn at random. A
      held-out variant usually has a sibling (same source image, same label) in training, and 1-NN finds it;
    * **split, then augment**: :func:`helpers.datasets.splits.group_split` by source group first, variants of
      the training images only, scored on the untouched held-out originals.

    The gap between the two is the leak. Thumbnails keep it fast (a couple of seconds for 200 images); the
    point is the order of operations, not the classifier.
    """
    import time

    from helpers.datasets.splits import group_split

    started = time.perf_counter()
    if variants < 1:
        raise ValueError(f"variants must be at least 1, not {variants!r}")
    frame = manifest.reset_index(drop=True)
    paths = frame["image_path"] if "image_path" in frame else frame["image"]
    pipeline = build_pipeline(crop=None, geometric=geometric, photometric=photometric)
    originals: list[np.ndarray] = []
    copies: list[list[np.ndarray]] = []
    keep: list[int] = []
    for row, path in enumerate(paths):
        try:
            rgb = load_rgb(path)
        except ImageLoadError as exc:
            warnings.warn(f"leakage_demo: skipped {exc}", stacklevel=2)
            continue
        thumb = cv2.resize(rgb, (_THUMB, _THUMB), interpolation=cv2.INTER_AREA)
        originals.append(_features(thumb, ela_quality))
        copies.append(
            [_features(augment(thumb, None, pipeline, seed=[seed, row, j])[0], ela_quality) for j in range(variants)]
        )
        keep.append(row)
    frame = frame.iloc[keep].reset_index(drop=True)
    labels = frame["label"].to_numpy(int)
    if len(frame) < 4 or len(np.unique(labels)) < 2:
        raise ValueError("leakage_demo needs at least 4 readable images of both labels")
    base = np.stack(originals)
    variant_features = np.stack([f for per_image in copies for f in per_image])
    everything = np.concatenate([base, variant_features])
    mean, std = everything.mean(0), everything.std(0) + 1e-6

    def scaled(x: np.ndarray) -> np.ndarray:
        return (x - mean) / std

    # Wrong order: pool originals and variants, split the pool at random.
    source = np.concatenate([np.arange(len(frame)), np.repeat(np.arange(len(frame)), variants)])
    pool = scaled(everything)
    order = np.random.default_rng([seed, 1]).permutation(len(pool))
    cut = int(round(len(pool) * holdout))
    test_items, train_items = order[:cut], order[cut:]
    nearest = train_items[_nearest(pool[train_items], pool[test_items])]
    after = float((labels[source[nearest]] == labels[source[test_items]]).mean())
    siblings = float((source[nearest] == source[test_items]).mean())

    # Right order: split by group, augment the training side only.
    split = group_split(frame, val=0.0, test=holdout, seed=seed)["split"].to_numpy()
    train_rows, test_rows = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    train_x = np.concatenate([base[train_rows], np.stack([copies[r][j] for r in train_rows for j in range(variants)])])
    train_y = np.concatenate([labels[train_rows], np.repeat(labels[train_rows], variants)])
    predicted = train_y[_nearest(scaled(train_x), scaled(base[test_rows]))]
    before = float((predicted == labels[test_rows]).mean())
    chance = float(max(np.mean(labels[test_rows] == 0), np.mean(labels[test_rows] == 1)))
    counts = {
        "images": len(frame),
        "variants_per_image": variants,
        "after_train_items": int(len(train_items)),
        "after_held_out_items": int(len(test_items)),
        "before_train_items": int(len(train_x)),
        "before_held_out_images": int(len(test_rows)),
    }
    return LeakageResult(after, before, chance, siblings, counts, round(time.perf_counter() - started, 2))


# --------------------------------------------------------------------------------------------------------------
# Offline augmentation
# --------------------------------------------------------------------------------------------------------------
_FALLBACK_QUALITY = 95
_REPLACED_COLUMNS = ("image", "mask", "image_path", "mask_path")


def _source_quality(path: str, quality: int | str) -> int:
    if quality != "source":
        return int(quality)
    from helpers.forensics.jpeg import estimate_jpeg_quality

    try:
        estimated = estimate_jpeg_quality(path).quality
    except ImageLoadError:
        estimated = None
    return int(estimated) if estimated is not None else _FALLBACK_QUALITY


def _offline_task(task: dict[str, Any]) -> dict[str, Any]:
    """Make and write the variants of one manifest row (module level, so spawned workers can run it)."""
    row: dict[str, Any] = task["row"]
    out = Path(task["out_dir"])
    try:
        rgb = load_rgb(row["image_path"])
        mask = load_mask(row["mask_path"], size=(rgb.shape[1], rgb.shape[0])) if row["mask_path"] else None
        quality = _source_quality(row["image_path"], task["quality"])
    except ImageLoadError as exc:
        return {"error": str(exc)}
    pipeline = build_pipeline(**task["pipeline"])
    stem = Path(row["image_path"]).stem
    rows = []
    for variant in range(task["k"]):
        image, new_mask = augment(rgb, mask, pipeline, seed=[task["seed"], task["index"], variant])
        name = f"{task['index']:05d}_{stem}_v{variant}"
        image_path = out / "images" / f"{name}.jpg"
        save_jpeg(image_path, image, quality)
        mask_path = ""
        if new_mask is not None:
            mask_path = str(out / "masks" / f"{name}.png")
            save_png(mask_path, new_mask)
        entry = {key: value for key, value in row.items() if key not in _REPLACED_COLUMNS}
        entry.update(
            image=str(image_path),
            mask=mask_path,
            image_path=str(image_path),
            mask_path=mask_path,
            augmented_from=os.path.relpath(row["image_path"], out),
            variant=variant,
            width=int(image.shape[1]),
            height=int(image.shape[0]),
            jpeg_quality=quality,
            mask_fraction=round(float(new_mask.mean()), 5) if new_mask is not None else 0.0,
        )
        rows.append(entry)
    return {"rows": rows}


def augment_offline(
    manifest: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    k: int,
    *,
    crop: int | None = None,
    resize: int | None = None,
    geometric: Strength | None = "mild",
    photometric: bool = True,
    quality: int | Literal["source"] = "source",
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Write ``k`` augmented variants of every training image to ``out_dir`` and return their manifest.

    Offline augmentation trades disk for speed: a fixed set of variants, made once, for loaders that cannot
    augment on the fly. Online augmentation (:class:`helpers.pipeline.ForgeryBatches`) sees new variants every
    epoch and is the default of the workbook.

    * Only training rows: with a ``split`` column, any row not in ``"train"`` raises ``ValueError`` (augment
      after splitting, never before). Without one, the caller vouches that the rows are training data.
    * Output: ``out_dir/images/NNNNN_<stem>_vJ.jpg`` and ``out_dir/masks/....png`` (single-channel, 255 =
      tampered), and ``out_dir/manifest.csv`` written by :func:`helpers.datasets.manifest.write_manifest`.
      Each variant keeps its source's columns (``label``, ``group``, ``kind``, ``split``, ...), so group-aware
      code keeps variants with their source; ``augmented_from`` (the source image, relative to ``out_dir``),
      ``variant``, ``width``, ``height``, ``mask_fraction`` and ``jpeg_quality`` are added or updated.
    * JPEG quality: ``"source"`` (default) re-saves each variant at the quality estimated from its source's
      quantisation tables (95 for non-JPEG sources), so the compression levels of the training set, which ELA
      reads, keep their distribution; an int fixes one quality for all.
    * Size: ``crop``/``resize`` as in :func:`build_pipeline`; by default the full image is kept so that the
      online loader can still crop. Variant ``j`` of row ``i`` uses the seed ``[seed, i, j]``: the output is
      the same for any ``workers`` (spawned processes via :func:`helpers.parallel.process_map`).
    * Unreadable images (or masks) are reported with a warning naming the file and skipped.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k!r}")
    if "split" in manifest.columns:
        outside = int((manifest["split"].astype(str) != "train").sum())
        if outside:
            raise ValueError(
                f"{outside} of {len(manifest)} rows are not in the training split; augment only the training "
                "split, after splitting (pass manifest[manifest['split'] == 'train'])"
            )
    build_pipeline(crop=crop, resize=resize, geometric=geometric, photometric=photometric)  # fail early
    if quality != "source" and not (isinstance(quality, int) and 1 <= quality <= 100):
        raise ValueError(f"quality must be 'source' or an integer 1..100, not {quality!r}")
    out = Path(out_dir).resolve()
    frame = manifest.reset_index(drop=True).copy()
    if "image_path" not in frame:
        frame["image_path"] = frame["image"]
    if "mask_path" not in frame:
        frame["mask_path"] = frame["mask"] if "mask" in frame else ""
    frame["mask_path"] = frame["mask_path"].fillna("").astype(str)
    records = frame.to_dict("records")
    pipeline_kwargs = {"crop": crop, "resize": resize, "geometric": geometric, "photometric": photometric}
    tasks = [
        {"row": record, "index": index, "k": k, "seed": seed, "out_dir": str(out), "quality": quality,
         "pipeline": pipeline_kwargs}
        for index, record in enumerate(records)
    ]
    from helpers.parallel import process_map

    rows: list[dict[str, Any]] = []
    for result in process_map(_offline_task, tasks, workers=workers, desc="augmenting", unit="img",
                              progress=progress):
        if "error" in result:
            warnings.warn(f"augment_offline: skipped unreadable {result['error']}", stacklevel=2)
        else:
            rows.extend(result["rows"])
    if not rows:
        raise ValueError("no readable training image to augment")
    result_frame = pd.DataFrame(rows)
    result_frame["label"] = result_frame["label"].astype(int)
    write_manifest(result_frame, out / "manifest.csv")
    return load_manifest(out / "manifest.csv")
