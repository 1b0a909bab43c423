"""Analyze one image: a verdict, a map and the evidence, as a JSON report and a one-page figure.

``analyze(path)`` gathers everything the workbook knows how to read from one file:

* the **classifier score** (probability the image is tampered) of the model saved by notebook 05, computed on
  tiles of the training crop size at native resolution and reduced by their maximum (a crop that shows the
  edit is enough, which is how the classifier was trained). The threshold saved with the classifier was chosen
  on one central crop per validation image; a maximum over many tiles runs higher, so on large images the
  verdict leans towards "tampered": read the score, not only the verdict;
* the **predicted mask** of the mask model saved by notebook 06, over the whole image by overlapping tiles
  (:func:`helpers.inference.predict_mask`), any size;
* the training-free traces: ELA, SRM residual magnitude, noise level;
* the **JPEG quality** estimated from the quantisation tables and the **EXIF** fields and flags.

Models are optional: without them the report holds the traces and metadata, and says which models were
missing. ``python -m helpers analyze IMAGE`` finds the newest models under ``runs/`` unless told otherwise.
A file that is not a readable image raises :class:`helpers.imageio.ImageLoadError` (exit code 1 on the
command line), naming the file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from helpers.imageio import ImageLoadError, load_rgb

__all__ = [
    "Analysis",
    "find_models",
    "classifier_image_score",
    "analyze",
    "analysis_figure",
    "save_analysis",
    "upload_and_analyze",
    "register_cli",
]

MAX_CLASSIFIER_TILES = 64
"""Tiles scored per image at most; larger images are sampled on a coarser, still grid-aligned, lattice."""


@dataclass
class Analysis:
    """What :func:`analyze` found; ``maps`` (arrays) are kept out of the JSON report."""

    path: str
    width: int
    height: int
    format: str
    jpeg_quality: int | None
    jpeg_quality_exact: bool
    exif: dict[str, Any]
    flags: list[str]
    classifier: str | None = None
    classifier_score: float | None = None
    classifier_threshold: float | None = None
    verdict: str = "no classifier"
    mask_model: str | None = None
    mask_threshold: float | None = None
    tampered_fraction: float | None = None
    max_probability: float | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    maps: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def report(self) -> dict[str, Any]:
        """The JSON-ready part: everything but the arrays."""
        data = asdict(self)
        data.pop("maps")
        return data


def find_models(search: str | os.PathLike[str] | None = None) -> tuple[Path | None, Path | None]:
    """The newest ``classifier.keras`` and ``mask_model.keras`` under ``search`` (default: ``<checkout>/runs``).

    Returns ``(classifier_folder, mask_model_folder)``; ``None`` for what is not found.
    """
    from helpers import config

    root = Path(search) if search is not None else ((config.repo_root() or Path.cwd()) / "runs")
    if not root.is_dir():
        return None, None

    def newest(name: str) -> Path | None:
        found = sorted(root.rglob(name), key=lambda p: p.stat().st_mtime)
        return found[-1].parent if found else None

    return newest("classifier.keras"), newest("mask_model.keras")


def classifier_image_score(model: Any, info: dict[str, Any], rgb: np.ndarray, *, batch_size: int = 16) -> tuple[float, np.ndarray]:
    """Tampered probability of a whole image: the maximum over tiles of the classifier's input size.

    Tiles start on a grid of the input size (a multiple of 16, so JPEG blocks stay aligned) from the top-left
    corner, the image padded by reflection to whole tiles; streams are computed once on the whole image, as in
    training. A softmax model's tampered score is ``1 - P(authentic)``. Returns the score and the per-tile
    scores (rows x columns).
    """
    from helpers.inference import compute_streams, scale_stream

    streams = list(info.get("streams") or [t.name for t in model.inputs])
    size = int(info.get("input_size") or model.inputs[0].shape[1])
    height, width = rgb.shape[:2]
    rows, cols = -(-height // size), -(-width // size)
    step = 1
    while (-(-rows // step)) * (-(-cols // step)) > MAX_CLASSIFIER_TILES:
        step += 1
    full = compute_streams(rgb, streams, ela_quality=int(info.get("ela_quality", 90)),
                           srm_bank=str(info.get("srm_bank", "zhou3")))
    padded = {name: _pad_to(values, rows * size, cols * size) for name, values in full.items()}
    corners = [(r * size, c * size) for r in range(0, rows, step) for c in range(0, cols, step)]
    scores: list[float] = []
    for start in range(0, len(corners), batch_size):
        chunk = corners[start : start + batch_size]
        batch = {name: np.stack([scale_stream(name, padded[name][y : y + size, x : x + size]) for y, x in chunk])
                 for name in streams}
        output = np.asarray(model.predict(batch, verbose=0), dtype=np.float64)
        tampered = 1.0 - output[:, 0] if output.shape[-1] > 1 else output[:, 0]
        scores.extend(float(s) for s in tampered)
    grid = np.array(scores).reshape(-(-rows // step), -(-cols // step))
    return float(grid.max()), grid


def _pad_to(values: np.ndarray, height: int, width: int) -> np.ndarray:
    extra_h, extra_w = height - values.shape[0], width - values.shape[1]
    if extra_h == 0 and extra_w == 0:
        return values
    mode = "reflect" if extra_h < values.shape[0] and extra_w < values.shape[1] else "symmetric"
    return np.pad(values, ((0, extra_h), (0, extra_w), (0, 0)), mode=mode)


def analyze(
    path: str | os.PathLike[str],
    *,
    classifier: str | os.PathLike[str] | None = None,
    mask_model: str | os.PathLike[str] | None = None,
    search_runs: bool = True,
) -> Analysis:
    """Analyze the image at ``path`` (see the module docstring).

    ``classifier`` and ``mask_model`` are folders (or files) saved by notebooks 05 and 06; when not given and
    ``search_runs``, the newest under ``runs/`` are used. Raises :class:`ImageLoadError` for an unreadable file.
    """
    from helpers.forensics import ela, estimate_jpeg_quality, exif_summary, local_noise_map, srm

    started = time.perf_counter()
    file = Path(path)
    rgb = load_rgb(file)
    quality = estimate_jpeg_quality(file)
    exif = _plain(exif_summary(file))
    flags = [name for name in ("no_exif", "edited_by_software", "missing_camera_model", "dates_disagree", "size_mismatch")
             if exif.get(name)]
    result = Analysis(
        path=str(file.resolve()), width=int(rgb.shape[1]), height=int(rgb.shape[0]), format=quality.format,
        jpeg_quality=quality.quality, jpeg_quality_exact=quality.exact, exif=exif, flags=flags,
    )
    if not quality.is_jpeg:
        result.notes.append(f"{quality.format} file: no JPEG tables to read; if it never was a JPEG, ELA shows "
                            "content edges, not edits")
    result.maps["ela"] = ela(rgb, 90).mean(axis=2, dtype=np.float32)
    result.maps["srm"] = np.abs(srm(rgb, "zhou3")).mean(axis=2)
    result.maps["noise"] = local_noise_map(rgb)
    result.maps["rgb"] = rgb

    if search_runs and (classifier is None or mask_model is None):
        found_classifier, found_mask = find_models()
        classifier = classifier if classifier is not None else found_classifier
        mask_model = mask_model if mask_model is not None else found_mask
    if classifier is not None:
        from helpers.models.classifier import load_classifier

        folder = Path(classifier)
        model, info = load_classifier(folder if folder.is_dir() else folder.parent,
                                      stem=folder.stem if folder.suffix else "classifier")
        score, tiles = classifier_image_score(model, info, rgb)
        threshold = float(info.get("threshold", 0.5))
        result.classifier = str(folder.resolve())
        result.classifier_score, result.classifier_threshold = score, threshold
        result.verdict = "tampered" if score >= threshold else "authentic"
        result.maps["classifier_tiles"] = tiles
    else:
        result.notes.append("no classifier found: run notebook 05 or pass --classifier")
    if mask_model is not None:
        from helpers.inference import load_mask_model, predict_mask

        model, info = load_mask_model(mask_model)
        probability = predict_mask(model, rgb, tile=int(info.get("tile", 256)), overlap=info.get("overlap", 0.25),
                                   ela_quality=int(info.get("ela_quality", 90)))
        threshold = float(info.get("threshold", 0.5))
        result.mask_model = str(Path(mask_model).resolve())
        result.mask_threshold = threshold
        result.tampered_fraction = float((probability >= threshold).mean())
        result.max_probability = float(probability.max())
        result.maps["mask"] = probability
    else:
        result.notes.append("no mask model found: run notebook 06 or pass --mask-model")
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _plain(value: Any) -> Any:
    """EXIF summaries hold dates and NumPy scalars; keep what JSON can say."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.generic,)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def analysis_figure(analysis: Analysis):
    """One page: the image, the predicted mask over it, ELA, SRM, noise level, and the findings as text."""
    import matplotlib.pyplot as plt

    from helpers.viz import overlay_mask

    rgb = analysis.maps["rgb"]
    fig, axes = plt.subplots(2, 3, figsize=(13, 8.2))
    axes = axes.ravel()
    axes[0].imshow(rgb)
    axes[0].set_title(Path(analysis.path).name, fontsize=10)
    if "mask" in analysis.maps:
        predicted = analysis.maps["mask"] >= (analysis.mask_threshold or 0.5)
        axes[1].imshow(overlay_mask(rgb, predicted, alpha=0.4))
        axes[1].set_title(f"predicted mask ({analysis.tampered_fraction:.1%} of pixels)", fontsize=10)
    else:
        axes[1].text(0.5, 0.5, "no mask model", ha="center", va="center")
    ela_map = analysis.maps["ela"]
    axes[2].imshow(ela_map, cmap="magma", vmin=0, vmax=float(np.percentile(ela_map, 99)) or 1.0)
    axes[2].set_title("ELA (quality 90)", fontsize=10)
    srm_map = analysis.maps["srm"]
    axes[3].imshow(srm_map, cmap="magma", vmin=0, vmax=float(np.percentile(srm_map, 99)) or 1.0)
    axes[3].set_title("SRM residual magnitude", fontsize=10)
    axes[4].imshow(analysis.maps["noise"], cmap="viridis")
    axes[4].set_title("noise level (16x16 blocks)", fontsize=10)
    for ax in axes[:5]:
        ax.axis("off")
    axes[5].axis("off")
    axes[5].text(0.0, 1.0, "\n".join(_finding_lines(analysis)), va="top", ha="left", fontsize=10, family="monospace",
                 transform=axes[5].transAxes, wrap=True)
    fig.tight_layout()
    return fig


