"""The manifest: one CSV schema for every dataset the workbook reads, embedded or real.

Columns (see ``shared/ARCHITECTURE.md``):

``image``   path of the image, relative to the manifest's folder (absolute paths are accepted).
``mask``    path of its mask, empty when there is none; masks are single-channel PNGs, 255 = tampered,
            the same size as their image.
``label``   0 authentic, 1 tampered.
``dataset`` optional: where the row comes from (``synthetic``, ``casia2``, ...).
``group``   optional: the source photo; images sharing a group must stay on one side of a split.
``kind``    optional: ``authentic``, ``splice``, ``copy-move``, ``removal`` or a dataset's own wording.

Any further columns (``width``, ``height``, ``jpeg_quality``, ...) are kept as they are.

:func:`load_manifest` adds two resolved columns, ``image_path`` and ``mask_path`` (absolute, ``""`` when there
is no mask), so that code downstream never has to know where the manifest lived; :func:`write_manifest` turns
them back into paths relative to wherever the manifest is written.

:func:`check_row` is the one check of a row's files, shared by ``python -m helpers validate``
(:func:`validate_manifest`) and ``python -m helpers evaluate`` (which loads what it checks), so the two always
agree on what a usable row is: files that decode to the end, images of at least 8 x 8 pixels, single-channel
masks of the *upright* image's size (EXIF orientation applied to both, as every loader does).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from helpers.atomic import atomic_output
from helpers.config import fixtures_manifest
from helpers.imageio import ImageLoadError, LoadedImage, image_size, load_image, load_mask

__all__ = [
    "REQUIRED_COLUMNS",
    "OPTIONAL_COLUMNS",
    "RESOLVED_COLUMNS",
    "ManifestError",
    "ManifestProblem",
    "ValidationReport",
    "MIN_IMAGE_SIDE",
    "RowCheck",
    "check_row",
    "load_manifest",
    "validate_manifest",
    "write_manifest",
    "summarize",
    "find_manifests",
    "combine_manifests",
]

REQUIRED_COLUMNS: tuple[str, ...] = ("image", "mask", "label")
OPTIONAL_COLUMNS: tuple[str, ...] = ("dataset", "group", "kind")
RESOLVED_COLUMNS: tuple[str, ...] = ("image_path", "mask_path")

# Line numbers in messages count the header as line 1, so row 0 sits on line 2 of the file.
_HEADER_LINES = 1

MIN_IMAGE_SIDE = 8
"""Images narrower or lower than this (one JPEG block) hold no trace worth reading; rows with them are errors."""

# Pillow modes with one value per pixel (masks must be one of these).
_SINGLE_CHANNEL_MODES = frozenset({"1", "L", "P", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"})


class ManifestError(ValueError):
    """A manifest that cannot be read, or that failed validation in strict mode."""


@dataclass(frozen=True)
class ManifestProblem:
    """One finding of :func:`validate_manifest`."""

    row: int | None
    """0-based row index in the manifest (``None`` for problems of the whole file)."""
    image: str
    """The row's ``image`` entry as written in the manifest ("" for whole-file problems)."""
    message: str
    severity: str = "error"
    """``error`` (the row cannot be used as it is) or ``warning`` (usable, but worth a look)."""

    def format(self, manifest: str | os.PathLike[str] | None = None) -> str:
        where = f"{manifest}" if manifest is not None else "manifest"
        if self.row is None:
            return f"{where}: {self.severity}: {self.message}"
        return f"{where}, line {self.row + 1 + _HEADER_LINES} ({self.image}): {self.severity}: {self.message}"


