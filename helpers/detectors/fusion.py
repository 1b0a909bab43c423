"""The fused detector: per-pixel gradient boosting over detectors' heatmaps (benchmarks: fusion, detection).

Each training-free method sees one trace (error level, noise, JPEG ghosts, grid, co-occurrences) and misses
the forgeries that leave no mark in it; a pixel flagged by two traces is more likely tampered than one flagged by
a single trace that is known to fire on texture. The fusion learns that weighting from data, per pixel:

* **features** (:func:`fusion_feature_names`): for each detector, its heatmap, the heatmap's local mean and
  standard deviation in two box windows (:data:`CONTEXT_SCALES`: is the pixel inside a consistent blob, or on
  a speckle?) and the detector's image score broadcast to every pixel; then a few cheap texture features of
  the grey image (local mean, local standard deviation at both scales, gradient magnitude), since most traces
  misbehave on flat, dark or saturated content and the model can learn where to discount them;
* **model**: scikit-learn's ``HistGradientBoostingClassifier`` (default) or a standardised logistic
  regression, fitted on pixels sampled from the *training* split of a manifest, tampered and untampered
  pixels balanced by sample weights (tampered pixels are a few percent of all pixels);
* **threshold**: chosen on pixels of the *validation* split to maximise the mean per-image F1 over its
  tampered images (the workbook's localisation metric). The heatmap is the model's probability mapped
  piecewise-linearly so that this threshold lands on 0.5: evaluation at 0.5 and the detector's own mask
  (heatmap > 0.5) then agree. The image score is the mean of the top 1 % of the heatmap.

This is the cheapest learned step of the workbook, and so the bar the deep models must clear. Measured with
``benchmarks/bench_fusion.py`` (embedded set of 200 samples, seed 0; fused: ``dq``, ``ela``, ``ghost``,
``grid``, ``noise``, ``splicebuster``; about two minutes of features and fitting on one core): pixel F1 at 0.5
of 0.50 on the held-out test split (all-tampered floor 0.10; the best single detector, ``dq``, 0.33) and 0.33
on the real fixtures (floor 0.15; ``dq`` alone 0.34: the embedded set teaches little that CASIA's
re-encoded PNGs reward).

The detectors are named when fitting (default: every registered training-free detector but ``copy_move``, which
is slow on large images and whose map is sparse; pass ``detectors=`` to choose), and the fitted model records
them: a saved fusion predicts with exactly the detectors and parameters it was fitted on. Each is built once per
process (``_built_detector``), so a learned one loads its model once, not once per image.

**Stacking a mask model.** A saved mask model is one more input: ``detectors=[..., "mask_model"]`` with
``detector_params={"mask_model": {"path": folder_or_keras_file}}`` (notebook 06's forensic network, or the shipped
one, :func:`helpers.models.artifact_files.shipped_model_path`). The trees then learn where the network's map is
trusted and where a trace (``dq`` on recompressed JPEGs, above all) knows better. Measured on the ``full``
embedded set (fitted on 300 training and 120 validation images of its split, drawn with ``random_state=0``;
scored on all 450 held-out images) and on the 81 real fixtures, with the shipped network:

=====================================  ========  =======  =========  ========  =======  =========
method                                 held-out  best F1  image AUC  fixtures  best F1  image AUC
                                       F1@0.5                        F1@0.5
=====================================  ========  =======  =========  ========  =======  =========
the network alone                      0.361     0.468    0.644      0.295     0.463    0.607
fusion of the traces                   0.274     0.426    0.689      0.335     0.506    0.799
fusion of the traces and the network   0.325     0.491    0.721      0.343     0.528    0.736
all tampered (floor)                   0.088                         0.145
=====================================  ========  =======  =========  ========  =======  =========

Stacking gains in best-threshold F1 and image AUC on both sets and in fixture F1, but at its validation threshold
its held-out F1 at 0.5 is below the network's alone: the trees fit balanced pixel samples by log-loss, the
network whole crops by BCE + Dice, which is closer to the per-image F1 the protocol averages. Fitting took
2 minutes for the traces and 4.5 with the network (two cores).

**Cost.** Prediction scores every second pixel of every second row (:data:`PREDICTION_STRIDE`) and interpolates
the rest; the detectors' own maps are computed at full size.

Saved as a folder: ``model.pkl`` (the fitted scikit-learn estimator, pickled) and ``fusion.json`` (detector
names and parameters, feature names, threshold, training provenance: data, split, seed, pixel counts, timings,
validation metrics, library versions). Pickles run code when loaded: load only folders you or your pipeline
wrote. ``get_detector("fusion", path=folder)`` and :func:`load_fusion` load one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from helpers.atomic import atomic_write_bytes, atomic_write_json, json_safe
from helpers.datasets.manifest import load_manifest
from helpers.datasets.splits import group_split
from helpers.detectors.base import Detector, Prediction, get_detector, list_detectors, register_detector
from helpers.detectors.decision import threshold_to_half
from helpers.imageio import ImageLoadError, LoadedImage, as_loaded_image, load_image, load_mask
from helpers.parallel import process_map

__all__ = [
    "CONTEXT_SCALES",
    "DEFAULT_EXCLUDED",
    "MODEL_FILE",
    "INFO_FILE",
    "default_fusion_detectors",
    "fusion_feature_names",
    "pixel_features",
    "FusionDetector",
    "fit_fusion",
    "load_fusion",
]

CONTEXT_SCALES: tuple[int, ...] = (9, 33)
"""Sides (pixels) of the box windows for the local mean and standard deviation of every map."""
DEFAULT_EXCLUDED: tuple[str, ...] = ("copy_move",)
"""Training-free detectors left out unless named: copy-move runs SIFT (seconds per megapixel) and its map is
empty on all but copy-move forgeries."""
MODEL_FILE = "model.pkl"
INFO_FILE = "fusion.json"
_FORMAT = 1
"""Version of the saved folder's layout; bumped when it changes incompatibly."""
_BAND_PIXELS = 1 << 20
"""Feature rows are built in horizontal bands of about this many pixels, so a 12 MP photo never holds all its
features at once (40 float32 features of 12 MP would take 2 GB)."""
_THRESHOLDS = np.round(np.linspace(0.02, 0.98, 49), 4)
_TOP_SHARE = 0.01
"""The image score is the mean of this share of the highest heatmap values."""
PREDICTION_STRIDE = 2
"""The model predicts every second pixel of every second row; the map between them is interpolated. Why: the
gradient-boosted trees cost about 20 microseconds a pixel on two cores (3 s for a 0.16 MP image, four minutes
for a 12 MP photo), four times what all the detectors together cost; every feature but the raw maps is a box
average over 9 or 33 pixels, so the map is smooth on that scale and a quarter of the pixels carry it."""


