"""One evaluation: each metric pinned on hand-made cases, and the protocol run on tiny detectors whose answers are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from helpers.detectors import Detector, Prediction
from helpers.evaluation import (
    all_tampered_f1,
    balanced_accuracy,
    best_threshold_f1,
    border_band,
    confusion_counts,
    f1_from_counts,
    false_alarm_rate,
    image_auc,
    mcc_from_counts,
    pixel_auc,
    pixel_metrics,
)
from helpers.evaluation.protocol import ALL_DATASETS, ROW_COLUMNS, cache_key, evaluate, read_rows
from helpers.imageio import load_mask


# -------------------------------------------------------------------------------------------------------------
# Pixel metrics
# -------------------------------------------------------------------------------------------------------------
@pytest.fixture()
def case() -> tuple[np.ndarray, np.ndarray]:
    """4x4 image, top-left 2x2 tampered; one tampered pixel missed (0.2), one false alarm (0.7)."""
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    probability = np.full((4, 4), 0.1)
    probability[:2, :2] = 0.9
    probability[1, 1] = 0.2
    probability[3, 3] = 0.7
    return probability, mask


def test_fixed_threshold_scores(case) -> None:
    probability, mask = case
    # Above 0.5: TP = 3, FP = 1 (the 0.7), FN = 1 (the 0.2), TN = 11.
    assert confusion_counts(probability > 0.5, mask) == (3, 1, 1, 11)
    scores = pixel_metrics(probability, mask)
    assert scores["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))  # 0.75
    assert scores["iou"] == pytest.approx(3 / 5)
    assert scores["mcc"] == pytest.approx((3 * 11 - 1 * 1) / np.sqrt(4 * 4 * 12 * 12))  # 32 / 48
    # AUC: the three 0.9 beat all 12 negatives (36 pairs); the 0.2 beats the eleven 0.1 (11): 47 of 48 pairs.
    assert scores["auc"] == pytest.approx(47 / 48)
    assert scores["auc"] == pytest.approx(roc_auc_score(mask.ravel(), probability.ravel()))
    # Predicting everything tampered: p = 4/16, F1 = 2p / (1 + p) = 0.4.
    assert scores["floor_f1"] == pytest.approx(0.4) == all_tampered_f1(mask)


def test_a_pixel_at_the_threshold_is_not_tampered() -> None:
    mask = np.array([[True, False]])
    assert pixel_metrics(np.array([[0.5, 0.0]]), mask)["f1"] == 0.0  # strictly above, as IMDL-BenCo and TruFor
    assert pixel_metrics(np.array([[0.51, 0.0]]), mask)["f1"] == 1.0


def test_best_threshold_and_permuted_f1(case) -> None:
    probability, mask = case
    # Above 0.19 catches all four tampered pixels and the 0.7 false alarm: F1 = 8/9 (vs 6/7 above 0.7).
    best, permuted = best_threshold_f1(probability, mask)
    assert best == pytest.approx(8 / 9)
    assert permuted == pytest.approx(8 / 9)
    # An inverted map scores 0 at any threshold but 1 once polarity is forgiven.
    inverted = 1.0 - mask.astype(float)
    assert pixel_metrics(inverted, mask)["f1"] == 0.0
    assert best_threshold_f1(inverted, mask) == (0.0, 1.0)


def test_border_exclusion_forgives_a_boundary_error() -> None:
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    grown = np.zeros((20, 20), bool)
    grown[4:16, 4:16] = True  # the mask plus a one-pixel ring
    without = pixel_metrics(grown.astype(float), mask)
    assert without["best_f1"] == pytest.approx(2 * 100 / (2 * 100 + 44))
    with_border = pixel_metrics(grown.astype(float), mask, border=2)
    assert with_border["best_f1"] == 1.0 and with_border["permuted_f1"] == 1.0
    assert with_border["f1"] == without["f1"], "the fixed-threshold F1 keeps every pixel"
    band = border_band(mask, 2)
    assert band[4, 10] and band[5, 10] and not band[10, 10] and not band[0, 0]
    assert not border_band(mask, 0).any()


def test_empty_truth_convention() -> None:
    assert np.isnan(f1_from_counts(0, 0, 0)), "empty truth, empty prediction: undefined, left out of averages"
    assert f1_from_counts(0, 3, 0) == 0.0
    assert mcc_from_counts(0, 0, 5, 11) == 0.0
    assert np.isnan(pixel_auc(np.ones((3, 3)), np.zeros((3, 3), bool)))
    with pytest.raises(ValueError, match="tampered pixel"):
        pixel_metrics(np.zeros((3, 3)), np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="differ"):
        pixel_metrics(np.zeros((3, 3)), np.ones((3, 4), bool))


def test_pixel_auc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, (30, 30)).astype(float)
    mask = rng.random((30, 30)) < 0.3
    assert pixel_auc(scores, mask) == pytest.approx(roc_auc_score(mask.ravel(), scores.ravel()), abs=1e-12)


# -------------------------------------------------------------------------------------------------------------
# Image metrics
# -------------------------------------------------------------------------------------------------------------
def test_image_metrics_by_hand() -> None:
    labels = [1, 1, 0, 0, 0]
    scores = [0.9, 0.4, 0.6, 0.2, float("nan")]  # the NaN (a failed detector) is left out
    assert image_auc(labels, scores) == pytest.approx(roc_auc_score([1, 1, 0, 0], [0.9, 0.4, 0.6, 0.2]))
    assert balanced_accuracy(labels, scores) == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert false_alarm_rate(labels, scores) == pytest.approx(1 / 2)
    assert np.isnan(image_auc([1, 1], [0.2, 0.3])) and np.isnan(false_alarm_rate([1], [0.9]))
    with pytest.raises(ValueError, match="labels must be 0"):
        image_auc([2, 0], [0.1, 0.2])


# -------------------------------------------------------------------------------------------------------------
# The protocol, on tiny detectors
# -------------------------------------------------------------------------------------------------------------
def _truth(image) -> np.ndarray:
    mask_file = Path(image.path).parent.parent / "masks" / Path(image.path).name
    return load_mask(mask_file) if mask_file.is_file() else np.zeros(image.shape, bool)


class Oracle(Detector):
    """Returns the true mask (read beside the image): perfect localisation, perfect detection."""

    def predict(self, image):
        truth = _truth(image)
        return Prediction(heatmap=truth.astype(np.float32), mask=truth, score=float(truth.any()))


class Nothing(Detector):
    """Flags nothing and gives no score: image AUC falls back to its heatmap's maximum."""

    def predict(self, image):
        return Prediction.from_heatmap(np.zeros(image.shape, np.float32))


