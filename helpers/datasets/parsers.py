"""A dataset's on-disk layout -> manifest rows (see :mod:`helpers.datasets.manifest` for the schema).

Every parser has the signature ``parse_<name>(root, out_dir, *, progress=True, ...) -> pandas.DataFrame`` and
returns one row per usable image with the columns ``image, mask, label, dataset, group, kind, width, height,
note``. ``image`` is the *original* file (absolute path); ``mask`` is a *normalised* mask the parser wrote to
``out_dir/masks/<stem>.png`` (absolute path, ``""`` when the image has none). Write the result with
``write_manifest(df, out_dir / "manifest.csv")``, which turns both into paths relative to the manifest.
:data:`PARSERS` maps dataset names to parsers.

Parsers find files by *name*, searching ``root`` recursively, rather than by fixed folder paths: the archives
of these datasets circulate in several repackagings (an extra top folder, ``Tp/`` vs ``Modified Tp/Tp/``,
``4cam_splc/4cam_splc/``, a ground-truth archive unpacked beside the images). macOS debris (``__MACOSX/``,
``._*``) and hidden files are ignored. A parser that finds no image of its dataset raises
``FileNotFoundError`` saying what it looked for.

Mask normalisation
------------------
A normalised mask is a single-channel PNG, 255 = tampered, 0 = authentic, exactly the size of its image
(upright, i.e. after EXIF orientation, as :func:`helpers.imageio.load_rgb` returns it). Steps:

1. *Polarity.* ``white``: light pixels are tampered (CASIA v1/v2 ground truth, COVERAGE). ``black``: dark
   pixels are tampered (IEEE IFS-TC phase-01 ``*.mask.png``), so the mask is inverted. ``edge``: Columbia's
   colour edge masks, see below.
2. *Binarisation.* Grey or anti-aliased masks are thresholded on their luminance: tampered when the value,
   after polarity, is above 127 (for ``black``: the stored value is at most 127).
3. *Size.* When the mask's size differs from its image's (it happens in CASIA v2 and COVERAGE):

   * the mask is exactly the transpose (width and height swapped) -> it is transposed;
   * else the aspect ratios agree within 1 % (``|mask w/h - image w/h| <= 0.01 * image w/h``) -> it is
     resized to the image's size with nearest-neighbour interpolation;
   * else the row is **excluded** and a :class:`DatasetWarning` names both files and both sizes.

   What was done is recorded in the row's ``note``.

Images that cannot be decoded (:class:`~helpers.imageio.ImageLoadError`: corrupt, truncated, not an image) are
skipped with a warning; they never stop the run. A mask that cannot be decoded leaves its (tampered) image in
the manifest without a mask, again with a warning. Every image is decoded once in full (``check_images=True``),
which is what catches truncated files; pass ``check_images=False`` to read headers only.

Columbia edge masks (``mask_polarity="edge"``)
----------------------------------------------
The Columbia Uncompressed set ships ``4cam_splc/edgemask/<stem>_edgemask.jpg``: RGB images that paint the
region taken from one camera in one colour (red) and the region from the other camera in another (green),
with JPEG noise along the boundary. The rule that turns them into a binary mask is a parameter,
``edge_rule``:

* ``"green"`` (default): tampered where green is bright and dominates red, ``G > 127 and G > R``: the
  spliced region is taken to be the green one;
* ``"red"``: the other region, ``R > 127 and R > G`` (choose it if you read the documentation the other way;
  the two regions come from different cameras, so for camera-consistency methods the choice is a convention);
* ``"green-or-blue"``: ``max(G, B) > 127 and max(G, B) > R``, which also counts bluish boundary pixels.

Groups (for group-aware splits)
-------------------------------
``group`` names the source photograph(s) behind an image, so that a split never puts a tampered image and
the authentic photo it was made from on different sides.

* CASIA v2 ``Tp_D_CND_M_N_ani00018_sec00096_00138.tif`` was made from ``Au_ani_00018`` and ``Au_sec_00096``
  (the two name fields of the form *three-letter category + number*, mapped to ``Au_<cat>_<num>``); CASIA v1
  ``Sp_D_CND_A_pla0005_pla0023_0281.jpg`` from ``Au_pla_0005`` and ``Au_pla_0023``. A splice links two
  sources, so groups are the connected components of the graph {tampered image - its sources}
  (union-find): all images that share any source, directly or through a chain, get one group, named by the
  component's lexicographically smallest member (an ``Au_...`` id whenever the component has a source).
  ``Tp_S``/``Sp_S`` (same source twice) are ``copy-move``; ``Tp_D``/``Sp_D`` are ``splice``.
* IEEE IFS-TC: the names carry no source information: group = file stem; kind ``unknown`` for fakes.
* Columbia: the names give the two cameras (``canong3_canonxt_sub_01``) but not which authentic photos were
  used, so group = file stem for spliced and authentic images alike (``canong3_02_sub_01``). Splits of
  Columbia are therefore only image-disjoint, not scene-disjoint.
* COVERAGE: ``image/N.tif`` (original) and ``image/Nt.tif`` (forged) share group ``N``; kind ``copy-move``.
* A user's folder: group = file stem, or a ``group`` column of the optional labels CSV.
"""

