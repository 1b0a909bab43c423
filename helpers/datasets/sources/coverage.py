"""COVERAGE, a copy-move set with similar-but-genuine objects (notebook 01).

``image/N.tif`` (original) and ``image/Nt.tif`` (forged) share group ``N``; kind ``copy-move``; masks
``mask/Nforged.tif`` are white = tampered (``mask/Ncopy.tif`` and ``mask/Npaste.tif``, the source and target
regions, are not used).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd

from helpers.datasets.sources.base import Candidate, DatasetWarning, dedupe, image_files, materialise, nothing_found

__all__ = ["parse_coverage"]

_COVERAGE_IMAGE = re.compile(r"^(\d+)(t?)$")
_COVERAGE_MASK = re.compile(r"^(\d+)forged$")


def parse_coverage(root: Path, out_dir: Path, *, progress: bool = True, workers: int | None = None,
                   check_images: bool = True) -> pd.DataFrame:
    """COVERAGE: ``image/N.tif`` (original), ``image/Nt.tif`` (forged), ``mask/Nforged.tif`` (white =
    tampered); ``mask/Ncopy.tif`` and ``mask/Npaste.tif`` (source and target regions) are not used."""
    root = Path(root)
    images: list[tuple[str, Path]] = []
    masks: list[tuple[str, Path]] = []
    for path in image_files(root):
        folder = path.parent.name.lower()
        if folder == "image" and (match := _COVERAGE_IMAGE.match(path.stem)):
            images.append((path.stem, path))
        elif folder == "mask" and (match := _COVERAGE_MASK.match(path.stem)):
            masks.append((match.group(1), path))
    chosen = dedupe(images, "COVERAGE images")
    mask_by_number = dedupe(masks, "COVERAGE masks")
    if not chosen:
        raise nothing_found("COVERAGE", root, "image/N.tif, image/Nt.tif and mask/Nforged.tif")
    candidates = []
    for stem, path in chosen.items():
        match = _COVERAGE_IMAGE.match(stem)
        number, forged = str(int(match.group(1))), bool(match.group(2))
        if not forged:
            candidates.append(Candidate(path, 0, "authentic", number))
            continue
        mask = mask_by_number.get(match.group(1))
        if mask is None:
            warnings.warn(f"COVERAGE forged image without mask: {path}", DatasetWarning, stacklevel=2)
        candidates.append(Candidate(path, 1, "copy-move", number, mask,
                                     [] if mask is not None else ["no ground-truth mask"]))
    return materialise(candidates, out_dir, dataset="coverage", polarity="white", progress=progress,
                        workers=workers, check_images=check_images, desc="coverage")