class Everything(Detector):
    """Flags every pixel: scores exactly the all-tampered floor."""

    def predict(self, image):
        return Prediction.from_heatmap(np.ones(image.shape, np.float32), score=1.0)


@pytest.fixture()
def registered(clean_registry):
    for name, cls in (("oracle", Oracle), ("nothing", Nothing), ("everything", Everything)):
        clean_registry.register_detector(name)(cls)
    return clean_registry


def test_known_detectors_score_as_expected_beside_the_floor(registered, make_forgery_set) -> None:
    manifest = make_forgery_set(tampered=3, authentic=3)
    result = evaluate(["oracle", "nothing", "everything"], manifest, progress=False)
    assert len(result.rows) == 18 and set(result.rows["status"]) == {"ok"}
    whole = result.summary[result.summary["dataset"] == ALL_DATASETS].set_index("detector")
    oracle, nothing, everything = whole.loc["oracle"], whole.loc["nothing"], whole.loc["everything"]
    assert oracle["pixel_f1"] == 1.0 and oracle["best_f1"] == 1.0 and oracle["pixel_auc"] == 1.0
    assert oracle["image_auc"] == 1.0 and oracle["false_alarm_rate"] == 0.0 and oracle["balanced_accuracy"] == 1.0
    assert nothing["pixel_f1"] == 0.0 and nothing["image_auc"] == 0.5  # every score 0: a tie
    # the floor: 2p/(1+p) per tampered image, averaged, the same beside every detector
    fractions = [(8 + 4 * i) * (10 + 4 * i) / (40 * 48) for i in range(3)]
    floor = np.mean([2 * p / (1 + p) for p in fractions])
    assert whole["floor_f1"].tolist() == pytest.approx([floor] * 3)
    assert everything["pixel_f1"] == pytest.approx(floor)
    assert everything["false_alarm_rate"] == 1.0 and everything["authentic_flagged"] == 1.0
    assert (whole["tampered"] == 3).all() and (whole["authentic"] == 3).all() and (whole["localised"] == 3).all()