from __future__ import annotations

import fnmatch
import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from helpers.imageio import ImageLoadError, image_size, load_mask, load_rgb, save_png
from helpers.parallel import default_workers, process_map

__all__ = [
    "COLUMNS",
    "EDGE_RULES",
    "IMAGE_EXTENSIONS",
    "PARSERS",
    "DatasetWarning",
    "casia_sources",
    "edge_mask_to_binary",
    "fit_mask_to_image",
    "parse_casia1",
    "parse_casia2",
    "parse_columbia",
    "parse_coverage",
    "parse_folder",
    "parse_ifs_tc",
]

COLUMNS: tuple[str, ...] = ("image", "mask", "label", "dataset", "group", "kind", "width", "height", "note")
"""Columns of every parser's DataFrame, in this order."""

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp"}
)

EDGE_RULES: tuple[str, ...] = ("green", "red", "green-or-blue")

_ASPECT_TOLERANCE = 0.01
_PARALLEL_THRESHOLD = 64
"""Below this many images the work runs in this process: spawning workers would cost more than it saves."""


class DatasetWarning(UserWarning):
    """A file a parser skipped or repaired (unreadable image, mask of the wrong size, missing mask, ...)."""


# ----------------------------------------------------------------------------------------------------------------
# Mask normalisation (pure functions)


def fit_mask_to_image(mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray | None, str]:
    """Bring a ``bool`` ``(H, W)`` mask to the image size ``(width, height)``, or say why it cannot be.

    Returns ``(mask, note)``: the mask unchanged (note ``""``), transposed when its width and height are the
    image's swapped, or resized with nearest-neighbour interpolation when the aspect ratios agree within 1 %.
    Otherwise returns ``(None, reason)``.
    """
    width, height = size
    mask_h, mask_w = mask.shape
    if (mask_w, mask_h) == (width, height):
        return mask, ""
    if (mask_w, mask_h) == (height, width):
        return np.ascontiguousarray(mask.T), f"mask transposed from {mask_w}x{mask_h}"
    image_ratio = width / height
    mask_ratio = mask_w / mask_h
    if abs(mask_ratio - image_ratio) <= _ASPECT_TOLERANCE * image_ratio:
        resized = Image.fromarray(mask.astype(np.uint8) * np.uint8(255)).resize(
            (width, height), Image.Resampling.NEAREST
        )
        return np.asarray(resized) > 127, f"mask resized from {mask_w}x{mask_h} (nearest)"
    return None, (
        f"mask size {mask_w}x{mask_h} is neither the transpose of the image size {width}x{height} "
        f"nor the same aspect ratio within {_ASPECT_TOLERANCE:.0%}"
    )


