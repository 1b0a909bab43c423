"""Splicebuster and copy-move speed on one core; the fused detector's pixel F1 beside the all-tampered floor.

    python benchmarks/bench_fusion.py [--n 200] [--seed 0] [--data DIR] [--workers 1] [--skip-speed]
                                      [--skip-fusion] [--save DIR | --load DIR]

Speed (targets: splicebuster <= 2 s per megapixel, copy_move <= 5 s per megapixel, on 1 MP and 12 MP photos):
CPU seconds per megapixel of one ``predict`` (best of ``--repeats``) with OpenCV and BLAS held to one thread,
so one core's work whatever else the machine runs; wall seconds are shown beside it. The
test photos (1280x800 and 4000x3000) are mosaics of random crops, rescaled by 0.8-1.6, of the colour
photographs packaged with scikit-image and scikit-learn, so they have a real photo's keypoint density; crops of
one photo repeat, which makes copy_move find and verify duplicates (its slow path).

Fusion: the embedded set (``python -m helpers synth``, ``--n`` samples, ``--seed``) is split by source group
(:func:`helpers.datasets.splits.group_split`, seed 0); :func:`helpers.detectors.fit_fusion` fits on ``train``
and chooses its threshold on ``val``; then the pixel F1 at 0.5 of the heatmap, per tampered image and
averaged, is reported on ``test`` and on the real fixtures (when present), beside the all-tampered floor
(every pixel predicted tampered) and beside each fused detector alone. The metric is defined here on purpose
(``2 TP / (2 TP + FP + FN)`` per image), independent of the package's evaluation module.
"""

from __future__ import annotations

import os

# One core, before NumPy and OpenCV start their thread pools: the targets are per core.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from helpers import config  # noqa: E402
from helpers.datasets.manifest import load_manifest  # noqa: E402
from helpers.datasets.splits import group_split  # noqa: E402
from helpers.datasets.synthetic import SOURCE_PHOTOS, load_source, synthesize  # noqa: E402
from helpers.detectors import Detector, fit_fusion, get_detector, load_fusion  # noqa: E402
from helpers.imageio import ImageLoadError, load_image, load_mask  # noqa: E402

SPEED_TARGETS = {"splicebuster": 2.0, "copy_move": 5.0}
SIZES = ((1280, 800), (4000, 3000))


# ----------------------------------------------------------------------------------------------------------------
# Speed


