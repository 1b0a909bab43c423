"""Online forgeries, manipulation families, the stream table and the compact forensic network."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from helpers.datasets.families import COMPRESSIONS, LOCAL_FAMILIES, FamilyConfig, jpeg, local_edit, make_forgery
from helpers.datasets.online import OnlineForgeries, folder_photos, packaged_photos, write_online_set
from helpers.streams import STREAMS, compute_streams, ghost_curve, stream_channels


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:192, :192])


def test_every_stream_has_its_declared_channels(photo):
    values = compute_streams(photo, list(STREAMS))
    for name, array in values.items():
        assert array.shape == (*photo.shape[:2], STREAMS[name].channels), name
        assert array.dtype == np.float32 and np.isfinite(array).all(), name
    assert stream_channels(["rgb", "ghost"]) == {"rgb": 3, "ghost": STREAMS["ghost"].channels}
    with pytest.raises(ValueError, match="unknown stream"):
        compute_streams(photo, ["nope"])


def test_ghost_curve_finds_the_quality_an_image_was_saved_at(photo):
    from helpers.streams import GHOST_QUALITIES

    saved = jpeg(photo, 65)
    curve = ghost_curve(saved)
    shares = curve[..., : len(GHOST_QUALITIES)]
    textured = curve[..., -1] > 0  # above the image's median change: flat areas have no curve to read
    assert np.allclose(shares[textured].sum(axis=-1), 1.0, atol=1e-2)
    # Re-saving at the quality it was saved at changes least, apart from the highest quality.
    lowest = np.argmin(shares[..., :-1], axis=-1)
    assert np.mean(lowest[textured] == GHOST_QUALITIES.index(65)) > 0.6


@pytest.mark.parametrize("family", LOCAL_FAMILIES)
def test_each_family_edits_only_inside_its_mask(photo, family):
    rng = np.random.default_rng(3)
    host = jpeg(photo, 85)
    donor = jpeg(np.ascontiguousarray(photo[::-1, ::-1]), 70)
    image, mask, details = local_edit(host, family, rng, donor=donor)
    assert image.shape == host.shape and mask.shape == host.shape[:2]
    assert mask.any(), f"{family} marked nothing"
    changed = np.any(image != host, axis=-1)
    # Feathered edges may change a few pixels just outside the mask (blend weights below 0.5).
    import cv2

    near = cv2.dilate(mask.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    assert not (changed & ~near).any(), f"{family} changed pixels far from its mask"
    assert changed[mask].mean() > 0.3, f"{family} hardly changed its region"


def test_forgeries_repeat_from_their_seed_and_cover_every_family():
    photos = packaged_photos({"coffee", "chelsea", "astronaut"})
    first = make_forgery(np.random.default_rng([1, 2]), photos, 96, photo_count=len(photos))
    again = make_forgery(np.random.default_rng([1, 2]), photos, 96, photo_count=len(photos))
    assert np.array_equal(first.image, again.image) and np.array_equal(first.mask, again.mask)
    families, compressions = set(), {"authentic": set(), "tampered": set()}
    for index in range(160):
        sample = make_forgery(np.random.default_rng([0, index]), photos, 96, photo_count=len(photos))
        assert sample.image.shape == (96, 96, 3) and sample.mask.shape == (96, 96)
        assert sample.mask.any() == bool(sample.label)
        families.add(sample.family)
        compressions["tampered" if sample.label else "authentic"].add(sample.compression)
    assert families >= set(LOCAL_FAMILIES) | {"authentic"}
    # Authentic samples go through the same compression chains: none gives the label away.
    assert compressions["authentic"] == compressions["tampered"] == set(COMPRESSIONS)


def test_online_batches_are_fresh_each_epoch_and_repeat_per_seed():
    photos = packaged_photos({"coffee", "chelsea"})
    data = OnlineForgeries(photos, streams=("rgb", "ghost"), size=64, batch_size=4, batches=2, seed=5, threads=1)
    x, y = data[1]
    assert x["rgb"].shape == (4, 64, 64, 3) and x["ghost"].shape[-1] == STREAMS["ghost"].channels
    assert y.shape == (4, 64, 64, 1) and set(np.unique(y)) <= {0.0, 1.0}
    again = OnlineForgeries(photos, streams=("rgb", "ghost"), size=64, batch_size=4, batches=2, seed=5, threads=2)
    assert np.array_equal(again[1][0]["rgb"], x["rgb"])
    data.on_epoch_end()
    assert not np.array_equal(data[1][0]["rgb"], x["rgb"])
    fixed = OnlineForgeries(photos, streams=("rgb",), size=64, batch_size=2, batches=1, seed=5, threads=1, fixed=True)
    before = fixed[0][0]["rgb"]
    fixed.on_epoch_end()
    assert np.array_equal(fixed[0][0]["rgb"], before)


def test_training_photos_exclude_other_groups():
    photos = packaged_photos({"coffee"})
    assert photos.names == ["coffee"]
    with pytest.raises(ValueError, match="empty"):
        packaged_photos({"no such group"})


def test_family_config_rejects_unknown_names():
    with pytest.raises(ValueError, match="families"):
        FamilyConfig(families=("teleport",))
    with pytest.raises(ValueError, match="compressions"):
        FamilyConfig(compressions=("zip",), compression_weights=(1.0,))


@pytest.mark.slow
def test_synth_from_a_folder_writes_a_valid_manifest(tmp_path, photo):
    import cv2

    source = tmp_path / "photos"
    source.mkdir()
    cv2.imwrite(str(source / "a.jpg"), photo[..., ::-1])
    cv2.imwrite(str(source / "b.png"), photo[::-1, :, ::-1])
    out = tmp_path / "set"
    result = subprocess.run([sys.executable, "-m", "helpers", "synth", "--from", str(source), "--out", str(out),
                             "--n", "6", "--size", "96"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    from helpers.datasets.manifest import validate_manifest

    report = validate_manifest(out / "manifest.csv")
    assert not report.errors
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run([sys.executable, "-m", "helpers", "synth", "--from", str(empty), "--out", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "no image files" in result.stderr


def test_write_online_set_uses_every_photo_only_from_its_pool(tmp_path, photo):
    import cv2

    cv2.imwrite(str(tmp_path / "only.png"), photo[..., ::-1])
    manifest = write_online_set(tmp_path / "out", folder_photos(tmp_path), n=4, size=64, progress=False)
    assert set(manifest["group"]) == {"only.png"}


@pytest.mark.slow
def test_forensic_net_learns_and_round_trips(tmp_path):
    import keras

    from helpers.models.forensic_net import forensic_net
    from helpers.models.losses import get_loss

    keras.utils.set_random_seed(0)
    streams = ("rgb", "ela", "ghost")
    photos = packaged_photos({"coffee", "chelsea", "astronaut"})
    data = OnlineForgeries(photos, streams=streams, size=64, batch_size=8, batches=6, seed=0, threads=1, fixed=True)
    model = forensic_net(streams, width=16)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=get_loss("bce_dice"))
    history = model.fit(data, epochs=6, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    x, _ = data[0]
    predicted = model.predict(x, verbose=0)
    assert predicted.shape == (8, 64, 64, 1) and (0 <= predicted).all() and (predicted <= 1).all()
    path = tmp_path / "net.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored.predict(x, verbose=0), predicted, atol=1e-5)
    # Fully convolutional: another size that is a multiple of 4 works.
    other = {k: v[:1, :36, :52] for k, v in x.items()}
    assert model.predict(other, verbose=0).shape == (1, 36, 52, 1)


def test_dq_stream_marks_a_region_that_missed_the_first_compression():
    from skimage import data

    from helpers.streams import dq_evidence

    host = jpeg(np.ascontiguousarray(data.astronaut()[:256, :256]), 60)
    pasted = host.copy()
    # A region never compressed at quality 60, misaligned with the grid: quantised once, by the final save.
    pasted[83:179, 83:179] = data.coffee()[100:196, 200:296]
    final = jpeg(pasted, 90)
    stream = dq_evidence(final)[..., 1]
    region = np.zeros(stream.shape, bool)
    region[96:168, 96:168] = True
    assert stream[region].mean() > stream[~region].mean() + 0.1
    # A photo compressed once has no double quantisation to contrast with: the stream stays empty.
    assert np.abs(dq_evidence(jpeg(np.ascontiguousarray(data.chelsea()[:256, :256]), 90))).mean() < 0.05


def test_online_targets_follow_the_task():
    photos = packaged_photos({"coffee", "chelsea"})
    labels = OnlineForgeries(photos, streams=("ela",), size=64, batch_size=8, batches=1, seed=3, threads=1,
                             task="classify")
    masks = OnlineForgeries(photos, streams=("ela",), size=64, batch_size=8, batches=1, seed=3, threads=1)
    x, y = labels[0]
    assert y.shape == (8, 1) and y.dtype == np.float32
    # the same samples: an image is labelled tampered exactly when its mask marks something
    np.testing.assert_array_equal(y[:, 0], masks[0][1].reshape(8, -1).max(axis=1))
    np.testing.assert_array_equal(x["ela"], masks[0][0]["ela"])
    kinds = OnlineForgeries(photos, streams=("ela",), size=64, batch_size=16, batches=1, seed=3, threads=1,
                            task="kind", config=FamilyConfig(families=("splice", "copy-move", "removal")))
    families = [kinds.sample(0, item).family for item in range(16)]
    _, classes = kinds[0]
    assert classes.dtype == np.int32
    assert classes.tolist() == [("authentic", "splice", "copy-move", "removal").index(f) for f in families]
    with pytest.raises(ValueError, match="families among classes"):
        OnlineForgeries(photos, streams=("ela",), task="kind")  # blur, noise... are not among the kinds
    with pytest.raises(ValueError, match="task must be one of"):
        OnlineForgeries(photos, streams=("ela",), task="detect")


def test_train_classifier_keeps_the_best_epoch_and_records_its_curve():
    import keras

    from helpers.models import classifier
    from helpers.models.recipes import tampered_scores, train_classifier

    keras.utils.set_random_seed(0)
    photos = packaged_photos({"coffee", "chelsea", "astronaut"})
    model = classifier.multi_stream_classifier(("ela", "noise"), input_size=64, widths=(8,), dense=16)
    validation = OnlineForgeries(photos, streams=("ela", "noise"), size=64, batch_size=8, batches=2, seed=99,
                                 threads=1, fixed=True, task="classify")
    result = train_classifier(model, photos, budget_s=6, validation=validation, size=64, batch_size=8,
                              batches_per_epoch=2, threads=1, progress=False)
    assert result.task == "classify" and result.streams == ("ela", "noise")
    assert result.samples_seen >= 8 and result.curve and all("val_auc" in row for row in result.curve)
    assert result.best_val_auc == max(row["val_auc"] for row in result.curve)
    scores, labels = tampered_scores(model, validation)
    assert scores.shape == labels.shape == (16,)
    # the restored weights are the best epoch's: scoring again gives its AUC
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(labels, scores) == pytest.approx(result.best_val_auc, abs=1e-6)
    kinds = classifier.multi_stream_classifier(("ela",), input_size=64, widths=(8,), dense=16,
                                               classes=classifier.KIND_CLASSES)
    with pytest.raises(ValueError, match="outputs but 2 classes"):
        train_classifier(kinds, photos, budget_s=1, classes=("authentic", "splice"), progress=False)


def test_platt_calibration_keeps_the_ranking_and_centres_the_decision():
    from helpers.detectors.learned import image_score_from_map
    from helpers.models.recipes import MaskTraining, platt_calibration

    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(40, int), np.ones(40, int)]
    scores = np.r_[rng.uniform(0.6, 0.8, 40), rng.uniform(0.75, 0.95, 40)]  # raw scores all above 0.5
    a, b = platt_calibration(scores, labels)
    assert a > 0
    calibrated = 1 / (1 + np.exp(-(a * scores + b)))
    assert np.array_equal(np.argsort(calibrated, kind="stable"), np.argsort(scores, kind="stable"))
    # at 0.5 the calibrated verdict is right far more often than the raw score's (which calls everything tampered)
    assert ((calibrated > 0.5) == labels).mean() > 0.8 > ((scores > 0.5) == labels).mean()
    assert platt_calibration(scores[:40], labels[:40]) is None
    rule = MaskTraining(model=None, streams=("ela",), image_calibration=[a, b]).image_score_rule  # type: ignore[arg-type]
    heatmap = np.full((10, 10), 0.9, np.float32)
    assert image_score_from_map(heatmap, rule) == pytest.approx(1 / (1 + np.exp(-(a * 0.9 + b))), rel=1e-5)


def test_train_mask_model_scores_validation_on_a_schedule_and_keeps_the_best(synthetic_set):
    import keras

    from helpers.models.forensic_net import forensic_net
    from helpers.models.recipes import MAP_THRESHOLDS, train_mask_model

    keras.utils.set_random_seed(0)
    photos = packaged_photos({"coffee", "chelsea", "astronaut"})
    validation = synthetic_set[synthetic_set["label"] == 1].head(3)
    result = train_mask_model(forensic_net(("ela", "noise"), width=8), photos, streams=("ela", "noise"), budget_s=8,
                              validation=validation, size=64, batch_size=4, batches_per_epoch=1, threads=1,
                              validations=2, flip_views=1, progress=False)
    scored = [row["val_pixel_f1"] for row in result.curve if "val_pixel_f1" in row]
    assert result.samples_seen >= 4 and "val_pixel_f1" in result.curve[-1]  # always scored when the budget ends
    assert len(scored) <= 3  # two scheduled checks and the last one, however many epochs ran
    assert result.best_val_pixel_f1 == max(scored)
    assert result.image_score_rule["rule"] == "top_mean"
    # each check records the map threshold it chose; the kept one is the best check's, saved through map_info
    # (one view over the checks' own images, so nothing is chosen again after the budget: see the next test)
    best = max((row for row in result.curve if "val_pixel_f1" in row), key=lambda row: row["val_pixel_f1"])
    assert {"val_map_threshold", "val_pixel_f1_at_half"} <= set(result.curve[-1])
    assert result.map_threshold == best["val_map_threshold"] and result.map_info["map_threshold"] in MAP_THRESHOLDS
    assert result.calibration_images == 0 and result.calibration_pixel_f1 is None


def test_a_subsampled_validation_chooses_the_map_threshold_again_on_the_whole_split(synthetic_set):
    import keras

    from helpers.models.forensic_net import forensic_net
    from helpers.models.recipes import train_mask_model, validation_scores

    keras.utils.set_random_seed(0)
    photos = packaged_photos({"coffee", "chelsea", "astronaut"})
    validation = pd.concat([synthetic_set[synthetic_set["label"] == 1].head(3),
                            synthetic_set[synthetic_set["label"] == 0].head(1)])
    result = train_mask_model(forensic_net(("ela",), width=8), photos, streams=("ela",), budget_s=4,
                              validation=validation, size=64, batch_size=4, batches_per_epoch=1, threads=1,
                              validations=1, max_validation_images=2, progress=False)
    whole = validation_scores(result.model, validation, ("ela",), flip_views=result.flip_views)
    assert result.calibration_images == 4 and result.summary()["calibration_images"] == 4
    assert result.map_threshold == whole["map_threshold"]
    assert result.image_threshold is not None and result.image_calibration is not None  # both classes present


def _ones():
    """Two batches of four ones, inputs and targets: a dataset for testing the training loop itself."""
    import keras

    class Ones(keras.utils.PyDataset):
        def __len__(self) -> int:
            return 2

        def __getitem__(self, index):
            return np.ones((4, 3), np.float32), np.ones((4, 1), np.float32)

    return Ones()


def test_a_second_training_phase_keeps_the_first_phases_best_unless_it_beats_it():
    import keras

    from helpers.models.recipes import _train_for

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    first = [w.copy() for w in model.get_weights()]
    curve, seen, _, best = _train_for(model, _ones(), budget_s=0.5, learning_rate=0.1, batch_size=4, metric="m",
                                      check=lambda final: 0.1, progress=False, best=0.9, best_weights=first,
                                      offset=(100, 10.0))
    assert best == 0.9 and all(np.array_equal(a, b) for a, b in zip(model.get_weights(), first))
    assert curve[0]["samples_seen"] == 100 + 8 and curve[0]["seconds"] >= 10.0
    assert seen == curve[-1]["samples_seen"] - 100
    _, _, _, best = _train_for(model, _ones(), budget_s=0.2, learning_rate=0.1, batch_size=4, metric="m",
                               check=lambda final: 0.95, progress=False, best=0.9, best_weights=first)
    assert best == 0.95 and not all(np.array_equal(a, b) for a, b in zip(model.get_weights(), first))


@pytest.mark.parametrize("budget_s", [x / 2 for x in range(1, 24)])
def test_the_epoch_that_ends_the_budget_is_always_the_scored_one(monkeypatch, budget_s):
    """Whatever the clock reads between the epoch's end and the loop's next turn, the last epoch gets the final
    check: training must never stop with its last weights unscored (CI once hit that race)."""
    import types

    import keras

    from helpers.models import recipes

    ticks = iter(np.arange(0.0, 10_000.0, 1.0))  # every reading of the clock moves it on one second
    monkeypatch.setattr(recipes, "time", types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    finals: list[bool] = []

    def check(final: bool) -> float | None:
        finals.append(final)
        return 0.5 if final else None

    curve, seen, _, best = recipes._train_for(model, _ones(), budget_s=budget_s, learning_rate=0.01, batch_size=4,
                                              metric="m", check=check, progress=False)
    assert curve and finals == [False] * (len(curve) - 1) + [True]
    assert curve[-1]["m"] == best == 0.5 and all("m" not in row for row in curve[:-1])
    assert seen == curve[-1]["samples_seen"]
