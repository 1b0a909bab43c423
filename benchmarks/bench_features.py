"""How fast the forensic features are: ELA against the seed notebooks and the JPEG codec, SRM, the cache.

    python benchmarks/bench_features.py [--n 50] [--cache-n 200] [--repeats 3] [--loop-n 3] [--skip-cache-size]

Test images: ``--cache-n`` (>= ``--n``) distinct 1024x768 JPEGs (quality 90), seeded random crops, flips and
rescales of the photographs shipped with scikit-image and scikit-learn, written to a temporary folder.

ELA timings start from the decoded image in memory (the source decode is the same for every variant and is
left out) and are per image, best of ``--repeats`` interleaved passes over ``--n`` images:

* ``helpers ela``: :func:`helpers.forensics.ela` (in-memory round trip, ``cv2.absdiff``);
* ``floor``: one in-memory Pillow JPEG encode and decode (``Image.fromarray``, ``save`` to ``BytesIO``,
  ``Image.open``, ``np.asarray``), which any ELA must do; the target is helpers/floor <= 1.25;
* ``seed: temp file + brightness``: the ResNet50 seed (save to a temporary file, reopen,
  ``ImageChops.difference``, ``ImageEnhance.Brightness`` by 255/max);
* ``seed: temp file + pixel loop``: the U-Net seed (the same temporary-file difference, then a per-pixel Python
  loop multiplying by a gain of 15); it takes seconds per image, so it runs on ``--loop-n`` images only.

SRM: ms per megapixel for both banks. Feature cache (ela + srm, fresh cache folder each run): images per
second with 1 worker (in this process) and with all cores (spawned). A pool pays about a second per worker to
start, so besides end to end the script reports steady-state throughput, ``(N - n0) / (T(N) - T(n0))`` from a
run over ``n0 = 2 * workers`` images and one over all ``N``: the start-up cancels out. OpenCV is limited to one
thread in this process, as in the pool's workers, so "1 worker" means one core. The target is a speed-up of at
least 1.7x on 2 cores.

Cache size: notebook 04 caches ELA and SRM for the embedded smoke set (``config.PROFILES["smoke"]``, 200
images); the bytes its cache folder takes, beside what version-1 entries (uint8 ELA, float32 SRM, ``.npy``)
would take, and the largest SRM error the storage makes (0: SRM is stored as exact int8 twelfths). The target is
under 100 MB.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image, ImageChops, ImageEnhance

from helpers import config
from helpers.datasets.synthetic import SOURCE_PHOTOS, load_source, synthesize
from helpers.forensics import ela, srm
from helpers.forensics.cache import compute_features, load_feature
from helpers.imageio import load_rgb, save_jpeg
from helpers.parallel import default_workers

WIDTH, HEIGHT = 1024, 768


# ----------------------------------------------------------------------------------------------------------------
# Test images


def make_images(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` distinct 1024x768 quality-90 JPEGs from the packaged colour photographs."""
    rng = np.random.default_rng(seed)
    photos = [load_source(p.name) for p in SOURCE_PHOTOS if p.colour]
    paths = []
    for index in range(n):
        photo = photos[index % len(photos)]
        # Scale so that a 1024x768 window fits, with a random extra zoom, then crop at a random offset.
        scale = max(WIDTH / photo.shape[1], HEIGHT / photo.shape[0]) * rng.uniform(1.0, 1.6)
        size = (int(np.ceil(photo.shape[1] * scale)), int(np.ceil(photo.shape[0] * scale)))
        resized = cv2.resize(photo, size, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
        top = int(rng.integers(0, resized.shape[0] - HEIGHT + 1))
        left = int(rng.integers(0, resized.shape[1] - WIDTH + 1))
        crop = resized[top : top + HEIGHT, left : left + WIDTH]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        paths.append(save_jpeg(folder / f"bench_{index:04d}.jpg", np.ascontiguousarray(crop), 90))
    return paths


# ----------------------------------------------------------------------------------------------------------------
# ELA variants


def floor_roundtrip(rgb: np.ndarray, quality: int = 90) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        return np.asarray(decoded)


def seed_brightness(image: Image.Image, temp: Path, quality: int = 90) -> Image.Image:
    """The ResNet50 seed: temporary file, ImageChops.difference, brightness stretched to the maximum."""
    image.save(temp, "JPEG", quality=quality)
    resaved = Image.open(temp)
    diff = ImageChops.difference(image, resaved)
    extrema = diff.getextrema()
    max_diff = max(ex[1] for ex in extrema) or 1
    return ImageEnhance.Brightness(diff).enhance(255.0 / max_diff)


def seed_pixel_loop(image: Image.Image, temp: Path, quality: int = 90, scale: int = 15) -> Image.Image:
    """The U-Net seed: temporary file, ImageChops.difference, then every pixel multiplied in Python."""
    image.save(temp, "JPEG", quality=quality)
    resaved = Image.open(temp)
    diff = ImageChops.difference(image, resaved)
    pixels = diff.load()
    width, height = diff.size
    for x in range(width):
        for y in range(height):
            pixels[x, y] = tuple(k * scale for k in pixels[x, y])
    return diff


def per_image_ms(func: Callable[[object], object], items: list, repeats: int) -> float:
    """Best over ``repeats`` passes of the mean time per item, in milliseconds."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for item in items:
            func(item)
        best = min(best, (time.perf_counter() - started) / len(items))
    return best * 1e3


def bench_ela(images: list[np.ndarray], repeats: int, loop_n: int, temp_dir: Path) -> None:
    temp = temp_dir / "seed_temp.jpg"
    pil_images = [Image.fromarray(rgb) for rgb in images]
    for rgb in images[:3]:  # warm-up (codec tables, allocator)
        ela(rgb)
        floor_roundtrip(rgb)
    results: dict[str, list[float]] = {"helpers": [], "floor": [], "brightness": []}
    for _ in range(repeats):  # interleave the variants so drift hits all alike
        results["helpers"].append(per_image_ms(lambda rgb: ela(rgb, 90), images, 1))
        results["floor"].append(per_image_ms(floor_roundtrip, images, 1))
        results["brightness"].append(per_image_ms(lambda im: seed_brightness(im, temp), pil_images, 1))
    loop_ms = per_image_ms(lambda im: seed_pixel_loop(im, temp), pil_images[:loop_n], 1)
    best = {name: min(values) for name, values in results.items()}
    spread = {name: statistics.median(values) for name, values in results.items()}
    print(f"ELA, quality 90, {WIDTH}x{HEIGHT}, {len(images)} images, best (median) of {repeats} passes, ms/image")
    print(f"  helpers ela (in memory)            {best['helpers']:8.2f}  ({spread['helpers']:.2f})")
    print(f"  floor: Pillow encode+decode        {best['floor']:8.2f}  ({spread['floor']:.2f})")
    print(f"  seed: temp file + brightness       {best['brightness']:8.2f}  ({spread['brightness']:.2f})")
    print(f"  seed: temp file + pixel loop       {loop_ms:8.1f}  (1 pass over {loop_n} images)")
    ratio = best["helpers"] / best["floor"]
    print(f"  helpers / floor = {ratio:.3f} (target <= 1.25: {'met' if ratio <= 1.25 else 'NOT met'}); "
          f"speed-up vs seeds: {best['brightness'] / best['helpers']:.1f}x (brightness), "
          f"{loop_ms / best['helpers']:.0f}x (pixel loop)")


def bench_srm(images: list[np.ndarray], repeats: int) -> None:
    megapixels = images[0].shape[0] * images[0].shape[1] / 1e6
    print(f"SRM, {len(images)} images, best of {repeats} passes")
    for bank in ("zhou3", "full30"):
        srm(images[0], bank)
        ms = per_image_ms(lambda rgb: srm(rgb, bank), images, repeats)
        print(f"  {bank:<7s} {ms / megapixels:8.2f} ms/MP  ({ms:.2f} ms/image)")


# ----------------------------------------------------------------------------------------------------------------
# Feature cache


def cache_seconds(manifest: pd.DataFrame, workers: int, root: Path) -> float:
    out = Path(tempfile.mkdtemp(prefix="cache_", dir=root))
    try:
        started = time.perf_counter()
        result = compute_features(manifest, ("ela", "srm"), out, workers=workers, progress=False)
        elapsed = time.perf_counter() - started
        if not (result["status"] == "ok").all():
            raise RuntimeError(f"cache run failed: {result['status'].value_counts().to_dict()}")
        return elapsed
    finally:
        shutil.rmtree(out, ignore_errors=True)


def bench_cache(paths: list[Path], repeats: int, root: Path) -> None:
    cores = default_workers()
    manifest = pd.DataFrame({"image_path": [str(p) for p in paths]})
    small = manifest.iloc[: 2 * cores]
    n, n0 = len(manifest), len(small)
    cache_seconds(small, 1, root)  # warm imports and the page cache
    full: dict[int, list[float]] = {1: [], cores: []}
    start: dict[int, list[float]] = {1: [], cores: []}
    for _ in range(repeats):
        for workers in full:
            full[workers].append(cache_seconds(manifest, workers, root))
            start[workers].append(cache_seconds(small, workers, root))
    print(f"Feature cache (ela + srm, fresh folder each run), {n} images, {cores} cores, best of {repeats}")
    rates = {}
    for workers in full:
        total = min(full[workers])
        steady = (n - n0) / max(1e-9, total - min(start[workers]))
        rates[workers] = (n / total, steady)
        print(f"  workers={workers:<2d} end to end {total:6.2f} s = {n / total:6.1f} img/s;  "
              f"steady state {steady:6.1f} img/s")
    if cores > 1:
        end_ratio = rates[cores][0] / rates[1][0]
        steady_ratio = rates[cores][1] / rates[1][1]
        print(f"  speed-up with {cores} workers: {end_ratio:.2f}x end to end, {steady_ratio:.2f}x steady state "
              f"(target >= 1.7x on 2 cores: {'met' if steady_ratio >= 1.7 else 'NOT met'})")


def bench_cache_size(root: Path) -> None:
    samples = config.get_profile("smoke").synthetic_samples
    manifest = synthesize(root / "smoke_set", n=samples, seed=config.DEFAULT_SEED, progress=False)
    out = root / "smoke_cache"
    result = compute_features(manifest, ("ela", "srm"), out, progress=False)
    if not (result["status"] == "ok").all():
        raise RuntimeError(f"cache run failed: {result['status'].value_counts().to_dict()}")
    stored = {kind: sum(Path(f).stat().st_size for f in rows["cache_file"]) for kind, rows in result.groupby("kind")}
    version1, worst_srm = {}, 0.0
    for kind, rows in result.groupby("kind"):
        sizes = []
        for row in rows.itertuples():
            array = load_feature(row.cache_file)
            sizes.append(128 + array.nbytes)  # a .npy header and the array as version 1 stored it
            if kind == "srm":
                exact = srm(load_rgb(row.image_path), "zhou3", truncate=3.0)
                worst_srm = max(worst_srm, float(np.abs(array - exact).max()))
        version1[kind] = sum(sizes)
    total = sum(stored.values())
    print(f"Feature cache size, notebook 04 on the smoke set ({samples} images, ela + srm)")
    print(f"  {'kind':<6s} {'stored MB':>10s} {'version 1 MB':>13s} {'ratio':>6s}")
    for kind in stored:
        ratio = stored[kind] / version1[kind]
        print(f"  {kind:<6s} {stored[kind] / 1e6:10.1f} {version1[kind] / 1e6:13.1f} {ratio:6.3f}")
    print(f"  {'total':<6s} {total / 1e6:10.1f} {sum(version1.values()) / 1e6:13.1f} "
          f"{total / sum(version1.values()):6.3f}  (target < 100 MB: {'met' if total < 100e6 else 'NOT met'})")
    print(f"  largest |SRM stored - SRM computed| = {worst_srm:.5f} (int8 twelfths: exact, 0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50, help="images for the ELA and SRM timings")
    parser.add_argument("--cache-n", type=int, default=200, help="images for the cache throughput")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-n", type=int, default=3, help="images for the (slow) pixel-loop seed")
    parser.add_argument("--skip-cache", action="store_true")
    parser.add_argument("--skip-cache-size", action="store_true", help="skip the smoke-set cache size")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory(prefix="bench_features_") as folder:
        root = Path(folder)
        paths = make_images(root, max(args.n, args.cache_n))
        images = [load_rgb(p) for p in paths[: args.n]]
        print(f"{len(paths)} test JPEGs of {WIDTH}x{HEIGHT} at quality 90 in {root}; {os.cpu_count()} CPUs")
        bench_ela(images, args.repeats, args.loop_n, root)
        bench_srm(images, args.repeats)
        if not args.skip_cache:
            bench_cache(paths[: args.cache_n], args.repeats, root)
        if not args.skip_cache_size:
            bench_cache_size(root)


if __name__ == "__main__":
    main()
