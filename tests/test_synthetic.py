from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from helpers.datasets.manifest import load_manifest, validate_manifest
from helpers.datasets.stats import file_stats, metadata_leakage
from helpers.datasets.synthetic import (
    KINDS,
    SHAPES,
    SOURCE_PHOTOS,
    SynthConfig,
    copy_move,
    load_source,
    random_shape,
    remove,
    splice,
    synthesize,
)
from helpers.imageio import jpeg_roundtrip, load_mask, load_rgb, save_jpeg

HARD_EDGES = SynthConfig(feather_probability=0.0)


def _host(seed: int = 0, name: str = "astronaut") -> np.ndarray:
    return jpeg_roundtrip(np.ascontiguousarray(load_source(name)[:300, :400]), 90)


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != "synth_info.json"  # it records the seconds taken
    }


# ---------------------------------------------------------------------------------------------- building blocks
def test_every_source_photo_loads_as_rgb_big_enough_to_crop() -> None:
    assert len(SOURCE_PHOTOS) >= 12
    assert {"astronaut", "coffee", "chelsea", "rocket", "china", "flower"} <= {p.name for p in SOURCE_PHOTOS}
    for photo in SOURCE_PHOTOS:
        image = load_source(photo.name)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, photo.name
        assert min(image.shape[:2]) >= SynthConfig().min_side, photo.name
        channels_equal = np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2])
        assert channels_equal == (not photo.colour), f"{photo.name}: colour flag disagrees with its pixels"


@pytest.mark.parametrize("shape", SHAPES)
def test_random_shapes_are_one_solid_piece_inside_their_box(shape: str) -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        height, width = int(rng.integers(12, 120)), int(rng.integers(12, 120))
        mask, name = random_shape(rng, height, width, shape)
        assert name == shape and mask.shape == (height, width) and mask.dtype == bool
        assert mask.mean() > 0.2, "a shape should fill a good part of its box"
        count, _ = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        assert count - 1 == 1, f"{shape} split into {count - 1} pieces"


@pytest.mark.parametrize("seed", range(6))
def test_splice_changes_exactly_the_masked_pixels_with_hard_edges(seed: int) -> None:
    rng = np.random.default_rng(seed)
    host, donor = _host(), _host(name="coffee")
    image, mask, details = splice(host, donor, rng, HARD_EDGES)
    assert details["feather_sigma"] == 0.0 and mask.any()
    assert np.array_equal(image[~mask], host[~mask]), "pixels outside the mask changed"
    changed = np.any(image != host, axis=2)
    assert changed[mask].mean() > 0.7, "most masked pixels should carry donor content"


@pytest.mark.parametrize("seed", range(6))
def test_feathered_splice_only_blends_near_the_mask_edge(seed: int) -> None:
    config = SynthConfig(feather_probability=1.0)
    image, mask, details = splice(_host(), _host(name="coffee"), np.random.default_rng(seed), config)
    sigma = details["feather_sigma"]
    assert sigma > 0
    reach = int(np.ceil(4 * sigma)) + 1
    near = cv2.dilate(mask.astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) > 0
    assert np.array_equal(image[~near], _host()[~near]), "feathering reached beyond a few sigma of the mask"


@pytest.mark.parametrize("seed", range(6))
def test_copy_move_pastes_host_content_away_from_its_source(seed: int) -> None:
    host = _host()
    image, mask, details = copy_move(host, np.random.default_rng(seed), HARD_EDGES)
    assert mask.any()
    assert np.array_equal(image[~mask], host[~mask])
    assert np.any(image != host, axis=2)[mask].mean() > 0.5
    if details["rotation_deg"] == 0.0 and details["scale"] == 1.0:
        # A pure translation: the pasted pixels must exist verbatim elsewhere in the host.
        ys, xs = np.nonzero(mask)
        patch = image[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        match = cv2.matchTemplate(host, patch, cv2.TM_SQDIFF)
        assert match.min() < 1e-3 * patch.size or not np.all(mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])


