"""Transforms for forgery detection: albumentations pipelines that respect forensic traces and masks (notebook 03).

**Geometry moves image and mask together; photometry touches the image only.** Geometric transforms (flips,
transposition, quarter turns, affine warps, elastic/grid/optical distortions) are albumentations *dual*
transforms: one call moves the image and its mask with the same parameters. Masks are resampled with
nearest-neighbour interpolation (``mask_interpolation=cv2.INTER_NEAREST``) so they stay binary; a linear mask
would invent half-tampered pixels. Photometric transforms (brightness/contrast, hue/saturation, gamma, CLAHE)
are albumentations *image-only* transforms: albumentations passes the mask through them unchanged, because a
brighter photo has the same tampered region.

**Forensic inputs are computed after augmentation, from the augmented image** (:func:`with_forensics`). ELA and
SRM maps are not photographs: a hue shift or a resize changes the error levels and the noise residuals
themselves, so augmenting a precomputed ELA map as if it were a photo gives a map that no real image has
(:func:`helpers.augment.demos.ela_pitfall` measures the difference).

Crop or resize. A model with a fixed input must either **crop** at native resolution or **resize**. Resizing
resamples every pixel: it smears the 8x8 JPEG blocking and the sensor noise that ELA and SRM read, and shrinks
small tampered regions to a few pixels; it does show the whole image. Cropping keeps the traces intact but sees
only part of the image (a tampered region may lie outside the crop; tile at test time). The workbook crops.
Crops here sit **on the JPEG grid**: their corner is a multiple of :data:`JPEG_GRID`
(:data:`helpers.config.JPEG_GRID`, 16 pixels, the 4:2:0 macroblock), and small images are padded at the bottom
and right only. A crop off that grid re-blocks the image, and ELA of such a crop is about 1.4 to 2.5 times
higher everywhere (:func:`helpers.augment.demos.grid_alignment_ela`, measured on the embedded set in notebook
03), which drowns the contrast ELA exists to show. For the same reason the lossless transforms (flips,
transposition, quarter turns: pixel permutations) are applied often and the resampling ones (affine,
distortions) rarely in the ``"mild"`` setting.

Determinism. ``A.Compose(..., seed=s)`` in albumentations 2.0.x gives *every* transform its own generator
seeded with the same ``s``; transforms that draw alike then decide alike (``HorizontalFlip`` and
``VerticalFlip`` with ``p=0.5`` are applied together or not at all, every time). :func:`reseed` gives all
transforms of a pipeline one shared generator instead, and every function here uses it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, Literal

import albumentations as A
import cv2
import numpy as np
from albumentations.augmentations.crops.transforms import BaseCrop
from albumentations.core.transforms_interface import BasicTransform
from skimage.filters import threshold_otsu

from helpers.config import ELA_QUALITY, JPEG_GRID
from helpers.forensics.ela import ela
from helpers.forensics.srm import srm

__all__ = [
    "JPEG_GRID",
    "STREAMS",
    "GEOMETRIC_STRENGTHS",
    "Strength",
    "Seed",
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
]

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
    ela_quality: int = ELA_QUALITY,
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
    return blurred > float(threshold_otsu(blurred))