def test_image_auc_over_the_whole_manifest_and_per_dataset(registered, make_forgery_set) -> None:
    # tampered images in one dataset, authentic ones in another: only the whole manifest has both labels
    result = evaluate(["oracle"], make_forgery_set(tampered=3, authentic=3, split=("forged", "pristine")),
                      progress=False)
    by_dataset = result.summary.set_index("dataset")
    assert by_dataset.loc[ALL_DATASETS, "image_auc"] == 1.0
    assert np.isnan(by_dataset.loc["forged", "image_auc"]) and np.isnan(by_dataset.loc["pristine", "image_auc"])
    assert by_dataset.loc["forged", "pixel_f1"] == 1.0 and np.isnan(by_dataset.loc["pristine", "pixel_f1"])
    assert by_dataset.loc["pristine", "false_alarm_rate"] == 0.0


def test_score_falls_back_to_the_heatmap_maximum(clean_registry, make_forgery_set) -> None:
    class Graded(Detector):
        """No score of its own; its heatmap peaks higher on tampered images."""

        def predict(self, image):
            heatmap = np.full(image.shape, 0.1, np.float32)
            heatmap[0, 0] = 0.8 if _truth(image).any() else 0.3
            return Prediction.from_heatmap(heatmap)

    result = evaluate({"graded": Graded()}, make_forgery_set(), progress=False)
    assert result.rows["score"].isna().all()
    assert sorted(set(result.rows["image_score"])) == pytest.approx([0.3, 0.8])
    assert result.headline()["image_auc"] == 1.0


def test_each_image_is_loaded_once_for_every_detector(clean_registry, make_forgery_set) -> None:
    seen: dict[str, list[int]] = {}

    class Recorder(Detector):
        def __init__(self, tag: int) -> None:
            self.tag = tag  # two parameter sets: the per-image memo would answer a second identical detector itself

        def predict(self, image):
            seen.setdefault(str(image.path), []).append(id(image))
            return Prediction.from_heatmap(np.zeros(image.shape, np.float32))

    evaluate({"first": Recorder(1), "second": Recorder(2)}, make_forgery_set(tampered=2, authentic=1), progress=False)
    assert len(seen) == 3 and all(len(ids) == 2 and ids[0] == ids[1] for ids in seen.values())


def test_a_failing_detector_gets_a_row_and_the_others_go_on(registered, make_forgery_set) -> None:
    class Fragile(Detector):
        def predict(self, image):
            if "img01" in str(image.path):
                raise RuntimeError("cannot cope")
            return Prediction.from_heatmap(np.zeros(image.shape, np.float32))

    messages: list[str] = []
    result = evaluate({"fragile": Fragile(), "oracle": "oracle"}, make_forgery_set(), progress=False,
                      log=messages.append)
    failed = result.rows[result.rows["status"] == "failed"]
    assert len(failed) == 1 and failed["detector"].iloc[0] == "fragile"
    assert "RuntimeError: cannot cope" in failed["reason"].iloc[0]
    assert any("failed: fragile" in m and "img01" in m for m in messages)
    assert (result.rows[result.rows["detector"] == "oracle"]["status"] == "ok").all()
    assert result.summary.set_index(["detector", "dataset"]).loc[("fragile", ALL_DATASETS), "failed"] == 1