def edge_mask_to_binary(rgb: np.ndarray, rule: str = "green") -> np.ndarray:
    """Turn a Columbia colour edge mask (``uint8`` ``(H, W, 3)``) into a ``bool`` tampered mask.

    See the module docstring for the rules (``"green"``, ``"red"``, ``"green-or-blue"``).
    """
    r = rgb[:, :, 0].astype(np.int16)
    g = rgb[:, :, 1].astype(np.int16)
    b = rgb[:, :, 2].astype(np.int16)
    if rule == "green":
        return (g > 127) & (g > r)
    if rule == "red":
        return (r > 127) & (r > g)
    if rule == "green-or-blue":
        gb = np.maximum(g, b)
        return (gb > 127) & (gb > r)
    raise ValueError(f"unknown edge rule {rule!r}; choose one of: {', '.join(EDGE_RULES)}")


def _read_mask(path: str, polarity: str) -> np.ndarray:
    """Read a mask file as ``bool`` (True = tampered) according to ``polarity``; raises ImageLoadError."""
    if polarity == "white":
        return load_mask(path)
    if polarity == "black":
        return ~load_mask(path)
    if polarity.startswith("edge"):
        _, _, rule = polarity.partition(":")
        return edge_mask_to_binary(load_rgb(path), rule or "green")
    raise ValueError(f"unknown mask polarity {polarity!r}; use 'white', 'black' or 'edge[:rule]'")


# ----------------------------------------------------------------------------------------------------------------
# Per-image work (module level so that spawned workers can import it)


@dataclass(frozen=True)
class _Task:
    image: str
    mask_src: str
    mask_out: str
    polarity: str
    check_image: bool


def _process(task: _Task) -> dict:
    result: dict = {"ok": False, "width": None, "height": None, "mask": "", "tampered": None,
                    "mask_failed": False, "notes": [], "warnings": []}
    try:
        if task.check_image:
            pixels = load_rgb(task.image)
            height, width = pixels.shape[:2]
            del pixels
        else:
            width, height = image_size(task.image)
    except ImageLoadError as exc:
        result["warnings"].append(f"skipped unreadable image: {exc}")
        return result
    result.update(ok=True, width=int(width), height=int(height))
    if not task.mask_src:
        return result
    try:
        mask = _read_mask(task.mask_src, task.polarity)
    except ImageLoadError as exc:
        result["mask_failed"] = True
        result["warnings"].append(f"unreadable mask for {task.image}, kept without a mask: {exc}")
        result["notes"].append("mask unreadable")
        return result
    fitted, note = fit_mask_to_image(mask, (width, height))
    if fitted is None:
        result["ok"] = False
        result["warnings"].append(
            f"excluded {task.image} ({width}x{height}) with mask {task.mask_src} "
            f"({mask.shape[1]}x{mask.shape[0]}): {note}"
        )
        return result
    save_png(task.mask_out, fitted)
    result["mask"] = task.mask_out
    result["tampered"] = bool(fitted.any())
    if note:
        result["notes"].append(note)
    return result


@dataclass
class _Candidate:
    """One image a parser found, before its image and mask are checked."""

    image: Path
    label: int | None
    kind: str
    group: str
    mask_src: Path | None = None
    notes: list[str] = field(default_factory=list)


