"""Analyze one image: every detector's map and score, the file's evidence, as JSON and a one-page figure
(notebook 07, ``python -m helpers analyze IMAGE``).

``analyze(path)`` runs, through the detector contract, every registered training-free detector and the learned
ones at hand: the classifier of notebook 05 and the mask model of notebook 06 (given, or the newest under
``runs/``). For each it keeps the heatmap, the score and the fraction of pixels its mask flags; beside them the
JPEG quality estimated from the quantisation tables and the EXIF fields and flags. The verdict is the
classifier's (its score against its saved threshold): read the scores, not only the verdict.

Large images: memory is bounded by design. An image with a side over 2048 px is analysed tile by tile
(:mod:`helpers.detectors.tiled`: overlapping tiles on the JPEG grid, each pixel answered by the tile in whose
core it lies, the score the maximum over tiles), ``copy_move`` reads a working copy of at most 2 MP, and no
full-size map is kept: the score, the flagged fraction and the heatmap's maximum are accumulated tile by tile,
and the maps (``Analysis.maps``, ``masks``, ``rgb``) are kept at the figure's size, :data:`PREVIEW_SIDE` px on the
longer side. Peak memory is then the libraries (about 0.13 GB; 0.85 GB when a saved model needs TensorFlow), the
pixels (3 bytes per pixel, 7 while the file is decoded; a tiled image lets the file's bytes go) and one tile's work
(at most about 0.5 GB):
under :data:`MEMORY_BUDGET_MB` (2 GB) for a 100 MP image (``benchmarks/bench_memory.py`` measures it). The
largest image accepted is :data:`helpers.imageio.DEFAULT_MAX_PIXELS` (100 MP).

Speed: the detectors run :data:`ANALYZE_WORKERS` at a time (threads: their work is NumPy, OpenCV, Pillow and
TensorFlow, which release the interpreter lock), the slowest first, on images up to :data:`PARALLEL_MAX_PIXELS`;
larger ones run one detector at a time, so that two tiles' work never adds to the memory bound above. Each
detector's ``seconds`` is its own wall time, overlapping the others'. The mask model reads a large photo through a
2 MP working copy (:mod:`helpers.detectors.learned`). A saved mask model made of the forensic network's layers
(the shipped one included) runs with NumPy (:class:`~helpers.detectors.PortableMaskDetector`), so ``analyze``
never starts TensorFlow for it: importing TensorFlow alone takes about 11 s on two cores. On a photo over
:data:`QUICK_ABOVE_PIXELS` with no detectors chosen, the quick set runs (:data:`QUICK_DETECTORS` and the mask
model on a 1 MP copy) and a note names what ``--detectors all`` adds; ``benchmarks/bench_newcomer.py`` times a
12 MP photo against its 10 s target, and the same photo with every detector.

:func:`save_analysis` writes ``<stem>-<hash>_analysis.json`` and ``.png`` (the stem plus a short hash of the
image's full path, so two images sharing a file name never overwrite each other's report), both to temporary
names first and then renamed, so a full disk never leaves one without the other. The command line checks
``--out`` before analysing. A file that is not a readable image raises :class:`helpers.imageio.ImageLoadError`
(exit code 1 on the command line), naming the file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import matplotlib.pyplot as plt
import numpy as np

from helpers.atomic import atomic_output, atomic_write_bytes
from helpers.detectors import Detector, MaskMapDetector, PortableMaskDetector, get_detector, list_detectors
from helpers.detectors.base import resolve_detectors
from helpers.detectors.mask_map import DEFAULT_MASK_WORKING_PIXELS
from helpers.detectors.tiled import (
    DEFAULT_MARGIN,
    DEFAULT_TILE,
    PieceSummary,
    plan_tiles,
    predict_pieces,
    preview_shape,
    summarise_pieces,
)
from helpers.forensics import estimate_jpeg_quality, exif_summary
from helpers.imageio import ImageLoadError, LoadedImage, load_image
from helpers.locks import folder_lock
from helpers.atomic import json_safe
from helpers.models.artifact_files import ModelArtifactError, find_model_artifacts, list_artifacts, shipped_model_path
from helpers.models.portable import UnsupportedModel
from helpers.plots import for_display
from helpers.viz import mask_outline

__all__ = [
    "ANALYZE_WORKERS",
    "PARALLEL_MAX_PIXELS",
    "MEMORY_BUDGET_MB",
    "PREVIEW_SIDE",
    "Analysis",
    "analyze",
    "analysis_figure",
    "report_paths",
    "save_analysis",
    "upload_and_analyze",
    "run_cli",
]

EXIF_FLAGS = ("no_exif", "edited_by_software", "missing_camera_model", "dates_disagree", "size_mismatch")

MEMORY_BUDGET_MB = 2048
"""Peak resident memory (MB) :func:`analyze` stays under with the training-free detectors, for any image up to
:data:`helpers.imageio.DEFAULT_MAX_PIXELS` (100 MP), the libraries (TensorFlow) included; measured by
``benchmarks/bench_memory.py`` and checked on a 50 MP photo by ``tests/bad_input/test_memory.py``."""

ANALYZE_WORKERS = 2
"""Detectors run at once on an image up to :data:`PARALLEL_MAX_PIXELS` (the two cores of a laptop or Colab)."""

PARALLEL_MAX_PIXELS = 24_000_000
"""Largest image whose detectors run side by side: two tiles' work (at most 0.5 GB each) plus the libraries and a
24 MP image's pixels stay under :data:`MEMORY_BUDGET_MB`; above it one detector runs at a time."""

