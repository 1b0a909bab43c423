"""The embedded default dataset (notebook 01): forgeries made from real photographs that ship inside packages.

Why synthetic: the field's datasets (CASIA, IEEE IFS-TC, Columbia, COVERAGE) need registration or slow hosts,
while a workbook must run end to end from a fresh clone. The photographs here are real camera images shipped
by scikit-image and scikit-learn, so the JPEG and sensor traces a detector learns from are real too; only the
edits are made by this module, which is why every mask is exact.

How one sample is made (see :func:`make_sample`):

1. A *host* photo is cropped at a random size and place, optionally mirrored and downscaled, then passed
   through JPEG at a random *host quality*: the camera's own compression.
2. For a tampered sample one edit is applied:

   * ``splice``: a region of another photo (the *donor*, compressed at a different quality) with a random
     shape (polygon, ellipse or blob), optionally scaled and rotated, pasted with optionally feathered edges;
   * ``copy-move``: a region of the host moved elsewhere in the host, optionally rotated or scaled;
   * ``removal``: a region erased and filled by OpenCV inpainting (Telea or Navier-Stokes).

   Authentic samples skip this step and nothing else.
3. Every sample, authentic or not, is saved as JPEG at a random final quality (70-95 by default).

So file format, size, dimensions and JPEG quality follow the same distribution for both labels and give the
label away no more than chance (``tests/test_synthetic.py`` checks this with a classifier).

Masks are single-channel PNGs, 255 = tampered. A pixel is tampered when at least half of its value comes from
the edit: with feathered edges the blend weight is thresholded at 0.5. For copy-move only the pasted target is
marked, as CASIA and COVERAGE do; the source region is authentic content.

Determinism: sample ``i`` draws only from ``numpy.random.default_rng([seed, i])``, so the output does not
depend on the number of worker processes; with the same seed and the same library versions (recorded in
``synth_info.json``) the bytes are identical.

Reuse: ``synth_info.json`` also records the size and sha256 of the manifest and of every file it names, and a
set is reused only when all of them still match; one run at a time writes into a folder (a lock file), and a
smaller rerun removes the files it no longer names.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from skimage import data as skimage_data
from sklearn.datasets import load_sample_image

from helpers.atomic import atomic_write_bytes, atomic_write_json, json_safe
from helpers.datasets.manifest import load_manifest, write_manifest
from helpers.datasets.splits import SPLIT_FILE
from helpers.imageio import encode_jpeg, jpeg_roundtrip, save_png
from helpers.locks import folder_lock
from helpers.parallel import default_workers, process_map

__all__ = [
    "KINDS",
    "SHAPES",
    "SourcePhoto",
    "SOURCE_PHOTOS",
    "SynthConfig",
    "Sample",
    "load_source",
    "random_shape",
    "splice",
    "copy_move",
    "remove",
    "make_sample",
    "synthesize",
    "reuse_problem",
    "INFO_NAME",
]

KINDS: tuple[str, ...] = ("splice", "copy-move", "removal")
INFO_NAME = "synth_info.json"
"""Beside the manifest: parameters, library versions and the size and sha256 of every file of the set."""
SHAPES: tuple[str, ...] = ("polygon", "ellipse", "blob")


# --------------------------------------------------------------------------------------------------------------
# Source photographs
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourcePhoto:
    """A real photograph shipped inside an installed package."""

    name: str
    group: str
    """Photos of one scene share a group (the stereo motorcycle pair), so splits keep them together."""
    colour: bool
    """Greyscale photos only exchange regions with greyscale photos: a colour patch in a grey host would be
    a giveaway no real forgery has."""
    loader: Callable[[], np.ndarray] = field(repr=False, compare=False)


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        return getattr(skimage_data, name)()

    return load


def _skimage_motorcycle(side: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        return skimage_data.stereo_motorcycle()[side]

    return load


def _sklearn(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        return load_sample_image(name)

    return load


SOURCE_PHOTOS: tuple[SourcePhoto, ...] = (
    SourcePhoto("astronaut", "astronaut", True, _skimage("astronaut")),
    SourcePhoto("coffee", "coffee", True, _skimage("coffee")),
    SourcePhoto("chelsea", "chelsea", True, _skimage("chelsea")),
    SourcePhoto("rocket", "rocket", True, _skimage("rocket")),
    SourcePhoto("hubble_deep_field", "hubble_deep_field", True, _skimage("hubble_deep_field")),
    SourcePhoto("retina", "retina", True, _skimage("retina")),
    SourcePhoto("immunohistochemistry", "immunohistochemistry", True, _skimage("immunohistochemistry")),
    SourcePhoto("motorcycle_left", "motorcycle", True, _skimage_motorcycle(0)),
    SourcePhoto("motorcycle_right", "motorcycle", True, _skimage_motorcycle(1)),
    SourcePhoto("china", "china", True, _sklearn("china.jpg")),
    SourcePhoto("flower", "flower", True, _sklearn("flower.jpg")),
    # Greyscale photographs and textures (brick, grass, gravel are photographed surfaces).
    SourcePhoto("camera", "camera", False, _skimage("camera")),
    SourcePhoto("moon", "moon", False, _skimage("moon")),
    SourcePhoto("coins", "coins", False, _skimage("coins")),
    SourcePhoto("brick", "brick", False, _skimage("brick")),
    SourcePhoto("grass", "grass", False, _skimage("grass")),
    SourcePhoto("gravel", "gravel", False, _skimage("gravel")),
)
_BY_NAME = {photo.name: photo for photo in SOURCE_PHOTOS}


@lru_cache(maxsize=None)
def load_source(name: str) -> np.ndarray:
    """The source photo ``name`` as a read-only uint8 RGB array (cached per process)."""
    photo = _BY_NAME[name]
    image = np.asarray(photo.loader())
    if image.dtype != np.uint8:
        raise TypeError(f"source photo {name} is {image.dtype}, expected uint8")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = np.ascontiguousarray(image[..., :3])
    image.setflags(write=False)
    return image


# --------------------------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SynthConfig:
    """Distributions of the synthetic set. The defaults are what the workbook uses."""

    authentic_fraction: float = 0.5
    kinds: tuple[str, ...] = KINDS
    grey_host_probability: float = 0.15
    min_side: int = 192
    max_side: int = 768
    downscale: tuple[float, float] = (0.6, 1.0)
    host_quality: tuple[int, int] = (75, 100)
    donor_quality: tuple[int, int] = (60, 100)
    min_quality_gap: int = 6
    final_quality: tuple[int, int] = (70, 95)
    region_fraction: tuple[float, float] = (0.02, 0.2)
    removal_fraction: tuple[float, float] = (0.01, 0.08)
    rotate_probability: float = 0.5
    max_rotation_deg: float = 30.0
    scale_probability: float = 0.5
    scale_range: tuple[float, float] = (0.75, 1.3)
    feather_probability: float = 0.5
    feather_sigma: tuple[float, float] = (0.8, 2.5)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {self.kinds}")
        if not 0.0 <= self.authentic_fraction <= 1.0:
            raise ValueError(f"authentic_fraction must be in [0, 1], got {self.authentic_fraction}")
        low, high = self.final_quality
        if not 1 <= low <= high <= 100:
            raise ValueError(f"final_quality must be within 1..100, got {self.final_quality}")


@dataclass
class Sample:
    """One generated sample before it is written: pixels, mask and what was done."""

    image: np.ndarray
    mask: np.ndarray | None
    kind: str
    host: str
    group: str
    jpeg_quality: int
    host_quality: int
    donor: str = ""
    donor_quality: int | None = None
    shape: str = ""
    rotation_deg: float = 0.0
    scale: float = 1.0
    feather_sigma: float = 0.0
    inpaint_method: str = ""

    @property
    def label(self) -> int:
        return 0 if self.kind == "authentic" else 1


# --------------------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------------------
def random_shape(rng: np.random.Generator, height: int, width: int, shape: str | None = None) -> tuple[np.ndarray, str]:
    """A filled random shape inside a ``height`` x ``width`` box, touching most of the box.

    ``polygon`` is a star-shaped polygon of 5-11 vertices, ``ellipse`` a rotated ellipse, ``blob`` a
    thresholded smooth random field (one connected piece, holes filled). Returns the bool mask and the shape's
    name.
    """
    shape = shape or str(rng.choice(SHAPES))
    canvas = np.zeros((height, width), np.uint8)
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    if shape == "ellipse":
        # The box's aspect ratio already orients the ellipse; a small tilt keeps it from being clipped.
        angle = float(rng.uniform(-15, 15))
        axes = (max(2, int(width * rng.uniform(0.38, 0.5))), max(2, int(height * rng.uniform(0.38, 0.5))))
        cv2.ellipse(canvas, (int(round(cx)), int(round(cy))), axes, angle, 0, 360, 1, thickness=-1)
    elif shape == "polygon":
        count = int(rng.integers(5, 12))
        # Vertices spread around the centre with jitter: irregular, but never a sliver.
        step = 2 * np.pi / count
        angles = rng.uniform(0, 2 * np.pi) + step * (np.arange(count) + rng.uniform(-0.35, 0.35, count))
        radii = rng.uniform(0.45, 1.0, count)
        xs = cx + radii * np.cos(angles) * (width / 2.0)
        ys = cy + radii * np.sin(angles) * (height / 2.0)
        points = np.stack([xs, ys], axis=1).round().astype(np.int32)
        cv2.fillPoly(canvas, [points], 1)
    elif shape == "blob":
        field_ = rng.normal(size=(6, 6)).astype(np.float32)
        field_ = cv2.resize(field_, (width, height), interpolation=cv2.INTER_CUBIC)
        yy, xx = np.mgrid[0:height, 0:width]
        # A radial falloff keeps the blob inside the box and in one piece most of the time.
        radial = ((yy - cy) / (height / 2.0)) ** 2 + ((xx - cx) / (width / 2.0)) ** 2
        field_ = field_ - 2.5 * radial.astype(np.float32)
        canvas = (field_ > np.quantile(field_, 0.5)).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(canvas, connectivity=8)
        if count > 1:
            largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            canvas = (labels == largest).astype(np.uint8)
        canvas = _fill_holes(canvas)
    else:
        raise ValueError(f"unknown shape {shape!r}; choose one of {SHAPES}")
    if canvas.sum() < 16:  # degenerate draw on a tiny box: fall back to a full ellipse
        cv2.ellipse(canvas, (int(cx), int(cy)), (max(2, width // 2), max(2, height // 2)), 0, 0, 360, 1, -1)
    return canvas.astype(bool), shape


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    padded = np.pad(mask, 1).astype(np.uint8)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = (flood == 0)[1:-1, 1:-1]
    return (mask.astype(bool) | holes).astype(np.uint8)


def _region_box(rng: np.random.Generator, height: int, width: int, fraction: tuple[float, float]) -> tuple[int, int]:
    """Height and width of a box whose area is a random fraction of the image, aspect ratio within 1:2..2:1."""
    area = rng.uniform(*fraction) * height * width / 0.7  # shapes fill about 70 % of their box
    aspect = math.exp(rng.uniform(math.log(0.5), math.log(2.0)))
    box_h = int(np.clip(round(math.sqrt(area * aspect)), 12, int(height * 0.8)))
    box_w = int(np.clip(round(math.sqrt(area / aspect)), 12, int(width * 0.8)))
    return box_h, box_w


def _place(rng: np.random.Generator, height: int, width: int, box_h: int, box_w: int) -> tuple[int, int]:
    return int(rng.integers(0, height - box_h + 1)), int(rng.integers(0, width - box_w + 1))


def _blend(
    host: np.ndarray, content: np.ndarray, region: np.ndarray, rng: np.random.Generator, config: SynthConfig
) -> tuple[np.ndarray, np.ndarray, float]:
    """Paste ``content`` into ``host`` over ``region``; optionally feather the edge.

    Returns the result, the exact mask (blend weight >= 0.5) and the feather sigma (0 when hard-edged).
    """
    sigma = 0.0
    alpha = region.astype(np.float32)
    if rng.random() < config.feather_probability:
        sigma = float(rng.uniform(*config.feather_sigma))
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)
    # Weights below 1/255 leave a pixel unchanged after rounding; zero them so the edit stays local.
    alpha[alpha < 1.0 / 255.0] = 0.0
    a = alpha[..., None]
    out = host.astype(np.float32) * (1.0 - a) + content.astype(np.float32) * a
    result = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return result, alpha >= 0.5, sigma


def _similarity(center_from: tuple[float, float], center_to: tuple[float, float], angle_deg: float, scale: float) -> np.ndarray:
    """2x3 affine matrix: rotate by ``angle_deg`` and scale about ``center_from``, then move it to ``center_to``.

    Points are (x, y). The matrix maps source coordinates to destination coordinates.
    """
    matrix = cv2.getRotationMatrix2D(center_from, angle_deg, scale)
    matrix[0, 2] += center_to[0] - center_from[0]
    matrix[1, 2] += center_to[1] - center_from[1]
    return matrix


def _draw_transform(rng: np.random.Generator, config: SynthConfig) -> tuple[float, float]:
    angle = float(rng.uniform(-config.max_rotation_deg, config.max_rotation_deg)) if rng.random() < config.rotate_probability else 0.0
    scale = float(rng.uniform(*config.scale_range)) if rng.random() < config.scale_probability else 1.0
    return round(angle, 3), round(scale, 4)


def splice(
    host: np.ndarray, donor: np.ndarray, rng: np.random.Generator, config: SynthConfig = SynthConfig()
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Paste a randomly shaped region of ``donor`` into ``host``. Returns image, mask and what was done."""
    height, width = host.shape[:2]
    box_h, box_w = _region_box(rng, height, width, config.region_fraction)
    top, left = _place(rng, height, width, box_h, box_w)
    region_box, shape = random_shape(rng, box_h, box_w)
    region = np.zeros((height, width), bool)
    region[top : top + box_h, left : left + box_w] = region_box
    angle, scale = _draw_transform(rng, config)
    # The donor patch must cover the target box after scaling and rotation; enlarge the donor if needed.
    need = math.hypot(box_h, box_w) / scale + 4
    donor_h, donor_w = donor.shape[:2]
    if min(donor_h, donor_w) < need:
        factor = need / min(donor_h, donor_w)
        donor = cv2.resize(donor, (math.ceil(donor_w * factor), math.ceil(donor_h * factor)), interpolation=cv2.INTER_CUBIC)
        donor_h, donor_w = donor.shape[:2]
    half = need / 2.0
    src_center = (float(rng.uniform(half, donor_w - half)), float(rng.uniform(half, donor_h - half)))
    dst_center = (left + (box_w - 1) / 2.0, top + (box_h - 1) / 2.0)
    matrix = _similarity(src_center, dst_center, angle, scale)
    content = cv2.warpAffine(donor, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    image, mask, sigma = _blend(host, content, region, rng, config)
    return image, mask, {"shape": shape, "rotation_deg": angle, "scale": scale, "feather_sigma": sigma}


def copy_move(
    host: np.ndarray, rng: np.random.Generator, config: SynthConfig = SynthConfig(), attempts: int = 50
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Copy a randomly shaped region of ``host`` elsewhere in ``host``, optionally rotated or scaled.

    The target never overlaps the source region, so the copied content really comes from another place.
    """
    height, width = host.shape[:2]
    for _ in range(attempts):
        box_h, box_w = _region_box(rng, height, width, (config.region_fraction[0], config.region_fraction[1] / 2))
        region_box, shape = random_shape(rng, box_h, box_w)
        angle, scale = _draw_transform(rng, config)
        reach = math.hypot(box_h, box_w) * max(scale, 1.0) / 2.0 + 2  # half the diagonal after the transform
        if 2 * reach >= min(height, width):
            continue
        src_top, src_left = _place(rng, height, width, box_h, box_w)
        source = np.zeros((height, width), bool)
        source[src_top : src_top + box_h, src_left : src_left + box_w] = region_box
        src_center = (src_left + (box_w - 1) / 2.0, src_top + (box_h - 1) / 2.0)
        dst_center = (float(rng.uniform(reach, width - reach)), float(rng.uniform(reach, height - reach)))
        matrix = _similarity(src_center, dst_center, angle, scale)
        target = cv2.warpAffine(source.astype(np.uint8), matrix, (width, height), flags=cv2.INTER_NEAREST) > 0
        if not target.any() or (target & source).any():
            continue
        content = cv2.warpAffine(host, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        image, mask, sigma = _blend(host, content, target, rng, config)
        return image, mask, {"shape": shape, "rotation_deg": angle, "scale": scale, "feather_sigma": sigma}
    raise RuntimeError(f"no non-overlapping copy-move placement found in {attempts} attempts for a {width}x{height} image")


def remove(
    host: np.ndarray, rng: np.random.Generator, config: SynthConfig = SynthConfig()
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Erase a randomly shaped region and fill it by OpenCV inpainting; only the region's pixels change."""
    height, width = host.shape[:2]
    box_h, box_w = _region_box(rng, height, width, config.removal_fraction)
    top, left = _place(rng, height, width, box_h, box_w)
    region_box, shape = random_shape(rng, box_h, box_w)
    region = np.zeros((height, width), np.uint8)
    region[top : top + box_h, left : left + box_w] = region_box
    method_name = str(rng.choice(["telea", "navier-stokes"]))
    method = cv2.INPAINT_TELEA if method_name == "telea" else cv2.INPAINT_NS
    radius = int(rng.integers(3, 8))
    image = cv2.inpaint(np.ascontiguousarray(host), region, radius, method)
    return image, region.astype(bool), {"shape": shape, "inpaint_method": method_name}


def _host_crop(rng: np.random.Generator, photo: np.ndarray, config: SynthConfig) -> np.ndarray:
    """A crop of random size and place, optionally mirrored and downscaled: one photo, many hosts."""
    height, width = photo.shape[:2]
    crop_h = int(rng.integers(min(height, config.min_side), min(height, config.max_side) + 1))
    crop_w = int(rng.integers(min(width, config.min_side), min(width, config.max_side) + 1))
    top, left = _place(rng, height, width, crop_h, crop_w)
    crop = photo[top : top + crop_h, left : left + crop_w]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    factor = float(rng.uniform(*config.downscale))
    new_h, new_w = round(crop_h * factor), round(crop_w * factor)
    if min(new_h, new_w) >= config.min_side and factor < 0.98:
        crop = cv2.resize(crop, (new_w, new_h), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop)


def _quality(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def make_sample(index: int, seed: int, kind: str, config: SynthConfig = SynthConfig()) -> Sample:
    """Generate sample ``index`` of kind ``kind`` (``authentic`` or one of :data:`KINDS`) deterministically."""
    rng = np.random.default_rng([seed, index])
    colour = rng.random() >= config.grey_host_probability
    pool = [p for p in SOURCE_PHOTOS if p.colour == colour]
    host_photo = pool[int(rng.integers(len(pool)))]
    host_quality = _quality(rng, config.host_quality)
    host = jpeg_roundtrip(_host_crop(rng, load_source(host_photo.name), config), host_quality)
    final_quality = _quality(rng, config.final_quality)
    sample = Sample(
        image=host, mask=None, kind=kind, host=host_photo.name, group=host_photo.group,
        jpeg_quality=final_quality, host_quality=host_quality,
    )
    if kind == "authentic":
        return sample
    if kind == "splice":
        donors = [p for p in pool if p.group != host_photo.group]
        donor_photo = donors[int(rng.integers(len(donors)))]
        donor_quality = host_quality
        while abs(donor_quality - host_quality) < config.min_quality_gap:
            donor_quality = _quality(rng, config.donor_quality)
        donor = jpeg_roundtrip(_host_crop(rng, load_source(donor_photo.name), config), donor_quality)
        image, mask, details = splice(host, donor, rng, config)
        sample.donor, sample.donor_quality = donor_photo.name, donor_quality
    elif kind == "copy-move":
        image, mask, details = copy_move(host, rng, config)
    elif kind == "removal":
        image, mask, details = remove(host, rng, config)
    else:
        raise ValueError(f"unknown kind {kind!r}; choose 'authentic' or one of {KINDS}")
    sample.image, sample.mask = image, mask
    for key, value in details.items():
        setattr(sample, key, value)
    return sample


# --------------------------------------------------------------------------------------------------------------
# The data set on disk
# --------------------------------------------------------------------------------------------------------------
def _kind_plan(n: int, seed: int, config: SynthConfig) -> list[str]:
    """Exact label balance: round(n * authentic_fraction) authentic, the rest cycling through the kinds."""
    authentic = int(round(n * config.authentic_fraction))
    tampered = [config.kinds[i % len(config.kinds)] for i in range(n - authentic)]
    plan = np.array(["authentic"] * authentic + tampered, dtype=object)
    np.random.default_rng([seed, 2**31 - 1]).shuffle(plan)
    return [str(k) for k in plan]


def _write_sample(task: tuple[int, int, str, SynthConfig, str]) -> tuple[dict, dict[str, dict[str, int | str]]]:
    """Generate and write sample ``index``; return its manifest row and the size and sha256 of each file."""
    index, seed, kind, config, out = task
    sample = make_sample(index, seed, kind, config)
    stem = f"syn_{index:05d}"
    image_rel = f"images/{stem}.jpg"
    atomic_write_bytes(Path(out) / image_rel, encode_jpeg(sample.image, sample.jpeg_quality))
    written = [image_rel]
    mask_rel = ""
    if sample.mask is not None:
        mask_rel = f"masks/{stem}.png"
        save_png(Path(out) / mask_rel, sample.mask)
        written.append(mask_rel)
    height, width = sample.image.shape[:2]
    row = {
        "image": image_rel,
        "mask": mask_rel,
        "label": sample.label,
        "dataset": "synthetic",
        "group": sample.group,
        "kind": sample.kind,
        "width": width,
        "height": height,
        "mask_fraction": round(float(sample.mask.mean()), 5) if sample.mask is not None else 0.0,
        "jpeg_quality": sample.jpeg_quality,
        "host": sample.host,
        "host_quality": sample.host_quality,
        "donor": sample.donor,
        "donor_quality": sample.donor_quality if sample.donor_quality is not None else "",
        "shape": sample.shape,
        "rotation_deg": sample.rotation_deg,
        "scale": sample.scale,
        "feather_sigma": round(sample.feather_sigma, 3),
        "inpaint_method": sample.inpaint_method,
    }
    return row, {rel: _file_record(Path(out) / rel) for rel in written}


def _file_record(path: Path) -> dict[str, int | str]:
    data = path.read_bytes()
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for package in ("numpy", "pillow", "opencv-python-headless", "scikit-image", "scikit-learn"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def synthesize(
    out: str | os.PathLike[str],
    n: int = 200,
    seed: int = 0,
    *,
    config: SynthConfig | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Generate the embedded forgery set into ``out`` and return its manifest (as :func:`load_manifest` does).

    Writes ``out/images/syn_NNNNN.jpg``, ``out/masks/syn_NNNNN.png`` (tampered samples only),
    ``out/manifest.csv`` and ``out/synth_info.json`` (parameters, library versions, counts, seconds, and the
    size and sha256 of the manifest and of every file it names). ``workers`` defaults to the usable cores
    (``1`` runs in-process).

    A set is reused, not regenerated, only when ``overwrite`` is false, its parameters and library versions
    are the same and the manifest and every file it names are byte for byte what ``synth_info.json``
    records; otherwise it is regenerated, and image and mask files of an earlier, larger set that the new
    manifest does not name are removed. The folder is locked for the run (:func:`helpers.locks.folder_lock`):
    a second writer is refused with :class:`helpers.locks.FolderLockedError`. ``synth_info.json`` and the
    manifest are removed before anything else is written and written last, so an interrupted run leaves no
    manifest pointing at files of another run; the old set's ``split.csv`` (:mod:`helpers.datasets.splits`)
    goes with them, so the new set gets a split of its own.

    The returned frame's ``attrs`` say what happened: ``reused`` (bool), ``rebuild_reason`` (why an existing
    set was not reused; ``""`` when there was none) and ``removed`` (stale files deleted).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a whole number >= 1, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    n, seed = int(n), int(seed)
    config = config or SynthConfig()
    root = Path(out)
    manifest_path = root / "manifest.csv"
    info_path = root / INFO_NAME
    wanted = {"n": n, "seed": seed, "config": json_safe(asdict(config)), "versions": _versions()}
    with folder_lock(root):
        reason = "" if overwrite else reuse_problem(root, wanted)
        if reason is None:
            frame = load_manifest(manifest_path)
            frame.attrs.update(reused=True, rebuild_reason="", removed=[])
            return frame
        if not (manifest_path.exists() or info_path.exists()):
            reason = ""  # nothing was there to reuse
        # The manifest and its record go first: from here until both are rewritten, no manifest can point at
        # a mixture of old and new files.
        info_path.unlink(missing_ok=True)
        manifest_path.unlink(missing_ok=True)
        # A split belongs to the manifest it was made for (helpers.datasets.splits): a new set needs a new one.
        (root / SPLIT_FILE).unlink(missing_ok=True)

        started = time.perf_counter()
        plan = _kind_plan(n, seed, config)
        tasks = [(i, seed, kind, config, str(root)) for i, kind in enumerate(plan)]
        workers = max(1, workers if workers is not None else default_workers())
        results = list(process_map(_write_sample, tasks, workers=workers, desc="synthesizing", unit="img",
                                   progress=progress))
        seconds = time.perf_counter() - started
        files = {rel: record for _, written in results for rel, record in written.items()}
        removed = _remove_unlisted(root, set(files))
        frame = pd.DataFrame([row for row, _ in results])
        write_manifest(frame, manifest_path)
        counts = frame["kind"].value_counts().sort_index().to_dict()
        atomic_write_json(info_path, {
            **wanted, "counts": counts, "seconds": round(seconds, 2), "workers": workers,
            "manifest": _file_record(manifest_path), "files": files,
        })
        result = load_manifest(manifest_path)
    result.attrs.update(reused=False, rebuild_reason=reason, removed=removed)
    return result


def reuse_problem(out: str | os.PathLike[str], wanted: dict[str, Any]) -> str | None:
    """Why the set in ``out`` cannot stand for the parameters ``wanted`` (``None``: it can be reused).

    ``wanted`` holds ``n``, ``seed``, ``config`` and ``versions`` as ``synth_info.json`` records them. Every
    file the manifest names is hashed: a set is only as good as its least trustworthy file.
    """
    root = Path(out)
    manifest_path = root / "manifest.csv"
    info_path = root / INFO_NAME
    if not manifest_path.is_file():
        return "manifest.csv is missing"
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{INFO_NAME} is missing"
    except (OSError, ValueError) as exc:
        return f"{INFO_NAME} is unreadable ({exc})"
    if not isinstance(info, dict):
        return f"{INFO_NAME} is not a JSON object"
    changed = [key for key, value in wanted.items() if info.get(key) != value]
    if changed:
        return "other " + ", ".join(changed) + " than the existing set"
    records = info.get("files")
    if not isinstance(records, dict) or not isinstance(info.get("manifest"), dict):
        return f"{INFO_NAME} records no file digests (written by an older version)"
    if _file_record(manifest_path) != info["manifest"]:
        return f"manifest.csv differs from what {INFO_NAME} records"
    try:
        frame = pd.read_csv(manifest_path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:  # pragma: no cover - its digest matched
        return f"manifest.csv is unreadable ({exc})"
    named = [p for column in ("image", "mask") if column in frame for p in frame[column] if p]
    if sorted(named) != sorted(records):
        return f"manifest.csv names other files than {INFO_NAME} records"
    for rel in named:
        path = root / rel
        if not path.is_file():
            return f"{rel} is missing"
        if path.stat().st_size != records[rel].get("bytes"):
            return f"{rel} has another size than {INFO_NAME} records"
        if _file_record(path) != records[rel]:
            return f"{rel} has other content than {INFO_NAME} records"
    return None


_SAMPLE_FILE = re.compile(r"^(syn_\d{5,}\.(jpg|png)|\.syn_\d{5,}\.(jpg|png)\..*\.tmp)$")


def _remove_unlisted(root: Path, keep: set[str]) -> list[str]:
    """Delete sample files (and temporary files of interrupted writes) the new manifest does not name."""
    removed: list[str] = []
    for folder in ("images", "masks"):
        if not (root / folder).is_dir():
            continue
        for path in sorted((root / folder).iterdir()):
            rel = f"{folder}/{path.name}"
            if rel not in keep and path.is_file() and _SAMPLE_FILE.match(path.name):
                path.unlink()
                removed.append(rel)
    return removed