def _materialise(
    candidates: Sequence[_Candidate],
    out_dir: Path,
    *,
    dataset: str,
    polarity: str,
    progress: bool,
    workers: int | None,
    check_images: bool,
    desc: str,
    label_from_mask: bool = False,
) -> pd.DataFrame:
    """Check every image, normalise every mask into ``out_dir/masks`` and return the manifest rows."""
    out_dir = Path(out_dir).resolve()
    mask_dir = out_dir / "masks"
    names = _unique_mask_names([c.image for c in candidates])
    tasks = []
    for candidate, name in zip(candidates, names):
        mask_out = ""
        if candidate.mask_src is not None:
            target = mask_dir / name
            if target.resolve() == candidate.mask_src.resolve():
                raise ValueError(f"refusing to overwrite the source mask {candidate.mask_src}; use another out_dir")
            mask_out = str(target)
        tasks.append(_Task(str(candidate.image.resolve()),
                           str(candidate.mask_src.resolve()) if candidate.mask_src is not None else "",
                           mask_out, polarity, check_images))
    if workers is None:
        workers = 1 if len(tasks) < _PARALLEL_THRESHOLD else default_workers()
    rows = []
    skipped = 0
    results = process_map(_process, tasks, workers=workers, desc=desc, unit="img", progress=progress)
    for candidate, task, result in zip(candidates, tasks, results):
        for message in result["warnings"]:
            warnings.warn(message, DatasetWarning, stacklevel=3)
        if not result["ok"]:
            skipped += 1
            continue
        notes = [*candidate.notes, *result["notes"]]
        label = candidate.label
        kind = candidate.kind
        if label_from_mask:
            if result["mask_failed"]:
                warnings.warn(f"skipped {task.image}: its label comes from its mask, which is unreadable",
                              DatasetWarning, stacklevel=3)
                skipped += 1
                continue
            label = 1 if result["tampered"] else 0
            kind = kind or ("tampered" if label else "authentic")
        if label == 1 and result["tampered"] is False:
            notes.append("empty mask")
        rows.append({
            "image": task.image,
            "mask": result["mask"],
            "label": int(label),
            "dataset": dataset,
            "group": candidate.group,
            "kind": kind,
            "width": result["width"],
            "height": result["height"],
            "note": "; ".join(notes),
        })
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    if len(frame):
        frame = frame.sort_values("image", kind="stable").reset_index(drop=True)
        frame["label"] = frame["label"].astype(int)
        frame["width"] = frame["width"].astype(int)
        frame["height"] = frame["height"].astype(int)
    frame.attrs["skipped"] = skipped
    return frame


