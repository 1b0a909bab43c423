"""``python -m helpers evaluate``: every detector on a manifest by the protocol of :mod:`.protocol` (notebook 07).

::

    python -m helpers evaluate --manifest M --detectors ela,noise,dq | all [--model DIR] [--threshold T]
                               --out report.json [--resume]

prints one table, detector x dataset (pixel F1 at the threshold, best-threshold F1, pixel AUC, image AUC,
false-alarm rate) beside the all-tampered floor, writes the report (JSON, no NaN: null instead) and, beside it,
the per-image rows as CSV (``report_rows.csv``). ``all`` is every training-free detector, plus a detector per
saved model when ``--model`` names a model or a folder of them.

It keeps its work: every argument and the output paths are checked before any image is scored (a one-line
error, exit code 2); the rows are appended to the CSV as each image is scored, so ``--resume`` continues an
interrupted run where it stopped, and Ctrl-C leaves a valid partial report (status ``interrupted``, exit code
130). Skipped images say why, on the terminal and in the report.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.atomic import atomic_write_json
from helpers.datasets.manifest import ManifestError, load_manifest
from helpers.locks import folder_lock
from helpers.atomic import json_safe

__all__ = ["register_cli", "rows_path_for", "ArgumentProblem"]

PROTOCOL = ("pixel metrics (heatmap > threshold) per tampered image with a mask, averaged, beside the all-tampered "
            "floor; best-threshold and permuted F1 without the border band; image metrics over every scored image "
            "(score: the detector's own, else its heatmap's maximum), per dataset and over the whole manifest")

TABLE_COLUMNS = {"pixel_f1": "F1@T", "best_f1": "best F1", "pixel_auc": "pixel AUC", "image_auc": "image AUC",
                 "false_alarm_rate": "false alarms", "floor_f1": "floor F1"}


class ArgumentProblem(ValueError):
    """An argument that makes the run impossible; reported as one line, exit code 2."""


def register_cli(subparsers: Any) -> None:
    """Add the ``evaluate`` command."""
    parser = subparsers.add_parser(
        "evaluate", help="evaluate detectors and saved models on a manifest by the field's protocol",
        description=__doc__.split("\n\n", 1)[1].replace("::\n\n", ""), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, required=True, help="manifest.csv to evaluate on")
    parser.add_argument("--detectors", default="all",
                        help="comma-separated detector names, or 'all' (default): every training-free detector, "
                             "plus the saved models of --model")
    parser.add_argument("--model", type=Path, default=None,
                        help="a saved model (folder holding NAME.keras and NAME.json, or a .keras file), or a "
                             "folder of them (runs/<profile>/models)")
    parser.add_argument("--threshold", type=float, default=0.5, help="decision threshold in [0, 1] (default 0.5)")
    parser.add_argument("--border", type=int, default=3,
                        help="pixels either side of a mask's boundary left out of best/permuted F1 (default 3)")
    parser.add_argument("--out", type=Path, default=Path("report.json"), help="report file (JSON)")
    parser.add_argument("--resume", action="store_true", help="continue the run whose rows are beside --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)


def rows_path_for(out: Path) -> Path:
    """Where the per-image rows of the report ``out`` are appended: ``<stem>_rows.csv`` beside it."""
    return out.with_name(f"{out.stem}_rows.csv")


# ----------------------------------------------------------------------------------------------------------------
# Checks, before anything is scored
# ----------------------------------------------------------------------------------------------------------------
def _check_threshold(value: float) -> float:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ArgumentProblem(f"--threshold must be a number in [0, 1], not {value}")
    return value


def _check_writable(out: Path, resume: bool) -> Path:
    if out.is_dir():
        raise ArgumentProblem(f"--out {out} is a folder; give a file name such as {out / 'report.json'}")
    folder = out.parent if str(out.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise ArgumentProblem(f"--out {out}: cannot write in {folder} ({error.strerror or error})") from None
    rows = rows_path_for(out)
    if rows.is_dir():
        raise ArgumentProblem(f"{rows} (the rows beside --out) is a folder")
    if rows.is_file() and rows.stat().st_size > 0 and not resume:
        raise ArgumentProblem(f"{rows} holds the rows of an earlier run: add --resume to continue it, or remove it")
    return rows


def _check_resumable(out: Path, manifest: Path, threshold: float, border: int) -> None:
    """A resumed run must score the same way as the run it continues."""
    if not out.is_file():
        return
    try:
        earlier = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return  # an unreadable report is rewritten; the rows decide what is done
    if not isinstance(earlier, dict):
        return
    mismatched = [f"{key} {earlier.get(key)!r} there, {value!r} now"
                  for key, value in (("manifest", str(manifest.resolve())), ("threshold", threshold), ("border", border))
                  if key in earlier and earlier[key] != value]
    if mismatched:
        raise ArgumentProblem(f"--resume: {out} was made with other settings ({'; '.join(mismatched)})")


def _detector_names(text: str) -> tuple[bool, list[str]]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ArgumentProblem("--detectors names no detector")
    return (names == ["all"]), names


# ----------------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------------
def _run(args: argparse.Namespace) -> int:
    try:
        threshold = _check_threshold(args.threshold)
        if args.border < 0:
            raise ArgumentProblem(f"--border must be 0 or more pixels, not {args.border}")
        rows_path = _check_writable(args.out, args.resume)
        if args.resume:
            _check_resumable(args.out, args.manifest, threshold, args.border)
        everything, names = _detector_names(args.detectors)
        manifest = load_manifest(args.manifest)
    except (ArgumentProblem, ManifestError) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    # The detectors load only now, so that the checks above (and every other command) answer at once; Keras
    # only with --model (the training-free detectors never start it).
    from helpers.detectors import Detector, get_detector, list_detectors
    from helpers.evaluation.protocol import evaluate, prepare_manifest, read_rows, summarise
    from helpers.models.artifact_files import ModelArtifactError, list_artifacts

    try:
        prepare_manifest(manifest)  # an empty manifest or a bad label: refused before any model loads
        learned: dict[str, Detector] = {}
        if args.model is not None:
            list_artifacts(args.model)  # a clear error before Keras deserialises anything
            from helpers.detectors.learned import learned_detectors

            learned = learned_detectors(args.model)
        trained = set(list_detectors(trained=True))
        chosen: dict[str, Any] = {}
        if everything:
            chosen = {name: name for name in list_detectors(trained=False)}
            chosen.update(learned)
        else:
            for name in names:
                if name in learned:
                    chosen[name] = learned[name]
                elif name in trained:
                    hint = (f"--model {args.model} holds no such model" if args.model is not None
                            else "it needs --model (a saved model folder or .keras file)")
                    raise ArgumentProblem(f"detector {name!r} is a learned model: {hint}")
                else:
                    chosen[name] = get_detector(name)
        if not chosen:
            raise ArgumentProblem("no detector to evaluate: none is registered; name some with --detectors or "
                                  "give --model")
    except (ArgumentProblem, ModelArtifactError, ValueError, ManifestError) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    settings = {"manifest": str(args.manifest.resolve()), "rows": str(rows_path.resolve()),
                "detectors": list(chosen), "model": str(args.model.resolve()) if args.model else None,
                "threshold": threshold, "border": int(args.border), "protocol": PROTOCOL}
    # One writer per report folder: a second evaluate into it is refused (python -m helpers prints who holds it).
    with folder_lock(args.out.parent if str(args.out.parent) else Path(".")):
        return _evaluate_and_report(args, chosen, manifest, settings, rows_path, threshold)


def _evaluate_and_report(args: argparse.Namespace, chosen: dict, manifest: Any, settings: dict[str, Any],
                         rows_path: Path, threshold: float) -> int:
    from helpers.evaluation.protocol import evaluate, read_rows, summarise  # loaded after the checks, as in _run

    _write_report(args.out, settings, "running", pd.DataFrame(), pd.DataFrame(), [])
    try:
        result = evaluate(chosen, manifest, threshold=threshold, border=args.border, rows_path=rows_path,
                          resume=args.resume, progress=not args.quiet)
    except KeyboardInterrupt:
        rows = read_rows(rows_path)
        rows = rows[rows["detector"].isin(list(chosen))]
        summary = summarise(rows, threshold=threshold) if len(rows) else pd.DataFrame()
        _write_report(args.out, settings, "interrupted", rows, summary, [])
        print(f"\ninterrupted: {len(rows)} rows kept in {rows_path}; partial report {args.out}; "
              "run again with --resume to continue", file=sys.stderr)
        return 130
    _write_report(args.out, settings, "complete", result.rows, result.summary, result.notes)
    print(format_table(result.summary, threshold))
    skipped = result.skipped()
    if len(skipped):
        print(f"{len(skipped)} image(s) skipped; the reasons are in {args.out} and {rows_path}", file=sys.stderr)
    print(f"wrote {args.out} and {rows_path}")
    return 0


def _write_report(out: Path, settings: dict[str, Any], status: str, rows: pd.DataFrame, summary: pd.DataFrame,
                  notes: list[str]) -> None:
    def records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
        present = [c for c in columns if c in frame]
        return [dict(zip(present, values)) for values in frame[present].itertuples(index=False)] if len(frame) else []

    skipped = rows[rows["status"] == "skipped"].drop_duplicates("image_path") if len(rows) else rows
    failed = rows[rows["status"] == "failed"] if len(rows) else rows
    report = {
        "status": status,
        **settings,
        "scored_rows": int((rows["status"] == "ok").sum()) if len(rows) else 0,
        "summary": records(summary, list(summary.columns)),
        "skipped": records(skipped, ["image", "reason"]),
        "failed": records(failed, ["image", "detector", "reason"]),
        "notes": list(notes),
    }
    atomic_write_json(out, json_safe(report), sort_keys=False)


def format_table(summary: pd.DataFrame, threshold: float) -> str:
    """The terminal table: detector x dataset, the headline metrics and the floor, NaN shown as ``-``."""
    if summary.empty:
        return "(nothing scored)"
    table = summary[["detector", "dataset", "images", *TABLE_COLUMNS]].rename(
        columns={**TABLE_COLUMNS, "pixel_f1": f"F1@{threshold:g}"})
    return table.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.3f}")