@pytest.mark.parametrize("seed", range(6))
def test_removal_inpaints_only_inside_the_mask(seed: int) -> None:
    host = _host()
    image, mask, details = remove(host, np.random.default_rng(seed))
    assert details["inpaint_method"] in {"telea", "navier-stokes"}
    assert np.array_equal(image[~mask], host[~mask])
    assert np.any(image != host, axis=2)[mask].mean() > 0.3


# --------------------------------------------------------------------------------------------------- the set
def test_set_is_balanced_valid_and_masks_are_exact_pngs(synthetic_set: pd.DataFrame) -> None:
    frame = synthetic_set
    assert len(frame) == 200
    counts = frame["kind"].value_counts()
    assert counts["authentic"] == 100
    assert set(counts.index) == {"authentic", *KINDS}
    assert counts[list(KINDS)].max() - counts[list(KINDS)].min() <= 1
    assert (frame["dataset"] == "synthetic").all()
    assert frame["group"].nunique() >= 10
    report = validate_manifest(frame)
    assert report.ok and not report.warnings, report.summary()
    assert frame["image"].str.fullmatch(r"images/syn_\d{5}\.jpg").all(), "names must not reveal the kind"
    for entry in frame[frame["label"] == 1].itertuples():
        mask = load_mask(entry.mask_path)
        assert 0 < mask.mean() < 0.5
        assert abs(mask.mean() - entry.mask_fraction) < 1e-4
    assert (frame.loc[frame["label"] == 0, "mask"] == "").all()
    splices = frame[frame["kind"] == "splice"]
    assert (splices["donor"] != splices["host"]).all()
    assert (splices["donor_quality"] != splices["host_quality"]).all()


def test_same_seed_same_bytes_whatever_the_number_of_workers(tmp_path: Path) -> None:
    synthesize(tmp_path / "one", n=24, seed=11, workers=1, progress=False)
    synthesize(tmp_path / "two", n=24, seed=11, workers=2, progress=False)
    synthesize(tmp_path / "other", n=24, seed=12, workers=2, progress=False)
    one, two, other = (_digest(tmp_path / name) for name in ("one", "two", "other"))
    assert len(one) == 1 + 24 + 12  # manifest, images, masks of the tampered half
    assert one == two
    assert one["manifest.csv"] != other["manifest.csv"]


def test_an_existing_identical_set_is_reused_and_overwrite_rebuilds(tmp_path: Path) -> None:
    synthesize(tmp_path, n=8, seed=1, workers=1, progress=False)
    manifest = tmp_path / "manifest.csv"
    first = manifest.stat().st_mtime_ns
    synthesize(tmp_path, n=8, seed=1, workers=1, progress=False)
    assert manifest.stat().st_mtime_ns == first
    synthesize(tmp_path, n=8, seed=1, workers=1, progress=False, overwrite=True)
    assert manifest.stat().st_mtime_ns != first
    assert len(synthesize(tmp_path, n=10, seed=1, workers=1, progress=False)) == 10  # other parameters: rebuilt


def test_file_traits_do_not_give_the_label_away(tmp_path: Path) -> None:
    frame = synthesize(tmp_path / "set", n=400, seed=21, progress=False)
    scores = metadata_leakage(frame, seed=0)
    assert max(scores.values()) < 0.65, f"file size/quality/dimensions predict the label: {scores}"

    # Control: the same check must catch a set whose authentic images were saved at another quality.
    leaky = frame.copy()
    leaky_paths = []
    for entry in frame.itertuples():
        path = tmp_path / "leaky" / Path(entry.image).name
        save_jpeg(path, load_rgb(entry.image_path), 95 if entry.label == 0 else 75)
        leaky_paths.append(str(path))
    leaky["image_path"] = leaky_paths
    leaky_scores = metadata_leakage(leaky, seed=0, stats=file_stats(leaky))
    assert min(leaky_scores.values()) > 0.9, leaky_scores


def test_synth_command_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "helpers", "synth", "--out", str(tmp_path), "--n", "6", "--seed", "4", "--workers", "1"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 6 samples" in result.stdout
    frame = load_manifest(tmp_path / "manifest.csv")
    assert len(frame) == 6 and validate_manifest(frame).ok
