"""Training-free detectors: seconds per megapixel, and pixel F1 on the real fixtures beside the all-tampered floor.

    OMP_NUM_THREADS=1 python benchmarks/bench_detectors.py [--part speed|quality|all] [--only dq,noise]
                                                           [--sizes 1,12] [--repeats 1]

Speed: every detector of ``list_detectors(trained=False)`` runs on a 1 MP and a 12 MP photograph (scikit-image's
``coffee`` and ``astronaut`` resized up with bicubic interpolation and saved as quality-90 JPEGs), on one core
(``OMP_NUM_THREADS=1`` and ``cv2.setNumThreads(1)``), loading included (``load_image``: decode and, for the
compression-domain detectors, jpeglib). The table gives seconds per megapixel beside the target (at most 2 s/MP,
5 s/MP for ``copy_move``), as CPU time of this process, which is what one core spends whatever else the machine
runs, and as wall time; the target is checked on CPU time.

Quality: on the real fixtures (``helpers.config.fixtures_manifest()``), for every tampered image with a mask,

* F1 at 0.5: the F1 of ``prediction.mask`` against the mask, per image, averaged;
* best F1: per image, the best F1 over all thresholds ``heatmap >= t`` (``t`` every distinct heatmap value, so
  a flat heatmap scores as an all-tampered mask), averaged;

on the CASIA v1 subset and on all of them, beside the floor: the F1 of an all-ones mask, averaged. F1 is
``2 TP / (2 TP + FP + FN)`` per image; an empty prediction on a non-empty mask scores 0. Also the mean score on
tampered and on authentic images, and the share of authentic pixels flagged (false alarms).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from skimage import data as skdata  # noqa: E402

from helpers import config  # noqa: E402
from helpers.detectors import get_detector, list_detectors  # noqa: E402
from helpers.imageio import load_image, load_mask, save_jpeg  # noqa: E402

SPEED_TARGET_S_PER_MP = 2.0
SPEED_TARGETS = {"copy_move": 5.0}
SIZES = {1: (1155, 866), 12: (4000, 3000)}


# ----------------------------------------------------------------------------------------------------------------
# Metrics (kept private here; the project's evaluation module will replace them)


def _f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    tp = int(np.count_nonzero(predicted & truth))
    fp = int(np.count_nonzero(predicted & ~truth))
    fn = int(np.count_nonzero(~predicted & truth))
    denominator = 2 * tp + fp + fn
    return 2.0 * tp / denominator if denominator else 1.0


def _best_f1(heatmap: np.ndarray, truth: np.ndarray) -> float:
    """Best F1 over thresholds ``heatmap >= t`` for every distinct value ``t`` of the heatmap."""
    scores = heatmap.ravel().astype(np.float64)
    labels = truth.ravel()
    positives = int(labels.sum())
    if positives == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    tp = np.cumsum(labels[order])
    predicted = np.arange(1, scores.size + 1)
    # Only the last index of each run of equal scores is a reachable threshold.
    last = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    tp, predicted = tp[last], predicted[last]
    f1 = 2.0 * tp / (predicted + positives)
    return float(f1.max())


# ----------------------------------------------------------------------------------------------------------------
# Speed


def _photo(megapixels: int) -> np.ndarray:
    width, height = SIZES[megapixels]
    source = skdata.coffee() if megapixels == 1 else skdata.astronaut()
    return cv2.resize(source, (width, height), interpolation=cv2.INTER_CUBIC)


def speed(names: list[str], sizes: list[int], repeats: int) -> pd.DataFrame:
    cv2.setNumThreads(1)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        files = {}
        for mp in sizes:
            files[mp] = save_jpeg(Path(folder) / f"photo_{mp}mp.jpg", _photo(mp), 90)
        for name in names:
            detector = get_detector(name)
            row: dict[str, object] = {"detector": name}
            for mp, path in files.items():
                cpu, wall = [], []
                for _ in range(repeats):
                    start_cpu, start_wall = time.process_time(), time.perf_counter()
                    image = load_image(path)
                    detector(image)
                    cpu.append(time.process_time() - start_cpu)
                    wall.append(time.perf_counter() - start_wall)
                pixels = image.shape[0] * image.shape[1] / 1e6
                row[f"cpu s/MP @{mp}MP"] = round(min(cpu) / pixels, 3)
                row[f"wall s/MP @{mp}MP"] = round(min(wall) / pixels, 3)
            target = SPEED_TARGETS.get(name, SPEED_TARGET_S_PER_MP)
            row["target s/MP"] = target
            row["meets"] = all(float(v) <= target for k, v in row.items() if str(k).startswith("cpu s/MP"))
            rows.append(row)
            print(row, flush=True)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------------
# Quality on the real fixtures


def quality(names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    manifest_path = config.fixtures_manifest()
    if manifest_path is None:
        raise SystemExit("real fixtures not found (set FORGERY_FIXTURES)")
    root = manifest_path.parent
    manifest = pd.read_csv(manifest_path)
    images = {row.image: load_image(root / row.image) for row in manifest.itertuples()}
    tampered = manifest[(manifest.label == 1) & manifest["mask"].notna()]
    truths = {row.image: load_mask(root / row["mask"]) for _, row in tampered.iterrows()}
    authentic = manifest[manifest.label == 0]
    per_image = []
    for name in names:
        detector = get_detector(name)
        start = time.perf_counter()
        for _, row in tampered.iterrows():
            prediction = detector(images[row.image])
            truth = truths[row.image]
            per_image.append({"detector": name, "image": row.image, "dataset": row.dataset, "label": 1,
                              "f1": _f1(prediction.mask, truth), "best_f1": _best_f1(prediction.heatmap, truth),
                              "score": prediction.score, "flagged": float(prediction.mask.mean())})
        for _, row in authentic.iterrows():
            prediction = detector(images[row.image])
            per_image.append({"detector": name, "image": row.image, "dataset": row.dataset, "label": 0,
                              "f1": np.nan, "best_f1": np.nan, "score": prediction.score,
                              "flagged": float(prediction.mask.mean())})
        print(f"{name}: {time.perf_counter() - start:.1f} s", flush=True)
    floor = {image: _f1(np.ones_like(truth), truth) for image, truth in truths.items()}
    table = pd.DataFrame(per_image)
    rows = []
    subsets = {"casia1": tampered.dataset == "casia1", "all": np.ones(len(tampered), bool)}
    for subset, selector in subsets.items():
        chosen = set(tampered.image[np.asarray(selector)])
        floor_f1 = float(np.mean([floor[i] for i in chosen]))
        for name in names:
            part = table[(table.detector == name) & table.image.isin(chosen)]
            authentic_part = table[(table.detector == name) & (table.label == 0)]
            rows.append({"subset": f"{subset} ({len(chosen)})", "detector": name,
                         "F1@0.5": round(part.f1.mean(), 3), "best F1": round(part.best_f1.mean(), 3),
                         "floor (all-ones)": round(floor_f1, 3),
                         "score tampered": round(part.score.astype(float).mean(), 3),
                         "score authentic": round(authentic_part.score.astype(float).mean(), 3),
                         "authentic flagged": round(authentic_part.flagged.mean(), 3)})
    return pd.DataFrame(rows), table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("speed", "quality", "all"), default="all")
    parser.add_argument("--only", default="", help="comma-separated detector names (default: all training-free)")
    parser.add_argument("--sizes", default="1,12", help="megapixels to time: 1, 12 or both")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--per-image", type=Path, default=None, help="write the per-image quality table (CSV)")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list_detectors(trained=False)
    unknown = sorted(set(names) - set(list_detectors()))
    if unknown:
        raise SystemExit(f"unknown detectors: {', '.join(unknown)}; known: {', '.join(list_detectors())}")
    pd.set_option("display.width", 200)
    if args.part in ("quality", "all"):
        summary, table = quality(names)
        print("\nPixel F1 on the real fixtures (target: beat the all-ones floor; dq best F1 >= 0.30 on CASIA v1)")
        print(summary.to_string(index=False))
        if args.per_image is not None:
            table.to_csv(args.per_image, index=False)
    if args.part in ("speed", "all"):
        sizes = [int(s) for s in args.sizes.split(",") if s]
        print("\nSeconds per megapixel, one core (target <= 2 s/MP; copy_move <= 5 s/MP)")
        print(speed(names, sizes, args.repeats).to_string(index=False))


if __name__ == "__main__":
    main()
