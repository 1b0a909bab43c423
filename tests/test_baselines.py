"""Classical baselines: ELA features on the CNNs' own crops, every model fits and scores, XGBoost optional."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from helpers import baselines, config
from helpers.forensics.ela import ela
from helpers.pipeline import ForgeryBatches

SIZE = 64


@pytest.fixture(scope="module")
def rows(synthetic_set: pd.DataFrame) -> pd.DataFrame:
    return synthetic_set.head(40).reset_index(drop=True)


@pytest.fixture(scope="module")
def features(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return baselines.ela_features(rows, size=SIZE, workers=1)


def test_feature_shape_and_names(features, rows) -> None:
    X, y = features
    assert X.shape == (len(rows), len(baselines.feature_names())) == (40, 3 * 18 + 4 + 16 * 16)
    assert X.dtype == np.float32 and np.isfinite(X).all()
    assert y.dtype == np.int64 and set(np.unique(y)) <= {0, 1}
    hist = X[:, :12]
    np.testing.assert_allclose(hist.sum(axis=1), 1.0, atol=1e-5)  # histogram fractions of the red channel
    assert baselines.image_features(np.zeros((10, 10, 3), np.uint8), thumb=4).shape == (3 * 18 + 4 + 16,)


def test_features_see_the_same_crops_and_labels_as_the_networks(features, rows) -> None:
    X, y = features
    batches = ForgeryBatches(rows, streams=("rgb", "ela"), batch_size=len(rows), size=SIZE, augment=False,
                             shuffle=False)
    x, labels = batches[0]
    assert np.array_equal(y, labels.astype(int))  # crop labels: a crop beside the edit is authentic
    for i in (0, 7, 21):
        crop = np.rint(x["rgb"][i] * 255).astype(np.uint8)
        level = ela(crop, config.ELA_QUALITY)  # the raw error levels of the very crop the network saw
        np.testing.assert_allclose(np.minimum(level / 16.0, 4.0), x["ela"][i], atol=1e-6)
        np.testing.assert_allclose(baselines.image_features(level), X[i], rtol=1e-5, atol=1e-5)
    image_level = baselines.ela_features(rows.head(8), size=None, workers=1)[1]
    assert np.array_equal(image_level, rows["label"].head(8).to_numpy())


def test_process_pool_gives_the_same_features(features, rows) -> None:
    X, y = features
    X2, y2 = baselines.ela_features(rows.head(6), size=SIZE, workers=2)
    np.testing.assert_array_equal(X2, X[:6])
    np.testing.assert_array_equal(y2, y[:6])


def test_unreadable_image_is_named(rows, tmp_path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    frame = pd.concat([rows.head(1), rows.head(1).assign(image_path=str(broken), mask_path="")], ignore_index=True)
    with pytest.raises(ValueError, match="broken.jpg"):
        baselines.ela_features(frame, size=SIZE, workers=1)


def test_every_baseline_trains_and_scores(features) -> None:
    X, y = features
    assert 0 < y.sum() < len(y)
    with pytest.warns(baselines.MissingOptionalDependency) if not baselines.xgboost_available() else _no_warning():
        models = baselines.train_baselines(X, y, seed=0)
    expected = [n for n in baselines.BASELINE_NAMES if n != "xgboost" or baselines.xgboost_available()]
    assert list(models) == expected
    for name in ("voting_rf_adaboost", "voting_rf_gb"):
        assert models[name].voting == "soft"
    assert [n for n, _ in models["voting_rf_gb"].estimators] == ["rf", "gb"]
    scores = baselines.predict_scores(models, X[:7])
    assert list(scores) == expected
    for name, s in scores.items():
        assert s.shape == (7,) and np.all((s >= 0) & (s <= 1)), name
    # trained on these rows, the forest must rank them well above chance: the scores carry the labels
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, baselines.predict_scores({"rf": models["random_forest"]}, X)["rf"]) > 0.9
    again = baselines.predict_scores(baselines.train_baselines(X, y, seed=0, include=["random_forest"]), X[:7])
    # seeded: the same forest (summing its trees in parallel threads may differ in the last bit)
    np.testing.assert_allclose(again["random_forest"], scores["random_forest"], rtol=0, atol=1e-9)


def test_xgboost_is_skipped_cleanly_when_missing(monkeypatch, features) -> None:
    monkeypatch.setitem(sys.modules, "xgboost", None)  # import xgboost now raises ImportError
    assert not baselines.xgboost_available()
    with pytest.warns(baselines.MissingOptionalDependency, match="xgboost"):
        models = baselines.make_baselines(0)
    assert "xgboost" not in models and "voting_rf_gb" in models


@pytest.mark.skipif(not baselines.xgboost_available(), reason="xgboost not installed (optional)")
def test_xgboost_joins_when_installed(features) -> None:
    X, y = features
    models = baselines.train_baselines(X, y, seed=0, include=["xgboost"])
    assert baselines.predict_scores(models, X)["xgboost"].shape == (len(y),)


def test_bad_training_sets_are_refused(features) -> None:
    X, y = features
    with pytest.raises(ValueError, match="single class"):
        baselines.train_baselines(X, np.zeros_like(y))
    with pytest.raises(ValueError, match="unknown baselines"):
        baselines.make_baselines(0, include=["svm"])


class _no_warning:
    """Context manager asserting that no MissingOptionalDependency warning is raised."""

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings(record=True)
        self._records = self._catch.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)
        assert not [r for r in self._records if issubclass(r.category, baselines.MissingOptionalDependency)]
        return False