def default_fusion_detectors(exclude: Sequence[str] = DEFAULT_EXCLUDED) -> list[str]:
    """The registered training-free detectors, minus ``exclude``: what a fusion fits on by default."""
    return [name for name in list_detectors(trained=False) if name not in set(exclude)]


def fusion_feature_names(detectors: Sequence[str]) -> list[str]:
    """Names of the per-pixel features, in column order, for fusing ``detectors``."""
    names: list[str] = []
    for detector in detectors:
        names.append(f"{detector}:map")
        for scale in CONTEXT_SCALES:
            names += [f"{detector}:mean{scale}", f"{detector}:std{scale}"]
        names.append(f"{detector}:score")
    names += ["texture:mean9"] + [f"texture:std{scale}" for scale in CONTEXT_SCALES] + ["texture:gradient9"]
    return names


_BUILT: dict[tuple[str, str], Detector] = {}
"""Detectors built in this process, by name and parameters: a fused mask model loads its Keras model once, not
once per image (training-free detectors are cheap to build, but sharing them costs nothing either)."""
_BUILT_LIMIT = 32


def _built_detector(name: str, params: Mapping[str, Any]) -> Detector:
    key = (name, json.dumps(dict(params), sort_keys=True, default=str))
    if key not in _BUILT:
        if len(_BUILT) >= _BUILT_LIMIT:
            _BUILT.pop(next(iter(_BUILT)))
        _BUILT[key] = get_detector(name, **dict(params))
    return _BUILT[key]


