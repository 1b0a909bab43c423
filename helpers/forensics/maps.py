"""The raw map of each forensic trace, as a detector without learning would read it (notebooks 02 and 04).

:mod:`helpers.forensics.separability` scores these maps against the true masks; :mod:`helpers.viz` draws them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from helpers.config import ELA_QUALITY
from helpers.forensics.ela import ela
from helpers.forensics.jpeg import DEFAULT_GHOST_QUALITIES, jpeg_ghosts
from helpers.forensics.noise import local_noise_map, median_residual
from helpers.forensics.srm import srm

__all__ = ["TRACE_MAPS", "trace_maps"]

TRACE_MAPS: tuple[str, ...] = ("ela", "srm", "median_residual", "noise", "ghost")


def trace_maps(
    rgb: np.ndarray,
    *,
    ela_quality: int = ELA_QUALITY,
    ghost_qualities: Sequence[int] = tuple(DEFAULT_GHOST_QUALITIES),
    maps: Sequence[str] = TRACE_MAPS,
) -> dict[str, np.ndarray]:
    """One float32 ``(H, W)`` map per trace, as a detector without learning would read it.

    * ``ela``: the error level at ``ela_quality``, averaged over the colour channels;
    * ``srm``: the magnitude of Zhou et al.'s three SRM residuals, averaged;
    * ``median_residual``: the magnitude of the median-filter residual, averaged over channels;
    * ``noise``: the block-wise noise level (16x16 blocks);
    * ``ghost``: how much darker a pixel is than the map's median in its most telling JPEG ghost (the
      largest drop over the qualities tried): a region once saved at a lower quality stands out there.
    """
    unknown = set(maps) - set(TRACE_MAPS)
    if unknown:
        raise ValueError(f"unknown trace maps {sorted(unknown)}; choose from {TRACE_MAPS}")
    out: dict[str, np.ndarray] = {}
    if "ela" in maps:
        out["ela"] = ela(rgb, ela_quality).mean(axis=2, dtype=np.float32)
    if "srm" in maps:
        out["srm"] = np.abs(srm(rgb, "zhou3")).mean(axis=2)
    if "median_residual" in maps:
        out["median_residual"] = np.abs(median_residual(rgb)).mean(axis=2)
    if "noise" in maps:
        out["noise"] = local_noise_map(rgb)
    if "ghost" in maps:
        ghosts = jpeg_ghosts(rgb, ghost_qualities)
        medians = np.median(ghosts.reshape(len(ghosts), -1), axis=1)[:, None, None]
        out["ghost"] = (medians - ghosts).max(axis=0).astype(np.float32)
    return out
