"""The evaluation protocol: every detector, one manifest, one set of numbers (notebook 07, ``python -m helpers
evaluate``).

``evaluate(detectors, manifest)`` reads each image of the manifest once (as a :class:`~helpers.imageio.LoadedImage`,
through :func:`helpers.datasets.manifest.check_row`, the check ``validate`` uses), runs every detector on it
through the detector contract and scores the prediction:

* **per image** (``EvaluationResult.rows``, one row per image and detector): on a tampered image with a mask, the
  pixel metrics of :mod:`helpers.evaluation.pixel` (F1/IoU/MCC of ``heatmap > threshold``, best-threshold and
  permuted F1 without the border band, pixel AUC, the F1 of the detector's own mask) and the all-tampered floor;
  on every image its score (the detector's own, else the maximum of its heatmap) and the fraction of pixels it
  flags;
* **per detector and dataset** (``EvaluationResult.summary``): pixel metrics averaged over the tampered images,
  always beside ``floor_f1``, the all-tampered floor on the same images; image AUC, balanced accuracy and the
  false-alarm rate (:mod:`helpers.evaluation.image`) over the dataset's images; and the same over the whole
  manifest (dataset ``"(all)"``), so a manifest whose forged and authentic images sit in different datasets still
  gets an image AUC.

An unusable row (missing, truncated or too small image, mask of the wrong size, ...) is skipped with the
loader's reason, in the rows and in the log; a detector that fails on an image gets a ``failed`` row with the
error. Duplicate rows are scored once and paths leaving the manifest's folder are reported, each once.

With ``rows_path`` every image's rows are appended to a CSV as soon as they are computed, so an interrupted run
loses at most the image in progress and ``resume=True`` carries on where it stopped.

With ``cache`` (a folder; the workbook uses ``runs/<profile>/scores``) the rows of *training-free* detectors are
shared between evaluations: notebook 04 scores every detector on the real fixtures, and notebooks 06 and 07
reuse those rows instead of running the same deterministic methods on the same images again. A row is reused
only for the same detector class and parameters, detector source, threshold, border, image file and mask file
(path, size and modification time); learned detectors, whose weights change from run to run, are always scored.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import inspect
import io
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from helpers.datasets.manifest import check_row, load_manifest
from helpers.detectors import Detector, Prediction, get_detector
from helpers.detectors.base import detector_params, resolve_detectors
from helpers.imageio import as_loaded_image
from helpers.locks import FolderLockedError, folder_lock
from helpers.evaluation.image import detection_metrics
from helpers.evaluation.pixel import confusion_counts, f1_from_counts, pixel_metrics

__all__ = [
    "ALL_DATASETS",
    "ROW_COLUMNS",
    "SUMMARY_COLUMNS",
    "EvaluationResult",
    "cache_key",
    "evaluate",
    "resolve_detectors",
    "prepare_manifest",
    "read_rows",
    "summarise",
]

ALL_DATASETS = "(all)"
"""The dataset name of the summary rows over the whole manifest."""

ROW_COLUMNS: tuple[str, ...] = (
    "image", "image_path", "dataset", "kind", "label", "detector", "status", "reason", "score", "image_score",
    "f1", "iou", "mcc", "auc", "best_f1", "permuted_f1", "mask_f1", "tampered_fraction", "floor_f1",
    "flagged_fraction", "pixels", "seconds",
)
"""Columns of the per-image rows (and of the CSV they are appended to); ``status`` is ok, skipped or failed."""

SUMMARY_COLUMNS: tuple[str, ...] = (
    "detector", "dataset", "images", "tampered", "localised", "authentic", "skipped", "failed",
    "pixel_f1", "pixel_iou", "pixel_mcc", "best_f1", "permuted_f1", "pixel_auc", "mask_f1", "floor_f1",
    "image_auc", "balanced_accuracy", "false_alarm_rate", "authentic_flagged", "megapixels_per_s",
)
"""Columns of the summary: counts, pixel means over tampered images beside the floor, image-level metrics."""

_DONE = frozenset({"ok", "skipped"})  # failed rows are tried again on resume

Log = Callable[[str], None]


@dataclass
class EvaluationResult:
    """What :func:`evaluate` measured: per-image ``rows``, the ``summary`` and what it noticed on the way."""

    rows: pd.DataFrame
    summary: pd.DataFrame
    threshold: float
    border: int
    notes: list[str] = field(default_factory=list)
    heatmaps: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, repr=False)
    """``{(detector, image_path): heatmap}`` when ``keep_heatmaps=True``."""
    methods: dict[str, Detector] = field(default_factory=dict, repr=False)
    """The detectors that were evaluated: :meth:`heatmap` runs one again for a map that was not kept."""

    @property
    def detectors(self) -> list[str]:
        return list(dict.fromkeys(self.rows["detector"])) if len(self.rows) else []

    def headline(self, detector: str | None = None) -> dict[str, Any]:
        """The whole-manifest summary row of ``detector`` (the only one when there is one) as a dict."""
        names = self.detectors
        if detector is None:
            if len(names) != 1:
                raise ValueError(f"name the detector: this result holds {names}")
            detector = names[0]
        row = self.summary[(self.summary["detector"] == detector) & (self.summary["dataset"] == ALL_DATASETS)]
        if row.empty:
            raise KeyError(f"no summary for detector {detector!r}; known: {names}")
        return {key: (None if isinstance(value, float) and math.isnan(value) else value)
                for key, value in row.iloc[0].to_dict().items()}

    def skipped(self) -> pd.DataFrame:
        """One row per image that could not be scored, with the reason (``image``, ``reason``)."""
        bad = self.rows[self.rows["status"] == "skipped"]
        return bad[["image", "image_path", "reason"]].drop_duplicates("image_path").reset_index(drop=True)

    def heatmap(self, detector: str, image_path: str) -> np.ndarray:
        """The heatmap of ``detector`` on ``image_path``: a kept one (``keep_heatmaps=True``), else computed again
        by the evaluated detector (rows reused from a ``cache`` come without maps) and kept."""
        key = (detector, str(image_path))
        if key not in self.heatmaps:
            if detector not in self.methods:
                raise KeyError(f"no heatmap kept for {detector!r} on {image_path} (evaluate with keep_heatmaps=True)")
            self.heatmaps[key] = self.methods[detector](as_loaded_image(str(image_path))).heatmap
        return self.heatmaps[key]


# ----------------------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------------------
def _check_threshold(threshold: float) -> float:
    value = float(threshold)
    if not 0.0 <= value <= 1.0:  # NaN fails both comparisons
        raise ValueError(f"threshold must lie in [0, 1], not {threshold!r}")
    return value


def prepare_manifest(manifest: pd.DataFrame | str | os.PathLike[str]) -> tuple[pd.DataFrame, list[str]]:
    """The manifest's rows to score (duplicates dropped) and notes on what was dropped or looks odd.

    Adds ``dataset`` (the manifest folder's name where the column is missing or empty) and ``line`` (the row's
    line in the file). Raises ``ValueError`` for an empty manifest or a label other than 0/1.
    """
    frame = load_manifest(manifest) if not isinstance(manifest, pd.DataFrame) else manifest.copy()
    source = frame.attrs.get("manifest")
    if len(frame) == 0:
        raise ValueError(f"{source or 'manifest'}: no rows to evaluate (only a header?)")
    if "image_path" not in frame:
        frame["image_path"] = frame["image"]
        frame["mask_path"] = frame.get("mask", "")
    frame = frame.reset_index(drop=True)
    labels = pd.to_numeric(frame["label"], errors="coerce")
    bad = ~labels.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        entry = frame["image"].iloc[row] if "image" in frame else frame["image_path"].iloc[row]
        raise ValueError(f"{source or 'manifest'}, line {row + 2} ({entry}): label {frame['label'].iloc[row]} "
                         "is not 0 (authentic) or 1 (tampered)")
    frame["label"] = labels.astype(int)
    frame["line"] = frame.index + 2
    if "image" not in frame:
        frame["image"] = frame["image_path"]
    default = Path(source).parent.name if source else "manifest"
    datasets = frame["dataset"].astype(str) if "dataset" in frame else pd.Series([""] * len(frame))
    frame["dataset"] = [d if d and d != "nan" else default for d in datasets]
    frame["mask_path"] = frame["mask_path"].fillna("").astype(str)
    notes: list[str] = []
    if source:
        root = Path(source).resolve().parent
        leaving = [(line, entry) for line, entry in zip(frame["line"], frame["image"].astype(str))
                   if not Path(entry).is_absolute() and ".." in Path(entry).parts
                   and not _inside(Path(root, entry), root)]
        leaving += [(line, entry) for line, entry in zip(frame["line"], frame.get("mask", pd.Series(dtype=str)).astype(str))
                    if entry and not Path(entry).is_absolute() and ".." in Path(entry).parts
                    and not _inside(Path(root, entry), root)]
        if leaving:
            line, entry = sorted(leaving)[0]
            notes.append(f"{len(leaving)} path(s) leave the manifest's folder {root} through '..' (first: line "
                         f"{line}, {entry}); they are scored, but such a manifest is not self-contained")
    duplicated = frame["image_path"].map(lambda p: os.path.normpath(str(p))).duplicated(keep="first")
    if duplicated.any():
        first = frame[duplicated].iloc[0]
        notes.append(f"{int(duplicated.sum())} duplicate row(s) name an image already listed (first: line "
                     f"{first['line']}, {first['image']}); each image is scored once")
        frame = frame[~duplicated].reset_index(drop=True)
    return frame, notes


def _inside(path: Path, root: Path) -> bool:
    try:
        Path(os.path.normpath(path)).relative_to(root)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------------------------------------------
# Rows on disk
# ----------------------------------------------------------------------------------------------------------------
def read_rows(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The rows appended to ``path`` so far (a last line cut by an interruption is ignored), latest per
    (image, detector)."""
    file = Path(path)
    if not file.is_file() or file.stat().st_size == 0:
        return pd.DataFrame(columns=list(ROW_COLUMNS))
    text = file.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # an interrupted write: drop the partial line
    lines = text.splitlines()
    if not lines or next(csv.reader([lines[0]])) != list(ROW_COLUMNS):
        raise ValueError(f"{file}: not a rows file of this evaluation (its header differs from {', '.join(ROW_COLUMNS)})")
    frame = pd.read_csv(io.StringIO(text), dtype={"image": str, "image_path": str, "dataset": str, "kind": str,
                                                   "detector": str, "status": str, "reason": str},
                        keep_default_na=False, na_values=[""])
    for column in ("image", "image_path", "dataset", "kind", "detector", "status", "reason"):
        frame[column] = frame[column].fillna("")
    return frame.drop_duplicates(["image_path", "detector"], keep="last").reset_index(drop=True)


