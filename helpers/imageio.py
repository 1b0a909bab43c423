"""Safe image loading and deterministic image writing for the workbook.

Forensic datasets are messy: 16-bit PNGs, CMYK JPEGs, palette GIFs, phone photos stored sideways with an EXIF
orientation tag, half-downloaded files and the odd text file renamed ``.jpg``. Every reader in the workbook goes
through this module so that

* every file that cannot become an image raises one error type, :class:`ImageLoadError`, which names the file
  (a notebook cell that fails on sample 8123 of a dataset should say which file it was);
* every image that can be read comes back the same way: a C-contiguous ``uint8`` array of shape ``(H, W, 3)``,
  upright, first frame only;
* pixel counts are checked from the header *before* decoding, so a decompression bomb costs nothing; the limit
  that applies is ``max_pixels`` (:data:`DEFAULT_MAX_PIXELS`, 100 MP, by default), also where it lies above
  Pillow's own ``Image.MAX_IMAGE_PIXELS`` (about 89 MP): Pillow's warning is handled per call (see
  :func:`load_rgb`);
* decoding costs the decoded image twice at most: Pillow's copy (4 bytes per pixel) and the array (3), filled in
  strips, so a 100 MP photo peaks near 0.7 GB while it loads;
* in-memory JPEG round trips (the heart of error level analysis) and written files are byte-for-byte
  deterministic, so cached results and checksums stay valid between runs.

Only NumPy and Pillow are used here. Pillow's global settings (``Image.MAX_IMAGE_PIXELS``,
``ImageFile.LOAD_TRUNCATED_IMAGES``) are never changed: other code in the same process may rely on them.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from helpers.atomic import atomic_write_bytes

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageLoadError",
    "load_rgb",
    "load_mask",
    "image_size",
    "encode_jpeg",
    "decode_image",
    "jpeg_roundtrip",
    "save_jpeg",
    "save_png",
    "check_rgb",
    "LoadedImage",
    "load_image",
    "as_loaded_image",
]

DEFAULT_MAX_PIXELS: int = 100_000_000
"""Largest pixel count (width * height) the loaders accept by default (100 MP, e.g. 10000 x 10000).

A guard against decompression bombs (a few kilobytes that decode to gigabytes); a 4000x3000 photo is 12 MP, so
real photographs are below it. This is the limit that applies, also above Pillow's own warning level
(``Image.MAX_IMAGE_PIXELS``, about 89 MP unless the application changed it): with a ``max_pixels`` given, the
loaders check the header themselves and ignore Pillow's ``DecompressionBombWarning`` for that call only. Pillow
still refuses outright an image of more than twice its own limit (about 179 MP), whatever ``max_pixels`` says;
``max_pixels=None`` leaves the decision to Pillow alone (its warning is then an error).
"""

_STRIP_PIXELS = 1 << 20
"""Pixels converted per strip while turning a decoded image into an array (see :func:`_to_rgb_array`)."""

_T = TypeVar("_T")

# Exceptions Pillow raises for damaged or hostile data while opening or decoding. Anything else (MemoryError,
# KeyboardInterrupt, a genuine bug) is left alone so it is not disguised as "a bad file".
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    SyntaxError,
    struct.error,
    EOFError,
    OverflowError,
)

# EXIF orientations that rotate by 90 or 270 degrees (possibly mirrored), i.e. swap width and height.
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})

_JPEG_SUBSAMPLING_NAMES = frozenset({"4:4:4", "4:2:2", "4:2:0"})

_PNG_COMPRESS_LEVEL = 6
"""Fixed zlib level: the same array always gives the same PNG bytes, whatever Pillow's default becomes."""


class ImageLoadError(Exception):
    """A file could not be turned into an image; ``str(err)`` is ``"{path}: {reason}"``.

    One error type for every cause (missing, empty, not an image, truncated, corrupt, too large) lets a dataset
    loop skip or report bad files with a single ``except`` without swallowing unrelated bugs.
    """

    path: Path
    reason: str

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[type[ImageLoadError], tuple[Path, str]]:
        # Keep the error picklable (multiprocessing data loaders send exceptions between processes).
        return (type(self), (self.path, self.reason))


