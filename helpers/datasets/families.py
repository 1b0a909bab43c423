"""Manipulation families for online training forgeries (notebooks 01 and 06).

The fixed embedded set (:mod:`helpers.datasets.synthetic`) has three edit kinds and a few hundred samples: too
little and too uniform for a model to learn what an edit *is* rather than what those samples look like. The
methods that learned from synthetic forgeries drew from many families (ManTraNet's 385 manipulation types,
CAT-Net's compression chains, PSCC-Net's splices with blurred edges). Here each family is one small function
with a difficulty range, and :func:`make_forgery` draws them evenly:

*Local edits* (the mask marks the edited region):

* ``splice``: a shaped region of another photo, compressed at its own quality, optionally scaled, rotated and
  feathered;
* ``copy-move``: a region of the same photo moved, optionally rotated or scaled;
* ``removal``: a region erased and inpainted;
* ``resample``: a region re-scaled in place by 0.5-2 with nearest, linear, cubic or area interpolation;
* ``blur``/``sharpen``: Gaussian blur (sigma 0.6-2.5) or unsharp masking of a region;
* ``noise``/``denoise``: added Gaussian noise (sigma 2-10) or median/bilateral smoothing of a region;
* ``colour``: gamma, contrast or a hue/saturation change of a region.

*Compression history* (applied to every sample, authentic or tampered, so no global trait gives the label away):
the source is first saved as by a camera (JPEG quality 60-100, or left uncompressed), and after the edit the
sample ends as one of ``single`` (one JPEG, quality 50-100), ``double`` (two aligned JPEGs of different
qualities), ``shifted`` (the grid moved by 1-7 pixels between two JPEGs, as after a crop), ``resized``
(rescaled by 0.6-0.95, then JPEG) or ``png`` (no final compression).

Each sample draws only from the generator it is given, so a seed reproduces it exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from helpers.datasets.synthetic import SynthConfig, copy_move, random_shape, remove, splice

__all__ = [
    "LOCAL_FAMILIES",
    "COMPRESSIONS",
    "Forgery",
    "FamilyConfig",
    "jpeg",
    "make_forgery",
]

LOCAL_FAMILIES: tuple[str, ...] = (
    "splice", "copy-move", "removal", "resample", "blur", "sharpen", "noise", "denoise", "colour",
)
COMPRESSIONS: tuple[str, ...] = ("single", "double", "shifted", "resized", "png")


@dataclass(frozen=True)
class FamilyConfig:
    """Sampling weights and difficulty ranges of online forgeries."""

    authentic_fraction: float = 0.25
    families: tuple[str, ...] = LOCAL_FAMILIES
    family_weights: tuple[float, ...] | None = None
    """Relative weights of ``families`` (``None``: the three classic edits twice as often as the others)."""
    compressions: tuple[str, ...] = COMPRESSIONS
    compression_weights: tuple[float, ...] = (0.3, 0.25, 0.15, 0.15, 0.15)
    camera_quality: tuple[int, int] = (60, 100)
    camera_jpeg_probability: float = 0.85
    final_quality: tuple[int, int] = (50, 100)
    region_fraction: tuple[float, float] = (0.02, 0.25)
    edit: SynthConfig = field(default_factory=lambda: SynthConfig(region_fraction=(0.03, 0.25)))

    def __post_init__(self) -> None:
        unknown = set(self.families) - set(LOCAL_FAMILIES)
        if unknown or not self.families:
            raise ValueError(f"families must be a non-empty subset of {LOCAL_FAMILIES}, got {self.families}")
        unknown = set(self.compressions) - set(COMPRESSIONS)
        if unknown or not self.compressions or len(self.compression_weights) != len(self.compressions):
            raise ValueError(f"compressions must be a non-empty subset of {COMPRESSIONS} with one weight each")
        if not 0.0 <= self.authentic_fraction <= 1.0:
            raise ValueError(f"authentic_fraction must be in [0, 1], got {self.authentic_fraction}")

    def weights(self) -> np.ndarray:
        if self.family_weights is not None:
            weights = np.asarray(self.family_weights, dtype=float)
        else:
            weights = np.array([2.0 if f in ("splice", "copy-move", "removal") else 1.0 for f in self.families])
        if weights.shape != (len(self.families),) or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError("family_weights must give one non-negative weight per family, not all zero")
        return weights / weights.sum()


@dataclass
class Forgery:
    """One online sample: pixels, exact mask (all False when authentic) and what was done."""

    image: np.ndarray
    mask: np.ndarray
    family: str
    compression: str
    details: dict = field(default_factory=dict)

    @property
    def label(self) -> int:
        return int(self.family != "authentic")


# --------------------------------------------------------------------------------------------------------------
# Compression
# --------------------------------------------------------------------------------------------------------------
def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """One in-memory JPEG round trip through OpenCV's libjpeg (fast, and it releases the GIL)."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB array
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _quality(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def _other_quality(rng: np.random.Generator, bounds: tuple[int, int], avoid: int, gap: int = 5) -> int:
    for _ in range(20):
        quality = _quality(rng, bounds)
        if abs(quality - avoid) >= gap:
            return quality
    return bounds[0] if avoid - bounds[0] > bounds[1] - avoid else bounds[1]


# --------------------------------------------------------------------------------------------------------------
# Local edits beyond the classic three
# --------------------------------------------------------------------------------------------------------------
def _region(rng: np.random.Generator, height: int, width: int, fraction: tuple[float, float]) -> np.ndarray:
    area = rng.uniform(*fraction) * height * width / 0.7
    aspect = math.exp(rng.uniform(math.log(0.5), math.log(2.0)))
    box_h = int(np.clip(round(math.sqrt(area * aspect)), 12, int(height * 0.8)))
    box_w = int(np.clip(round(math.sqrt(area / aspect)), 12, int(width * 0.8)))
    top = int(rng.integers(0, height - box_h + 1))
    left = int(rng.integers(0, width - box_w + 1))
    box, _ = random_shape(rng, box_h, box_w)
    region = np.zeros((height, width), bool)
    region[top : top + box_h, left : left + box_w] = box
    return region


def _paste(host: np.ndarray, content: np.ndarray, region: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Blend ``content`` into ``host`` over ``region`` with an optionally feathered edge; mask = weight >= 0.5.

    An edit that leaves most of its region's pixels as they were (blurring a flat sky) is no edit a detector
    could see: then the host comes back unchanged with an empty mask, and the sample counts as authentic.
    """
    alpha = region.astype(np.float32)
    if rng.random() < 0.5:
        sigma = float(rng.uniform(0.8, 2.5))
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)
    alpha[alpha < 1.0 / 255.0] = 0.0
    out = host.astype(np.float32) * (1.0 - alpha[..., None]) + content.astype(np.float32) * alpha[..., None]
    image = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    mask = alpha >= 0.5
    changed = np.any(image != host, axis=-1)
    if not mask.any() or changed[mask].mean() < 0.3:
        return host, np.zeros_like(mask)
    return image, mask


_INTERPOLATIONS = {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC,
                   "area": cv2.INTER_AREA}


def _resample(host: np.ndarray, region: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    height, width = host.shape[:2]
    factor = float(np.exp(rng.uniform(math.log(0.5), math.log(2.0))))
    if abs(factor - 1.0) < 0.08:
        factor = 1.25
    name = str(rng.choice(list(_INTERPOLATIONS)))
    ys, xs = np.nonzero(region)
    centre = (float(xs.mean()), float(ys.mean()))
    matrix = cv2.getRotationMatrix2D(centre, float(rng.uniform(-5, 5)), factor)
    content = cv2.warpAffine(host, matrix, (width, height), flags=_INTERPOLATIONS[name],
                             borderMode=cv2.BORDER_REFLECT_101)
    return content, {"scale": round(factor, 3), "interpolation": name}


def _filtered(host: np.ndarray, family: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    if family == "blur":
        sigma = float(rng.uniform(0.6, 2.5))
        return cv2.GaussianBlur(host, (0, 0), sigmaX=sigma), {"sigma": round(sigma, 2)}
    if family == "sharpen":
        sigma, amount = float(rng.uniform(0.8, 2.0)), float(rng.uniform(0.6, 2.0))
        blurred = cv2.GaussianBlur(host, (0, 0), sigmaX=sigma).astype(np.float32)
        sharp = host.astype(np.float32) * (1 + amount) - blurred * amount
        return np.clip(np.rint(sharp), 0, 255).astype(np.uint8), {"sigma": round(sigma, 2), "amount": round(amount, 2)}
    if family == "noise":
        sigma = float(rng.uniform(2.0, 10.0))
        noisy = host.astype(np.float32) + rng.normal(0.0, sigma, host.shape).astype(np.float32)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8), {"sigma": round(sigma, 2)}
    if family == "denoise":
        if rng.random() < 0.5:
            size = int(rng.choice([3, 5]))
            return cv2.medianBlur(host, size), {"filter": f"median {size}"}
        sigma = float(rng.uniform(20, 60))
        return cv2.bilateralFilter(host, 7, sigma, 5), {"filter": f"bilateral {sigma:.0f}"}
    if family == "colour":
        choice = str(rng.choice(["gamma", "contrast", "hue"]))
        values = host.astype(np.float32) / 255.0
        if choice == "gamma":
            gamma = float(np.exp(rng.uniform(math.log(0.6), math.log(1.6))))
            out = np.power(values, gamma)
            detail = {"gamma": round(gamma, 3)}
        elif choice == "contrast":
            gain, bias = float(rng.uniform(0.7, 1.4)), float(rng.uniform(-0.1, 0.1))
            out = (values - 0.5) * gain + 0.5 + bias
            detail = {"gain": round(gain, 3), "bias": round(bias, 3)}
        else:
            hsv = cv2.cvtColor(host, cv2.COLOR_RGB2HSV).astype(np.float32)
            hsv[..., 0] = (hsv[..., 0] + float(rng.uniform(5, 25)) * rng.choice([-1, 1])) % 180
            hsv[..., 1] = np.clip(hsv[..., 1] * float(rng.uniform(0.7, 1.4)), 0, 255)
            out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32) / 255.0
            detail = {"hue": True}
        return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8), {"change": choice, **detail}
    raise ValueError(f"unknown filter family {family!r}")


def local_edit(
    host: np.ndarray, family: str, rng: np.random.Generator, *, donor: np.ndarray | None = None,
    config: FamilyConfig = FamilyConfig(),
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Apply one local edit of ``family`` to ``host``; returns image, exact mask and the edit's parameters."""
    edit = config.edit
    if family == "splice":
        if donor is None:
            raise ValueError("a splice needs a donor photo")
        return splice(host, donor, rng, edit)
    if family == "copy-move":
        return copy_move(host, rng, edit)
    if family == "removal":
        return remove(host, rng, edit)
    height, width = host.shape[:2]
    region = _region(rng, height, width, config.region_fraction)
    if family == "resample":
        content, details = _resample(host, region, rng)
    else:
        content, details = _filtered(host, family, rng)
    image, mask = _paste(host, content, region, rng)
    return image, mask, details


# --------------------------------------------------------------------------------------------------------------
# One sample
# --------------------------------------------------------------------------------------------------------------
def _crop(rng: np.random.Generator, photo: np.ndarray, side: int) -> np.ndarray:
    """A ``side`` x ``side`` crop (the photo is upscaled first when smaller), optionally mirrored and downscaled."""
    height, width = photo.shape[:2]
    if min(height, width) < side:
        factor = side / min(height, width)
        photo = cv2.resize(photo, (math.ceil(width * factor), math.ceil(height * factor)), interpolation=cv2.INTER_CUBIC)
        height, width = photo.shape[:2]
    # Downscaling a larger window varies the scale of content and noise between samples of one photo.
    scale = float(rng.uniform(1.0, min(2.0, min(height, width) / side)))
    window = min(int(side * scale), height, width)
    top = int(rng.integers(0, height - window + 1))
    left = int(rng.integers(0, width - window + 1))
    crop = photo[top : top + window, left : left + window]
    if window != side:
        crop = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


def make_forgery(
    rng: np.random.Generator,
    photos: Sequence[np.ndarray] | Callable[[int], np.ndarray],
    size: int,
    config: FamilyConfig = FamilyConfig(),
    *,
    photo_count: int | None = None,
) -> Forgery:
    """One random sample of ``size`` x ``size`` pixels drawn from ``photos`` (a list, or a loader by index).

    The label is drawn first (``config.authentic_fraction``), then the family, the source photo (and a donor
    for splices), the camera compression, the edit and the final compression chain.
    """
    count = photo_count if photo_count is not None else len(photos)  # type: ignore[arg-type]
    if count < 1:
        raise ValueError("make_forgery needs at least one source photo")
    load = photos if callable(photos) else (lambda index: photos[index])  # type: ignore[index]
    family = "authentic"
    if rng.random() >= config.authentic_fraction:
        family = str(config.families[int(rng.choice(len(config.families), p=config.weights()))])
    compression = str(config.compressions[int(rng.choice(len(config.compressions),
                                                          p=np.asarray(config.compression_weights) / sum(config.compression_weights)))])
    # Work on a margin so that a grid shift or a resize still leaves a full ``size`` sample.
    resize_factor = float(rng.uniform(0.6, 0.95)) if compression == "resized" else 1.0
    work = int(math.ceil(size / resize_factor)) + (8 if compression == "shifted" else 0)
    host_index = int(rng.integers(count))
    host = _crop(rng, load(host_index), work)
    camera = None
    if rng.random() < config.camera_jpeg_probability:
        camera = _quality(rng, config.camera_quality)
        host = jpeg(host, camera)
    details: dict = {"photo": host_index, "camera_quality": camera}
    mask = np.zeros(host.shape[:2], bool)
    image = host
    if family != "authentic":
        donor = None
        if family == "splice":
            donor_index = int(rng.integers(count)) if count > 1 else host_index
            if count > 1:
                while donor_index == host_index:
                    donor_index = int(rng.integers(count))
            donor = jpeg(_crop(rng, load(donor_index), work),
                         _other_quality(rng, config.camera_quality, camera or 100))
            details["donor"] = donor_index
        image, mask, edit = local_edit(host, family, rng, donor=donor, config=config)
        details.update(edit)
        if not mask.any():  # an edit that changed nothing (a flat region): the sample is authentic in truth
            family = "authentic"
    final = _quality(rng, config.final_quality)
    if compression in ("double", "shifted"):
        image = jpeg(image, _other_quality(rng, config.final_quality, final))
    if compression == "shifted":
        dy, dx = (int(v) for v in rng.integers(1, 8, size=2))
        image, mask = image[dy : dy + size, dx : dx + size], mask[dy : dy + size, dx : dx + size]
        details["shift"] = (dy, dx)
    if compression == "resized":
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0
        details["resize"] = round(resize_factor, 3)
    image, mask = image[:size, :size], mask[:size, :size]
    if compression != "png":
        image = jpeg(np.ascontiguousarray(image), final)
        details["final_quality"] = final
    if family != "authentic" and not mask.any():
        family = "authentic"
    return Forgery(np.ascontiguousarray(image), np.ascontiguousarray(mask), family, compression, details)