class _RowWriter:
    """Appends rows to a CSV, one flush per image, so an interruption loses at most the image in progress."""

    def __init__(self, path: Path, *, resume: bool) -> None:
        self.path = path
        existing = path.is_file() and path.stat().st_size > 0
        if existing and not resume:
            raise FileExistsError(f"{path} already holds rows of an evaluation; resume it or remove the file")
        path.parent.mkdir(parents=True, exist_ok=True)
        if existing:
            self._cut_partial_line()
        self.handle: TextIO = open(path, "a", newline="", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self.writer = csv.DictWriter(self.handle, fieldnames=list(ROW_COLUMNS), extrasaction="ignore")
        if not existing:
            self.writer.writeheader()
            self.handle.flush()

    def _cut_partial_line(self) -> None:
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            with open(self.path, "r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)

    def write(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.writer.writerow({key: _csv_value(row.get(key)) for key in ROW_COLUMNS})
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def _csv_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return value


# ----------------------------------------------------------------------------------------------------------------
# Rows shared between evaluations (training-free detectors only)
# ----------------------------------------------------------------------------------------------------------------
_CACHE_COLUMNS: tuple[str, ...] = ("identity", *ROW_COLUMNS)
_NUMERIC = frozenset(ROW_COLUMNS) - {"image", "image_path", "dataset", "kind", "detector", "status", "reason"}


def cache_key(detector: Detector, threshold: float, border: int) -> str | None:
    """The name of ``detector``'s rows in a score cache, or ``None`` when they must not be reused: a learned
    detector held in memory, or one holding parameters other than plain values (arrays, models). The key covers
    the class, its public parameters (for a learned detector loaded from files, their digest:
    :attr:`~helpers.detectors.base.Detector.artifact_digest`), the source of the module that defines it, the
    threshold and the border."""
    if getattr(detector, "trained", False):
        digest = detector.artifact_digest
        if digest is None:
            return None
        params: dict[str, Any] = {"artifact": digest}
    else:
        params = detector_params(detector)
    try:
        source = hashlib.sha1(Path(inspect.getfile(type(detector))).read_bytes()).hexdigest()
        # Plain values only (nested tuples too): json refuses arrays, models and other objects.
        described = json.dumps({"class": f"{type(detector).__module__}.{type(detector).__qualname__}",
                                "params": params, "source": source, "threshold": float(threshold),
                                "border": int(border)}, sort_keys=True, allow_nan=False)
    except (OSError, TypeError, ValueError):
        return None
    return f"{detector.name}-{hashlib.sha1(described.encode()).hexdigest()[:16]}"


def _file_identity(path: str) -> str:
    if not path:
        return "-"
    try:
        stat = os.stat(path)
    except OSError:
        return f"{os.path.abspath(path)}:missing"
    return f"{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}"


class _ScoreCache:
    """The ``cache`` folder of :func:`evaluate`: one CSV per detector key, ``identity`` (image and mask files)
    plus the row. Rows are reused only when the image and its mask are the files that were scored; only ``ok``
    rows are kept. The folder is locked while an evaluation uses it; a second concurrent evaluation runs
    without it rather than wait."""

    def __init__(self, folder: Path | None, keys: dict[str, str]) -> None:
        self.folder, self.keys = folder, keys
        self.stored: dict[str, dict[str, dict[str, Any]]] = {}
        self.handles: dict[str, TextIO] = {}
        for name, key in keys.items():
            self.stored[name] = self._read(folder / f"{key}.csv") if folder is not None else {}

    @classmethod
    @contextlib.contextmanager
    def open(cls, folder: str | os.PathLike[str] | None, chosen: dict[str, Detector], threshold: float,
             border: int, say: Log) -> Iterator[_ScoreCache]:
        keys = {name: key for name, detector in chosen.items()
                if (key := cache_key(detector, threshold, border)) is not None} if folder is not None else {}
        if not keys:
            yield cls(None, {})
            return
        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(folder_lock(root))
            except FolderLockedError as error:
                say(f"note: the score cache {root} is in use by another evaluation ({error}); scoring without it")
                yield cls(None, {})
                return
            store = cls(root, keys)
            try:
                yield store
            finally:
                store.close()

    @staticmethod
    def _read(path: Path) -> dict[str, dict[str, Any]]:
        if not path.is_file():
            return {}
        data = path.read_bytes()
        if not data.endswith(b"\n"):  # an interrupted write left a partial last line: cut it before appending
            data = data[: data.rfind(b"\n") + 1]
            with open(path, "r+b") as handle:
                handle.truncate(len(data))
        reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
        if tuple(reader.fieldnames or ()) != _CACHE_COLUMNS:
            path.unlink()  # another version's layout: score again under this one's header
            return {}
        rows = {}
        for record in reader:
            row: dict[str, Any] = {key: record[key] for key in ROW_COLUMNS}
            for key in _NUMERIC:
                row[key] = float(row[key]) if row[key] != "" else float("nan")
            rows[record["identity"]] = row
        return rows

    @staticmethod
    def _identity(entry: Any) -> str:
        return f"{_file_identity(str(entry.image_path))}|{_file_identity(str(entry.mask_path or ''))}"

    def reuse(self, entry: Any, chosen: dict[str, Detector], done: set[tuple[str, str]]) -> list[dict[str, Any]]:
        """Stored rows of ``entry`` for detectors not yet done, relabelled as this manifest names the image."""
        if not self.keys:
            return []
        identity, image_path = self._identity(entry), str(entry.image_path)
        base = {"image": str(entry.image), "image_path": image_path, "dataset": str(entry.dataset),
                "kind": str(getattr(entry, "kind", "") or ""), "label": int(entry.label)}
        found = []
        for name in chosen:
            row = self.stored.get(name, {}).get(identity) if (image_path, name) not in done else None
            if row is not None and int(row["label"]) == int(entry.label):
                found.append({**row, **base, "detector": name})
        return found

    def keep(self, entry: Any, rows: list[dict[str, Any]]) -> None:
        """Append the fresh ``ok`` rows of cached detectors."""
        if self.folder is None:
            return
        identity = self._identity(entry)
        for row in rows:
            name = str(row["detector"])
            if name not in self.keys or row.get("status") != "ok" or identity in self.stored[name]:
                continue
            self.stored[name][identity] = row
            handle = self.handles.get(name)
            if handle is None:
                path = self.folder / f"{self.keys[name]}.csv"
                header = not path.is_file() or path.stat().st_size == 0
                handle = self.handles[name] = open(path, "a", newline="", encoding="utf-8")  # noqa: SIM115 - close()
                if header:
                    csv.writer(handle).writerow(_CACHE_COLUMNS)
            csv.writer(handle).writerow([identity, *(_csv_value(row.get(key)) for key in ROW_COLUMNS)])
            handle.flush()

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()
        self.handles.clear()


# ----------------------------------------------------------------------------------------------------------------
# Scoring
# ----------------------------------------------------------------------------------------------------------------
def _score(prediction: Prediction, mask: np.ndarray | None, threshold: float, border: int) -> dict[str, Any]:
    heatmap = prediction.heatmap
    score = prediction.score
    row: dict[str, Any] = {
        "score": float("nan") if score is None else float(score),
        # Image AUC needs a score for every image: a method without one is ranked by its most suspicious pixel.
        "image_score": float(heatmap.max()) if score is None else float(score),
        "flagged_fraction": float(np.count_nonzero(heatmap > threshold) / heatmap.size),
        "pixels": int(heatmap.size),
    }
    if mask is not None:
        row.update(pixel_metrics(heatmap, mask, threshold=threshold, border=border))
        tp, fp, fn, _ = confusion_counts(prediction.mask, mask)
        row["mask_f1"] = f1_from_counts(tp, fp, fn)
    return row


def evaluate(
    detectors: Any,
    manifest: pd.DataFrame | str | os.PathLike[str],
    *,
    threshold: float = 0.5,
    border: int = 3,
    rows_path: str | os.PathLike[str] | None = None,
    resume: bool = False,
    keep_heatmaps: bool = False,
    progress: bool = True,
    log: Log | None = None,
    cache: str | os.PathLike[str] | None = None,
) -> EvaluationResult:
    """Run every detector on every image of ``manifest`` and score it by the protocol (module docstring).

    ``detectors``: names, :class:`Detector` objects or ``{name: name or Detector}``. ``manifest``: a path or a
    frame from :func:`helpers.datasets.manifest.load_manifest`. ``threshold`` (in [0, 1]) decides pixels and
    images; ``border`` pixels around each mask's boundary are left out of best-threshold and permuted F1.
    ``rows_path``: append each image's rows to this CSV as they are computed; with ``resume`` the rows already
    there are kept and their images not scored again. ``keep_heatmaps`` keeps every heatmap in the result (for
    figures; memory grows with the set). ``progress`` shows a tqdm bar; ``log`` receives one line per skipped
    image, failure and note (default: printed to stderr above the bar).
    """
    threshold = _check_threshold(threshold)
    chosen = resolve_detectors(detectors)
    frame, notes = prepare_manifest(manifest)
    say: Log = log if log is not None else (lambda text: tqdm.write(text, file=sys.stderr))
    for note in notes:
        say(f"warning: {note}")
    previous = read_rows(rows_path) if rows_path is not None and resume else pd.DataFrame(columns=list(ROW_COLUMNS))
    done = {(str(p), str(d)) for p, d, s in zip(previous["image_path"], previous["detector"], previous["status"])
            if s in _DONE}
    writer = _RowWriter(Path(rows_path), resume=resume) if rows_path is not None else None
    fresh: list[dict[str, Any]] = []
    heatmaps: dict[tuple[str, str], np.ndarray] = {}
    pending_images = [entry for entry in frame.itertuples(index=False)
                      if any((str(entry.image_path), name) not in done for name in chosen)]
    bar = tqdm(total=len(frame), initial=len(frame) - len(pending_images), desc="evaluating", unit="image",
               disable=not progress, file=sys.stderr)
    with _ScoreCache.open(cache, chosen, threshold, border, say) as scores:
        try:
            for entry in pending_images:
                reused = scores.reuse(entry, chosen, done)
                rows = reused + _evaluate_image(entry, chosen, done | {(str(entry.image_path), str(r["detector"]))
                                                                        for r in reused},
                                                threshold, border, keep_heatmaps, heatmaps, say)
                scores.keep(entry, rows)
                if writer is not None:
                    writer.write(rows)
                fresh.extend(rows)
                bar.update(1)
        finally:
            bar.close()
            if writer is not None:
                writer.close()
    kept = previous[[(str(p), str(d)) in done for p, d in zip(previous["image_path"], previous["detector"])]] \
        if len(previous) else previous
    rows_frame = pd.concat([kept, pd.DataFrame(fresh, columns=list(ROW_COLUMNS))], ignore_index=True) \
        if len(kept) else pd.DataFrame(fresh, columns=list(ROW_COLUMNS))
    rows_frame = rows_frame[rows_frame["detector"].isin(list(chosen))].reset_index(drop=True)
    return EvaluationResult(rows=rows_frame, summary=summarise(rows_frame, threshold=threshold), threshold=threshold,
                            border=int(border), notes=notes, heatmaps=heatmaps, methods=chosen)


SHARED_MAPS_MAX_PIXELS = 16_000_000
"""Images up to this size share detector outputs between the methods scored on them (a fusion and the detectors
it reads): each kept map costs 5 bytes a pixel while the image is scored, so larger images compute them again."""


def _evaluate_image(
    entry: Any, detectors: dict[str, Detector], done: set[tuple[str, str]], threshold: float, border: int,
    keep_heatmaps: bool, heatmaps: dict[tuple[str, str], np.ndarray], say: Log,
) -> list[dict[str, Any]]:
    image_path = str(entry.image_path)
    base = {"image": str(entry.image), "image_path": image_path, "dataset": str(entry.dataset),
            "kind": str(getattr(entry, "kind", "") or ""), "label": int(entry.label)}
    pending = [name for name in detectors if (image_path, name) not in done]
    if not pending:  # every row came from the score cache: the image need not be read
        return []
    checked = check_row(image_path, entry.mask_path or None, int(entry.label), keep=True)
    if not checked.ok:
        reason = checked.errors[0]
        say(f"skipped line {entry.line} ({entry.image}): {reason}")
        return [{**base, "detector": name, "status": "skipped", "reason": reason} for name in pending]
    image = checked.image
    if image.shape[0] * image.shape[1] <= SHARED_MAPS_MAX_PIXELS:
        image.predictions = {}  # each training-free detector runs once on this image, however many methods read it
    mask = checked.mask if entry.label == 1 and checked.mask is not None and checked.mask.any() else None
    rows = []
    for name in pending:
        started = time.perf_counter()
        try:
            prediction = detectors[name](image)
        except Exception as error:  # noqa: BLE001 - one method failing on one image must not end the run
            reason = f"{type(error).__name__}: {error}"
            say(f"failed: {name} on line {entry.line} ({entry.image}): {reason}")
            rows.append({**base, "detector": name, "status": "failed", "reason": reason})
            continue
        seconds = time.perf_counter() - started
        rows.append({**base, "detector": name, "status": "ok", "reason": "",
                     **_score(prediction, mask, threshold, border), "seconds": round(seconds, 4)})
        if keep_heatmaps:
            heatmaps[(name, image_path)] = prediction.heatmap
    return rows


# ----------------------------------------------------------------------------------------------------------------
# Summaries
# ----------------------------------------------------------------------------------------------------------------
def _mean(values: pd.Series) -> float:
    finite = pd.to_numeric(values, errors="coerce").dropna()
    return float(finite.mean()) if len(finite) else float("nan")


def _summary_row(detector: str, dataset: str, part: pd.DataFrame, threshold: float) -> dict[str, Any]:
    ok = part[part["status"] == "ok"]
    label = pd.to_numeric(ok["label"], errors="coerce")
    localised = ok[pd.to_numeric(ok["f1"], errors="coerce").notna()]
    authentic = ok[label == 0]
    seconds = pd.to_numeric(ok["seconds"], errors="coerce").sum()
    detection = detection_metrics(label.to_numpy(), pd.to_numeric(ok["image_score"], errors="coerce").to_numpy(),
                                  threshold) if len(ok) else {"image_auc": float("nan"),
                                                              "balanced_accuracy": float("nan"),
                                                              "false_alarm_rate": float("nan")}
    return {
        "detector": detector,
        "dataset": dataset,
        "images": int(len(part)),
        "tampered": int((label == 1).sum()),
        "localised": int(len(localised)),
        "authentic": int((label == 0).sum()),
        "skipped": int((part["status"] == "skipped").sum()),
        "failed": int((part["status"] == "failed").sum()),
        "pixel_f1": _mean(localised["f1"]),
        "pixel_iou": _mean(localised["iou"]),
        "pixel_mcc": _mean(localised["mcc"]),
        "best_f1": _mean(localised["best_f1"]),
        "permuted_f1": _mean(localised["permuted_f1"]),
        "pixel_auc": _mean(localised["auc"]),
        "mask_f1": _mean(localised["mask_f1"]),
        "floor_f1": _mean(localised["floor_f1"]),
        **detection,
        "authentic_flagged": _mean(authentic["flagged_fraction"]),
        "megapixels_per_s": (float(pd.to_numeric(ok["pixels"], errors="coerce").sum() / 1e6 / seconds)
                             if seconds > 0 else float("nan")),
    }


def summarise(rows: pd.DataFrame, *, threshold: float = 0.5) -> pd.DataFrame:
    """Per detector: one row per dataset and one over the whole manifest (``"(all)"``), in :data:`SUMMARY_COLUMNS`.

    Pixel metrics are means over the tampered images with a mask (NaN-aware: an image whose border band swallows
    its mask has no best-threshold F1); ``floor_f1`` is the all-tampered F1 on the same images; detection metrics
    use every scored image of the group.
    """
    threshold = _check_threshold(threshold)
    out = []
    for detector in dict.fromkeys(rows["detector"]):
        mine = rows[rows["detector"] == detector]
        out.append(_summary_row(detector, ALL_DATASETS, mine, threshold))
        for dataset in dict.fromkeys(mine["dataset"]):
            out.append(_summary_row(detector, str(dataset), mine[mine["dataset"] == dataset], threshold))
    return pd.DataFrame(out, columns=list(SUMMARY_COLUMNS))
