from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.datasets.manifest import load_manifest, write_manifest
from helpers.datasets.splits import (
    SPLIT_FILE,
    SplitMismatchError,
    assert_no_group_leakage,
    group_split,
    load_split,
    save_split,
    split_report,
)
from helpers.datasets.synthetic import synthesize


def _many_groups(seed: int = 0, groups: int = 300) -> pd.DataFrame:
    """A CASIA-like manifest: each source photo has a few authentic and tampered descendants."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(groups):
        for i in range(int(rng.integers(1, 6))):
            rows.append({"image": f"g{g}_{i}.jpg", "mask": "", "label": int(rng.random() < 0.4), "group": f"Au_ani_{g:05d}"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", range(4))
def test_no_group_straddles_two_splits_on_the_embedded_set(synthetic_set: pd.DataFrame, seed: int) -> None:
    split = group_split(synthetic_set, val=0.15, test=0.15, seed=seed)
    assert set(split["split"]) == {"train", "val", "test"}
    assert_no_group_leakage(split)
    per_group = split.groupby("group")["split"].nunique()
    assert (per_group == 1).all()


def test_fractions_and_label_balance_hold_when_groups_allow() -> None:
    manifest = _many_groups()
    split = group_split(manifest, val=0.2, test=0.1, seed=3)
    report = split_report(split)
    assert abs(report.loc["train", "share"] - 0.7) < 0.02
    assert abs(report.loc["val", "share"] - 0.2) < 0.02
    assert abs(report.loc["test", "share"] - 0.1) < 0.02
    overall = (manifest["label"] == 1).mean()
    assert (abs(report["tampered_share"] - overall) < 0.04).all(), report
    assert_no_group_leakage(split)


def test_deterministic_per_seed_and_different_across_seeds() -> None:
    manifest = _many_groups()
    first = group_split(manifest, seed=1)["split"]
    assert first.equals(group_split(manifest, seed=1)["split"])
    assert not first.equals(group_split(manifest, seed=2)["split"])


def test_rows_without_groups_split_individually_and_val_can_be_empty() -> None:
    manifest = pd.DataFrame({"image": [f"{i}.png" for i in range(40)], "mask": "", "label": [i % 2 for i in range(40)]})
    split = group_split(manifest, val=0.0, test=0.25, seed=0)
    assert set(split["split"]) == {"train", "test"}
    assert (split["split"] == "test").sum() == 10
    assert "split" not in manifest, "the input must not be modified"


def test_leakage_check_names_a_straddling_group() -> None:
    frame = pd.DataFrame({"group": ["a", "a", "b"], "split": ["train", "test", "train"], "label": [0, 1, 0]})
    with pytest.raises(AssertionError, match="'a'"):
        assert_no_group_leakage(frame)


@pytest.mark.parametrize(("val", "test"), [(0.5, 0.5), (-0.1, 0.2), (0.1, 0.0)])
def test_bad_fractions_are_refused(val: float, test: float) -> None:
    with pytest.raises(ValueError):
        group_split(_many_groups(groups=10), val=val, test=test)


def test_too_few_groups_is_a_clear_error() -> None:
    manifest = pd.DataFrame({"image": ["a", "b"], "mask": "", "label": [0, 1], "group": ["x", "y"]})
    with pytest.raises(ValueError, match="2 groups cannot fill 3 splits"):
        group_split(manifest)


def test_casia_groups_parsed_from_file_names_keep_sources_and_forgeries_together(tmp_path) -> None:
    import warnings

    from helpers.datasets.parsers import parse_casia2
    from test_parsers import CASIA2_SPLICE, build_casia2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the replica holds deliberately broken files
        manifest = parse_casia2(build_casia2(tmp_path / "replica"), tmp_path / "out", progress=False, workers=1)
    manifest = manifest.assign(stem=[p.rsplit("/", 1)[-1].rsplit(".", 1)[0] for p in manifest["image"]])
    splice_group = manifest.loc[manifest["stem"] == CASIA2_SPLICE, "group"].iloc[0]
    family = manifest[manifest["group"] == splice_group]
    # The name Tp_D_CND_M_N_ani00018_sec00096_00138 ties the splice to Au_ani_00018 and Au_sec_00096.
    assert {"Au_ani_00018", "Au_sec_00096", CASIA2_SPLICE} <= set(family["stem"])
    for seed in range(5):
        split = group_split(manifest, val=0.2, test=0.2, seed=seed)
        assert_no_group_leakage(split)
        assert split.loc[family.index, "split"].nunique() == 1


# ----------------------------------------------------------------------------------------------------------------
# The split saved beside the manifest


@pytest.fixture()
def manifest_path(tmp_path) -> Path:
    """A manifest of 300 source groups (the image files need not exist to be split)."""
    frame = _many_groups(groups=300)
    frame["image"] = [f"images/{name}" for name in frame["image"]]
    return write_manifest(frame, tmp_path / "data" / "manifest.csv")


def test_load_split_computes_once_saves_beside_the_manifest_and_then_reads_the_file(manifest_path: Path) -> None:
    split = load_split(manifest_path, seed=1)
    expected = group_split(load_manifest(manifest_path), seed=1)["split"]
    assert split["split"].tolist() == expected.tolist()
    saved = pd.read_csv(manifest_path.parent / SPLIT_FILE, dtype=str, keep_default_na=False)
    assert list(saved.columns) == ["image", "split", "seed"]
    assert saved["image"].tolist() == load_manifest(manifest_path)["image"].tolist()  # relative, as written
    assert set(saved["seed"]) == {"1"}
    assert not [p.name for p in manifest_path.parent.iterdir() if p.name.startswith(".")]  # atomic: no leftovers

    # Later calls read the file: a split edited by hand (one whole group moved) is what they return.
    group = split["group"].iloc[0]
    moved_to = "test" if split["split"].iloc[0] != "test" else "train"
    images = set(split.loc[split["group"] == group, "image"])
    saved.loc[saved["image"].isin(images), "split"] = moved_to
    saved.to_csv(manifest_path.parent / SPLIT_FILE, index=False)
    again = load_split(manifest_path, seed=1)
    assert set(again.loc[again["group"] == group, "split"]) == {moved_to}
    assert (again["split"] != split["split"]).sum() == len(images)


def test_frames_and_subsets_get_the_splits_of_their_manifest(manifest_path: Path) -> None:
    whole = load_split(manifest_path)
    frame = load_manifest(manifest_path)
    assert load_split(frame)["split"].tolist() == whole["split"].tolist()
    subset = frame.iloc[10:40]
    assert load_split(subset)["split"].tolist() == whole["split"].iloc[10:40].tolist()
    assert "split" not in frame, "the input must not be modified"
    with pytest.raises(ValueError, match="attrs"):
        load_split(pd.DataFrame(frame.to_dict("list")))  # built in memory: no manifest to save beside
    stranger = frame.iloc[:2].copy()
    stranger.loc[stranger.index[0], "image_path"] = str(manifest_path.parent / "images" / "elsewhere.jpg")
    with pytest.raises(ValueError, match="elsewhere.jpg"):
        load_split(stranger)


def test_a_saved_split_that_no_longer_fits_is_refused_until_recomputed(manifest_path: Path) -> None:
    load_split(manifest_path)
    frame = load_manifest(manifest_path)
    grown = pd.concat([frame, frame.iloc[:2].assign(image=["images/new1.jpg", "images/new2.jpg"],
                                                     image_path=["", ""])], ignore_index=True)
    write_manifest(grown.drop(columns=["image_path"]), manifest_path)
    with pytest.raises(SplitMismatchError, match=r"2 image\(s\) added.*new1\.jpg.*recompute=True"):
        load_split(manifest_path)
    write_manifest(frame.iloc[5:], manifest_path)
    with pytest.raises(SplitMismatchError, match=r"5 image\(s\) removed"):
        load_split(manifest_path)
    recomputed = load_split(manifest_path, recompute=True)
    assert len(recomputed) == len(frame) - 5
    saved = pd.read_csv(manifest_path.parent / SPLIT_FILE)
    assert saved["image"].tolist() == frame["image"].iloc[5:].tolist()
    assert load_split(manifest_path)["split"].tolist() == recomputed["split"].tolist()


def test_another_seed_or_changed_groups_are_refused(manifest_path: Path) -> None:
    first = load_split(manifest_path, seed=0)
    with pytest.raises(SplitMismatchError, match="seed 0, not 2"):
        load_split(manifest_path, seed=2)
    frame = load_manifest(manifest_path)
    train, test = first.index[first["split"] == "train"][0], first.index[first["split"] == "test"][0]
    frame.loc[test, "group"] = frame.loc[train, "group"]  # one image joins a group of the other split
    write_manifest(frame, manifest_path)
    with pytest.raises(SplitMismatchError, match="span two splits"):
        load_split(manifest_path)
    assert_no_group_leakage(load_split(manifest_path, seed=2, recompute=True))


def test_missing_or_malformed_split_files(manifest_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=SPLIT_FILE):
        load_split(manifest_path, create=False)
    target = manifest_path.parent / SPLIT_FILE
    target.write_text("image,split\nimages/g0_0.jpg,holdout\n")
    with pytest.raises(ValueError, match=r"split\.csv.*'holdout'"):
        load_split(manifest_path)
    target.write_text("path,fold\nx,1\n")
    with pytest.raises(ValueError, match=r"split\.csv: missing column"):
        load_split(manifest_path)
    frame = load_manifest(manifest_path).iloc[:2].assign(split=["train", "test"])
    frame.loc[frame.index[1], "image_path"] = frame["image_path"].iloc[0]
    with pytest.raises(ValueError, match="listed twice"):
        save_split(frame, manifest_path)


def test_a_rebuilt_synthetic_set_drops_the_split_of_the_old_one(tmp_path: Path) -> None:
    folder = tmp_path / "synthetic"
    manifest = synthesize(folder, n=6, seed=0, workers=1, progress=False)
    save_split(manifest.assign(split="train"), folder / "manifest.csv", seed=0)
    synthesize(folder, n=6, seed=0, workers=1, progress=False)  # reused: the split stays
    assert (folder / SPLIT_FILE).is_file()
    synthesize(folder, n=7, seed=0, workers=1, progress=False)  # rebuilt: the old split goes
    assert not (folder / SPLIT_FILE).exists()
