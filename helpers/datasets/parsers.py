"""The dataset parsers' former home (notebook 01), kept so that ``helpers.datasets.parsers`` imports still work.

The parsers live in :mod:`helpers.datasets.sources`, one module per dataset layout; every public name is
re-exported here unchanged.
"""

from helpers.datasets.sources import (
    COLUMNS,
    EDGE_RULES,
    IMAGE_EXTENSIONS,
    PARSERS,
    DatasetWarning,
    casia_sources,
    edge_mask_to_binary,
    fit_mask_to_image,
    parse_casia1,
    parse_casia2,
    parse_columbia,
    parse_coverage,
    parse_folder,
    parse_ifs_tc,
)

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
