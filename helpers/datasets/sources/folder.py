"""A user's own folder of images and masks (notebook 01): ``root/images/X.ext`` with ``root/masks/X_mask.png``.

The mask pattern, polarity and where labels come from (the masks, or a labels CSV with optional ``group`` and
``kind`` columns) are parameters of :func:`parse_folder`; group defaults to the file stem.
"""

from __future__ import annotations

import fnmatch
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from helpers.datasets.sources.base import (
    IMAGE_EXTENSIONS,
    Candidate,
    DatasetWarning,
    image_files,
    materialise,
    nothing_found,
)

__all__ = ["parse_folder"]


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
    files = image_files(image_dir)
    if not recursive:
        files = [f for f in files if f.parent == image_dir]
    if not files:
        raise nothing_found("folder", image_dir, f"image files ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    mask_names = sorted(p.name for p in mask_dir.iterdir() if p.is_file()) if mask_dir.is_dir() else []
    table = _read_labels(labels, root) if labels is not None else None

    candidates = []
    for path in files:
        wanted = pattern.format(stem=path.stem)
        mask = _match_mask(wanted, mask_dir, mask_names, path)
        if table is None:
            candidates.append(Candidate(path, None, "", path.stem, mask))
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
        candidates.append(Candidate(path, label, kind, info.get("group") or path.stem, mask, notes))
    return materialise(candidates, out_dir, dataset=dataset, polarity=polarity, progress=progress,
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