QUICK_ABOVE_PIXELS = 4_000_000
"""Above this many pixels, ``analyze`` without a choice of detectors runs the quick set (:data:`QUICK_DETECTORS`,
the mask model on a :data:`QUICK_MODEL_PIXELS` copy): a 12 MP photo in under 10 s on two cores instead of about
20 s for every detector; ``detectors="all"`` (``--detectors all``) runs every one."""

QUICK_DETECTORS: tuple[str, ...] = ("dq", "ela", "noise")
"""The training-free detectors of the quick set: the three fastest per megapixel, and the compression (dq, ela)
and noise traces the mask model does not replace."""

QUICK_MODEL_PIXELS = 1_000_000
"""The mask model's working copy in the quick set (a 12 MP photo: 3.5 original pixels per copy pixel)."""

_SLOWEST_FIRST = ("mask_model", "ghost", "splicebuster", "copy_move", "grid", "dq", "ela", "noise")
"""The order in which detectors are started, so the longest ones never wait for a free worker at the end."""

PREVIEW_SIDE = 1024
"""Longer side (pixels) of the image and maps an :class:`Analysis` keeps: the figure's panels are about 320 px
wide, and a 100 MP image's full-size maps would take 5 bytes per pixel per detector."""


@dataclass
class Analysis:
    """What :func:`analyze` found; the arrays (``rgb``, ``maps``, ``masks``) stay out of the JSON report.

    The arrays are at most :data:`PREVIEW_SIDE` pixels on the longer side: the image's own size when it fits,
    else reduced by area averaging (a mask pixel is set where at least half of what it covers is flagged).
    """

    path: str
    width: int
    height: int
    format: str
    jpeg_quality: int | None
    jpeg_quality_exact: bool
    exif: dict[str, Any]
    flags: list[str]
    detectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per detector: ``score`` (None when it gives none), ``mask_fraction``, ``heatmap_max``, ``seconds``,
    ``error`` (None unless it failed on this image)."""
    models: dict[str, str | None] = field(default_factory=dict)
    verdict: str = "no classifier"
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    tiles: int = 1
    """How many tiles each detector ran on (1: the whole image at once)."""
    rgb: np.ndarray | None = field(default=None, repr=False)
    maps: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def report(self) -> dict[str, Any]:
        """The JSON-ready part: everything but the arrays (NaN and infinities as null)."""
        return json_safe({
            "path": self.path, "width": self.width, "height": self.height, "format": self.format,
            "jpeg_quality": self.jpeg_quality, "jpeg_quality_exact": self.jpeg_quality_exact, "exif": self.exif,
            "flags": self.flags, "verdict": self.verdict, "models": self.models, "detectors": self.detectors,
            "seconds": self.seconds, "tiles": self.tiles, "notes": self.notes,
        })


_LEARNED: dict[str, tuple[str, str]] = {
    "classifier": ("classify", "no classifier found: run notebook 05 or pass --classifier"),
    "mask_model": ("segment", "no mask model found: run notebook 06 or pass --mask-model"),
}


def _is_kind(detector: Detector, kind: str) -> bool:
    return isinstance(detector, MaskMapDetector) if kind == "mask_model" else detector.name == kind


def learned_detector(kind: str, path: str | os.PathLike[str], *,
                     working_pixels: int = DEFAULT_MASK_WORKING_PIXELS) -> Detector:
    """The detector of a saved model: a mask model NumPy can compute runs without Keras
    (:class:`~helpers.detectors.PortableMaskDetector`, the shipped one included), anything else with Keras.
    ``working_pixels``: the mask model's working copy of a larger image."""
    if kind == "mask_model":
        try:
            return PortableMaskDetector(path, working_pixels=working_pixels)
        except UnsupportedModel:
            pass
        return get_detector(kind, path=path, working_pixels=working_pixels)
    return get_detector(kind, path=path)