class _Problem(Exception):
    """Internal: why decoding failed, before the public wrapper knows which path (or bytes) to blame."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ----------------------------------------------------------------------------------------------------------------
# Reading


def load_rgb(path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read any Pillow-readable image file as a C-contiguous ``uint8`` array of shape ``(H, W, 3)``.

    The EXIF orientation is applied (a sideways phone photo comes out upright, matching what a viewer and the
    ground-truth mask show) and multi-frame files give their first frame. Alpha is dropped, not composited:
    compositing onto a background would invent pixel values, while forensic traces live in the stored colour
    values, even under fully transparent pixels. High-bit-depth images are scaled to 8 bits (see
    ``_to_rgb_array``).

    ``max_pixels`` is checked against the header before any pixel is decoded; it replaces Pillow's own warning
    level for this call (see :data:`DEFAULT_MAX_PIXELS`), and ``None`` leaves Pillow's limit alone in force.
    Every failure raises :class:`ImageLoadError` naming the file.
    """
    file = Path(path)
    _check_max_pixels(max_pixels)
    try:
        return _read_file(file, max_pixels, _to_rgb_array)
    except _Problem as problem:
        raise ImageLoadError(file, problem.reason) from problem.__cause__


def load_mask(
    path: str | os.PathLike[str],
    *,
    size: tuple[int, int] | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read a ground-truth mask as a ``bool`` array of shape ``(H, W)``; ``True`` marks tampered pixels.

    The file is opened exactly as :func:`load_rgb` opens images (same orientation handling, same errors), so a
    mask and its image stay aligned. A pixel is tampered when its single-channel ('L') value is above 127,
    which tolerates masks saved as JPEG or with anti-aliased edges. ``size=(width, height)``, when given, must
    match the mask's (upright) size; a mismatch is an :class:`ImageLoadError` rather than a silent resize.
    """
    file = Path(path)
    _check_max_pixels(max_pixels)
    if size is not None:
        size = _check_size(size)
    try:
        mask = _read_file(file, max_pixels, _to_mask_array)
    except _Problem as problem:
        raise ImageLoadError(file, problem.reason) from problem.__cause__
    if size is not None:
        height, width = mask.shape
        if (width, height) != size:
            raise ImageLoadError(
                file, f"mask size {width}x{height} differs from expected {size[0]}x{size[1]}"
            )
    return mask


def image_size(
    path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[int, int]:
    """Return ``(width, height)`` of the upright image from its header, without decoding pixels.

    EXIF orientations 5-8 (quarter turns) swap width and height, so the result matches the shape
    :func:`load_rgb` returns. For PNG only EXIF stored before the pixel data is seen (reading a trailing
    ``eXIf`` chunk would mean decoding the image); writers normally put it first. An image over ``max_pixels``
    raises :class:`ImageLoadError` as :func:`load_rgb` would, so both accept the same files.
    """
    file = Path(path)
    _check_max_pixels(max_pixels)
    try:
        with _open_file(file) as handle, _pillow_errors(), _pillow_size_warnings(max_pixels):
            with Image.open(handle) as img:
                width, height = img.size
                _check_pixels(width, height, max_pixels)
                # PngImageFile.getexif() decodes the whole image to find a trailing eXIf chunk; the base
                # implementation only looks at what the header already gave.
                exif = Image.Image.getexif(img)
                orientation = exif.get(ExifTags.Base.Orientation, 1)
    except _Problem as problem:
        raise ImageLoadError(file, problem.reason) from problem.__cause__
    if orientation in _SWAPPING_ORIENTATIONS:
        return (height, width)
    return (width, height)


def decode_image(data: bytes) -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, ...) to a ``uint8`` ``(H, W, 3)`` array like :func:`load_rgb`.

    Meant for in-memory round trips, so it raises ``ValueError`` (there is no file to name) for bytes that
    are not a readable image.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode_image expects bytes, not {type(data).__name__}")
    if len(data) == 0:
        raise ValueError("cannot decode image: no data")
    try:
        return _decode(io.BytesIO(bytes(data)), DEFAULT_MAX_PIXELS, _to_rgb_array)
    except _Problem as problem:
        raise ValueError(f"cannot decode image: {problem.reason}") from problem.__cause__


def _read_file(file: Path, max_pixels: int | None, convert: Callable[[Image.Image], _T]) -> _T:
    with _open_file(file) as handle:
        return _decode(handle, max_pixels, convert)


def _open_file(file: Path) -> BinaryIO:
    """Open ``file`` for reading, turning the usual file-system failures into short reasons.

    Done before Pillow sees anything so that "file not found" is not reported as corrupt data, and so that a
    FIFO or device is refused instead of blocking or reading forever.
    """
    try:
        info = file.stat()
    except FileNotFoundError as exc:
        raise _Problem("file not found") from exc
    except PermissionError as exc:
        raise _Problem("permission denied") from exc
    except OSError as exc:
        raise _Problem(f"cannot access file ({_describe(exc)})") from exc
    if stat.S_ISDIR(info.st_mode):
        raise _Problem("is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise _Problem("not a regular file")
    if info.st_size == 0:
        raise _Problem("empty file")
    try:
        return open(file, "rb")
    except FileNotFoundError as exc:  # removed between stat() and open()
        raise _Problem("file not found") from exc
    except IsADirectoryError as exc:
        raise _Problem("is a directory") from exc
    except PermissionError as exc:
        raise _Problem("permission denied") from exc
    except OSError as exc:
        raise _Problem(f"cannot open file ({_describe(exc)})") from exc


def _decode(source: BinaryIO, max_pixels: int | None, convert: Callable[[Image.Image], _T]) -> _T:
    """Open, size-check, fully decode and upright the first frame of ``source``, then ``convert`` it.

    ``convert`` runs while the image is still open because Pillow invalidates an image when it is closed.
    """
    with _pillow_errors(), _pillow_size_warnings(max_pixels):
        with Image.open(source) as img:
            width, height = img.size
            _check_pixels(width, height, max_pixels)
            # Decode everything here, inside the error handling: Pillow decodes lazily and reports a truncated
            # file only when the missing bytes are needed.
            img.load()
            ImageOps.exif_transpose(img, in_place=True)
            return convert(img)


class _pillow_errors:
    """Context manager mapping Pillow's failure exceptions to :class:`_Problem` with a short reason."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None or isinstance(exc, _Problem):
            return False
        if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
            raise _Problem(f"exceeds Pillow's decompression-bomb limit ({_describe(exc)})") from exc
        if isinstance(exc, UnidentifiedImageError):
            raise _Problem("not an image Pillow can read") from exc
        if isinstance(exc, NotImplementedError):
            raise _Problem(f"uses a feature Pillow cannot decode ({_describe(exc)})") from exc
        if isinstance(exc, _DECODE_ERRORS):
            raise _Problem(f"truncated or corrupt image data ({_describe(exc)})") from exc
        return False


def _check_pixels(width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise _Problem(
            f"image is {width}x{height} ({width * height} pixels), over the limit of max_pixels={max_pixels}"
        )


class _pillow_size_warnings(warnings.catch_warnings):
    """Pillow's ``DecompressionBombWarning``, for this block only: ignored where ``max_pixels`` is ours to check
    (the header is checked against it right after opening), an exception where ``max_pixels`` is ``None``.

    Pillow warns above ``Image.MAX_IMAGE_PIXELS`` (about 89 MP by default), below the workbook's documented limit
    of 100 MP; changing that global would change it for every other user of Pillow in the process.
    ``warnings.catch_warnings`` restores the previous filters on exit, so the process-wide warning settings are
    untouched afterwards (it is, like all of :mod:`warnings`, not thread-safe).
    """

    def __init__(self, max_pixels: int | None) -> None:
        super().__init__()
        self._action = "error" if max_pixels is None else "ignore"

    def __enter__(self) -> None:  # type: ignore[override]
        super().__enter__()
        warnings.simplefilter(self._action, Image.DecompressionBombWarning)  # type: ignore[arg-type]


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


def _check_max_pixels(max_pixels: int | None) -> None:
    if max_pixels is None:
        return
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer or None, not {max_pixels!r}")


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        width, height = size
    except (TypeError, ValueError):
        raise ValueError(f"size must be (width, height), not {size!r}") from None
    return (int(width), int(height))


# ----------------------------------------------------------------------------------------------------------------
# Mode conversion


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """Convert a decoded image of any mode to a C-contiguous, writable ``uint8`` ``(H, W, 3)`` array.

    A large image is converted in strips of rows written into one preallocated array: converting it at once
    would hold Pillow's bytes, NumPy's read-only view of them and a writable copy together (about 10 bytes per
    pixel beside Pillow's own 4, where strips need 3). The rules (:func:`_rgb_block`) are per pixel, except for
    32-bit integer and float images, whose scale depends on the whole image's maximum: those (rare, scientific)
    images are converted at once.
    """
    width, height = img.size
    if width * height <= _STRIP_PIXELS or img.mode in ("I", "F"):
        return _rgb_block(img)
    out = np.empty((height, width, 3), np.uint8)
    rows = max(1, _STRIP_PIXELS // width)
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        out[top:bottom] = _rgb_block(img.crop((0, top, width, bottom)))
    return out


def _rgb_block(img: Image.Image) -> np.ndarray:
    """The rules of :func:`_to_rgb_array` on one image or strip of one.

    Rules, chosen to keep stored values rather than to look nice:

    * RGB as is; RGBA/RGBa/LA/La/PA drop alpha and keep the stored colour values (no compositing, no
      un-premultiplying); P goes through its palette (RGBA) and drops alpha;
    * CMYK, YCbCr, LAB, HSV and unknown modes use Pillow's ``convert("RGB")``;
    * L and 1 are replicated to three channels;
    * 16-bit (I;16*) is scaled to 8 bits with rounding (value / 257, so 65535 -> 255);
    * I (32-bit int): treated as 16-bit when its maximum exceeds 255, else as 8-bit; clipped;
    * F (float): treated as 0..1 when its maximum is at most 1.0 (scaled by 255), else as 0..255; clipped and
      rounded; NaN becomes 0.
    """
    mode = img.mode
    if mode == "RGB":
        rgb = np.asarray(img)
    elif mode in ("RGBA", "RGBa"):
        rgb = np.asarray(img)[:, :, :3]
    elif mode in ("P", "PA"):
        rgb = np.asarray(img.convert("RGBA"))[:, :, :3]
    elif mode in ("L", "LA", "La", "1"):
        gray = np.asarray(img.convert("L")) if mode == "1" else np.asarray(img)
        if gray.ndim == 3:
            gray = gray[:, :, 0]
        return _gray_to_rgb(gray)
    elif mode.startswith("I;16"):
        return _gray_to_rgb(_scale_16_bit(np.asarray(img)))
    elif mode == "I":
        values = np.asarray(img).astype(np.int64)
        if values.size and values.max() > 255:
            return _gray_to_rgb(_scale_16_bit(np.clip(values, 0, 65535)))
        return _gray_to_rgb(np.clip(values, 0, 255).astype(np.uint8))
    elif mode == "F":
        values = np.nan_to_num(np.asarray(img).astype(np.float64), nan=0.0)
        if values.size and values.max() <= 1.0:
            values = values * 255.0
        return _gray_to_rgb(np.rint(np.clip(values, 0.0, 255.0)).astype(np.uint8))
    else:
        # CMYK, YCbCr, LAB, HSV, RGBX and anything newer: Pillow's own conversion.
        try:
            rgb = np.asarray(img.convert("RGB"))
        except ValueError as exc:
            raise _Problem(f"unsupported image mode {mode!r} ({_describe(exc)})") from exc
    return _writable_contiguous_uint8(rgb)


def _to_mask_array(img: Image.Image) -> np.ndarray:
    """Threshold a decoded mask at 127 on its single-channel ('L') values."""
    if img.mode == "1":
        gray = np.asarray(img.convert("L"))
    elif img.mode == "L":
        gray = np.asarray(img)
    else:
        # Go through the RGB rules first so 16-bit, float and alpha masks are scaled the same way as images,
        # then use Pillow's luminance conversion (exact for grey pixels).
        gray = np.asarray(Image.fromarray(_to_rgb_array(img)).convert("L"))
    return np.ascontiguousarray(gray > 127)


def _scale_16_bit(values: np.ndarray) -> np.ndarray:
    # round(v / 257) in integers: v = 257 q + r rounds up exactly when r >= 129; no ties are possible.
    return ((values.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray.astype(np.uint8, copy=False)[:, :, np.newaxis], 3, axis=2)


def _writable_contiguous_uint8(array: np.ndarray) -> np.ndarray:
    out = np.ascontiguousarray(array, dtype=np.uint8)
    if not out.flags.writeable:  # arrays backed by Pillow's bytes are read-only
        out = out.copy()
    return out


# ----------------------------------------------------------------------------------------------------------------
# Encoding and writing


def encode_jpeg(rgb: np.ndarray, quality: int, *, subsampling: int | str = -1) -> bytes:
    """Encode a ``uint8`` ``(H, W, 3)`` array as JPEG bytes in memory.

    ``quality`` is 1..100. ``subsampling`` is Pillow's: -1 (Pillow's default, 4:2:0), 0/1/2 or
    "4:4:4"/"4:2:2"/"4:2:0". No ``optimize``/``progressive`` and no metadata, so the same input always gives
    the same bytes: error level analysis and cached results depend on it.
    """
    image = _rgb_image(rgb)
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be an integer from 1 to 100, not {quality!r}")
    if isinstance(subsampling, str):
        if subsampling not in _JPEG_SUBSAMPLING_NAMES:
            raise ValueError(f"subsampling must be one of {sorted(_JPEG_SUBSAMPLING_NAMES)}, not {subsampling!r}")
    elif isinstance(subsampling, bool) or not isinstance(subsampling, (int, np.integer)) or subsampling not in (
        -1,
        0,
        1,
        2,
    ):
        raise ValueError(f"subsampling must be -1, 0, 1, 2 or a name such as '4:4:4', not {subsampling!r}")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(quality), subsampling=subsampling)
    return buffer.getvalue()


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Compress ``rgb`` as JPEG at ``quality`` and decode it again (the re-save step of error level analysis)."""
    return decode_image(encode_jpeg(rgb, quality))


def save_jpeg(
    path: str | os.PathLike[str], rgb: np.ndarray, quality: int, *, subsampling: int | str = -1
) -> Path:
    """Write ``rgb`` as a JPEG file atomically (see :func:`encode_jpeg`) and return the path."""
    return atomic_write_bytes(path, encode_jpeg(rgb, quality, subsampling=subsampling))


def save_png(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write an array as a PNG file atomically and return the path.

    ``(H, W)`` ``uint8`` or ``bool`` becomes a single-channel 'L' PNG (``True`` -> 255, so masks are visible
    and read back by :func:`load_mask`); ``(H, W, 3)`` ``uint8`` becomes an RGB PNG. A fixed compression level
    and no metadata make the bytes deterministic.
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"save_png expects a NumPy array, not {type(array).__name__}")
    if array.ndim == 2 and array.dtype == np.bool_:
        pixels = array.astype(np.uint8) * np.uint8(255)
    elif array.ndim == 2 and array.dtype == np.uint8:
        pixels = array
    elif array.ndim == 3 and array.shape[2] == 3 and array.dtype == np.uint8:
        pixels = array
    else:
        raise ValueError(
            f"save_png expects (H, W) uint8/bool or (H, W, 3) uint8, not shape {array.shape} dtype {array.dtype}"
        )
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise ValueError(f"cannot save an empty image of shape {array.shape}")
    image = Image.fromarray(np.ascontiguousarray(pixels))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
    return atomic_write_bytes(path, buffer.getvalue())


def check_rgb(rgb: np.ndarray, action: str = "analyse") -> np.ndarray:
    """``rgb`` as a C-contiguous ``uint8`` ``(H, W, 3)`` array, or a ``TypeError``/``ValueError`` saying why not.

    Every function that takes pixels checks them the same way, so a float image or a greyscale array fails
    at the call with a clear message instead of deep inside OpenCV or Pillow. ``action`` completes the
    message for empty images ("cannot <action> an empty image").
    """
    if not isinstance(rgb, np.ndarray):
        raise TypeError(f"expected a NumPy array, not {type(rgb).__name__}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected dtype uint8, not {rgb.dtype}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected shape (H, W, 3), not {rgb.shape}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"cannot {action} an empty image of shape {rgb.shape}")
    return np.ascontiguousarray(rgb)


def _rgb_image(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray(check_rgb(rgb, "encode"))


# ----------------------------------------------------------------------------------------------------------------
# An image with what compression-domain detectors need


class LoadedImage:
    """An image as detectors see it: upright uint8 RGB pixels, and for a file its format and bytes.

    For a JPEG file, ``quantization_tables`` (``{table id: (8, 8) int array}``, natural order) and
    ``dct_coefficients`` (the quantised luminance DCT coefficients as ``(blocks_y, blocks_x, 8, 8)`` ints, read
    with ``jpeglib``) are read on first use and cached. Both are ``None`` for anything else (PNG, TIFF, an
    array), which compression-domain detectors then handle from the pixels (see ``helpers.detectors.dq``).

    EXIF orientation: ``rgb`` is upright; the DCT coefficients are in stored order, so ``orientation`` tells a
    detector whether the two grids agree (1 = they do).
    """

    def __init__(self, rgb: np.ndarray, *, path: Path | None = None, data: bytes | None = None,
                 image_format: str | None = None, orientation: int = 1) -> None:
        self.rgb = check_rgb(rgb, "load")
        self.path = path
        self.data = data
        self.format = image_format
        self.orientation = int(orientation)
        self._tables: dict[int, np.ndarray] | None | bool = False
        self._dct: np.ndarray | None | bool = False
        self.predictions: dict[str, Any] | None = None
        """``None`` (the default): detectors run on every call. A caller that runs several methods on this image
        sets ``{}`` (``evaluate`` does, for one image at a time), and :meth:`helpers.detectors.base.Detector.__call__`
        keeps there what each training-free detector answered, by its identity (class and parameters): a fusion
        scored beside the detectors it fuses then runs each of them once. Off by default because the maps stay as
        long as the image does (5 bytes a pixel each)."""

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])

    @property
    def is_jpeg(self) -> bool:
        return self.format == "JPEG" and self.data is not None

    @property
    def quantization_tables(self) -> dict[int, np.ndarray] | None:
        if self._tables is False:
            self._tables = None
            if self.is_jpeg:
                with Image.open(io.BytesIO(self.data)) as img:  # type: ignore[arg-type]
                    tables = dict(getattr(img, "quantization", None) or {})
                self._tables = {int(k): np.asarray(v, dtype=np.int64).reshape(8, 8)
                                for k, v in sorted(tables.items())} or None
        return self._tables  # type: ignore[return-value]

    @property
    def dct_coefficients(self) -> np.ndarray | None:
        """Quantised luminance DCT coefficients ``(by, bx, 8, 8)`` of a JPEG file, else ``None``."""
        if self._dct is False:
            self._dct = None
            if self.is_jpeg:
                self._dct = _read_dct_coefficients(self.data)  # type: ignore[arg-type]
        return self._dct  # type: ignore[return-value]

    def __repr__(self) -> str:
        h, w = self.shape
        return f"LoadedImage({w}x{h}, format={self.format!r}, path={str(self.path) if self.path else None!r})"


def _read_dct_coefficients(data: bytes) -> np.ndarray | None:
    """Luminance DCT coefficients of JPEG bytes through ``jpeglib`` (``None`` when it cannot read them)."""
    try:
        import jpeglib  # optional at import time: only compression-domain detectors need it
    except ImportError:  # pragma: no cover - jpeglib is a dependency; guard for trimmed installs
        return None
    import tempfile

    # jpeglib reads from a path; a private temporary file keeps the caller's bytes the single source of truth.
    with tempfile.NamedTemporaryFile(suffix=".jpg") as handle:
        handle.write(data)
        handle.flush()
        try:
            jpeg = jpeglib.read_dct(handle.name)
            y = np.asarray(jpeg.Y)
        except Exception:  # noqa: BLE001 - an undecodable coefficient stream: detectors fall back to pixels
            return None
    return y.astype(np.int32, copy=False)


def load_image(path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read a file as a :class:`LoadedImage` (pixels as :func:`load_rgb`, plus format, bytes, orientation)."""
    file = Path(path)
    rgb = load_rgb(file, max_pixels=max_pixels)
    data = file.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as img:
            image_format = img.format
            orientation = int(Image.Image.getexif(img).get(ExifTags.Base.Orientation, 1) or 1)
    except Exception:  # noqa: BLE001 - load_rgb already read it; metadata is a bonus
        image_format, orientation = None, 1
    return LoadedImage(rgb, path=file, data=data, image_format=image_format, orientation=orientation)


def as_loaded_image(image: LoadedImage | np.ndarray | str | os.PathLike[str]) -> LoadedImage:
    """Accept a :class:`LoadedImage`, a path (loaded) or an RGB array (pixels only)."""
    if isinstance(image, LoadedImage):
        return image
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    return LoadedImage(np.asarray(image))