def mosaic(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A ``width`` x ``height`` photo made of random rescaled crops of the packaged colour photographs."""
    rng = np.random.default_rng(seed)
    photos = [load_source(p.name) for p in SOURCE_PHOTOS if p.colour]
    out = np.zeros((height, width, 3), np.uint8)
    top = 0
    while top < height:
        tile_h, left = int(rng.integers(300, 500)), 0
        while left < width:
            tile_w = int(rng.integers(300, 500))
            photo = photos[int(rng.integers(len(photos)))]
            scale = max(rng.uniform(0.8, 1.6), tile_h / photo.shape[0], tile_w / photo.shape[1])
            big = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            y = int(rng.integers(0, big.shape[0] - tile_h + 1))
            x = int(rng.integers(0, big.shape[1] - tile_w + 1))
            rows, cols = min(tile_h, height - top), min(tile_w, width - left)
            out[top : top + rows, left : left + cols] = big[y : y + rows, x : x + cols]
            left += tile_w
        top += tile_h
    return out


def speed_table(repeats: int) -> pd.DataFrame:
    cv2.setNumThreads(1)
    rows = []
    for width, height in SIZES:
        image = mosaic(width, height)
        megapixels = width * height / 1e6
        for name, target in SPEED_TARGETS.items():
            detector = get_detector(name)
            cpu, wall = min(_timed(detector, image) for _ in range(repeats))
            rows.append({"detector": name, "size": f"{width}x{height}", "CPU s": round(cpu, 2),
                         "CPU s/MP": round(cpu / megapixels, 2), "wall s/MP": round(wall / megapixels, 2),
                         "target s/MP": target, "meets": cpu / megapixels <= target})
    return pd.DataFrame(rows)


def _timed(detector: Detector, image: np.ndarray) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) of one prediction; CPU time ignores other processes' load."""
    cpu, wall = time.process_time(), time.perf_counter()
    detector(image)
    return time.process_time() - cpu, time.perf_counter() - wall


# ----------------------------------------------------------------------------------------------------------------
# Pixel F1 (private on purpose: the benchmark checks the package, not itself)


def _f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    tp = np.count_nonzero(predicted & truth)
    fp = np.count_nonzero(predicted & ~truth)
    fn = np.count_nonzero(~predicted & truth)
    return 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0


def localisation(detectors: dict[str, Detector], manifest: pd.DataFrame) -> dict[str, float]:
    """Mean pixel F1 at 0.5 over the tampered images with a mask, per detector, plus the all-tampered floor."""
    scores: dict[str, list[float]] = {name: [] for name in (*detectors, "all tampered (floor)")}
    for row in manifest[(manifest["label"] == 1) & (manifest["mask_path"] != "")].itertuples(index=False):
        try:
            image = load_image(row.image_path)
            truth = load_mask(row.mask_path, size=(image.shape[1], image.shape[0]))
        except ImageLoadError as error:
            print(f"skipped: {error}")
            continue
        scores["all tampered (floor)"].append(_f1(np.ones_like(truth), truth))
        for name, detector in detectors.items():
            scores[name].append(_f1(detector(image).heatmap >= 0.5, truth))
    return {name: float(np.mean(values)) if values else float("nan") for name, values in scores.items()}


def fusion_table(n: int, seed: int, data: Path, workers: int, save: Path | None, load: Path | None) -> pd.DataFrame:
    manifest = group_split(synthesize(data, n=n, seed=seed, workers=workers, progress=False), seed=0)
    if load is not None:
        fusion = load_fusion(load)
        print(f"fusion of {', '.join(fusion.detectors)} loaded from {load}")
    else:
        started = time.perf_counter()
        fusion = fit_fusion(manifest, seed=seed, workers=workers, progress=False)
        print(f"fusion of {', '.join(fusion.detectors)}: fitted in {time.perf_counter() - started:.0f} s")
    metrics = fusion.info["metrics"]
    print(f"threshold {fusion.threshold:.2f}, validation F1 {metrics['val_f1']:.3f} "
          f"(floor {metrics['val_all_tampered_f1']:.3f}), {fusion.info['training']['train_pixels']} training pixels")
    if save is not None:
        fusion.save(save)
        print(f"saved to {save}")
    contenders: dict[str, Detector] = {"fusion": fusion}
    contenders.update({name: get_detector(name, **fusion.detector_params.get(name, {})) for name in fusion.detectors})
    columns = {f"embedded test ({n} samples)": localisation(contenders, manifest[manifest["split"] == "test"])}
    fixtures = config.fixtures_manifest()
    if fixtures is not None:
        columns["real fixtures"] = localisation(contenders, load_manifest(fixtures))
    table = pd.DataFrame(columns).round(3)
    table.index.name = "pixel F1 at 0.5"
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=config.get_profile("smoke").synthetic_samples)
    parser.add_argument("--seed", type=int, default=config.DEFAULT_SEED)
    parser.add_argument("--data", type=Path, default=None, help="where to build the embedded set (default: temp)")
    parser.add_argument("--workers", type=int, default=1, help="processes for synthesis and fusion features")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per detector and size (best kept)")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-fusion", action="store_true")
    parser.add_argument("--save", type=Path, default=None, help="also save the fitted fusion to this folder")
    parser.add_argument("--load", type=Path, default=None, help="evaluate a saved fusion instead of fitting one")
    args = parser.parse_args()
    pd.set_option("display.width", 160)
    if not args.skip_speed:
        print(speed_table(args.repeats).to_string(index=False))
    if not args.skip_fusion:
        with tempfile.TemporaryDirectory() as temporary:
            data = args.data if args.data is not None else Path(temporary) / "synthetic"
            print(fusion_table(args.n, args.seed, data, args.workers, args.save, args.load).to_string())


if __name__ == "__main__":
    main()
