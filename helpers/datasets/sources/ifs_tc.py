"""IEEE IFS-TC Image Forensics Challenge, phase-01 training set (notebook 01).

``pristine/*.png`` (authentic) and ``fake/*.png`` with masks ``fake/<stem>.mask.png`` where BLACK = tampered
(inverted here, :mod:`helpers.datasets.sources.masks`). The names carry no source information: group = file
stem; kind ``unknown`` for fakes.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from helpers.datasets.sources.base import Candidate, DatasetWarning, dedupe, image_files, materialise, nothing_found

__all__ = ["parse_ifs_tc"]


def parse_ifs_tc(root: Path, out_dir: Path, *, progress: bool = True, workers: int | None = None,
                 check_images: bool = True) -> pd.DataFrame:
    """IEEE IFS-TC Image Forensics Challenge, phase-01 training: ``pristine/*.png`` (authentic) and
    ``fake/*.png`` with masks ``fake/<stem>.mask.png`` where BLACK = tampered (inverted here)."""
    root = Path(root)
    images: list[tuple[str, Path]] = []
    masks: list[tuple[str, Path]] = []
    for path in image_files(root):
        folder = path.parent.name.lower()
        if folder not in ("fake", "pristine"):
            continue
        if path.name.lower().endswith(".mask" + path.suffix.lower()) or path.stem.lower().endswith(".mask"):
            masks.append((path.stem[: -len(".mask")], path))
        else:
            images.append((f"{folder}/{path.stem}", path))
    chosen = dedupe(images, "IFS-TC images")
    mask_by_stem = dedupe(masks, "IFS-TC masks")
    if not chosen:
        raise nothing_found("IFS-TC", root, "fake/*.png (with *.mask.png) and pristine/*.png")
    candidates = []
    for key, path in chosen.items():
        stem = path.stem
        if key.startswith("pristine/"):
            candidates.append(Candidate(path, 0, "authentic", stem))
        else:
            mask = mask_by_stem.get(stem)
            notes = [] if mask is not None else ["no ground-truth mask"]
            if mask is None:
                warnings.warn(f"IFS-TC fake image without mask: {path}", DatasetWarning, stacklevel=2)
            candidates.append(Candidate(path, 1, "unknown", stem, mask, notes))
    return materialise(candidates, out_dir, dataset="ifs-tc", polarity="black", progress=progress,
                        workers=workers, check_images=check_images, desc="ifs-tc")