def _learned(
    chosen: dict[str, Detector], given: dict[str, str | os.PathLike[str] | None], search_runs: bool,
    notes: list[str], working_pixels: int = DEFAULT_MASK_WORKING_PIXELS,
) -> tuple[dict[str, Detector], dict[str, str | None]]:
    """The saved models to add to ``chosen`` (given, else the newest under runs/) and where each came from."""
    missing = [kind for kind, path in given.items() if path is None
               and not any(_is_kind(d, kind) for d in chosen.values())]
    found = find_model_artifacts() if search_runs and missing else {}
    detectors: dict[str, Detector] = {}
    models: dict[str, str | None] = {}
    for kind, (task, note) in _LEARNED.items():
        present = next((d for d in chosen.values() if _is_kind(d, kind)), None)
        path = given[kind] if given[kind] is not None else found.get(task)
        if present is not None and given[kind] is None:
            models[kind] = getattr(present, "path", None)
        elif path is not None:
            detectors[kind] = learned_detector(kind, path, working_pixels=working_pixels)
            models[kind] = str(Path(path).resolve())
        elif kind == "mask_model" and shipped_model_path() is not None:
            # No trained mask model at hand: the one that ships with the package (helpers.shipped).
            detectors[kind] = learned_detector(kind, shipped_model_path(), working_pixels=working_pixels)
            models[kind] = str(shipped_model_path())
            notes.append("mask model: the shipped forensic network (train your own in notebook 06)")
        else:
            models[kind] = None
            notes.append(note)
    return detectors, models