def _finding_lines(analysis: Analysis) -> list[str]:
    lines = [f"size      {analysis.width} x {analysis.height} {analysis.format}"]
    if analysis.jpeg_quality is not None:
        lines.append(f"JPEG      quality ~{analysis.jpeg_quality}" + (" (IJG tables)" if analysis.jpeg_quality_exact else " (custom tables)"))
    if analysis.classifier_score is not None:
        lines.append(f"verdict   {analysis.verdict.upper()}  score {analysis.classifier_score:.2f} "
                     f"(threshold {analysis.classifier_threshold:.2f})")
    if analysis.max_probability is not None:
        lines.append(f"mask      max p {analysis.max_probability:.2f}, {analysis.tampered_fraction:.1%} above "
                     f"{analysis.mask_threshold:.2f}")
    exif = analysis.exif
    camera = " ".join(str(exif.get(k)) for k in ("make", "model") if exif.get(k)) or "-"
    lines += [f"camera    {camera}", f"software  {exif.get('software') or '-'}",
              f"flags     {', '.join(analysis.flags) or 'none'}"]
    lines += [f"note      {note}" for note in analysis.notes]
    lines.append("Scores come from models trained on the workbook's data; treat them as evidence, not proof.")
    return lines


def save_analysis(analysis: Analysis, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``<stem>_analysis.json`` and ``<stem>_analysis.png`` (the figure) into ``out_dir`` atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from helpers.atomic import atomic_output, atomic_write_json

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(analysis.path).stem
    json_path = atomic_write_json(folder / f"{stem}_analysis.json", analysis.report())
    figure = analysis_figure(analysis)
    png_path = folder / f"{stem}_analysis.png"
    with atomic_output(png_path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)
    return json_path, png_path


def register_cli(subparsers: Any) -> None:
    """Add ``analyze IMAGE [--out DIR] [--classifier PATH] [--mask-model PATH] [--no-search]``."""
    parser = subparsers.add_parser(
        "analyze", help="analyze one image: verdict, predicted mask, ELA/SRM/noise maps, JPEG quality, metadata",
        description="Write IMAGE_analysis.json and IMAGE_analysis.png into --out (default: the current folder).")
    parser.add_argument("image", type=Path)
    parser.add_argument("--out", type=Path, default=Path("."), help="output folder")
    parser.add_argument("--classifier", type=Path, default=None, help="classifier folder or .keras (default: newest in runs/)")
    parser.add_argument("--mask-model", type=Path, default=None, help="mask model folder or .keras (default: newest in runs/)")
    parser.add_argument("--no-search", action="store_true", help="do not look for models under runs/")
    parser.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    try:
        analysis = analyze(args.image, classifier=args.classifier, mask_model=args.mask_model,
                           search_runs=not args.no_search)
    except ImageLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as error:
        print(f"error: {args.image}: {error}", file=sys.stderr)
        return 1
    json_path, png_path = save_analysis(analysis, args.out)
    report = analysis.report()
    print(json.dumps({k: report[k] for k in ("verdict", "classifier_score", "tampered_fraction", "jpeg_quality", "flags")}))
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
    import matplotlib.pyplot as plt
    from IPython.display import display

    uploads = Path(out_dir) / "uploads"

    def handle(name: str, data: bytes) -> None:
        from helpers.atomic import atomic_write_bytes

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
        from google.colab import files  # type: ignore[import-not-found]

        for name, data in files.upload().items():
            handle(name, data)
        return None

    import ipywidgets as widgets

    control = widgets.FileUpload(accept="image/*", multiple=False, description="Upload an image")
    output = widgets.Output()

    def on_upload(change: dict[str, Any]) -> None:
        with output:
            output.clear_output()
            for item in change["new"]:
                handle(item["name"], bytes(item["content"]))

    control.observe(on_upload, names="value")
    return widgets.VBox([control, output])