@dataclass
class ValidationReport:
    """The outcome of :func:`validate_manifest`."""

    manifest: str
    rows: int
    problems: list[ManifestProblem] = field(default_factory=list)

    @property
    def errors(self) -> list[ManifestProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[ManifestProblem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when no problem is an error (warnings allowed)."""
        return not self.errors

    def lines(self) -> list[str]:
        return [p.format(self.manifest) for p in self.problems]

    def summary(self) -> str:
        head = f"{self.manifest}: {self.rows} rows, {len(self.errors)} errors, {len(self.warnings)} warnings"
        return "\n".join([head, *self.lines()])

    def raise_if_errors(self) -> None:
        if self.errors:
            shown = "\n".join(p.format(self.manifest) for p in self.errors[:20])
            more = f"\n... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
            raise ManifestError(f"{self.manifest}: {len(self.errors)} invalid rows\n{shown}{more}")


def load_manifest(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a manifest CSV and resolve its paths.

    Returns a DataFrame with the file's columns (``mask`` as ``""`` where empty, ``label`` as int) plus
    ``image_path`` and ``mask_path``. The manifest's own location is kept in ``df.attrs["manifest"]``.
    Raises :class:`ManifestError` naming the file when it is missing, unreadable or lacks a required column,
    or when a label is not an integer.
    """
    manifest = Path(path)
    if not manifest.is_file():
        raise ManifestError(f"{manifest}: manifest not found")
    try:
        df = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{manifest}: not a readable CSV ({exc})") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ManifestError(
            f"{manifest}: missing required column(s) {', '.join(missing)}; found {', '.join(df.columns)}"
        )
    labels = pd.to_numeric(df["label"], errors="coerce")
    bad = labels.isna() | (labels != labels.round())
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ManifestError(
            f"{manifest}, line {row + 1 + _HEADER_LINES} ({df['image'].iloc[row]}): "
            f"label {df['label'].iloc[row]!r} is not an integer"
        )
    df["label"] = labels.astype(int)
    for column in df.columns:
        if column not in _TEXT_COLUMNS:
            df[column] = _numeric_if_possible(df[column])
    root = manifest.resolve().parent
    df["image_path"] = [_resolve(root, p) for p in df["image"]]
    df["mask_path"] = [_resolve(root, p) if p else "" for p in df["mask"]]
    df.attrs["manifest"] = str(manifest.resolve())
    return df


_TEXT_COLUMNS = frozenset({*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS})


def _numeric_if_possible(column: pd.Series) -> pd.Series:
    """Extra columns (width, height, quality, ...) become numbers when every non-empty value is one."""
    present = column[column != ""]
    converted = pd.to_numeric(present, errors="coerce")
    if len(present) == 0 or converted.isna().any():
        return column
    full = pd.to_numeric(column.replace("", np.nan), errors="coerce")
    if full.notna().all() and (full == full.round()).all():
        return full.astype(int)
    return full


def _resolve(root: Path, entry: str) -> str:
    entry = entry.strip()
    candidate = Path(entry)
    return str(candidate if candidate.is_absolute() else (root / candidate))


def write_manifest(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` as a manifest at ``path`` atomically, with paths relative to ``path``'s folder.

    ``df`` may come from :func:`load_manifest` (resolved columns are turned back into relative paths, so a
    manifest can be written elsewhere than it was read from) or be built by hand with ``image``/``mask``
    relative to the destination folder or absolute.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns and not (c == "mask" and "mask_path" in df)]
    if missing:
        raise ManifestError(f"{path}: cannot write a manifest without column(s) {', '.join(missing)}")
    target = Path(path)
    root = target.resolve().parent
    out = df.copy()
    image_source = out["image_path"] if "image_path" in out else out["image"]
    mask_source = out["mask_path"] if "mask_path" in out else out["mask"]
    out["image"] = [_relative(root, p) for p in image_source]
    out["mask"] = [_relative(root, p) if isinstance(p, str) and p else "" for p in mask_source]
    out["label"] = out["label"].astype(int)
    out = out.drop(columns=[c for c in RESOLVED_COLUMNS if c in out.columns])
    ordered = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in out.columns]
    out = out[ordered + [c for c in out.columns if c not in ordered]]
    with atomic_output(target) as tmp:
        out.to_csv(tmp, index=False, lineterminator="\n")
    return target


def _relative(root: Path, entry: str) -> str:
    candidate = Path(entry)
    if not candidate.is_absolute():
        return candidate.as_posix()
    try:
        return Path(os.path.relpath(candidate, root)).as_posix()
    except ValueError:  # another drive on Windows: keep it absolute
        return candidate.as_posix()


def validate_manifest(
    manifest: pd.DataFrame | str | os.PathLike[str],
    *,
    check_files: bool = True,
    check_masks: bool = True,
    strict: bool = False,
) -> ValidationReport:
    """Check every row of a manifest and report each problem with its line and image.

    Errors: a missing image or mask file; an unreadable image header; a label other than 0/1; a mask whose size
    differs from its image; a mask that is not single-channel; a non-empty mask on an authentic image; a
    duplicated image entry. Warnings: a tampered image without a mask; an empty mask on a tampered image; a
    mask with values other than 0 and 255; recorded ``width``/``height`` columns that disagree with the file.

    ``check_files=False`` checks only the table; ``check_masks=False`` skips decoding mask pixels (headers are
    still read). With ``strict=True`` a report with errors raises :class:`ManifestError`.
    """
    df = manifest if isinstance(manifest, pd.DataFrame) else load_manifest(manifest)
    name = df.attrs.get("manifest", "manifest") if isinstance(manifest, pd.DataFrame) else str(manifest)
    report = ValidationReport(manifest=str(name), rows=len(df))
    problems = report.problems

    for column in REQUIRED_COLUMNS:
        if column not in df.columns:
            problems.append(ManifestProblem(None, "", f"missing required column {column!r}"))
    if not report.ok:
        return _finish(report, strict)
    if "image_path" not in df.columns:
        df = df.assign(image_path=df["image"], mask_path=df["mask"])

    duplicated = df["image"].duplicated(keep="first")
    for row, image, label, image_path, mask_path, dup in zip(
        range(len(df)), df["image"], df["label"], df["image_path"], df["mask_path"], duplicated
    ):
        add = _collector(problems, row, str(image))
        if dup:
            add("image listed more than once")
        if label not in (0, 1):
            add(f"label {label!r} is not 0 (authentic) or 1 (tampered)")
        if not check_files:
            continue
        checked = check_row(image_path, mask_path, int(label) if label in (0, 1) else None, decode=check_masks)
        for severity, message in checked.problems:
            add(message, severity)

    if check_files and {"width", "height"} <= set(df.columns):
        _check_recorded_sizes(df, problems)
    return _finish(report, strict)


def _finish(report: ValidationReport, strict: bool) -> ValidationReport:
    if strict:
        report.raise_if_errors()
    return report


def _collector(problems: list[ManifestProblem], row: int, image: str):
    def add(message: str, severity: str = "error") -> None:
        problems.append(ManifestProblem(row, image, message, severity))

    return add


@dataclass
class RowCheck:
    """What :func:`check_row` found in one row's files, and (when it decoded them) the image and mask."""

    problems: list[tuple[str, str]] = field(default_factory=list)
    """``(severity, message)`` pairs; severity ``error`` (the row is unusable) or ``warning``."""
    image: LoadedImage | None = None
    mask: np.ndarray | None = None
    """The bool mask (upright, the image's size); ``None`` without a usable mask file."""

    @property
    def errors(self) -> list[str]:
        return [message for severity, message in self.problems if severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, message: str, severity: str = "error") -> None:
        self.problems.append((severity, message))


def check_row(
    image_path: str | os.PathLike[str],
    mask_path: str | os.PathLike[str] | None,
    label: int | None,
    *,
    decode: bool = True,
    keep: bool = False,
) -> RowCheck:
    """Check one row's image and mask files; the one check ``validate`` and ``evaluate`` share.

    Errors: the image or mask is missing or unreadable (with ``decode``, a truncated file is unreadable: it is
    decoded to the end, as evaluation will), the image is smaller than :data:`MIN_IMAGE_SIDE` on a side, the
    mask is not single-channel, the mask's size differs from the image's (both upright: EXIF orientation
    applied), an authentic image (label 0) has a non-empty mask. Warnings: a tampered image without a mask or
    with an empty one, mask values other than 0 and 255.

    ``decode=False`` reads headers only (sizes, modes): faster, blind to truncation and mask contents.
    ``keep=True`` returns the decoded :class:`LoadedImage` and bool mask in the result (``decode`` implied).
    """
    result = RowCheck()
    decode = decode or keep
    image_file = Path(image_path)
    if not image_file.is_file():
        result.add(f"image file not found: {image_file}")
        return result
    try:
        if decode:
            loaded = load_image(image_file)
            height, width = loaded.shape
            if keep:
                result.image = loaded
        else:
            width, height = image_size(image_file)
    except ImageLoadError as error:
        result.add(f"image file unreadable: {error}")
        return result
    if min(width, height) < MIN_IMAGE_SIDE:
        result.add(f"image is {width}x{height} pixels, smaller than {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}: "
                   "too small to analyse")
    if not mask_path:
        if label == 1:
            result.add("tampered image without a mask (fine for classification, unusable for localisation)",
                       "warning")
        return result
    _check_mask(Path(mask_path), (width, height), label, decode, result)
    if not result.ok:
        result.image, result.mask = None, None
    return result


def _check_mask(path: Path, image_wh: tuple[int, int], label: int | None, decode: bool, result: RowCheck) -> None:
    if not path.is_file():
        result.add(f"mask file not found: {path}")
        return
    try:
        with Image.open(path) as img:
            mode = img.mode
        mask_wh = image_size(path)
    except (OSError, ValueError, ImageLoadError) as exc:
        reason = exc.reason if isinstance(exc, ImageLoadError) else f"{type(exc).__name__}: {exc}"
        result.add(f"mask file unreadable: {path} ({reason})")
        return
    if mode not in _SINGLE_CHANNEL_MODES:
        result.add(f"mask is not single-channel (mode {mode}); masks are single-channel PNG, 255 = tampered")
        return
    if mask_wh != image_wh:
        result.add(f"mask size {mask_wh[0]}x{mask_wh[1]} differs from image size {image_wh[0]}x{image_wh[1]}"
                   " (sizes of the upright image and mask, EXIF orientation applied)")
        return
    if not decode:
        return
    try:
        mask = load_mask(path, size=image_wh)
        with Image.open(path) as img:  # the stored values, for the 0/255 check (orientation does not matter)
            values = np.unique(np.asarray(img.convert("L") if img.mode in ("1", "P") else img))
    except (ImageLoadError, OSError, ValueError) as exc:
        result.add(f"mask file unreadable: {exc}")
        return
    if not set(values.tolist()) <= {0, 255} and mode != "1":
        result.add(f"mask is not binary: values {_describe_values(values)} (expected 0 and 255)", "warning")
    tampered = bool(mask.any())
    if label == 0 and tampered:
        result.add("authentic image (label 0) has a non-empty mask")
    elif label == 1 and not tampered:
        result.add("tampered image (label 1) has an empty mask", "warning")
    result.mask = mask


def _describe_values(values: np.ndarray) -> str:
    shown = ", ".join(str(v) for v in values[:6])
    return shown + (", ..." if len(values) > 6 else "")


def _check_recorded_sizes(df: pd.DataFrame, problems: list[ManifestProblem]) -> None:
    widths = pd.to_numeric(df["width"], errors="coerce")
    heights = pd.to_numeric(df["height"], errors="coerce")
    for row, (image, path, w, h) in enumerate(zip(df["image"], df["image_path"], widths, heights)):
        if pd.isna(w) or pd.isna(h) or not Path(path).is_file():
            continue
        try:
            with Image.open(path) as img:
                size = img.size
        except Exception:  # noqa: BLE001 - already reported by the row checks
            continue
        if size != (int(w), int(h)):
            problems.append(
                ManifestProblem(row, str(image), f"recorded size {int(w)}x{int(h)} differs from the file's "
                                f"{size[0]}x{size[1]}", "warning")
            )


def summarize(df: pd.DataFrame, by: Iterable[str] = ("dataset", "kind", "label")) -> pd.DataFrame:
    """Counts of rows per combination of the ``by`` columns that exist in ``df``."""
    columns = [c for c in by if c in df.columns]
    if not columns:
        return pd.DataFrame({"rows": [len(df)]})
    return df.groupby(columns, dropna=False).size().rename("rows").reset_index()


def find_manifests(data_root: str | os.PathLike[str], *, include_fixtures: bool = True) -> dict[str, Path]:
    """Every dataset at hand: ``<data_root>/<name>/manifest.csv`` by folder name, plus the real fixtures.

    The embedded set comes first, then the real datasets in name order, then ``fixtures``.
    """
    root = Path(data_root)
    found = {path.parent.name: path for path in sorted(root.glob("*/manifest.csv"))}
    ordered = dict(sorted(found.items(), key=lambda item: (item[0] != "synthetic", item[0])))
    fixtures = fixtures_manifest() if include_fixtures else None
    if fixtures is not None:
        ordered["fixtures"] = fixtures
    return ordered


def combine_manifests(manifests: dict[str, str | os.PathLike[str]]) -> pd.DataFrame:
    """Load several manifests into one frame; ``dataset`` is set from the name where a manifest lacks it.

    Columns missing from some manifests are left empty there; resolved paths keep each row readable.
    """
    frames = []
    for name, path in manifests.items():
        frame = load_manifest(path)
        if "dataset" not in frame or (frame["dataset"] == "").all():
            frame["dataset"] = name
        frame["source_manifest"] = name
        frames.append(frame)
    if not frames:
        raise ManifestError("no manifests to combine")
    return pd.concat(frames, ignore_index=True)
