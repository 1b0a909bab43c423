"""helpers.augment: masks stay binary and move with the image, forensics after augmentation, crops on the JPEG
grid, determinism, mask clean-up, offline variants of the training split only, and the leakage measurement."""

from __future__ import annotations

import filecmp
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import pandas as pd
import pytest

from helpers.augment import (
    JPEG_GRID,
    augment,
    augment_offline,
    build_pipeline,
    clean_mask,
    ela_pitfall,
    grid_crop_around,
    leakage_demo,
    reseed,
    transform_gallery,
    with_forensics,
)
from helpers.datasets.manifest import load_manifest, validate_manifest
from helpers.datasets.splits import group_split
from helpers.datasets.synthetic import synthesize
from helpers.forensics.ela import ela
from helpers.forensics.srm import srm
from helpers.imageio import load_mask

LOSSLESS = {"horizontal flip", "vertical flip", "transpose", "rotate 90"}
SEEDS = range(4)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return synthesize(tmp_path_factory.mktemp("aug_synth"), n=40, seed=11, workers=1, progress=False)


def _scene(height: int = 96, width: int = 112, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random-texture image whose red channel is the mask * 255 (so the mask can be read back from it)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    cv2.ellipse(mask, (width // 3, height // 2), (width // 6, height // 4), 20, 0, 360, 1, -1)
    cv2.rectangle(mask, (2 * width // 3, 10), (width - 12, height // 3), 1, -1)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    image[:, :, 0] = mask * 255
    return image, mask


def _geometric(strength: str):
    return [(name, pipe) for name, (kind, pipe) in transform_gallery(strength).items() if kind == "geometric"]


def _photometric():
    return [(name, pipe) for name, (kind, pipe) in transform_gallery().items() if kind == "photometric"]


@pytest.mark.parametrize("strength", ["mild", "strong"])
def test_masks_stay_binary_after_every_geometric_transform(strength: str) -> None:
    image, mask = _scene()
    for name, pipeline in _geometric(strength):
        for seed in SEEDS:
            out = reseed(pipeline, seed)(image=image, mask=mask * 255)["mask"]
            assert set(np.unique(out).tolist()) <= {0, 255}, f"{name} (seed {seed}) made a non-binary mask"
            aug_image, aug_mask = augment(image, mask.astype(bool), pipeline, seed=seed)
            assert aug_mask.dtype == bool and aug_mask.shape == aug_image.shape[:2]


def _edge_band(mask: np.ndarray, width: int = 2) -> np.ndarray:
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    as_uint8 = mask.astype(np.uint8)
    return cv2.dilate(as_uint8, kernel).astype(bool) & ~cv2.erode(as_uint8, kernel).astype(bool)


@pytest.mark.parametrize("strength", ["mild", "strong"])
def test_image_and_mask_move_together(strength: str) -> None:
    image, mask = _scene()
    for name, pipeline in _geometric(strength):
        moved = 0
        for seed in SEEDS:
            aug_image, aug_mask = augment(image, mask, pipeline, seed=seed)
            moved += int(not np.array_equal(aug_mask, mask.astype(bool)))
            from_red = aug_image[:, :, 0] > 127
            if name in LOSSLESS:
                assert np.array_equal(from_red, aug_mask), f"{name} (seed {seed}) moved the mask differently"
                continue
            # Resampling: the image is interpolated linearly, the mask by nearest neighbour, so the two may
            # disagree on the edge pixels; away from the edges they must agree.
            wrong = (from_red != aug_mask) & ~_edge_band(aug_mask)
            assert wrong.mean() <= 0.002, f"{name} (seed {seed}): {wrong.mean():.2%} of pixels disagree"
        assert moved, f"{name} never changed the mask in {len(SEEDS)} draws"


def test_whole_pipeline_moves_image_and_mask_together() -> None:
    image, mask = _scene(200, 180)
    pipeline = build_pipeline(crop=96, geometric="strong", photometric=False)
    for seed in range(12):
        aug_image, aug_mask = augment(image, mask, pipeline, seed=seed)
        assert aug_image.shape == (96, 96, 3)
        wrong = ((aug_image[:, :, 0] > 127) != aug_mask) & ~_edge_band(aug_mask)
        assert wrong.mean() <= 0.002


def test_photometric_transforms_leave_the_mask_untouched() -> None:
    image, mask = _scene()
    changed = 0
    for name, pipeline in _photometric():
        for seed in SEEDS:
            aug_image, aug_mask = augment(image, mask, pipeline, seed=seed)
            assert np.array_equal(aug_mask, mask.astype(bool)), f"{name} changed the mask"
            changed += int(not np.array_equal(aug_image, image))
    assert changed >= len(_photometric()) * len(SEEDS) // 2, "photometric transforms should change the image"


def test_forensic_streams_are_computed_from_the_augmented_image() -> None:
    image, mask = _scene(160, 160)
    pipeline = build_pipeline(crop=128, geometric="strong")
    aug_image, _ = augment(image, mask, pipeline, seed=5)
    streams = with_forensics(aug_image, ("rgb", "ela", "srm"), ela_quality=85)
    assert streams["rgb"] is aug_image
    assert np.array_equal(streams["ela"], ela(aug_image, 85))
    assert np.array_equal(streams["srm"], srm(aug_image))
    assert streams["srm"].dtype == np.float32
    with pytest.raises(ValueError):
        with_forensics(aug_image, ("rgb", "noise"))


def test_augmenting_an_ela_map_is_not_the_ela_of_the_augmented_image(small_set: pd.DataFrame) -> None:
    from helpers.imageio import load_rgb

    rgb = load_rgb(small_set["image_path"].iloc[0])
    for change in ("hue", "resize"):
        pitfall = ela_pitfall(rgb, change)
        assert pitfall.augmented_ela.shape == pitfall.ela_of_augmented.shape
        assert np.array_equal(pitfall.ela_of_augmented, ela(pitfall.augmented))
    colour = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert ela_pitfall(colour, "hue").relative_difference > 0.2
    assert ela_pitfall(colour, "resize").relative_difference > 0.2


def test_crop_mode_output_size_and_grid_alignment() -> None:
    height, width = 150, 200
    rows, cols = np.mgrid[0:height, 0:width]
    image = np.stack([rows, cols, np.zeros_like(rows)], axis=2).astype(np.uint8)
    pipeline = build_pipeline(crop=64, geometric=None, photometric=False)
    corners = set()
    for seed in range(20):
        out, _ = augment(image, None, pipeline, seed=seed)
        assert out.shape == (64, 64, 3)
        top, left = int(out[0, 0, 0]), int(out[0, 0, 1])
        assert top % JPEG_GRID == 0 and left % JPEG_GRID == 0, f"crop corner {(top, left)} is off the JPEG grid"
        assert np.array_equal(out, image[top : top + 64, left : left + 64])
        corners.add((top, left))
    assert len(corners) > 3, "random crops should vary"
    centre, _ = augment(image, None, build_pipeline(crop=64, geometric=None, photometric=False, centre=True))
    again, _ = augment(image, None, build_pipeline(crop=64, geometric=None, photometric=False, centre=True), seed=9)
    assert np.array_equal(centre, again)
    top, left = int(centre[0, 0, 0]), int(centre[0, 0, 1])
    assert (top, left) == (((height - 64) // 16 // 2) * 16, ((width - 64) // 16 // 2) * 16)


def test_grid_crop_around_keeps_the_grid_and_the_edit() -> None:
    rows, cols = np.mgrid[0:300, 0:500]
    image = np.stack([rows % 256, cols % 256, cols // 256], axis=2).astype(np.uint8)
    mask = np.zeros((300, 500), bool)
    mask[230:270, 430:470] = True
    crop, crop_mask = grid_crop_around(image, mask, size=128)
    top, left = int(crop[0, 0, 0]), int(crop[0, 0, 1]) + 256 * int(crop[0, 0, 2])
    assert crop.shape == (128, 128, 3) and top % JPEG_GRID == 0 and left % JPEG_GRID == 0
    assert crop_mask.sum() == mask.sum(), "the whole edit is inside the crop"
    small, small_mask = grid_crop_around(image[:100, :90], mask[:100, :90], size=128)
    assert small.shape == (100, 90, 3) and small_mask.shape == (100, 90)


def test_small_images_are_padded_at_the_bottom_right() -> None:
    image, mask = _scene(40, 50)
    out, out_mask = augment(image, mask, build_pipeline(crop=64, geometric=None, photometric=False), seed=1)
    assert out.shape == (64, 64, 3) and out_mask.shape == (64, 64)
    assert np.array_equal(out[:40, :50], image) and np.array_equal(out_mask[:40, :50], mask.astype(bool))
    assert not out[40:].any() and not out[:, 50:].any() and not out_mask[40:].any() and not out_mask[:, 50:].any()


def test_resize_mode_and_size_arguments() -> None:
    image, mask = _scene(90, 130)
    out, out_mask = augment(image, mask, build_pipeline(crop=None, resize=48, geometric=None, photometric=False))
    assert out.shape == (48, 48, 3) and out_mask.shape == (48, 48)
    with pytest.raises(ValueError, match="crop or resize"):
        build_pipeline(crop=64, resize=64)
    with pytest.raises(ValueError):
        build_pipeline(geometric="wild")
    full, _ = augment(image, None, build_pipeline(crop=None, geometric=None, photometric=False))
    assert np.array_equal(full, image)


def test_determinism_with_a_seed() -> None:
    image, mask = _scene(200, 200)
    first = build_pipeline(crop=128, geometric="strong", seed=7)
    second = build_pipeline(crop=128, geometric="strong", seed=7)
    other = build_pipeline(crop=128, geometric="strong", seed=8)
    runs = [[augment(image, mask, p)[0] for _ in range(5)] for p in (first, second, other)]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not all(np.array_equal(a, c) for a, c in zip(runs[0], runs[2]))
    # An explicit per-call seed ignores whatever ran before.
    a, ma = augment(image, mask, first, seed=[1, 2, 3])
    b, mb = augment(image, mask, other, seed=[1, 2, 3])
    assert np.array_equal(a, b) and np.array_equal(ma, mb)


def test_seeded_transforms_decide_independently() -> None:
    """Albumentations 2.0's Compose(seed=...) makes HorizontalFlip and VerticalFlip decide alike; reseed must not."""
    pipeline = A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)], save_applied_params=True)
    image = np.zeros((8, 8, 3), np.uint8)
    outcomes = set()
    for seed in range(40):
        applied = reseed(pipeline, seed)(image=image)["applied_transforms"]
        outcomes.add(tuple(sorted(name for name, _ in applied)))
    assert ("HorizontalFlip",) in outcomes and ("VerticalFlip",) in outcomes


def test_clean_mask_removes_speckle_and_handles_constant_masks() -> None:
    rng = np.random.default_rng(0)
    truth = np.zeros((128, 128), bool)
    cv2.circle(truth.view(np.uint8), (64, 60), 30, 1, -1)
    noisy = truth ^ (rng.random(truth.shape) < 0.08)  # 8 % of pixels flipped
    soft = np.clip(truth * 0.8 + 0.1 + rng.normal(0, 0.15, truth.shape), 0, 1).astype(np.float32)

    def iou(a: np.ndarray, b: np.ndarray) -> float:
        return float((a & b).sum() / (a | b).sum())

    for dirty in (noisy, (noisy * 255).astype(np.uint8), soft):
        cleaned = clean_mask(dirty, sigma=2.0)
        assert cleaned.dtype == bool and cleaned.shape == truth.shape
        assert iou(cleaned, truth) > 0.93
    assert iou(noisy, truth) < 0.8
    assert not clean_mask(np.zeros((32, 32), np.uint8)).any()
    assert clean_mask(np.full((32, 32), 255, np.uint8)).all()
    assert not clean_mask(np.full((32, 32), 0.3, np.float32)).any()
    with pytest.raises(ValueError):
        clean_mask(np.zeros((4, 4, 3)))


def test_offline_writes_k_variants_per_training_image(small_set: pd.DataFrame, tmp_path: Path) -> None:
    split = group_split(small_set, seed=0)
    train = split[split["split"] == "train"].iloc[:8]
    out = augment_offline(train, tmp_path / "aug", k=2, seed=3, progress=False)
    assert len(out) == 2 * len(train)
    report = validate_manifest(tmp_path / "aug" / "manifest.csv")
    assert report.ok, report.summary()
    reloaded = load_manifest(tmp_path / "aug" / "manifest.csv")
    assert {"augmented_from", "variant", "group", "split"} <= set(reloaded.columns)
    assert (reloaded["split"] == "train").all()
    sources = train.set_index(train["image_path"].map(lambda p: Path(p).resolve()))
    for _, row in reloaded.iterrows():
        source = (tmp_path / "aug" / row["augmented_from"]).resolve()
        assert source in sources.index
        assert row["group"] == sources.loc[source, "group"] and row["label"] == sources.loc[source, "label"]
        if row["mask_path"]:
            mask = load_mask(row["mask_path"])
            assert mask.shape == (row["height"], row["width"])
    assert reloaded.groupby("augmented_from").size().eq(2).all()


def test_offline_refuses_rows_outside_the_training_split(small_set: pd.DataFrame, tmp_path: Path) -> None:
    split = group_split(small_set, seed=0)
    outside = int((split["split"] != "train").sum())
    with pytest.raises(ValueError, match=rf"\b{outside} of {len(split)} rows are not in the training split"):
        augment_offline(split, tmp_path / "aug", k=1, progress=False)
    assert not (tmp_path / "aug" / "manifest.csv").exists()


def test_offline_is_deterministic_and_skips_corrupt_images(small_set: pd.DataFrame, tmp_path: Path) -> None:
    rows = small_set.iloc[:4].copy()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(Path(rows["image_path"].iloc[0]).read_bytes()[:300])
    rows = pd.concat([rows, rows.iloc[[0]].assign(image_path=str(broken), mask_path="", label=0)], ignore_index=True)
    with pytest.warns(UserWarning, match="broken.jpg"):
        one = augment_offline(rows, tmp_path / "one", k=1, crop=64, seed=5, workers=1, progress=False)
    with pytest.warns(UserWarning, match="broken.jpg"):
        two = augment_offline(rows, tmp_path / "two", k=1, crop=64, seed=5, workers=2, progress=False)
    assert len(one) == len(two) == 4
    for a, b in zip(one["image_path"], two["image_path"]):
        assert Path(a).name == Path(b).name and filecmp.cmp(a, b, shallow=False)
    other = augment_offline(rows.iloc[:4], tmp_path / "three", k=1, crop=64, seed=6, progress=False)
    assert not all(filecmp.cmp(a, b, shallow=False) for a, b in zip(one["image_path"], other["image_path"]))


def test_leakage_demo_inflates_the_score_when_augmenting_before_splitting(small_set: pd.DataFrame) -> None:
    result = leakage_demo(small_set, variants=4, seed=0)
    assert 0.0 <= result.split_then_augment <= 1.0 and 0.0 <= result.augment_then_split <= 1.0
    assert result.counts["images"] == len(small_set)
    assert result.counts["after_train_items"] + result.counts["after_held_out_items"] == 5 * len(small_set)
    # Most held-out variants find a sibling of their own image in training: that is the leak.
    assert result.sibling_neighbour_share > 0.4
    assert result.augment_then_split > result.split_then_augment
