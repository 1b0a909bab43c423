"""SRM noise residuals: fixed high-pass filters that suppress image content and keep the noise.

Splicing and retouching change the local noise statistics (sensor noise, demosaicking and JPEG traces) even
where the content looks seamless. Rich-model filters predict each pixel from its neighbours and keep the
prediction error, which is mostly noise. Two banks are provided:

``"zhou3"`` -- the three 5x5 filters of the RGB-N noise stream (Zhou, Han, Morariu, Davis, "Learning Rich
Features for Image Manipulation Detection", CVPR 2018), with the kernels and normalisation of the authors'
code (github.com/pengzhou1108/RGB-N, ``lib/nets/resnet_fusion.py``), in that code's channel order:

    0. ``KV``: the 5x5 SQUARE filter ``[[-1,2,-2,2,-1],[2,-6,8,-6,2],[-2,8,-12,8,-2],[2,-6,8,-6,2],[-1,2,-2,2,-1]]
       / 12``;
    1. the 3x3 SQUARE (second-order) filter ``[[-1,2,-1],[2,-4,2],[-1,2,-1]] / 4``, centred in 5x5;
    2. the horizontal second-order filter ``[1,-2,1] / 2``, centred in 5x5.

   (Ports that write ``q = [4.0, 12.0, 2.0]`` list the same three kernels with the first two swapped.)
   RGB-N builds a ``5x5x3x3`` kernel with ``W[:, :, c, k] = filter_k`` for every input channel ``c``: each
   output channel applies one filter to **the sum of the three colour channels** (not one filter per colour
   channel). We keep that convention, so output ``k`` is ``filter_k * (R + G + B)``.

``"full30"`` -- the 30 basic high-pass filters of the spatial rich model (Fridrich & Kodovsky, "Rich Models
for Steganalysis of Digital Images", IEEE TIFS 2012), applied to the grey image ``(R + G + B) / 3``:

    * ``1st`` order, 8 kernels: ``x[c + d] - x[c]`` for the 8 neighbour directions ``d``;
    * ``2nd`` order, 4 kernels: ``x[c - d] - 2 x[c] + x[c + d]`` (horizontal, vertical, two diagonals);
    * ``3rd`` order, 8 kernels: ``x[c - d] - 3 x[c] + 3 x[c + d] - x[c + 2d]`` (8 directions, 5x5 support);
    * ``SQUARE 3x3`` (1), ``EDGE 3x3`` (4 rotations of its top two rows), ``SQUARE 5x5`` (= KV, 1) and
      ``EDGE 5x5`` (4 rotations of KV's top three rows),

  in that order, 8 + 4 + 8 + 1 + 4 + 1 + 4 = 30, every kernel centred in 5x5 and divided by its class's
  normaliser ``q`` = 1, 2, 3, 4, 4, 12, 12 (the residual order, i.e. the smallest quantisation step of the SRM,
  so that one unit of output is about one quantisation bin). Directions run counter-clockwise from "right".

Conventions shared by :func:`srm` and the Keras layer :class:`helpers.models.layers.SRMLayer` (equal within
1e-6 on integer-valued inputs, see ``tests/test_layers.py``):

* input: an RGB image in **0..255** (``uint8``, or float on the same scale);
* correlation (not flipped convolution), as ``cv2.filter2D`` and ``keras.ops.conv`` both compute;
* borders: **reflect-101** padding (``cv2.BORDER_REFLECT_101``, ``keras.ops.pad(mode="reflect")``). RGB-N used
  zero 'SAME' padding, which turns the image frame into a strong false edge two pixels wide; reflection gives
  zero output on flat content everywhere, and both padding choices agree away from the 2-pixel border;
* arithmetic: the integer kernels are applied first (exact in float32 for integer inputs, whatever order the
  backend sums in) and the result divided by ``q`` (and by 3 for the grey image of ``full30``);
* truncation: outputs clipped to ``[-truncate, truncate]``, default :data:`DEFAULT_TRUNCATE` = 3 (the
  ``Hardtanh(-3, 3)`` of the widely used PyTorch SRM layers; Fridrich's SRM truncates quantised residuals at
  T = 2). Truncation keeps strong edges from dominating the noise statistics. ``None`` disables it (RGB-N's own
  TensorFlow code does not truncate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

__all__ = ["SRM_BANKS", "SRMBank", "DEFAULT_TRUNCATE", "SRMKernels", "srm_kernels", "srm"]

SRMBank = Literal["zhou3", "full30"]
SRM_BANKS: tuple[str, ...] = ("zhou3", "full30")

DEFAULT_TRUNCATE: float = 3.0
"""Default clipping bound of :func:`srm` and ``SRMLayer`` (see the module docstring for why)."""

_KV = np.array(
    [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]],
    dtype=np.int64,
)
_SQUARE3 = np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]], dtype=np.int64)
_EDGE3 = np.array([[-1, 2, -1], [2, -4, 2], [0, 0, 0]], dtype=np.int64)
_EDGE5 = np.concatenate([_KV[:3], np.zeros((2, 5), dtype=np.int64)])
# (row, column) steps, counter-clockwise from "right"; rows grow downwards as in an image.
_DIRECTIONS8 = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))
_DIRECTIONS4 = _DIRECTIONS8[:4]


@dataclass(frozen=True)
class SRMKernels:
    """One filter bank in the form both implementations use.

    ``kernels`` holds the integer-valued 5x5 filters, shape ``(5, 5, C)``, as float32; ``divisors`` the float32
    numbers each filtered channel is divided by, shape ``(C,)``; ``channel_weights`` how the colour channels are
    mixed before filtering (``(1, 1, 1)``: their sum). ``names`` labels the output channels.
    """

    bank: str
    kernels: np.ndarray
    divisors: np.ndarray
    channel_weights: tuple[float, float, float]
    names: tuple[str, ...]

    @property
    def channels(self) -> int:
        return int(self.kernels.shape[2])

    def conv_kernel(self) -> np.ndarray:
        """The ``(5, 5, 3, C)`` (HWIO) kernel applying every filter to the channel-weighted sum of R, G, B."""
        weights = np.asarray(self.channel_weights, dtype=np.float32)
        return np.ascontiguousarray(self.kernels[:, :, None, :] * weights[None, None, :, None])


def _centred(kernel: np.ndarray) -> np.ndarray:
    out = np.zeros((5, 5), dtype=np.int64)
    offset = (5 - kernel.shape[0]) // 2
    out[offset : offset + kernel.shape[0], offset : offset + kernel.shape[1]] = kernel
    return out


def _directional(taps: dict[int, int], direction: tuple[int, int]) -> np.ndarray:
    """A 5x5 kernel with ``taps[k]`` at ``centre + k * direction``."""
    out = np.zeros((5, 5), dtype=np.int64)
    for step, value in taps.items():
        out[2 + step * direction[0], 2 + step * direction[1]] = value
    return out


def _full30() -> tuple[list[np.ndarray], list[float], list[str]]:
    kernels: list[np.ndarray] = []
    divisors: list[float] = []
    names: list[str] = []

    def add(kernel: np.ndarray, q: float, name: str) -> None:
        kernels.append(kernel)
        divisors.append(q)
        names.append(name)

    for i, d in enumerate(_DIRECTIONS8):
        add(_directional({0: -1, 1: 1}, d), 1.0, f"1st_{i}")
    for i, d in enumerate(_DIRECTIONS4):
        add(_directional({-1: 1, 0: -2, 1: 1}, d), 2.0, f"2nd_{i}")
    for i, d in enumerate(_DIRECTIONS8):
        add(_directional({-1: 1, 0: -3, 1: 3, 2: -1}, d), 3.0, f"3rd_{i}")
    add(_centred(_SQUARE3), 4.0, "square3x3")
    for i in range(4):
        add(_centred(np.rot90(_EDGE3, i)), 4.0, f"edge3x3_{i}")
    add(_KV.copy(), 12.0, "square5x5")
    for i in range(4):
        add(np.rot90(_EDGE5, i).copy(), 12.0, f"edge5x5_{i}")
    return kernels, divisors, names


def srm_kernels(bank: SRMBank = "zhou3") -> SRMKernels:
    """The filters of ``bank`` (``"zhou3"`` or ``"full30"``), see the module docstring."""
    if bank == "zhou3":
        kernels = [_KV, _centred(_SQUARE3), _directional({-1: 1, 0: -2, 1: 1}, (0, 1))]
        divisors = [12.0, 4.0, 2.0]
        names = ["kv5x5", "square3x3", "2nd_horizontal"]
        weights = (1.0, 1.0, 1.0)
    elif bank == "full30":
        kernels, q, names = _full30()
        divisors = [3.0 * value for value in q]  # the grey image (R + G + B) / 3, folded into the divisor
        weights = (1.0, 1.0, 1.0)
    else:
        raise ValueError(f"bank must be one of {SRM_BANKS}, not {bank!r}")
    stack = np.stack(kernels, axis=2).astype(np.float32)
    return SRMKernels(
        bank=bank,
        kernels=stack,
        divisors=np.asarray(divisors, dtype=np.float32),
        channel_weights=weights,
        names=tuple(names),
    )


def srm(
    rgb: np.ndarray,
    bank: SRMBank = "zhou3",
    *,
    truncate: float | None = DEFAULT_TRUNCATE,
) -> np.ndarray:
    """SRM residuals of an RGB image on the 0..255 scale, as float32 ``(H, W, C)``.

    ``C`` is 3 for ``"zhou3"`` and 30 for ``"full30"``. ``truncate`` clips the output to
    ``[-truncate, truncate]`` (``None``: no clipping). Images must be at least 3x3 (reflect padding of 2).
    Float input is computed in float32 (exact for integer values, as ``uint8`` input always is).
    """
    image = _check_image(rgb)
    if truncate is not None:
        truncate = float(truncate)
        if not truncate > 0:
            raise ValueError(f"truncate must be a positive number or None, not {truncate!r}")
    bank_kernels = srm_kernels(bank)
    # Integer inputs stay exact: the sum of three 0..255 values and every partial sum of an integer filter
    # response fit easily in float32's 24-bit mantissa.
    weights = np.asarray([bank_kernels.channel_weights], dtype=np.float32)
    mixed = cv2.transform(np.ascontiguousarray(image, dtype=np.float32), weights)
    height, width = mixed.shape
    # Filter into contiguous planes and interleave once at the end (cv2.merge): writing each plane straight
    # into a channels-last array is a strided scatter, slower than the whole computation.
    planes = np.empty((bank_kernels.channels, height, width), dtype=np.float32)
    for index in range(bank_kernels.channels):
        kernel = _trim(bank_kernels.kernels[:, :, index])
        plane = planes[index]
        cv2.filter2D(mixed, cv2.CV_32F, kernel, dst=plane, borderType=cv2.BORDER_REFLECT_101)
        np.divide(plane, bank_kernels.divisors[index], out=plane)
    if truncate is not None:
        np.clip(planes, -truncate, truncate, out=planes)
    return cv2.merge(list(planes))


def _trim(kernel: np.ndarray) -> np.ndarray:
    """Drop all-zero outer rings (a 3x3 filter padded to 5x5 costs 25 multiplies instead of 9).

    The result is identical: the dropped taps only ever added exact zeros, and the anchor stays the centre.
    """
    while kernel.shape[0] > 1 and not (kernel[0].any() or kernel[-1].any() or kernel[:, 0].any() or kernel[:, -1].any()):
        kernel = kernel[1:-1, 1:-1]
    return np.ascontiguousarray(kernel)


def _check_image(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray):
        raise TypeError(f"expected a NumPy array, not {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected shape (H, W, 3), not {rgb.shape}")
    if rgb.shape[0] < 3 or rgb.shape[1] < 3:
        raise ValueError(f"SRM needs an image of at least 3x3 pixels, not {rgb.shape[1]}x{rgb.shape[0]}")
    if rgb.dtype != np.uint8 and not np.issubdtype(rgb.dtype, np.floating):
        raise ValueError(f"expected uint8 or a float array on the 0..255 scale, not {rgb.dtype}")
    return rgb