def _detector_outputs(image: LoadedImage, detectors: Sequence[str],
                      params: Mapping[str, Mapping[str, Any]]) -> list[tuple[np.ndarray, float]]:
    outputs = []
    for name in detectors:
        prediction = _built_detector(name, params.get(name, {}))(image)
        outputs.append((prediction.heatmap, float(prediction.score) if prediction.score is not None else 0.0))
    return outputs


def _box(values: np.ndarray, size: int) -> np.ndarray:
    return cv2.boxFilter(values, cv2.CV_32F, (size, size), borderType=cv2.BORDER_REFLECT_101)


def _local_mean_std(values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    mean = _box(values, size)
    variance = _box(values * values, size) - mean * mean
    return mean, np.sqrt(np.maximum(variance, 0.0))


def _band_features(maps: Sequence[np.ndarray], scores: Sequence[float], grey: np.ndarray, gradient: np.ndarray,
                   top: int, bottom: int) -> np.ndarray:
    """Features of rows ``top:bottom`` as ``(rows * W, F)``; computed on a band with a halo, so exact."""
    halo = max(CONTEXT_SCALES) // 2 + 1
    start, stop = max(0, top - halo), min(grey.shape[0], bottom + halo)
    inner = slice(top - start, top - start + (bottom - top))
    columns: list[np.ndarray] = []
    for heatmap, score in zip(maps, scores):
        band = np.ascontiguousarray(heatmap[start:stop], dtype=np.float32)
        columns.append(band[inner])
        for scale in CONTEXT_SCALES:
            mean, std = _local_mean_std(band, scale)
            columns += [mean[inner], std[inner]]
        columns.append(np.full_like(band[inner], score))
    grey_band = grey[start:stop]
    columns.append(_box(grey_band, 9)[inner])
    for scale in CONTEXT_SCALES:
        columns.append(_local_mean_std(grey_band, scale)[1][inner])
    columns.append(_box(gradient[start:stop], 9)[inner])
    return np.stack(columns, axis=-1).reshape(-1, len(columns))


def _texture_planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) * np.float32(1.0 / 255.0)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return grey, np.sqrt(gx * gx + gy * gy)


