"""The stream table: every named model input, its channels, how it is computed and how it is scaled (notebook 06).

A *stream* is one view of an image that a model reads: the pixels themselves, or a forensic trace of them.
Batches (training), models (their named inputs) and inference (tiles of a whole image) all read this one table,
so a stream means the same thing everywhere. Every stream is computed **on the whole image, after
augmentation and before cropping or tiling**: traces such as ELA and JPEG ghosts depend on the 8x8 block grid,
which a crop or a tile would move.

| stream  | channels | computed from the image                                            | scaled to            |
|---------|----------|--------------------------------------------------------------------|----------------------|
| `rgb`   | 3        | the pixels                                                         | / 255 (0..1)         |
| `ela`   | 3        | error level analysis: abs(image - JPEG re-save at quality 90)      | / 16, clipped at 4   |
| `srm`   | 3        | Zhou et al.'s three SRM high-pass residuals, truncated at 2        | / 2 (-1..1)          |
| `noise` | 1        | local noise level (median absolute Laplacian-like residual, 16 px) | log, minus image median |
| `dq`    | 2        | per 8x8 block on the detected grid, Lin et al.'s log-likelihood ratio of single vs double quantisation, raw and 3x3-block averaged | / 10, clipped at 1 |
| `ghost` | 6        | JPEG ghost curve: luminance re-saved at 5 qualities, 8x8-averaged squared differences, each divided by their sum (the curve's shape, texture cancels), plus their log magnitude relative to the image median | shares 0..1; log ratio |

Why these: RGB carries content (edges of a pasted object, lighting); ELA and the ghost curve carry compression
history (a region pasted from another JPEG, or an inpainted one, was not compressed with the rest of the image,
Farid 2009); SRM and the noise level carry the camera's noise (a region from another camera, or one that was
blurred, resampled or denoised, has another noise level, Mahdian & Saic 2009; Zhou et al. 2018). Per-image
normalisation (ratios, log relative to the image median) makes the traces comparable across images of
different texture and quality, which is what lets a small network transfer to real forgeries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from helpers.config import ELA_QUALITY
from helpers.forensics.blocks import blocks_to_pixels, block_dct, estimate_jpeg_grid, estimate_quantisation_steps, luminance
from helpers.forensics.dq import dq_log_likelihood_ratio
from helpers.forensics.ela import ela as ela_map
from helpers.forensics.noise import local_noise_map
from helpers.forensics.srm import srm as srm_map
from helpers.imageio import check_rgb

__all__ = [
    "Stream",
    "STREAMS",
    "GHOST_QUALITIES",
    "ELA_QUALITY",
    "stream_channels",
    "compute_streams",
    "stream_table",
]

GHOST_QUALITIES: tuple[int, ...] = (55, 65, 75, 85, 95)
"""Re-save qualities of the ghost stream: they bracket the qualities real JPEGs are saved at."""

_EPS = np.float32(1e-3)


@dataclass(frozen=True)
class Stream:
    """One model input: its name, channel count, what it shows, and how to compute it (already scaled)."""

    name: str
    channels: int
    description: str
    compute: Callable[[np.ndarray], np.ndarray]
    """``uint8 (H, W, 3)`` image -> ``float32 (H, W, channels)``, scaled for a model."""


def _rgb(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) * np.float32(1.0 / 255.0)


def _ela(rgb: np.ndarray) -> np.ndarray:
    levels = ela_map(rgb, ELA_QUALITY, mode="raw").astype(np.float32)
    return np.minimum(levels * np.float32(1.0 / 16.0), np.float32(4.0))


def _srm(rgb: np.ndarray) -> np.ndarray:
    return srm_map(rgb, "zhou3", truncate=2.0) * np.float32(0.5)


def _noise(rgb: np.ndarray) -> np.ndarray:
    level = np.log(local_noise_map(rgb, 16) + np.float32(0.25))
    return (level - np.float32(np.median(level)))[..., None].astype(np.float32)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _resave(gray: np.ndarray, quality: int) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 greyscale array
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)


def ghost_curve(rgb: np.ndarray, qualities: Sequence[int] = GHOST_QUALITIES) -> np.ndarray:
    """The JPEG ghost stream, ``float32 (H, W, len(qualities) + 1)``.

    For each quality ``q``, the squared difference between the luminance and its JPEG re-save at ``q``,
    averaged over 8x8 neighbourhoods (Farid 2009). A region last saved at quality ``q0`` changes little when
    re-saved at ``q0`` (a "ghost"), so the *shape* of the curve over ``q`` tells each region's compression
    history: the first channels are each difference divided by their sum (texture, which scales every
    difference alike, cancels); the last is the log of the total relative to the image's median.
    """
    gray = _luminance(check_rgb(rgb, "compute the ghost stream of"))
    ref = gray.astype(np.float32)
    curves = []
    for quality in qualities:
        diff = ref - _resave(gray, quality)
        curves.append(cv2.blur(diff * diff, (8, 8), borderType=cv2.BORDER_REFLECT_101))
    stack = np.stack(curves, axis=-1)
    total = stack.sum(axis=-1, keepdims=True) + _EPS
    shares = stack / total
    log_total = np.log(total)
    log_total -= np.float32(np.median(log_total))
    return np.concatenate([shares, log_total], axis=-1).astype(np.float32)


DQ_MODES: tuple[tuple[int, int], ...] = tuple((u, v) for u in range(8) for v in range(8) if 0 < u + v <= 4)
"""Low-frequency DCT modes whose histograms the ``dq`` stream reads (Lin et al. 2009 use the first ones too)."""


def dq_evidence(rgb: np.ndarray) -> np.ndarray:
    """The double-quantisation stream, ``float32 (H, W, 2)``: per 8x8 block, Lin et al.'s log-likelihood ratio
    that the block was quantised once (tampered) rather than twice (the rest of the image), raw and averaged over
    3x3 blocks, clipped and scaled to about -1..1; zeros when the image shows no double quantisation.

    Always computed from the pixels (the 8x8 DCT on the detected grid, steps estimated from the coefficient
    histograms), so training samples and files of any format get the same stream. See ``helpers.detectors.dq``.
    """
    image = check_rgb(rgb, "compute the dq stream of")
    height, width = image.shape[:2]
    out = np.zeros((height, width, 2), np.float32)
    if min(height, width) < 16:
        return out
    y = luminance(image)
    offset = estimate_jpeg_grid(y).offset
    coefficients = block_dct(y, offset)
    if coefficients.size == 0:
        return out
    steps = estimate_quantisation_steps(coefficients, DQ_MODES)
    known = steps > 0
    if not known.any():
        return out
    quantised = np.zeros(coefficients.shape, np.int64)
    quantised[:, :, known] = np.rint(coefficients[:, :, known] / steps[known]).astype(np.int64)
    evidence = dq_log_likelihood_ratio(quantised, DQ_MODES)
    if not evidence.found or evidence.log_likelihood_ratio.size == 0:
        return out
    ratio = np.clip(evidence.log_likelihood_ratio.astype(np.float32), -10.0, 10.0) / np.float32(10.0)
    averaged = cv2.blur(ratio, (3, 3), borderType=cv2.BORDER_REFLECT)
    out[..., 0] = blocks_to_pixels(ratio, (height, width), offset=offset)
    out[..., 1] = blocks_to_pixels(averaged, (height, width), offset=offset)
    return out


STREAMS: dict[str, Stream] = {
    stream.name: stream
    for stream in (
        Stream("rgb", 3, "the pixels", _rgb),
        Stream("ela", 3, f"error level analysis at quality {ELA_QUALITY}", _ela),
        Stream("srm", 3, "SRM high-pass noise residuals (Zhou et al. 2018)", _srm),
        Stream("noise", 1, "local noise level, log, relative to the image median", _noise),
        Stream("ghost", len(GHOST_QUALITIES) + 1,
               f"JPEG ghost curve over qualities {GHOST_QUALITIES} (Farid 2009)", ghost_curve),
        Stream("dq", 2, "double-quantisation log-likelihood ratio per 8x8 block (Lin et al. 2009)", dq_evidence),
    )
}


def _stream(name: str) -> Stream:
    try:
        return STREAMS[name]
    except KeyError:
        raise ValueError(f"unknown stream {name!r}; choose from: {', '.join(STREAMS)}") from None


def stream_channels(streams: Sequence[str]) -> dict[str, int]:
    """``{stream: channels}`` for the named streams, in order."""
    return {name: _stream(name).channels for name in streams}


def compute_streams(rgb: np.ndarray, streams: Sequence[str], *, ela_quality: int = ELA_QUALITY,
                    srm_bank: str = "zhou3") -> dict[str, np.ndarray]:
    """Every named stream of the whole image, scaled for a model: ``{name: float32 (H, W, C)}``.

    ``ela_quality`` and ``srm_bank`` (``"zhou3"`` or ``"full30"``, 30 channels) vary the ELA and SRM streams for
    models built with other settings; everything else is the table's.
    """
    image = check_rgb(rgb, "compute streams of")
    out = {}
    for name in streams:
        if name == "ela" and ela_quality != ELA_QUALITY:
            out[name] = np.minimum(ela_map(image, int(ela_quality), mode="raw").astype(np.float32) / 16.0, 4.0)
        elif name == "srm" and srm_bank != "zhou3":
            out[name] = srm_map(image, srm_bank, truncate=2.0) * np.float32(0.5)  # type: ignore[arg-type]
        else:
            out[name] = _stream(name).compute(image)
    return out


def stream_table() -> list[Mapping[str, object]]:
    """The table above as rows (``name``, ``channels``, ``description``), for notebooks and docs."""
    return [{"stream": s.name, "channels": s.channels, "description": s.description} for s in STREAMS.values()]
