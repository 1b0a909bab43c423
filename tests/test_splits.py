from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.datasets.splits import assert_no_group_leakage, group_split, split_report


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
