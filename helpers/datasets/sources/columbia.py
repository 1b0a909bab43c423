"""Columbia Uncompressed Image Splicing (notebook 01).

``4cam_auth/*.tif|bmp`` (authentic), ``4cam_splc/*.tif|bmp`` (spliced) and ``4cam_splc/edgemask/<stem>_edgemask.jpg``
colour masks, turned binary by an ``edge_rule`` (:mod:`helpers.datasets.sources.masks`). The names give the two
cameras (``canong3_canonxt_sub_01``) but not which authentic photos were used, so group = file stem for spliced
and authentic images alike (``canong3_02_sub_01``). Splits of Columbia are therefore only image-disjoint, not
scene-disjoint.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from helpers.datasets.sources.base import Candidate, DatasetWarning, dedupe, image_files, materialise, nothing_found
from helpers.datasets.sources.masks import EDGE_RULES

__all__ = ["parse_columbia"]


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
    for path in image_files(root):
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
    authentic = dedupe(auth, "Columbia authentic images")
    spliced = dedupe(splc, "Columbia spliced images")
    mask_by_stem = dedupe(masks, "Columbia edge masks")
    if not authentic and not spliced:
        raise nothing_found("Columbia", root, "4cam_auth/*.tif and 4cam_splc/*.tif (+ 4cam_splc/edgemask/)")
    candidates = [Candidate(path, 0, "authentic", stem) for stem, path in authentic.items()]
    for stem, path in spliced.items():
        mask = mask_by_stem.get(stem)
        if mask is None:
            warnings.warn(f"Columbia spliced image without edge mask: {path}", DatasetWarning, stacklevel=2)
        candidates.append(Candidate(path, 1, "splice", stem, mask,
                                     [] if mask is not None else ["no ground-truth mask"]))
    return materialise(candidates, out_dir, dataset="columbia", polarity=f"edge:{edge_rule}",
                        progress=progress, workers=workers, check_images=check_images, desc="columbia")
