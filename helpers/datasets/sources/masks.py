"""Mask normalisation (notebook 01): every dataset's masks become single-channel PNGs, 255 = tampered.

A normalised mask is exactly the size of its image (upright, i.e. after EXIF orientation, as
:func:`helpers.imageio.load_rgb` returns it). Steps:

1. *Polarity.* ``white``: light pixels are tampered (CASIA v1/v2 ground truth, COVERAGE). ``black``: dark
   pixels are tampered (IEEE IFS-TC phase-01 ``*.mask.png``), so the mask is inverted. ``edge``: Columbia's
   colour edge masks, see below.
2. *Binarisation.* Grey or anti-aliased masks are thresholded on their luminance: tampered when the value,
   after polarity, is above 127 (for ``black``: the stored value is at most 127).
3. *Size.* When the mask's size differs from its image's (it happens in CASIA v2 and COVERAGE):

   * the mask is exactly the transpose (width and height swapped) -> it is transposed;
   * else the aspect ratios agree within 1 % (``|mask w/h - image w/h| <= 0.01 * image w/h``) -> it is
     resized to the image's size with nearest-neighbour interpolation;
   * else the row is **excluded** and a :class:`~helpers.datasets.sources.base.DatasetWarning` names both
     files and both sizes.

   What was done is recorded in the row's ``note``.

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
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from helpers.imageio import load_mask, load_rgb

__all__ = ["EDGE_RULES", "fit_mask_to_image", "edge_mask_to_binary", "read_mask"]

EDGE_RULES: tuple[str, ...] = ("green", "red", "green-or-blue")

_ASPECT_TOLERANCE = 0.01


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


def read_mask(path: str, polarity: str) -> np.ndarray:
    """Read a mask file as ``bool`` (True = tampered) according to ``polarity``; raises ImageLoadError."""
    if polarity == "white":
        return load_mask(path)
    if polarity == "black":
        return ~load_mask(path)
    if polarity.startswith("edge"):
        _, _, rule = polarity.partition(":")
        return edge_mask_to_binary(load_rgb(path), rule or "green")
    raise ValueError(f"unknown mask polarity {polarity!r}; use 'white', 'black' or 'edge[:rule]'")