def analyze(
    path: str | os.PathLike[str],
    *,
    detectors: Any = None,
    classifier: str | os.PathLike[str] | None = None,
    mask_model: str | os.PathLike[str] | None = None,
    search_runs: bool = True,
    tile: int = DEFAULT_TILE,
    margin: int = DEFAULT_MARGIN,
) -> Analysis:
    """Analyze the image at ``path`` (see the module docstring).

    ``detectors``: names, :class:`~helpers.detectors.Detector` objects or ``{name: detector}``, or ``"all"``: every
    registered training-free detector; by default every one, or on an image of more than :data:`QUICK_ABOVE_PIXELS`
    the quick set (:data:`QUICK_DETECTORS`, the mask model on a smaller copy). ``classifier`` and ``mask_model`` are
    saved models (folder, ``.keras`` or ``.json``) of notebooks 05 and 06; when not given and ``search_runs``, the
    newest under ``runs/`` are used. A detector that fails on the image is reported in its entry and the notes; the
    others still run. An image with a side over ``tile`` pixels is analysed in tiles reaching ``margin`` pixels into
    their neighbours (:func:`helpers.detectors.tiled.plan_tiles`).
    """
    started = time.perf_counter()
    file = Path(path)
    image = load_image(file)
    quality = estimate_jpeg_quality(file)
    exif = _plain(exif_summary(file))
    notes: list[str] = []
    height, width = image.shape
    quick = detectors is None and height * width > QUICK_ABOVE_PIXELS
    if quick:
        chosen = {name: get_detector(name) for name in QUICK_DETECTORS}
        skipped = [name for name in list_detectors(trained=False) if name not in chosen]
        notes.append(f"large image ({height * width / 1e6:.0f} MP): the quick set ran ({', '.join(QUICK_DETECTORS)} "
                     f"and the mask model on a {QUICK_MODEL_PIXELS / 1e6:.0f} MP copy); --detectors all adds "
                     f"{', '.join(skipped)}")
    elif detectors is None or detectors == "all" or detectors == ["all"]:
        chosen = {name: get_detector(name) for name in list_detectors(trained=False)}
    else:
        chosen = resolve_detectors(detectors)
    learned, models = _learned(chosen, {"classifier": classifier, "mask_model": mask_model}, search_runs, notes,
                               working_pixels=QUICK_MODEL_PIXELS if quick else DEFAULT_MASK_WORKING_PIXELS)
    chosen.update({name: detector for name, detector in learned.items() if name not in chosen})
    preview = preview_shape(height, width, PREVIEW_SIDE)
    tiles = len(plan_tiles(height, width, tile=tile, margin=margin))
    if tiles > 1:
        # Tiles carry pixels only, so the file's bytes (up to 3 per pixel for a PNG) would be dead weight.
        image = LoadedImage(image.rgb, path=image.path, image_format=image.format, orientation=image.orientation)
    result = Analysis(
        path=str(file.resolve()), width=width, height=height,
        format=quality.format, jpeg_quality=quality.quality, jpeg_quality_exact=quality.exact, exif=exif,
        flags=[name for name in EXIF_FLAGS if exif.get(name)], models=models, notes=notes, tiles=tiles,
        rgb=image.rgb if preview == (height, width)
        else cv2.resize(image.rgb, (preview[1], preview[0]), interpolation=cv2.INTER_AREA),
    )
    if not quality.is_jpeg:
        notes.append(f"{quality.format} file: no JPEG tables to read; if it never was a JPEG, compression traces "
                     "(ELA, DQ, grid) show content, not edits")
    if tiles > 1:
        notes.append(f"large image ({height * width / 1e6:.0f} MP): each detector ran on {tiles} overlapping tiles "
                     f"of at most {tile} px, judging each tile against itself, from its pixels (not the file's "
                     "DCT coefficients); the score is the highest tile's")
    def run(detector: Detector) -> tuple[PieceSummary | Exception, float]:
        began = time.perf_counter()
        try:
            summary: PieceSummary | Exception = summarise_pieces(
                predict_pieces(detector, image, tile=tile, margin=margin), (height, width), preview)
        except Exception as error:  # noqa: BLE001 - one method failing must not hide the others' evidence
            summary = error
        return summary, round(time.perf_counter() - began, 3)

    workers = ANALYZE_WORKERS if height * width <= PARALLEL_MAX_PIXELS and len(chosen) > 1 else 1
    ranked = sorted(chosen, key=lambda n: _SLOWEST_FIRST.index(n) if n in _SLOWEST_FIRST else -1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        running = {name: pool.submit(run, chosen[name]) for name in ranked}
        answers = {name: running[name].result() for name in chosen}
    for name, (summary, seconds) in answers.items():
        if isinstance(summary, Exception):
            reason = f"{type(summary).__name__}: {summary}"
            result.detectors[name] = {"score": None, "mask_fraction": None, "heatmap_max": None,
                                      "seconds": seconds, "error": reason}
            notes.append(f"{name} failed: {reason}")
            continue
        result.detectors[name] = {
            "score": summary.score,
            "mask_fraction": summary.mask_fraction,
            "heatmap_max": summary.heatmap_max,
            "seconds": seconds,
            "error": None,
        }
        result.maps[name] = summary.heatmap
        result.masks[name] = summary.mask
        if summary.working_shape is not None:
            rows, cols = summary.working_shape
            notes.append(f"{name} read a {cols} x {rows} copy of the image: what it finds is at that resolution")
    judge = next(((name, d) for name, d in chosen.items() if _is_kind(d, "classifier")), None)
    entry = result.detectors.get(judge[0]) if judge else None
    if judge and entry and entry["score"] is not None:
        result.verdict = "tampered" if entry["score"] > float(getattr(judge[1], "threshold")) else "authentic"
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _plain(value: Any) -> Any:
    """EXIF summaries hold dates and NumPy scalars; keep what JSON can say."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


# ----------------------------------------------------------------------------------------------------------------
# The figure
# ----------------------------------------------------------------------------------------------------------------
def _score_text(entry: dict[str, Any]) -> str:
    if entry.get("error"):
        return "failed"
    score = entry.get("score")
    text = "score -" if score is None or (isinstance(score, float) and math.isnan(score)) else f"score {score:.2f}"
    return f"{text}, {entry['mask_fraction']:.1%} flagged"


def analysis_figure(analysis: Analysis, *, columns: int = 4, cell: float = 3.2) -> Any:
    """One page: the image, a small map per detector (titled with its name and score, its mask outlined), and
    the findings as text. Returns the matplotlib figure."""
    names = list(analysis.detectors)
    panels = 2 + len(names)
    rows = math.ceil(panels / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(cell * columns, cell * 0.85 * rows + 0.4), squeeze=False)
    flat = axes.ravel()
    if analysis.rgb is not None:
        flat[0].imshow(for_display(analysis.rgb))
    flat[0].set_title(Path(analysis.path).name[:32], fontsize=9)
    for ax, name in zip(flat[1:], names):
        entry = analysis.detectors[name]
        if name in analysis.maps:
            # Drawn at display size: the panels are a few centimetres wide, and matplotlib's resampling of the
            # 1024 px previews took most of the page's second.
            ax.imshow(for_display(analysis.maps[name]), cmap="magma", vmin=0.0, vmax=1.0, interpolation="nearest")
            edge = mask_outline(for_display(analysis.masks[name], nearest=True))
            if edge.any():
                ax.imshow(np.ma.masked_where(~edge, edge), cmap="cool", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.text(0.5, 0.5, "failed", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(f"{name}\n{_score_text(entry)}", fontsize=8)
    text_ax = flat[1 + len(names)]
    text_ax.text(0.0, 1.0, "\n".join(_finding_lines(analysis)), va="top", ha="left", fontsize=7.5,
                 family="monospace", transform=text_ax.transAxes, wrap=True)
    for ax in flat:
        ax.axis("off")
    fig.tight_layout()
    return fig


def _finding_lines(analysis: Analysis) -> list[str]:
    lines = [f"size     {analysis.width} x {analysis.height} {analysis.format}"]
    if analysis.jpeg_quality is not None:
        lines.append(f"JPEG     quality ~{analysis.jpeg_quality}"
                     + (" (IJG tables)" if analysis.jpeg_quality_exact else " (custom tables)"))
    lines.append(f"verdict  {analysis.verdict}")
    exif = analysis.exif
    camera = " ".join(str(exif.get(k)) for k in ("make", "model") if exif.get(k)) or "-"
    lines += [f"camera   {camera}", f"software {exif.get('software') or '-'}",
              f"flags    {', '.join(analysis.flags) or 'none'}"]
    for note in analysis.notes:
        lines += textwrap.wrap(note, 52, initial_indent="note     ", subsequent_indent=" " * 9)
    lines.append("Evidence, not proof: learned scores come from the workbook's own training data.")
    return lines


# ----------------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------------
def report_paths(image_path: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(json, png)`` paths of an image's report in ``out_dir``: ``<stem>-<8 hex of its path's hash>_analysis``."""
    resolved = str(Path(image_path).resolve())
    digest = hashlib.sha256(resolved.encode("utf-8")).hexdigest()[:8]
    stem = f"{Path(resolved).stem}-{digest}_analysis"
    folder = Path(out_dir)
    return folder / f"{stem}.json", folder / f"{stem}.png"


def save_analysis(analysis: Analysis, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write the JSON report and the figure into ``out_dir``; returns ``(json_path, png_path)``.

    Both are written in full to temporary files beside their targets and only then renamed, the JSON last: a
    failure while writing (a full disk) leaves neither, and an earlier report of the same image stays whole.
    """
    json_path, png_path = report_paths(analysis.path, out_dir)
    text = json.dumps(analysis.report(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    figure = analysis_figure(analysis)
    try:
        with atomic_output(json_path) as json_tmp, atomic_output(png_path) as png_tmp:
            figure.savefig(png_tmp, format="png", dpi=100)
            with open(json_tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
    finally:
        plt.close(figure)
    return json_path, png_path


# ----------------------------------------------------------------------------------------------------------------
# Command line and notebooks
# ----------------------------------------------------------------------------------------------------------------
def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for the reports")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as error:
        raise ValueError(f"--out {out}: cannot write there ({error.strerror or error})") from None


def run_cli(args: argparse.Namespace) -> int:
    """``python -m helpers analyze`` (arguments defined in :mod:`helpers.__main__`): check ``--out`` and the
    models first (exit code 2), analyze (exit code 1 for an unreadable image), write the report."""
    try:
        _check_out(args.out)
        for option, path in (("--classifier", args.classifier), ("--mask-model", args.mask_model)):
            if path is not None:
                list_artifacts(path)
    except (ValueError, ModelArtifactError) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    names = [n.strip() for n in args.detectors.split(",") if n.strip()] if args.detectors else None
    # One writer per output folder: a second analyze into it is refused (python -m helpers says who holds it).
    with folder_lock(args.out):
        try:
            analysis = analyze(args.image, detectors=names, classifier=args.classifier,
                               mask_model=args.mask_model, search_runs=not args.no_search)
        except ImageLoadError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except (OSError, ValueError) as error:
            print(f"error: {args.image}: {error}", file=sys.stderr)
            return 1
        json_path, png_path = save_analysis(analysis, args.out)
    report = analysis.report()
    print(json.dumps({"verdict": report["verdict"],
                      "scores": {name: entry["score"] for name, entry in report["detectors"].items()}}))
    print(f"wrote {json_path} and {png_path}")
    return 0


def upload_and_analyze(out_dir: str | os.PathLike[str], **analyze_kwargs: Any) -> Any:
    """"Analyze your own image" in a notebook: an upload control that analyzes what it receives.

    On Colab this opens Colab's own file picker (``google.colab.files.upload``, which blocks until files are
    chosen) and shows each file's figure; in Jupyter it returns an ``ipywidgets.FileUpload`` with an output area
    that fills when a file is uploaded (display the returned widget). Uploaded files are saved under
    ``out_dir/uploads`` (names reduced to their base name) and their reports beside them; unreadable uploads
    print the error instead of raising, so the control keeps working.
    """
    from IPython.display import display  # notebooks only: IPython is not needed elsewhere

    uploads = Path(out_dir) / "uploads"

    def handle(name: str, data: bytes) -> None:
        target = atomic_write_bytes(uploads / (Path(name).name or "upload"), data)
        try:
            analysis = analyze(target, **analyze_kwargs)
        except ImageLoadError as error:
            print(f"cannot analyze {name}: {error.reason}")
            return
        save_analysis(analysis, uploads)
        figure = analysis_figure(analysis)
        display(figure)
        plt.close(figure)

    if "google.colab" in sys.modules:
        from google.colab import files  # type: ignore[import-not-found]  # Colab only

        for name, data in files.upload().items():
            handle(name, data)
        return None

    import ipywidgets as widgets  # notebooks only

    control = widgets.FileUpload(accept="image/*", multiple=False, description="Upload an image")
    output = widgets.Output()

    def on_upload(change: dict[str, Any]) -> None:
        with output:
            output.clear_output()
            for item in change["new"]:
                handle(item["name"], bytes(item["content"]))

    control.observe(on_upload, names="value")
    return widgets.VBox([control, output])
