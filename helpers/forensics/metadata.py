"""EXIF metadata: what a file says about the camera and software that made it.

Metadata is weak evidence on its own (it is trivial to strip or forge, and every upload to a social network
removes it), but it is cheap to read and often telling: an editor's name in the ``Software`` tag, a
modification date later than the capture date, or a missing camera model on what claims to be a camera photo.
:func:`exif_summary` collects the usual fields and turns them into a few flags.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image

from helpers.imageio import ImageLoadError

__all__ = ["EDITOR_PATTERN", "DATE_TOLERANCE_S", "exif_summary"]

EDITOR_PATTERN = re.compile(
    r"photoshop|adobe|lightroom|gimp|snapseed|affinity|pixelmator|paint\.net|paintshop|corel|picasa|acdsee"
    r"|capture one|darktable|rawtherapee|luminar|photoscape|fotor|facetune|picsart|canva|photodirector"
    r"|polarr|vsco|krita|inkscape|photopea|meitu|airbrush|picmonkey|faceapp",
    re.IGNORECASE,
)
"""Names of image editors (matched anywhere in ``Software`` or XMP ``CreatorTool``, ignoring case). Camera
firmware writes version strings ("Ver.1.01", "HDR+ 1.0.3") that do not match."""

DATE_TOLERANCE_S: float = 2.0
"""Dates further apart than this (seconds) disagree; cameras write capture, digitisation and file dates within
a second of each other."""

_EXIF_DATE_FORMAT = "%Y:%m:%d %H:%M:%S"
_XMP_CREATOR = re.compile(
    r"""CreatorTool\s*(?:=\s*["']([^"']*)["']|>\s*([^<]*)<)""", re.IGNORECASE
)


def exif_summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a file's EXIF (any format Pillow reads) into a flat dictionary; never fails on missing metadata.

    Keys: ``format``, ``make``, ``model``, ``software`` (``Software`` tag, else the XMP ``CreatorTool``),
    ``datetime_original``, ``datetime_digitized``, ``datetime_modified`` (the raw EXIF strings or ``None``),
    ``width`` and ``height`` (the stored pixel size from the image header), ``exif_width`` and ``exif_height``
    (``PixelXDimension``/``PixelYDimension`` if present), ``orientation`` (1-8 or ``None``), and flags:

    * ``no_exif``: the file carries no EXIF at all (PNGs and stripped uploads);
    * ``edited_by_software``: ``software`` names an editor (see :data:`EDITOR_PATTERN`);
    * ``missing_camera_model``: no ``Model`` tag (also true when there is no EXIF);
    * ``dates_disagree``: two of the three dates differ by more than :data:`DATE_TOLERANCE_S`, typically an
      editor updating the modification date;
    * ``size_mismatch``: the EXIF pixel dimensions differ from the real ones (cropped or resized without the
      EXIF being updated).

    A flag is a reason to look closer, not proof. A file that cannot be opened raises
    :class:`helpers.imageio.ImageLoadError`.
    """
    file = Path(path)
    try:
        with Image.open(file) as img:
            image_format = img.format or "unknown"
            width, height = img.size
            # Image.getexif of the base class reads what the header gave, without decoding the pixels.
            exif = Image.Image.getexif(img)
            base = {int(k): v for k, v in exif.items()}
            sub = {int(k): v for k, v in exif.get_ifd(ExifTags.IFD.Exif).items()}
            xmp = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp")
    except FileNotFoundError as exc:
        raise ImageLoadError(file, "file not found") from exc
    except Exception as exc:  # noqa: BLE001 - any Pillow failure means the header is unreadable
        raise ImageLoadError(file, f"unreadable image header ({type(exc).__name__}: {exc})") from exc

    make = _text(base.get(ExifTags.Base.Make))
    model = _text(base.get(ExifTags.Base.Model))
    software = _text(base.get(ExifTags.Base.Software)) or _creator_tool(xmp)
    original = _text(sub.get(ExifTags.Base.DateTimeOriginal))
    digitized = _text(sub.get(ExifTags.Base.DateTimeDigitized))
    modified = _text(base.get(ExifTags.Base.DateTime))
    exif_width = _integer(sub.get(ExifTags.Base.ExifImageWidth))
    exif_height = _integer(sub.get(ExifTags.Base.ExifImageHeight))
    orientation = _integer(base.get(ExifTags.Base.Orientation))

    dates = [d for d in (_parse_date(original), _parse_date(digitized), _parse_date(modified)) if d is not None]
    spread = (max(dates) - min(dates)).total_seconds() if len(dates) >= 2 else 0.0
    return {
        "path": str(file),
        "format": image_format,
        "make": make,
        "model": model,
        "software": software,
        "datetime_original": original,
        "datetime_digitized": digitized,
        "datetime_modified": modified,
        "width": int(width),
        "height": int(height),
        "exif_width": exif_width,
        "exif_height": exif_height,
        "orientation": orientation,
        "no_exif": not base and not sub,
        "edited_by_software": bool(software and EDITOR_PATTERN.search(software)),
        "missing_camera_model": model is None,
        "dates_disagree": spread > DATE_TOLERANCE_S,
        "size_mismatch": (
            exif_width is not None
            and exif_height is not None
            and {exif_width, exif_height} != {int(width), int(height)}
        ),
    }


def _text(value: Any) -> str | None:
    """EXIF strings come as str or bytes, padded with NULs or spaces; empty means absent."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value).replace("\x00", " ").strip()
    return text or None


def _integer(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _parse_date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text[:19], _EXIF_DATE_FORMAT)
    except ValueError:  # blank dates ("    :  :  ") and vendor variants say nothing comparable
        return None


def _creator_tool(xmp: Any) -> str | None:
    if not xmp:
        return None
    text = xmp.decode("utf-8", errors="replace") if isinstance(xmp, bytes) else str(xmp)
    match = _XMP_CREATOR.search(text)
    if match is None:
        return None
    return _text(match.group(1) if match.group(1) is not None else match.group(2))