def _bands(height: int, width: int) -> list[tuple[int, int]]:
    rows = max(1, _BAND_PIXELS // max(1, width))
    return [(top, min(height, top + rows)) for top in range(0, height, rows)]


def pixel_features(image: LoadedImage | np.ndarray, detectors: Sequence[str],
                   detector_params: Mapping[str, Mapping[str, Any]] | None = None) -> np.ndarray:
    """All per-pixel features of an image, ``float32`` ``(H, W, F)`` (see :func:`fusion_feature_names`).

    For inspection and small images; prediction builds the same features band by band.
    """
    loaded = as_loaded_image(image)
    outputs = _detector_outputs(loaded, detectors, detector_params or {})
    grey, gradient = _texture_planes(loaded.rgb)
    height, width = loaded.shape
    maps, scores = [m for m, _ in outputs], [s for _, s in outputs]
    rows = [_band_features(maps, scores, grey, gradient, top, bottom) for top, bottom in _bands(height, width)]
    return np.concatenate(rows).reshape(height, width, -1)


# ----------------------------------------------------------------------------------------------------------------
# The detector


@register_detector("fusion")
class FusionDetector(Detector):
    """A fitted per-pixel fusion of training-free detectors (see the module doc).

    Build it with :func:`fit_fusion`, or load a saved one with ``get_detector("fusion", path=folder)`` or
    :func:`load_fusion`.
    """

    description = "per-pixel gradient boosting over detectors' heatmaps (a mask model's too) and texture"
    trained = True

    def __init__(self, path: str | os.PathLike[str] | None = None, *, model: Any = None,
                 info: Mapping[str, Any] | None = None) -> None:
        if path is not None:
            if model is not None or info is not None:
                raise ValueError("give either path= (a saved fusion) or model= and info=, not both")
            model, info, self._artifact_digest = _read_folder(Path(path))
        if model is None or info is None:
            raise ValueError("a fusion detector needs path= (a folder written by FusionDetector.save) "
                             "or a fitted model= with its info=")
        self.model = model
        self.info: dict[str, Any] = dict(info)
        self.detectors: list[str] = list(self.info["detectors"])
        self.detector_params: dict[str, dict[str, Any]] = {
            k: dict(v) for k, v in self.info.get("detector_params", {}).items()}
        self.threshold = float(self.info["threshold"])
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"fusion threshold must lie in (0, 1), not {self.threshold}")
        expected = fusion_feature_names(self.detectors)
        if list(self.info["features"]) != expected:
            raise ValueError(f"fusion features {self.info['features']} do not match its detectors {self.detectors}")

    def probability(self, image: LoadedImage | np.ndarray) -> np.ndarray:
        """The model's per-pixel probability of tampering (before the threshold is mapped to 0.5)."""
        loaded = as_loaded_image(image)
        outputs = _detector_outputs(loaded, self.detectors, self.detector_params)
        grey, gradient = _texture_planes(loaded.rgb)
        height, width = loaded.shape
        maps, scores = [m for m, _ in outputs], [s for _, s in outputs]
        step = PREDICTION_STRIDE if min(height, width) >= 4 * PREDICTION_STRIDE else 1
        rows = -(-height // step)
        columns = -(-width // step)
        out = np.empty((rows, columns), np.float32)
        for top, bottom in _bands(height, width):
            first = -(-top // step) * step  # the band's first row on the grid
            if first >= bottom:
                continue
            features = _band_features(maps, scores, grey, gradient, top, bottom).reshape(bottom - top, width, -1)
            chosen = features[first - top :: step, ::step]
            out[first // step : first // step + chosen.shape[0]] = self.model.predict_proba(
                chosen.reshape(-1, chosen.shape[-1]))[:, 1].reshape(chosen.shape[:2])
        if step == 1:
            return out
        # Grid point (i, j) is pixel (i * step, j * step): pixel (y, x) reads the grid at (y / step, x / step).
        scale = np.float32([[1.0 / step, 0, 0], [0, 1.0 / step, 0]])
        full = cv2.warpAffine(out, scale, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
        return np.clip(full, 0.0, 1.0)

    def predict(self, image: LoadedImage) -> Prediction:
        heatmap = threshold_to_half(self.probability(image), self.threshold)
        top = np.sort(heatmap, axis=None)[-max(1, int(heatmap.size * _TOP_SHARE)):]
        return Prediction(heatmap=heatmap, mask=heatmap > 0.5, score=float(top.mean()))

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``model.pkl`` and ``fusion.json`` into ``folder`` (created if needed), each atomically."""
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target / MODEL_FILE, pickle.dumps(self.model, protocol=pickle.HIGHEST_PROTOCOL))
        atomic_write_json(target / INFO_FILE, json_safe({**self.info, "format": _FORMAT}))
        return target


def load_fusion(folder: str | os.PathLike[str]) -> FusionDetector:
    """Load a fusion saved with :meth:`FusionDetector.save` (only load folders you trust: it holds a pickle)."""
    return FusionDetector(path=folder)


def _read_folder(folder: Path) -> tuple[Any, dict[str, Any], str]:
    """The fitted model, its info and a digest of both files' bytes (the bytes that were loaded)."""
    info_path, model_path = folder / INFO_FILE, folder / MODEL_FILE
    for path in (info_path, model_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; a saved fusion folder holds {INFO_FILE} and {MODEL_FILE}")
    info_bytes, model_bytes = info_path.read_bytes(), model_path.read_bytes()
    digest = hashlib.sha1(hashlib.sha1(info_bytes).digest() + hashlib.sha1(model_bytes).digest()).hexdigest()
    try:
        info = json.loads(info_bytes.decode("utf-8"))
    except ValueError as exc:
        raise ValueError(f"{info_path}: not valid JSON ({exc})") from exc
    missing = [key for key in ("detectors", "features", "threshold") if key not in info]
    if missing:
        raise ValueError(f"{info_path}: missing {', '.join(missing)}")
    if info.get("format") != _FORMAT:
        raise ValueError(f"{info_path}: format {info.get('format')!r}, this version reads format {_FORMAT}")
    try:
        model = pickle.loads(model_bytes)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the file is not a usable model
        raise ValueError(f"{model_path}: cannot load the model ({type(exc).__name__}: {exc})") from exc
    if not hasattr(model, "predict_proba"):
        raise ValueError(f"{model_path}: holds a {type(model).__name__}, not a fitted classifier")
    return model, info, digest


# ----------------------------------------------------------------------------------------------------------------
# Fitting


@dataclass
class _Samples:
    features: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)


def _image_samples(task: tuple[str, str, int, Sequence[str], Mapping[str, Mapping[str, Any]], int, str, int]
                   ) -> tuple[np.ndarray, np.ndarray] | str:
    """Sampled pixel features and labels of one manifest row (a worker function: module level, picklable).

    ``mode="balanced"`` (training): half the samples inside the mask, half outside where the image has both;
    ``mode="uniform"`` (validation): pixels drawn uniformly, so F1 is measured at the real tampered share.
    Returns an error message instead when the files cannot be read.
    """
    image_path, mask_path, label, detectors, params, count, mode, seed = task
    try:
        image = load_image(image_path)
        height, width = image.shape
        truth = (load_mask(mask_path, size=(width, height)) if mask_path and label == 1
                 else np.zeros((height, width), bool))
    except ImageLoadError as error:
        return str(error)
    rng = np.random.default_rng(seed)
    flat = truth.ravel()
    if mode == "balanced" and flat.any() and not flat.all():
        inside, outside = np.flatnonzero(flat), np.flatnonzero(~flat)
        half = count // 2
        chosen = np.concatenate([rng.choice(inside, min(half, inside.size), replace=False),
                                 rng.choice(outside, min(count - half, outside.size), replace=False)])
    else:
        chosen = rng.choice(flat.size, min(count, flat.size), replace=False)
    chosen.sort()
    outputs = _detector_outputs(image, detectors, params)
    grey, gradient = _texture_planes(image.rgb)
    maps, scores = [m for m, _ in outputs], [s for _, s in outputs]
    rows = []
    for top, bottom in _bands(height, width):
        wanted = chosen[(chosen >= top * width) & (chosen < bottom * width)]
        if wanted.size:
            rows.append(_band_features(maps, scores, grey, gradient, top, bottom)[wanted - top * width])
    return np.concatenate(rows).astype(np.float32), flat[chosen]


def _collect(rows: pd.DataFrame, detectors: Sequence[str], params: Mapping[str, Mapping[str, Any]], count: int,
             mode: str, seed: int, workers: int, progress: bool, desc: str) -> tuple[_Samples, list[str]]:
    tasks = [(str(r.image_path), str(r.mask_path or ""), int(r.label), list(detectors), params, count, mode,
              seed * 1_000_003 + index) for index, r in enumerate(rows.itertuples(index=False))]
    samples, skipped = _Samples(), []
    for index, result in enumerate(process_map(_image_samples, tasks, workers=workers, desc=desc, unit="img",
                                               progress=progress)):
        if isinstance(result, str):
            skipped.append(result)
            continue
        features, labels = result
        samples.features.append(features)
        samples.labels.append(labels)
        samples.images.append(np.full(len(labels), index, np.int32))
    return samples, skipped


def _make_model(kind: str, seed: int, max_iter: int) -> Any:
    # scikit-learn's estimators take seconds to import; only fitting needs them (a saved model brings its own).
    if kind == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=0.1, max_leaf_nodes=31,
                                              min_samples_leaf=40, l2_regularization=1.0, early_stopping=False,
                                              random_state=seed)
    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, C=1.0))
    raise ValueError(f"model must be 'hgb' or 'logistic', not {kind!r}")


def _per_image_f1(probability: np.ndarray, labels: np.ndarray, images: np.ndarray,
                  thresholds: np.ndarray) -> np.ndarray:
    """Mean over images holding tampered pixels of each image's F1, for every threshold: ``(len(thresholds),)``."""
    predicted = probability[None, :] >= thresholds[:, None]
    totals = []
    for image in np.unique(images[labels]):
        members = images == image
        truth = labels[members]
        guess = predicted[:, members]
        tp = (guess & truth).sum(axis=1)
        fp = (guess & ~truth).sum(axis=1)
        fn = (~guess & truth).sum(axis=1)
        totals.append(2 * tp / np.maximum(2 * tp + fp + fn, 1))
    return np.mean(totals, axis=0) if totals else np.zeros(len(thresholds))


def _split_rows(manifest: pd.DataFrame, val_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    if "split" in manifest and (manifest["split"] == "val").any():
        return manifest[manifest["split"] == "train"], manifest[manifest["split"] == "val"], "split column"
    pool = manifest[manifest["split"] == "train"] if "split" in manifest else manifest
    # No validation rows: hold out whole groups of the training rows for choosing the threshold.
    parted = group_split(pool, val=0.0, test=val_fraction, seed=seed)
    return parted[parted["split"] == "train"], parted[parted["split"] == "test"], "group split of the training rows"


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for package in ("scikit-learn", "numpy", "opencv-python-headless"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def fit_fusion(
    manifest_rows: pd.DataFrame | str | os.PathLike[str],
    *,
    detectors: Sequence[str] | None = None,
    detector_params: Mapping[str, Mapping[str, Any]] | None = None,
    pixels_per_image: int = 2000,
    val_pixels_per_image: int = 4000,
    val_fraction: float = 0.2,
    model: str = "hgb",
    max_iter: int = 200,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
) -> FusionDetector:
    """Fit a per-pixel fusion of ``detectors`` on a manifest's training rows; choose its threshold on validation.

    ``manifest_rows`` is a manifest (a DataFrame as :func:`helpers.datasets.manifest.load_manifest` returns, or
    its path). With a ``split`` column, ``train`` rows train and ``val`` rows choose the threshold (``test``
    rows are never read); without ``val`` rows, ``val_fraction`` of the training rows' groups are held out for
    it (:func:`helpers.datasets.splits.group_split`, ``seed``). ``detectors`` defaults to
    :func:`default_fusion_detectors`; ``detector_params`` maps a detector name to the parameters it is built
    with. Per training image ``pixels_per_image`` pixels are sampled (half tampered, half not, where the image
    has both); per validation image ``val_pixels_per_image`` uniformly. ``model`` is ``"hgb"`` (gradient
    boosting, ``max_iter`` trees) or ``"logistic"``. ``workers`` > 1 runs the detectors in spawned processes.
    """
    started = time.perf_counter()
    if isinstance(manifest_rows, (str, os.PathLike)):
        manifest = load_manifest(manifest_rows)
    else:
        manifest = manifest_rows
    for column in ("image_path", "mask_path", "label"):
        if column not in manifest:
            raise ValueError(f"manifest rows need a {column!r} column (load them with load_manifest)")
    names = list(detectors) if detectors is not None else default_fusion_detectors()
    if not names:
        raise ValueError("no detectors to fuse: none is registered as training-free, and none was named")
    unknown = [n for n in names if n not in list_detectors()]
    if unknown:
        raise ValueError(f"unknown detector(s) {unknown}; registered: {', '.join(list_detectors())}")
    params = {k: dict(v) for k, v in (detector_params or {}).items()}
    train_rows, val_rows, how = _split_rows(manifest, val_fraction, seed)
    if not (train_rows["label"] == 1).any():
        raise ValueError("the training rows hold no tampered image: nothing to learn from")
    if not (val_rows["label"] == 1).any():
        raise ValueError("the validation rows hold no tampered image: no threshold can be chosen")

    train, skipped = _collect(train_rows, names, params, pixels_per_image, "balanced", seed, workers, progress,
                              "fusion: training pixels")
    val, skipped_val = _collect(val_rows, names, params, val_pixels_per_image, "uniform", seed + 1, workers,
                                progress, "fusion: validation pixels")
    features_seconds = time.perf_counter() - started
    x, y = np.concatenate(train.features), np.concatenate(train.labels)
    # Balance the classes by weight: tampered pixels count as much in total as untampered ones.
    weights = np.where(y, 0.5 / max(1, y.sum()), 0.5 / max(1, (~y).sum())) * len(y)
    estimator = _make_model(model, seed, max_iter)
    fit_started = time.perf_counter()
    if model == "logistic":
        estimator.fit(x, y, logisticregression__sample_weight=weights)
    else:
        estimator.fit(x, y, sample_weight=weights)
    fit_seconds = time.perf_counter() - fit_started

    vx, vy, vimages = np.concatenate(val.features), np.concatenate(val.labels), np.concatenate(val.images)
    probability = estimator.predict_proba(vx)[:, 1]
    f1_by_threshold = _per_image_f1(probability, vy, vimages, _THRESHOLDS)
    best = int(np.argmax(f1_by_threshold))
    floor = _per_image_f1(np.ones_like(probability), vy, vimages, np.array([0.5]))[0]
    from sklearn.metrics import roc_auc_score  # loaded with the estimators above (seconds), so here too

    info = {
        "detectors": names,
        "detector_params": params,
        "features": fusion_feature_names(names),
        "threshold": float(_THRESHOLDS[best]),
        "model": model,
        "training": {
            "manifest": manifest.attrs.get("manifest"),
            "validation": how,
            "seed": seed,
            "train_images": int(len(train.labels)),
            "val_images": int(len(val.labels)),
            "skipped_images": skipped + skipped_val,
            "train_pixels": int(len(y)),
            "train_tampered_pixels": int(y.sum()),
            "val_pixels": int(len(vy)),
            "val_tampered_pixels": int(vy.sum()),
            "pixels_per_image": pixels_per_image,
            "val_pixels_per_image": val_pixels_per_image,
            "max_iter": max_iter,
            "feature_seconds": round(features_seconds, 2),
            "fit_seconds": round(fit_seconds, 2),
            "versions": _versions(),
        },
        "metrics": {
            # At the chosen threshold, i.e. the heatmap at 0.5; then the raw probability at 0.5 for comparison.
            "val_f1": float(f1_by_threshold[best]),
            "val_f1_probability_half": float(f1_by_threshold[int(np.argmin(np.abs(_THRESHOLDS - 0.5)))]),
            "val_all_tampered_f1": float(floor),
            "val_pixel_auc": float(roc_auc_score(vy, probability)) if 0 < vy.sum() < vy.size else math.nan,
        },
    }
    return FusionDetector(model=estimator, info=info)
