"""Mask prediction on whole images of any size: overlapping tiles, blended seams, bounded memory.

Mask models are trained on crops at native resolution (``ForgeryBatches(mode="crop")``), never on resized
images: resizing smears the JPEG blocking and sensor noise the forensic streams read. At test time the same
holds, so :func:`predict_mask` does not resize either. It cuts the image into overlapping ``tile`` x ``tile``
windows, predicts them in batches and blends the overlaps back together. The recipe:

1. **Streams from the whole image, once.** ELA re-compresses the image on the 8x8 JPEG grid: computed per tile,
   a tile whose corner is off that grid would see a *re-gridded* image with error levels 1.5-2.5 times higher
   everywhere (see :mod:`helpers.augment`), and every tile would pay the JPEG round trip again. So ELA and SRM
   are computed on the full image, then cut into tiles with the image, exactly as ``ForgeryBatches`` scales them
   (``rgb / 255``, raw ELA ``/ 255``, SRM as is).
2. **Tiles on the JPEG grid.** The stride and the margin are multiples of 16 pixels, so every tile's corner
   sits on the 16-pixel grid of the image, as every training crop did.
3. **Edges.** The image is extended by reflection (indices mirrored, no padded copy is made) by a margin of
   half the overlap, and at the bottom and right up to a whole number of tiles; an image smaller than a tile
   becomes one padded tile. Reflection rather than zeros: a black border is an edge the model never saw.
4. **Blending.** Each tile's prediction is weighted by a separable trapezoid window: 1 in the middle, falling
   linearly over the ``overlap`` pixels at each side (always > 0). The weighted predictions are summed and
   divided by the summed weights, so weights are normalised at every pixel: a model that predicts a constant
   gives exactly that constant everywhere, and neighbouring tiles cross-fade instead of meeting at a seam.
   Because the tiles form a full grid, the summed weights are the outer product of two 1-D sums, so only one
   float32 canvas (the weighted sum) is kept in memory.
5. **Bounded memory.** Tiles are gathered and predicted ``batch_size`` at a time; memory is the image, its
   streams, one canvas and one batch, whatever the image size (a 4000 x 3000 photo: about 0.3 GB with ELA).

:func:`evaluate_masks` applies this to a manifest and scores pixel F1/IoU; :func:`save_mask_model` and
:func:`load_mask_model` store a model with the settings needed to use it (streams, tile, threshold, ...) for
notebook 07 and ``python -m helpers analyze``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from helpers.atomic import atomic_write_json
from helpers.augment import JPEG_GRID, with_forensics
from helpers.imageio import ImageLoadError, load_mask, load_rgb
from helpers.models.metrics import confusion_counts, scores_from_counts
from helpers.pipeline import ELA_SCALE

__all__ = [
    "TileLayout",
    "tile_layout",
    "blend_window",
    "model_streams",
    "model_srm_bank",
    "compute_streams",
    "scale_stream",
    "predict_mask",
    "MaskEvaluation",
    "evaluate_masks",
    "MODEL_FILE",
    "INFO_FILE",
    "save_mask_model",
    "load_mask_model",
    "show_mask_predictions",
]

MODEL_FILE = "mask_model.keras"
INFO_FILE = "mask_model.json"
_DIVISOR = 32


# ----------------------------------------------------------------------------------------------------------------
# Tiling
# ----------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TileLayout:
    """Where the tiles of one image go: corners ``ys`` x ``xs`` on a canvas extended by ``margin`` pixels.

    Canvas coordinate ``c`` is image coordinate ``c - margin``; the canvas is ``canvas_shape`` and every
    image pixel lies inside it, at least ``margin`` pixels from its border.
    """

    height: int
    width: int
    tile: int
    overlap: int
    stride: int
    margin: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    @property
    def canvas_shape(self) -> tuple[int, int]:
        return (self.ys[-1] + self.tile, self.xs[-1] + self.tile)

    @property
    def count(self) -> int:
        return len(self.ys) * len(self.xs)


def _overlap_pixels(tile: int, overlap: float | int) -> int:
    if isinstance(overlap, bool) or not isinstance(overlap, (int, float, np.integer, np.floating)):
        raise TypeError(f"overlap must be a fraction of the tile (float) or pixels (int), not {overlap!r}")
    if isinstance(overlap, (float, np.floating)):
        if not 0.0 <= float(overlap) < 1.0:
            raise ValueError(f"overlap as a fraction must lie in [0, 1), not {overlap}")
        pixels = int(round(float(overlap) * tile))
    else:
        pixels = int(overlap)
    if not 0 <= pixels <= tile - JPEG_GRID:
        raise ValueError(f"overlap must be 0..{tile - JPEG_GRID} pixels for a {tile}-pixel tile, not {pixels}")
    return pixels


def tile_layout(height: int, width: int, tile: int = 256, overlap: float | int = 0.25) -> TileLayout:
    """The tiles covering a ``height`` x ``width`` image (see the module docstring for the rules).

    ``tile`` must be a multiple of 32 (the models' five stride-2 stages) and at least 32; ``overlap`` is a
    fraction of the tile (``0.25``) or pixels (``64``). The stride ``tile - overlap`` is rounded down to a
    multiple of 16 (the JPEG grid), so the effective overlap may be up to 15 pixels larger than asked.
    """
    if isinstance(tile, bool) or int(tile) != tile or tile < _DIVISOR or tile % _DIVISOR:
        raise ValueError(f"tile must be a multiple of {_DIVISOR} pixels (>= {_DIVISOR}), not {tile!r}")
    if height < 1 or width < 1:
        raise ValueError(f"cannot tile an empty image of {height} x {width}")
    tile = int(tile)
    asked = _overlap_pixels(tile, overlap)
    stride = max(JPEG_GRID, ((tile - asked) // JPEG_GRID) * JPEG_GRID)
    real_overlap = tile - stride
    margin = int(math.ceil(real_overlap / 2 / JPEG_GRID)) * JPEG_GRID if real_overlap else 0

    def corners(extent: int) -> tuple[int, ...]:
        needed = extent + 2 * margin
        count = 1 if needed <= tile else 1 + math.ceil((needed - tile) / stride)
        return tuple(i * stride for i in range(count))

    return TileLayout(int(height), int(width), tile, real_overlap, stride, margin, corners(height), corners(width))


def blend_window(tile: int, overlap: int) -> np.ndarray:
    """1-D float64 weights of length ``tile``: 1 in the middle, a linear ramp over ``overlap`` pixels each side.

    Strictly positive (the ramp starts at ``0.5 / overlap``), so every pixel has weight; ``overlap=0`` gives
    flat weights (tiles abut, no blending).
    """
    t = np.arange(tile, dtype=np.float64) + 0.5
    if overlap <= 0:
        return np.ones(tile, dtype=np.float64)
    return np.minimum(1.0, np.minimum(t, tile - t) / float(overlap))


def _reflect(indices: np.ndarray, size: int) -> np.ndarray:
    """Mirror indices into ``[0, size)`` as ``np.pad(mode="reflect")`` would (repeatedly, for any distance)."""
    if size == 1:
        return np.zeros_like(indices)
    period = 2 * (size - 1)
    folded = np.abs(indices) % period
    return np.where(folded >= size, period - folded, folded)


def _coverage(corners: Sequence[int], window: np.ndarray, extent: int) -> np.ndarray:
    total = np.zeros(extent, dtype=np.float64)
    for corner in corners:
        total[corner : corner + len(window)] += window
    return total


# ----------------------------------------------------------------------------------------------------------------
# Streams
# ----------------------------------------------------------------------------------------------------------------
def model_streams(model: keras.Model) -> tuple[str, ...]:
    """The names of ``model``'s inputs (``"rgb"``, ``"ela"``, ``"srm"``), as ``ForgeryBatches`` keys them."""
    names = tuple(str(tensor.name) for tensor in model.inputs)
    unknown = [n for n in names if n not in ("rgb", "ela", "srm")]
    if unknown:
        raise ValueError(f"model inputs {names} are not stream names (rgb, ela, srm); pass streams= explicitly")
    return names


def _input_channels(model: keras.Model) -> dict[str, int]:
    return {str(tensor.name): int(tensor.shape[-1]) for tensor in model.inputs}


def model_srm_bank(model: keras.Model) -> str:
    """The SRM bank a model's ``srm`` input expects, from its channel count (3: ``zhou3``, 30: ``full30``)."""
    channels = _input_channels(model).get("srm", 3)
    return {3: "zhou3", 30: "full30"}.get(channels, "zhou3")


def compute_streams(
    rgb: np.ndarray, streams: Sequence[str], *, ela_quality: int = 90, srm_bank: str = "zhou3"
) -> dict[str, np.ndarray]:
    """Each stream of the whole image in its compact dtype (``rgb`` and ``ela`` uint8, ``srm`` float32).

    The same function training uses (:func:`helpers.augment.with_forensics`); scaling to the model's input
    happens per tile batch (:func:`scale_stream`), so a large image is never held as float32 in several copies.
    """
    return with_forensics(rgb, tuple(streams), ela_quality, srm_bank=srm_bank)


def scale_stream(stream: str, values: np.ndarray) -> np.ndarray:
    """A stream's compact values (uint8 rgb/ela, float srm) scaled as :class:`~helpers.pipeline.ForgeryBatches`
    feeds them to a model: rgb / 255, ela * ``ELA_SCALE``, srm as is."""
    if stream == "rgb":
        return values.astype(np.float32) * np.float32(1.0 / 255.0)
    if stream == "ela":
        return values.astype(np.float32) * np.float32(ELA_SCALE)
    return values.astype(np.float32, copy=False)


def _batches(layout: TileLayout, batch_size: int) -> Iterator[list[tuple[int, int]]]:
    corners = [(y, x) for y in layout.ys for x in layout.xs]
    for start in range(0, len(corners), batch_size):
        yield corners[start : start + batch_size]


def predict_mask(
    model: keras.Model,
    rgb: np.ndarray | str | os.PathLike[str],
    *,
    tile: int = 256,
    overlap: float | int = 0.25,
    streams: Sequence[str] | None = None,
    batch_size: int = 8,
    ela_quality: int = 90,
    srm_bank: str | None = None,
) -> np.ndarray:
    """Tampering probability of every pixel of an image of any size: float32 ``(H, W)`` in [0, 1].

    ``rgb`` is a uint8 ``(H, W, 3)`` array or an image path (read with :func:`helpers.imageio.load_rgb`).
    ``streams`` defaults to the model's input names (a model whose inputs are named otherwise takes
    ``streams[i]`` as its input ``i``); ``srm_bank`` defaults to the bank matching its ``srm`` input.
    ``tile`` (a multiple of 32; use the training crop size or larger) and ``overlap`` (fraction or pixels)
    set the tiling (:func:`tile_layout`); ``batch_size`` tiles are predicted at once. See the module
    docstring for why streams are computed once on the whole image and how seams are blended.
    """
    image = load_rgb(rgb) if isinstance(rgb, (str, os.PathLike)) else np.asarray(rgb)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, not {image.dtype} {image.shape}")
    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
    names = tuple(streams) if streams is not None else model_streams(model)
    bank = srm_bank or model_srm_bank(model)
    height, width = image.shape[:2]
    layout = tile_layout(height, width, tile, overlap)
    features = compute_streams(image, names, ela_quality=ela_quality, srm_bank=bank)

    input_names = [str(tensor.name) for tensor in model.inputs]
    by_name = set(input_names) == set(names)  # else inputs named otherwise: streams[i] feeds the model's input i
    if not by_name and len(input_names) != len(names):
        raise ValueError(f"{len(names)} streams {names} for a model with {len(input_names)} inputs {input_names}")

    window = blend_window(layout.tile, layout.overlap)
    weights2d = np.outer(window, window).astype(np.float32)
    canvas_h, canvas_w = layout.canvas_shape
    canvas = np.zeros((canvas_h, canvas_w), dtype=np.float32)
    offsets = np.arange(layout.tile)
    # One batch shape for all batches of an image (the last one padded), so the compiled predict step is traced
    # once per image size class: the batch is the smallest power of two holding all tiles, at most batch_size,
    # which bounds the shapes a model ever sees (retracing a large model costs seconds) without making a
    # one-tile image pay for batch_size tiles.
    batch = min(int(batch_size), 1 << max(0, layout.count - 1).bit_length())
    for corners in _batches(layout, batch):
        x: dict[str, np.ndarray] = {}
        for stream in names:
            source = features[stream]
            tiles = np.zeros((batch, layout.tile, layout.tile, source.shape[2]), dtype=np.float32)
            for i, (y0, x0) in enumerate(corners):
                rows = _reflect(y0 - layout.margin + offsets, height)
                cols = _reflect(x0 - layout.margin + offsets, width)
                tiles[i] = scale_stream(stream, source[rows[:, None], cols[None, :]])
            x[stream] = tiles
        feed: Any = x if by_name else ([x[n] for n in names] if len(names) > 1 else x[names[0]])
        predicted = keras.ops.convert_to_numpy(model.predict_on_batch(feed))
        predicted = np.asarray(predicted, dtype=np.float32).reshape(batch, layout.tile, layout.tile, -1)[..., 0]
        for i, (y0, x0) in enumerate(corners):
            canvas[y0 : y0 + layout.tile, x0 : x0 + layout.tile] += predicted[i] * weights2d
    rows_total = _coverage(layout.ys, window, canvas_h)[layout.margin : layout.margin + height]
    cols_total = _coverage(layout.xs, window, canvas_w)[layout.margin : layout.margin + width]
    out = canvas[layout.margin : layout.margin + height, layout.margin : layout.margin + width]
    out /= rows_total.astype(np.float32)[:, None]
    out /= cols_total.astype(np.float32)[None, :]
    return np.clip(out, 0.0, 1.0)  # a new array: the canvas (and its margins) is freed


# ----------------------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class MaskEvaluation:
    """Per-image pixel scores (``table``), their summary, and (optionally) the predicted probability maps."""

    table: pd.DataFrame
    summary: dict[str, Any]
    predictions: dict[str, np.ndarray] = field(default_factory=dict)


def evaluate_masks(
    model: keras.Model,
    manifest: pd.DataFrame,
    *,
    tile: int = 256,
    overlap: float | int = 0.25,
    threshold: float = 0.5,
    batch_size: int = 8,
    streams: Sequence[str] | None = None,
    ela_quality: int = 90,
    keep_predictions: bool = False,
) -> MaskEvaluation:
    """Predict every image of ``manifest`` whole (:func:`predict_mask`) and score it.

    ``table``: one row per image with ``image_path``, ``label`` (and ``kind``/``dataset`` when present), the
    counts ``tp``, ``fp``, ``fn`` at ``threshold``, ``pixels``, ``tampered_pixels`` and ``seconds``; tampered
    images also get :func:`helpers.evaluate.pixel_metrics` (``f1``, ``iou``, ``mcc``, ``auc``, ``best_f1``,
    ``all_tampered_f1``, ...). Images without a mask count as all authentic; unreadable ones get ``error``.

    ``summary`` follows :mod:`helpers.evaluate`'s protocol for the headline numbers: ``pixel_f1``,
    ``pixel_iou``, ``pixel_auc`` and ``all_tampered_f1`` (the floor) are **means over tampered images**;
    ``micro_f1`` and ``micro_iou`` pool every pixel of every image (authentic ones add their false alarms;
    the definition of :class:`helpers.models.metrics.PixelF1`); ``authentic_false_alarm`` is the fraction of
    authentic images' pixels predicted tampered; plus ``images``, ``tampered_images``, ``unreadable`` and
    ``megapixels_per_s`` (prediction, streams included).
    """
    from helpers.evaluate import pixel_metrics  # noqa: PLC0415 - NumPy only; keeps import order simple

    names = tuple(streams) if streams is not None else model_streams(model)
    images = manifest["image_path"] if "image_path" in manifest else manifest["image"]
    masks = manifest["mask_path"] if "mask_path" in manifest else manifest.get("mask", pd.Series([""] * len(manifest)))
    rows: list[dict[str, Any]] = []
    predictions: dict[str, np.ndarray] = {}
    total_pixels, total_seconds = 0, 0.0
    for position, (image_path, mask_path) in enumerate(zip(images, masks, strict=True)):
        record: dict[str, Any] = {"image_path": str(image_path), "label": int(manifest["label"].iloc[position])}
        for column in ("kind", "dataset"):
            if column in manifest:
                record[column] = manifest[column].iloc[position]
        try:
            rgb = load_rgb(image_path)
            has_mask = isinstance(mask_path, str) and mask_path != ""
            size = (rgb.shape[1], rgb.shape[0])
            mask = load_mask(mask_path, size=size) if has_mask else np.zeros(rgb.shape[:2], bool)
        except ImageLoadError as error:
            rows.append({**record, "error": str(error)})
            continue
        mask = np.asarray(mask, bool)
        started = time.perf_counter()
        probability = predict_mask(
            model, rgb, tile=tile, overlap=overlap, streams=names, batch_size=batch_size, ela_quality=ela_quality
        )
        seconds = time.perf_counter() - started
        tp, fp, fn = confusion_counts(mask, probability, threshold)
        total_pixels += mask.size
        total_seconds += seconds
        row = {**record, "tp": tp, "fp": fp, "fn": fn, "pixels": int(mask.size),
               "tampered_pixels": int(mask.sum()), "seconds": round(seconds, 3), "error": ""}
        if mask.any():
            row.update(pixel_metrics(probability, mask, threshold=threshold))
        rows.append(row)
        if keep_predictions:
            predictions[str(image_path)] = probability
    table = pd.DataFrame(rows)
    return MaskEvaluation(table, _summary(table, total_pixels, total_seconds), predictions)


def _mean(frame: pd.DataFrame, column: str) -> float | None:
    if column not in frame or frame[column].isna().all():
        return None
    return round(float(frame[column].mean(skipna=True)), 4)


def _summary(table: pd.DataFrame, pixels: int, seconds: float) -> dict[str, Any]:
    scored = table[table["error"] == ""] if "error" in table else table
    if "tp" not in scored or scored.empty:
        return {"images": 0, "tampered_images": 0, "unreadable": int(len(table))}
    tp, fp, fn = (int(scored[c].sum()) for c in ("tp", "fp", "fn"))
    micro = scores_from_counts(tp, fp, fn)
    tampered = scored[scored["tampered_pixels"] > 0]
    authentic = scored[scored["tampered_pixels"] == 0]
    return {
        "pixel_f1": _mean(tampered, "f1"),
        "pixel_iou": _mean(tampered, "iou"),
        "pixel_auc": _mean(tampered, "auc"),
        "all_tampered_f1": _mean(tampered, "all_tampered_f1"),
        "micro_f1": round(micro["f1"], 4),
        "micro_iou": round(micro["iou"], 4),
        "authentic_false_alarm": (
            round(float(authentic["fp"].sum() / authentic["pixels"].sum()), 4) if len(authentic) else None
        ),
        "images": int(len(scored)),
        "tampered_images": int(len(tampered)),
        "unreadable": int(len(table) - len(scored)),
        "megapixels_per_s": round(pixels / 1e6 / seconds, 3) if seconds > 0 else None,
    }


# ----------------------------------------------------------------------------------------------------------------
# Saving
# ----------------------------------------------------------------------------------------------------------------
def save_mask_model(
    model: keras.Model, folder: str | os.PathLike[str], info: Mapping[str, Any] | None = None
) -> tuple[Path, Path]:
    """Write ``folder/mask_model.keras`` and ``folder/mask_model.json`` (how to use it); return both paths.

    The model is saved uncompiled (weights without optimizer state): an artifact for inference, a third of the
    size; to resume training, use the training run's own checkpoint.

    The JSON always holds ``streams`` (the model's inputs), ``srm_bank`` and the Keras version and backend;
    ``info`` adds the rest (by convention ``tile``, ``overlap``, ``threshold``, ``backbone``, ``crop_size``,
    ``ela_quality``). Written model first, description last and atomically, so a description never points at
    a missing model.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / MODEL_FILE
    # An uncompiled copy: architecture and weights without the optimizer's state, which inference never uses and
    # which Keras 3's .keras format would otherwise store (Adam: two more copies of every weight, so a third of
    # the size; 1.2 GB instead of 0.4 GB for the dual-stream ResNet101).
    lean = type(model).from_config(model.get_config())  # clone_model would compile the copy again
    lean.set_weights(model.get_weights())
    lean.save(model_path)
    description = {
        "model_file": MODEL_FILE,
        "streams": list(model_streams(model)),
        "srm_bank": model_srm_bank(model),
        "tile": 256,
        "overlap": 0.25,
        "threshold": 0.5,
        "ela_quality": 90,
        **dict(info or {}),
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
    }
    info_path = atomic_write_json(folder / INFO_FILE, description)
    return model_path, Path(info_path)


def load_mask_model(path: str | os.PathLike[str]) -> tuple[keras.Model, dict[str, Any]]:
    """Load a model saved by :func:`save_mask_model` (``path``: its folder, ``.keras`` or ``.json`` file).

    Returns ``(model, info)``; ``info`` is the JSON description (defaults when it is missing). Importing this
    module registers the workbook's custom losses, metrics and layers, so the model deserialises.
    """
    import helpers.models.layers  # noqa: F401,PLC0415 - registers custom layers
    import helpers.models.losses  # noqa: F401,PLC0415
    import helpers.models.sm_compat  # noqa: F401,PLC0415

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    info_path = folder / INFO_FILE
    info: dict[str, Any] = json.loads(info_path.read_text()) if info_path.is_file() else {}
    model_path = path if path.suffix == ".keras" else folder / info.get("model_file", MODEL_FILE)
    model = keras.saving.load_model(model_path)
    info.setdefault("streams", list(model_streams(model)))
    return model, info


# ----------------------------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------------------------
def show_mask_predictions(
    rows: pd.DataFrame,
    evaluations: Mapping[str, MaskEvaluation],
    *,
    threshold: float = 0.5,
    ela_quality: int = 90,
    cell_size: float = 2.5,
    title: str | None = None,
) -> Any:
    """The seeds' comparison grid: image | ELA | ground truth | one probability map per model, a row per image.

    ``rows`` are manifest rows (``image_path``, ``mask_path``) whose predictions every evaluation in
    ``evaluations`` (``{model name: MaskEvaluation}``, run with ``keep_predictions=True``) holds. The image
    carries the true mask's outline; ELA (raw, averaged over colours) on a fixed scale of 0 to 8 grey levels, the
    same for every image so that error levels compare (most differences of a quality-90 re-save lie there);
    each map is the probability (0 black .. 1 yellow) with the region above ``threshold`` outlined in cyan and
    the image's pixel F1 in its title. Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415 - figures only

    from helpers.forensics.ela import ela  # noqa: PLC0415
    from helpers.viz import mask_outline, overlay_mask  # noqa: PLC0415

    names = list(evaluations)
    columns = 3 + len(names)
    fig, axes = plt.subplots(
        len(rows), columns, figsize=(cell_size * columns, cell_size * 0.8 * len(rows) + 0.6), squeeze=False
    )
    for r, row in enumerate(rows.itertuples(index=False)):
        rgb = load_rgb(row.image_path)
        mask_path = getattr(row, "mask_path", "")
        has_mask = isinstance(mask_path, str) and mask_path != ""
        mask = load_mask(mask_path, size=(rgb.shape[1], rgb.shape[0])) if has_mask else np.zeros(rgb.shape[:2], bool)
        mask = np.asarray(mask, bool)
        panels: list[tuple[str, np.ndarray, dict[str, Any]]] = [
            (Path(str(row.image_path)).name[:28], overlay_mask(rgb, mask, alpha=0.0), {}),
            ("ELA (0-8 levels)", ela(rgb, ela_quality).mean(axis=2), {"cmap": "magma", "vmin": 0, "vmax": 8}),
            (f"truth ({mask.mean():.1%} tampered)", mask, {"cmap": "gray", "vmin": 0, "vmax": 1}),
        ]
        for name in names:
            evaluation = evaluations[name]
            probability = evaluation.predictions.get(str(row.image_path))
            if probability is None:
                raise KeyError(f"{name}: no prediction kept for {row.image_path} (use keep_predictions=True)")
            scores = evaluation.table.set_index("image_path").loc[str(row.image_path)]
            f1 = scores.get("f1", np.nan)
            label = f"{name}\nF1 {f1:.2f}" if mask.any() and np.isfinite(f1) else (
                f"{name}\nfalse alarm {np.mean(probability >= threshold):.1%}")
            style = {"cmap": "viridis", "vmin": 0, "vmax": 1, "outline": probability >= threshold}
            panels.append((label, probability, style))
        for c, (text, picture, style) in enumerate(panels):
            ax = axes[r, c]
            outline = style.pop("outline", None)
            ax.imshow(picture, **style)
            if outline is not None and outline.any():
                edge = mask_outline(outline)
                ax.imshow(np.ma.masked_where(~edge, edge), cmap="cool", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(text, fontsize=8)
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
