"""CASIA v1.0 and v2.0 (notebook 01): the most used splicing and copy-move sets, with source-aware groups.

Layouts: v2 ``Au/Au_*``, ``Tp/Tp_*`` and ground truth ``CASIA 2 Groundtruth/Tp_*_gt.png``; v1 ``Au/Au_*.jpg``,
tampered ``Sp/`` and ``CM/`` ``Sp_*.jpg`` and the "CASIA 1.0 groundtruth" release's ``*_gt.png``. Masks are
white = tampered (:mod:`helpers.datasets.sources.masks`).

Groups (for group-aware splits): CASIA v2 ``Tp_D_CND_M_N_ani00018_sec00096_00138.tif`` was made from
``Au_ani_00018`` and ``Au_sec_00096`` (the two name fields of the form *three-letter category + number*, mapped
to ``Au_<cat>_<num>``); CASIA v1 ``Sp_D_CND_A_pla0005_pla0023_0281.jpg`` from ``Au_pla_0005`` and
``Au_pla_0023``. A splice links two sources, so groups are the connected components of the graph {tampered
image - its sources} (union-find): all images that share any source, directly or through a chain, get one
group, named by the component's lexicographically smallest member (an ``Au_...`` id whenever the component
has a source). ``Tp_S``/``Sp_S`` (same source twice) are ``copy-move``; ``Tp_D``/``Sp_D`` are ``splice``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from helpers.datasets.sources.base import Candidate, DatasetWarning, dedupe, image_files, materialise, nothing_found

__all__ = ["casia_sources", "parse_casia1", "parse_casia2"]

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
    for path in image_files(root):
        stem = path.stem
        suffix = next((s for s in _GT_SUFFIXES if stem.endswith(s)), None)
        if suffix and stem.startswith(("Tp_", "Sp_")):
            mask_items.append((stem[: -len(suffix)], path))
        elif stem.startswith("Au_"):
            authentic_items.append((stem, path))
        elif stem.startswith(("Tp_", "Sp_")):
            tampered_items.append((stem, path))
    authentic = dedupe(authentic_items, f"{dataset} authentic images")
    tampered = dedupe(tampered_items, f"{dataset} tampered images")
    masks = dedupe(mask_items, f"{dataset} ground-truth masks")
    if not authentic and not tampered:
        raise nothing_found(dataset, root, "Au_*.jpg authentic and Tp_*/Sp_* tampered images (Au/, Tp/ or Sp/, CM/)")
    groups = _casia_groups(authentic, tampered)
    candidates = [Candidate(path, 0, "authentic", groups[stem]) for stem, path in authentic.items()]
    missing = 0
    for stem, path in tampered.items():
        mask = masks.get(stem)
        notes = []
        if mask is None:
            missing += 1
            notes.append("no ground-truth mask")
        candidates.append(Candidate(path, 1, _casia_kind(stem), groups[stem], mask, notes))
    if missing:
        warnings.warn(f"{dataset}: {missing} of {len(tampered)} tampered images have no ground-truth mask "
                      f"(*_gt.png); they are kept without one", DatasetWarning, stacklevel=3)
    return materialise(candidates, out_dir, dataset=dataset, polarity="white", progress=progress,
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
