"""What every dataset parser shares (notebook 01): the row schema, file discovery, and the per-image checks.

Every parser has the signature ``parse_<name>(root, out_dir, *, progress=True, ...) -> pandas.DataFrame`` and
returns one row per usable image with the columns :data:`COLUMNS` (``image, mask, label, dataset, group,
kind, width, height, note``). ``image`` is the *original* file (absolute path); ``mask`` is a *normalised*
mask (:mod:`helpers.datasets.sources.masks`) the parser wrote to ``out_dir/masks/<stem>.png`` (absolute path,
``""`` when the image has none). Write the result with ``write_manifest(df, out_dir / "manifest.csv")``, which
turns both into paths relative to the manifest.

Parsers find files by *name*, searching ``root`` recursively (:func:`image_files`), rather than by fixed
folder paths: the archives of these datasets circulate in several repackagings (an extra top folder, ``Tp/``
vs ``Modified Tp/Tp/``, ``4cam_splc/4cam_splc/``, a ground-truth archive unpacked beside the images). macOS
debris (``__MACOSX/``, ``._*``) and hidden files are ignored. A parser that finds no image of its dataset
raises ``FileNotFoundError`` saying what it looked for (:func:`nothing_found`).

A parser lists :class:`Candidate` s and hands them to :func:`materialise`, which checks them in a process
pool. Images that cannot be decoded (:class:`~helpers.imageio.ImageLoadError`: corrupt, truncated, not an
image) are skipped with a :class:`DatasetWarning`; they never stop the run. A mask that cannot be decoded
leaves its (tampered) image in the manifest without a mask, again with a warning. Every image is decoded once
in full (``check_images=True``), which is what catches truncated files; pass ``check_images=False`` to read
headers only.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from helpers.datasets.sources.masks import fit_mask_to_image, read_mask
from helpers.imageio import ImageLoadError, image_size, load_rgb, save_png
from helpers.parallel import default_workers, process_map

__all__ = [
    "COLUMNS",
    "IMAGE_EXTENSIONS",
    "DatasetWarning",
    "Candidate",
    "materialise",
    "image_files",
    "dedupe",
    "nothing_found",
]

COLUMNS: tuple[str, ...] = ("image", "mask", "label", "dataset", "group", "kind", "width", "height", "note")
"""Columns of every parser's DataFrame, in this order."""

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp"}
)

_PARALLEL_THRESHOLD = 64
"""Below this many images the work runs in this process: spawning workers would cost more than it saves."""


class DatasetWarning(UserWarning):
    """A file a parser skipped or repaired (unreadable image, mask of the wrong size, missing mask, ...)."""


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
        mask = read_mask(task.mask_src, task.polarity)
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
class Candidate:
    """One image a parser found, before its image and mask are checked."""

    image: Path
    label: int | None
    kind: str
    group: str
    mask_src: Path | None = None
    notes: list[str] = field(default_factory=list)


def materialise(
    candidates: Sequence[Candidate],
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


# File discovery


def image_files(root: Path) -> list[Path]:
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


def dedupe(items: Iterable[tuple[str, Path]], what: str) -> dict[str, Path]:
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


def nothing_found(dataset: str, root: Path, expected: str) -> FileNotFoundError:
    """The error a parser raises when ``root`` holds no image of ``dataset``, saying what it looked for."""
    return FileNotFoundError(f"no {dataset} images found under {root}; expected {expected}")