def _unique_mask_names(images: Sequence[Path]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for image in images:
        stem = image.stem
        count = seen.get(stem.lower(), 0)
        seen[stem.lower()] = count + 1
        names.append(f"{stem}.png" if count == 0 else f"{stem}__{count + 1}.png")
    return names


# ----------------------------------------------------------------------------------------------------------------
# File discovery


def _image_files(root: Path) -> list[Path]:
    """Every image file under ``root``, sorted, skipping hidden files/folders and macOS ``__MACOSX`` debris."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        for name in files:
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            found.append(Path(folder) / name)
    return sorted(found)


def _dedupe(items: Iterable[tuple[str, Path]], what: str) -> dict[str, Path]:
    """Map key -> first path (sorted order); warn once about keys found more than once."""
    chosen: dict[str, Path] = {}
    duplicates: list[str] = []
    for key, path in items:
        if key in chosen:
            duplicates.append(f"{path} (kept {chosen[key]})")
            continue
        chosen[key] = path
    if duplicates:
        shown = "; ".join(duplicates[:5]) + (f"; ... {len(duplicates) - 5} more" if len(duplicates) > 5 else "")
        warnings.warn(f"{len(duplicates)} duplicate {what} ignored: {shown}", DatasetWarning, stacklevel=3)
    return chosen


def _nothing_found(dataset: str, root: Path, expected: str) -> FileNotFoundError:
    return FileNotFoundError(f"no {dataset} images found under {root}; expected {expected}")


# ----------------------------------------------------------------------------------------------------------------
# CASIA v1 and v2


_CASIA_SOURCE = re.compile(r"^([a-z]{3})(\d+)$")
_GT_SUFFIXES = ("_gt", "_mask")


def casia_sources(stem: str) -> tuple[str, ...]:
    """The authentic ids a CASIA tampered image was made from, e.g. ``("Au_ani_00018", "Au_sec_00096")``.

    The first two ``_``-separated fields of the form *three lower-case letters + digits* (the 6th and 7th
    fields in CASIA v2 names, the 5th and 6th in v1) become ``Au_<category>_<number>``. A copy-move name
    repeats its source, which is returned once.
    """
    fields = [m for part in stem.split("_")[1:] if (m := _CASIA_SOURCE.match(part))][:2]
    sources: list[str] = []
    for match in fields:
        source = f"Au_{match.group(1)}_{match.group(2)}"
        if source not in sources:
            sources.append(source)
    return tuple(sources)


def _casia_kind(stem: str) -> str:
    parts = stem.split("_")
    if len(parts) > 1 and parts[1] == "D":
        return "splice"
    if len(parts) > 1 and parts[1] == "S":
        return "copy-move"
    return "tampered"


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:  # path compression
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # The smaller name becomes the root, so a component's root is its smallest member.
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra


def _casia_groups(authentic: Iterable[str], tampered: Iterable[str]) -> dict[str, str]:
    """Union-find over {tampered image, its sources}: stem -> group (the component's smallest member)."""
    uf = _UnionFind()
    for stem in authentic:
        uf.find(stem)
    tampered = list(tampered)
    for stem in tampered:
        uf.find(stem)
        for source in casia_sources(stem):
            uf.union(stem, source)
    return {stem: uf.find(stem) for stem in [*authentic, *tampered]}


def _parse_casia(root: Path, out_dir: Path, *, dataset: str, progress: bool, workers: int | None,
                 check_images: bool) -> pd.DataFrame:
    root = Path(root)
    authentic_items, tampered_items, mask_items = [], [], []
    for path in _image_files(root):
        stem = path.stem
        suffix = next((s for s in _GT_SUFFIXES if stem.endswith(s)), None)
        if suffix and stem.startswith(("Tp_", "Sp_")):
            mask_items.append((stem[: -len(suffix)], path))
        elif stem.startswith("Au_"):
            authentic_items.append((stem, path))
        elif stem.startswith(("Tp_", "Sp_")):
            tampered_items.append((stem, path))
    authentic = _dedupe(authentic_items, f"{dataset} authentic images")
    tampered = _dedupe(tampered_items, f"{dataset} tampered images")
    masks = _dedupe(mask_items, f"{dataset} ground-truth masks")
    if not authentic and not tampered:
        raise _nothing_found(dataset, root, "Au_*.jpg authentic and Tp_*/Sp_* tampered images (Au/, Tp/ or Sp/, CM/)")
    groups = _casia_groups(authentic, tampered)
    candidates = [_Candidate(path, 0, "authentic", groups[stem]) for stem, path in authentic.items()]
    missing = 0
    for stem, path in tampered.items():
        mask = masks.get(stem)
        notes = []
        if mask is None:
            missing += 1
            notes.append("no ground-truth mask")
        candidates.append(_Candidate(path, 1, _casia_kind(stem), groups[stem], mask, notes))
    if missing:
        warnings.warn(f"{dataset}: {missing} of {len(tampered)} tampered images have no ground-truth mask "
                      f"(*_gt.png); they are kept without one", DatasetWarning, stacklevel=3)
    return _materialise(candidates, out_dir, dataset=dataset, polarity="white", progress=progress,
                        workers=workers, check_images=check_images, desc=dataset)


def parse_casia2(root: Path, out_dir: Path, *, progress: bool = True, workers: int | None = None,
                 check_images: bool = True) -> pd.DataFrame:
    """CASIA v2.0: ``Au/Au_*``, ``Tp/Tp_*`` and ground truth ``CASIA 2 Groundtruth/Tp_*_gt.png`` (white = tampered)."""
    return _parse_casia(root, out_dir, dataset="casia2", progress=progress, workers=workers,
                        check_images=check_images)


def parse_casia1(root: Path, out_dir: Path, *, progress: bool = True, workers: int | None = None,
                 check_images: bool = True) -> pd.DataFrame:
    """CASIA v1.0: ``Au/Au_*.jpg``, tampered ``Sp/`` and ``CM/`` ``Sp_*.jpg``, and the "CASIA 1.0 groundtruth"
    release's ``Sp/`` and ``CM/`` ``*_gt.png`` (white = tampered)."""
    return _parse_casia(root, out_dir, dataset="casia1", progress=progress, workers=workers,
                        check_images=check_images)


# ----------------------------------------------------------------------------------------------------------------
# IEEE IFS-TC phase-01 training


def parse_ifs_tc(root: Path, out_dir: Path, *, progress: bool = True, workers: int | None = None,
                 check_images: bool = True) -> pd.DataFrame:
    """IEEE IFS-TC Image Forensics Challenge, phase-01 training: ``pristine/*.png`` (authentic) and
    ``fake/*.png`` with masks ``fake/<stem>.mask.png`` where BLACK = tampered (inverted here)."""
    root = Path(root)
    images: list[tuple[str, Path]] = []
    masks: list[tuple[str, Path]] = []
    for path in _image_files(root):
        folder = path.parent.name.lower()
        if folder not in ("fake", "pristine"):
            continue
        if path.name.lower().endswith(".mask" + path.suffix.lower()) or path.stem.lower().endswith(".mask"):
            masks.append((path.stem[: -len(".mask")], path))
        else:
            images.append((f"{folder}/{path.stem}", path))
    chosen = _dedupe(images, "IFS-TC images")
    mask_by_stem = _dedupe(masks, "IFS-TC masks")
    if not chosen:
        raise _nothing_found("IFS-TC", root, "fake/*.png (with *.mask.png) and pristine/*.png")
    candidates = []
    for key, path in chosen.items():
        stem = path.stem
        if key.startswith("pristine/"):
            candidates.append(_Candidate(path, 0, "authentic", stem))
        else:
            mask = mask_by_stem.get(stem)
            notes = [] if mask is not None else ["no ground-truth mask"]
            if mask is None:
                warnings.warn(f"IFS-TC fake image without mask: {path}", DatasetWarning, stacklevel=2)
            candidates.append(_Candidate(path, 1, "unknown", stem, mask, notes))
    return _materialise(candidates, out_dir, dataset="ifs-tc", polarity="black", progress=progress,
                        workers=workers, check_images=check_images, desc="ifs-tc")


# ----------------------------------------------------------------------------------------------------------------
# Columbia Uncompressed


def parse_columbia(root: Path, out_dir: Path, *, progress: bool = True, workers: int | None = None,
                   check_images: bool = True, edge_rule: str = "green") -> pd.DataFrame:
    """Columbia Uncompressed Image Splicing: ``4cam_auth/*.tif|bmp`` (authentic), ``4cam_splc/*.tif|bmp``
    (spliced) and ``4cam_splc/edgemask/<stem>_edgemask.jpg`` colour masks turned binary by ``edge_rule``."""
    if edge_rule not in EDGE_RULES:
        raise ValueError(f"unknown edge rule {edge_rule!r}; choose one of: {', '.join(EDGE_RULES)}")
    root = Path(root)
    auth: list[tuple[str, Path]] = []
    splc: list[tuple[str, Path]] = []
    masks: list[tuple[str, Path]] = []
    for path in _image_files(root):
        parents = {p.name.lower() for p in path.relative_to(root).parents}
        stem = path.stem
        if stem.endswith("_edgemask"):
            masks.append((stem[: -len("_edgemask")], path))
        elif "edgemask" in parents or "_edgemask" in stem:
            continue  # other renderings of the masks
        elif "4cam_splc" in parents:
            splc.append((stem, path))
        elif "4cam_auth" in parents:
            auth.append((stem, path))
    authentic = _dedupe(auth, "Columbia authentic images")
    spliced = _dedupe(splc, "Columbia spliced images")
    mask_by_stem = _dedupe(masks, "Columbia edge masks")
    if not authentic and not spliced:
        raise _nothing_found("Columbia", root, "4cam_auth/*.tif and 4cam_splc/*.tif (+ 4cam_splc/edgemask/)")
    candidates = [_Candidate(path, 0, "authentic", stem) for stem, path in authentic.items()]
    for stem, path in spliced.items():
        mask = mask_by_stem.get(stem)
        if mask is None:
            warnings.warn(f"Columbia spliced image without edge mask: {path}", DatasetWarning, stacklevel=2)
        candidates.append(_Candidate(path, 1, "splice", stem, mask,
                                     [] if mask is not None else ["no ground-truth mask"]))
    return _materialise(candidates, out_dir, dataset="columbia", polarity=f"edge:{edge_rule}",
                        progress=progress, workers=workers, check_images=check_images, desc="columbia")


# ----------------------------------------------------------------------------------------------------------------
# COVERAGE

_COVERAGE_IMAGE = re.compile(r"^(\d+)(t?)$")
_COVERAGE_MASK = re.compile(r"^(\d+)forged$")


def parse_coverage(root: Path, out_dir: Path, *, progress: bool = True, workers: int | None = None,
                   check_images: bool = True) -> pd.DataFrame:
    """COVERAGE: ``image/N.tif`` (original), ``image/Nt.tif`` (forged), ``mask/Nforged.tif`` (white =
    tampered); ``mask/Ncopy.tif`` and ``mask/Npaste.tif`` (source and target regions) are not used."""
    root = Path(root)
    images: list[tuple[str, Path]] = []
    masks: list[tuple[str, Path]] = []
    for path in _image_files(root):
        folder = path.parent.name.lower()
        if folder == "image" and (match := _COVERAGE_IMAGE.match(path.stem)):
            images.append((path.stem, path))
        elif folder == "mask" and (match := _COVERAGE_MASK.match(path.stem)):
            masks.append((match.group(1), path))
    chosen = _dedupe(images, "COVERAGE images")
    mask_by_number = _dedupe(masks, "COVERAGE masks")
    if not chosen:
        raise _nothing_found("COVERAGE", root, "image/N.tif, image/Nt.tif and mask/Nforged.tif")
    candidates = []
    for stem, path in chosen.items():
        match = _COVERAGE_IMAGE.match(stem)
        number, forged = str(int(match.group(1))), bool(match.group(2))
        if not forged:
            candidates.append(_Candidate(path, 0, "authentic", number))
            continue
        mask = mask_by_number.get(match.group(1))
        if mask is None:
            warnings.warn(f"COVERAGE forged image without mask: {path}", DatasetWarning, stacklevel=2)
        candidates.append(_Candidate(path, 1, "copy-move", number, mask,
                                     [] if mask is not None else ["no ground-truth mask"]))
    return _materialise(candidates, out_dir, dataset="coverage", polarity="white", progress=progress,
                        workers=workers, check_images=check_images, desc="coverage")


# ----------------------------------------------------------------------------------------------------------------
# A user's own folder


def parse_folder(
    root: Path,
    out_dir: Path,
    *,
    images: str = "images",
    masks: str = "masks",
    pattern: str = "{stem}_mask.png",
    polarity: str = "white",
    label_from: str = "mask",
    labels: str | os.PathLike[str] | None = None,
    dataset: str = "folder",
    recursive: bool = False,
    progress: bool = True,
    workers: int | None = None,
    check_images: bool = True,
) -> pd.DataFrame:
    """A user's own images and masks: ``root/<images>/X.ext`` paired with ``root/<masks>/<pattern>``.

    ``pattern`` names a mask from its image's stem: ``"{stem}_mask.png"``, ``"{stem}.png"``; glob characters
    are allowed (``"{stem}_gt.*"``, ``"{stem}*.png"``): the first match in sorted order is used and a warning
    names the others. ``polarity`` is ``"white"`` (light = tampered) or ``"black"``.

    ``label_from="mask"`` (default): label 1 when the image has a mask with at least one tampered pixel, else
    0 (an all-black mask is kept as the authentic image's mask). ``label_from="labels"`` (implied by giving
    ``labels``): labels come from a CSV with columns ``image`` (file name, stem or path relative to ``root``)
    and ``label``, optionally ``group`` and ``kind``; images missing from it are skipped with a warning, and a
    mask on an image labelled 0 is dropped with a warning. ``group`` defaults to the file stem.
    """
    if "{stem}" not in pattern:
        raise ValueError(f"mask pattern {pattern!r} must contain the placeholder {{stem}}")
    if polarity not in ("white", "black"):
        raise ValueError(f"polarity must be 'white' or 'black', not {polarity!r}")
    if labels is not None:
        label_from = "labels"
    if label_from not in ("mask", "labels"):
        raise ValueError(f"label_from must be 'mask' or 'labels', not {label_from!r}")
    if label_from == "labels" and labels is None:
        raise ValueError("label_from='labels' needs a labels CSV (labels=...)")
    root = Path(root)
    image_dir = root / images
    mask_dir = root / masks
    if not image_dir.is_dir():
        raise FileNotFoundError(f"image folder not found: {image_dir}")
    files = _image_files(image_dir)
    if not recursive:
        files = [f for f in files if f.parent == image_dir]
    if not files:
        raise _nothing_found("folder", image_dir, f"image files ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    mask_names = sorted(p.name for p in mask_dir.iterdir() if p.is_file()) if mask_dir.is_dir() else []
    table = _read_labels(labels, root) if labels is not None else None

    candidates = []
    for path in files:
        wanted = pattern.format(stem=path.stem)
        mask = _match_mask(wanted, mask_dir, mask_names, path)
        if table is None:
            candidates.append(_Candidate(path, None, "", path.stem, mask))
            continue
        info = _lookup_label(table, path, image_dir)
        if info is None:
            warnings.warn(f"skipped {path}: not listed in labels file {labels}", DatasetWarning, stacklevel=2)
            continue
        label = info["label"]
        notes = []
        if label == 0 and mask is not None:
            warnings.warn(f"{path} is labelled 0 in {labels} but has mask {mask}; the mask is dropped",
                          DatasetWarning, stacklevel=2)
            mask, notes = None, ["mask dropped: labelled authentic"]
        kind = info.get("kind") or ("tampered" if label else "authentic")
        candidates.append(_Candidate(path, label, kind, info.get("group") or path.stem, mask, notes))
    return _materialise(candidates, out_dir, dataset=dataset, polarity=polarity, progress=progress,
                        workers=workers, check_images=check_images, desc=dataset,
                        label_from_mask=(table is None))


def _match_mask(wanted: str, mask_dir: Path, names: Sequence[str], image: Path) -> Path | None:
    if not any(c in wanted for c in "*?["):
        candidate = mask_dir / wanted
        return candidate if candidate.is_file() else None
    matches = [n for n in names if fnmatch.fnmatchcase(n, wanted)]
    if not matches:
        return None
    if len(matches) > 1:
        warnings.warn(f"several masks match {wanted!r} for {image}: {', '.join(matches)}; using {matches[0]}",
                      DatasetWarning, stacklevel=3)
    return mask_dir / matches[0]


def _read_labels(labels: str | os.PathLike[str], root: Path) -> dict[str, dict]:
    path = Path(labels)
    if not path.is_absolute() and not path.is_file():
        path = root / path
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("image", "label") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: labels CSV lacks column(s) {', '.join(missing)}")
    table: dict[str, dict] = {}
    for row in frame.to_dict("records"):
        try:
            label = int(float(row["label"]))
        except ValueError:
            raise ValueError(f"{path}: label {row['label']!r} of {row['image']!r} is not 0 or 1") from None
        if label not in (0, 1):
            raise ValueError(f"{path}: label {label} of {row['image']!r} is not 0 or 1")
        info = {"label": label, "group": row.get("group", ""), "kind": row.get("kind", "")}
        key = row["image"].strip().replace("\\", "/")
        table[key] = info
    return table


def _lookup_label(table: dict[str, dict], path: Path, image_dir: Path) -> dict | None:
    relative = path.relative_to(image_dir).as_posix()
    for key in (relative, path.name, path.stem, f"{image_dir.name}/{relative}"):
        if key in table:
            return table[key]
    return None


PARSERS: dict[str, Callable[..., pd.DataFrame]] = {
    "casia2": parse_casia2,
    "casia1": parse_casia1,
    "ifs-tc": parse_ifs_tc,
    "columbia": parse_columbia,
    "coverage": parse_coverage,
    "folder": parse_folder,
}
"""Dataset name -> parser (the names of :mod:`helpers.datasets.registry`)."""