def test_rows_are_appended_as_computed_and_a_run_resumes(clean_registry, make_forgery_set, tmp_path) -> None:
    calls: list[str] = []

    class Interrupted(Detector):
        """Stops the run (as Ctrl-C would) on the fourth image."""

        def predict(self, image):
            calls.append(Path(image.path).name)
            if len(calls) == 4:
                raise KeyboardInterrupt
            return Prediction.from_heatmap(_truth(image).astype(np.float32))

    manifest = make_forgery_set(tampered=3, authentic=3)
    rows_path = tmp_path / "rows.csv"
    with pytest.raises(KeyboardInterrupt):
        evaluate({"oracle": Interrupted()}, manifest, rows_path=rows_path, progress=False)
    kept = read_rows(rows_path)
    assert len(kept) == 3 and list(kept.columns) == list(ROW_COLUMNS)
    calls.clear()
    with pytest.raises(FileExistsError, match="resume"):
        evaluate({"oracle": Interrupted()}, manifest, rows_path=rows_path, progress=False)
    result = evaluate({"oracle": Interrupted()}, manifest, rows_path=rows_path, resume=True, progress=False)
    assert calls == ["img03.png", "img04.png", "img05.png"], "only the images not yet scored are scored"
    assert len(result.rows) == 6 and len(read_rows(rows_path)) == 6
    assert result.headline("oracle")["pixel_f1"] == 1.0


def test_a_cut_last_line_is_ignored_on_resume(registered, make_forgery_set, tmp_path) -> None:
    manifest = make_forgery_set(tampered=2, authentic=1)
    rows_path = tmp_path / "rows.csv"
    evaluate(["oracle"], manifest, rows_path=rows_path, progress=False)
    text = rows_path.read_text()
    rows_path.write_text(text[: len(text) - 25])  # the last row half written
    assert len(read_rows(rows_path)) == 2
    result = evaluate(["oracle"], manifest, rows_path=rows_path, resume=True, progress=False)
    assert len(result.rows) == 3 and len(pd.read_csv(rows_path)) == 3


def test_heatmaps_are_kept_on_request(registered, make_forgery_set) -> None:
    manifest = make_forgery_set(tampered=1, authentic=1)
    result = evaluate(["oracle"], manifest, progress=False, keep_heatmaps=True)
    path = result.rows["image_path"].iloc[0]
    assert result.heatmap("oracle", path).shape == (40, 48)
    plain = evaluate(["oracle"], manifest, progress=False)
    assert not plain.heatmaps, "maps are kept only on request"
    assert plain.heatmap("oracle", path).tolist() == result.heatmap("oracle", path).tolist(), "or computed again"
    with pytest.raises(KeyError, match="keep_heatmaps"):
        plain.heatmap("unknown", path)


def test_detectors_are_named_once(registered, make_forgery_set) -> None:
    manifest = make_forgery_set(tampered=1, authentic=1)
    with pytest.raises(ValueError, match="two detectors are named"):
        evaluate([Oracle(), Oracle()], manifest, progress=False)
    with pytest.raises(ValueError, match="unknown detector 'nope'"):
        evaluate(["nope"], manifest, progress=False)
    with pytest.raises(ValueError, match="threshold"):
        evaluate(["oracle"], manifest, threshold=float("nan"), progress=False)


# -------------------------------------------------------------------------------------------------------------
# The score cache shared by notebooks 04, 06 and 07
# -------------------------------------------------------------------------------------------------------------
class Counted(Detector):
    """The oracle, counting its calls in a class variable (an instance attribute would change the cache key)."""

    calls: list[str] = []

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = gain

    def predict(self, image):
        Counted.calls.append(Path(image.path).name)
        truth = _truth(image)
        return Prediction(heatmap=truth.astype(np.float32) * self.gain, mask=truth, score=float(truth.any()))


class CountedModel(Counted):
    trained = True


@pytest.fixture()
def counted():
    Counted.calls = []
    yield Counted
    Counted.calls = []


def test_the_cache_reuses_training_free_rows_with_this_manifests_labels(counted, make_forgery_set, tmp_path) -> None:
    manifest = make_forgery_set(tampered=2, authentic=2)
    cache = tmp_path / "scores"
    first = evaluate({"oracle": Counted()}, manifest, progress=False, cache=cache)
    assert len(Counted.calls) == 4 and len(list(cache.glob("*.csv"))) == 1
    frame = pd.read_csv(manifest).assign(dataset="renamed")
    frame["image_path"] = [str(Path(manifest).parent / p) for p in frame["image"]]
    frame["mask_path"] = [str(Path(manifest).parent / p) if isinstance(p, str) else "" for p in frame["mask"]]
    again = evaluate({"oracle": Counted()}, frame, progress=False, cache=cache, keep_heatmaps=True)
    assert len(Counted.calls) == 4, "every row came from the cache"
    assert set(again.rows["dataset"]) == {"renamed"}
    columns = ["pixel_f1", "best_f1", "image_auc", "floor_f1"]
    assert again.headline("oracle")[columns[0]] == first.headline("oracle")[columns[0]] == 1.0
    before = [first.headline("oracle")[c] for c in columns]
    assert [again.headline("oracle")[c] for c in columns] == pytest.approx(before)
    # Maps of reused rows are computed again on demand.
    assert again.heatmap("oracle", again.rows["image_path"].iloc[0]).shape == (40, 48)
    assert len(Counted.calls) == 5


