"""The field's datasets as manifests (notebook 01): one module per on-disk layout, and their shared parts.

* :mod:`~helpers.datasets.sources.base` -- the row schema, file discovery by name, the per-image checks that
  every parser runs (unreadable images are skipped with a :class:`DatasetWarning`, never fatal);
* :mod:`~helpers.datasets.sources.masks` -- mask normalisation: polarity, binarisation, size repair, Columbia's
  colour edge masks;
* :mod:`~helpers.datasets.sources.casia` (CASIA v1 and v2, with source-aware groups),
  :mod:`~helpers.datasets.sources.ifs_tc` (IEEE IFS-TC phase 1), :mod:`~helpers.datasets.sources.columbia`
  (Columbia Uncompressed), :mod:`~helpers.datasets.sources.coverage` (COVERAGE) and
  :mod:`~helpers.datasets.sources.folder` (a user's own images and masks).

``group`` in every parser's rows names the source photograph(s) behind an image, so that a split
(:mod:`helpers.datasets.splits`) never puts a tampered image and the authentic photo it was made from on
different sides; each layout module says how its names give the groups away (or do not). :data:`PARSERS`
maps the dataset names of :mod:`helpers.datasets.registry` to parsers.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from helpers.datasets.sources.base import COLUMNS, IMAGE_EXTENSIONS, DatasetWarning
from helpers.datasets.sources.casia import casia_sources, parse_casia1, parse_casia2
from helpers.datasets.sources.columbia import parse_columbia
from helpers.datasets.sources.coverage import parse_coverage
from helpers.datasets.sources.folder import parse_folder
from helpers.datasets.sources.ifs_tc import parse_ifs_tc
from helpers.datasets.sources.masks import EDGE_RULES, edge_mask_to_binary, fit_mask_to_image

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

PARSERS: dict[str, Callable[..., pd.DataFrame]] = {
    "casia2": parse_casia2,
    "casia1": parse_casia1,
    "ifs-tc": parse_ifs_tc,
    "columbia": parse_columbia,
    "coverage": parse_coverage,
    "folder": parse_folder,
}
"""Dataset name -> parser (the names of :mod:`helpers.datasets.registry`)."""