def test_the_cache_scores_again_what_changed(counted, make_forgery_set, tmp_path) -> None:
    manifest = make_forgery_set(tampered=2, authentic=1)
    cache = tmp_path / "scores"
    evaluate({"oracle": Counted()}, manifest, progress=False, cache=cache)
    Counted.calls.clear()
    evaluate({"oracle": Counted(gain=0.5)}, manifest, progress=False, cache=cache)
    assert len(Counted.calls) == 3, "other parameters: another key"
    Counted.calls.clear()
    evaluate({"oracle": Counted()}, manifest, threshold=0.3, progress=False, cache=cache)
    assert len(Counted.calls) == 3, "another threshold: another key"
    Counted.calls.clear()
    image = Path(manifest).parent / "images" / "img00.png"
    image.write_bytes(image.read_bytes() + b"\0")  # another file at the same path
    evaluate({"oracle": Counted()}, manifest, progress=False, cache=cache)
    assert Counted.calls == ["img00.png"]
    Counted.calls.clear()
    evaluate({"model": CountedModel()}, manifest, progress=False, cache=cache)
    evaluate({"model": CountedModel()}, manifest, progress=False, cache=cache)
    assert len(Counted.calls) == 6, "a learned detector is always scored"
    assert len(list(cache.glob("*.csv"))) == 3, "one file per key, none for the model"


class SavedModel(Counted):
    """A learned detector loaded from files: its rows are keyed by the files' digest."""

    trained = True

    def __init__(self, digest: str) -> None:
        super().__init__()
        self._artifact_digest = digest


def test_a_learned_detector_loaded_from_files_is_cached_by_their_digest(counted, make_forgery_set, tmp_path) -> None:
    manifest = make_forgery_set(tampered=2, authentic=1)
    cache = tmp_path / "scores"
    first = evaluate({"model": SavedModel("a" * 40)}, manifest, progress=False, cache=cache)
    again = evaluate({"model": SavedModel("a" * 40)}, manifest, progress=False, cache=cache)
    assert len(Counted.calls) == 3, "the same files: every row from the cache"
    assert again.headline("model")["pixel_f1"] == first.headline("model")["pixel_f1"] == 1.0
    evaluate({"model": SavedModel("b" * 40)}, manifest, progress=False, cache=cache)
    assert len(Counted.calls) == 6, "other files: scored again"
    assert cache_key(SavedModel("a" * 40), 0.5, 3) != cache_key(SavedModel("b" * 40), 0.5, 3)
    assert cache_key(CountedModel(), 0.5, 3) is None


def test_a_cut_cache_line_is_dropped_and_a_locked_cache_is_bypassed(counted, make_forgery_set, tmp_path) -> None:
    from helpers.locks import folder_lock

    manifest = make_forgery_set(tampered=2, authentic=1)
    cache = tmp_path / "scores"
    evaluate({"oracle": Counted()}, manifest, progress=False, cache=cache)
    stored = next(cache.glob("*.csv"))
    text = stored.read_text()
    stored.write_text(text[: len(text) - 20])  # the last row half written
    Counted.calls.clear()
    result = evaluate({"oracle": Counted()}, manifest, progress=False, cache=cache)
    assert len(Counted.calls) == 1 and result.headline("oracle")["pixel_f1"] == 1.0
    assert len(pd.read_csv(stored)) == 3
    Counted.calls.clear()
    messages: list[str] = []
    with folder_lock(cache):
        evaluate({"oracle": Counted()}, manifest, progress=False, cache=cache, log=messages.append)
    assert len(Counted.calls) == 3 and any("in use by another evaluation" in m for m in messages)
