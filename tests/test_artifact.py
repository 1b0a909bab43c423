"""One model artifact format: NAME.keras plus NAME.json, one set of keys, one save and one load."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from helpers.models.artifact import (
    INFO_KEYS,
    ModelArtifactError,
    find_artifact,
    find_model_artifacts,
    load_model_artifact,
    save_model_artifact,
)


def mask_model() -> keras.Model:
    rgb = keras.Input((None, None, 3), name="rgb")
    ela = keras.Input((None, None, 3), name="ela")
    out = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="head")(
        keras.layers.Concatenate()([rgb, ela]))
    return keras.Model({"rgb": rgb, "ela": ela}, out)


def classifier(size: int = 32) -> keras.Model:
    ela = keras.Input((size, size, 3), name="ela")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3, activation="relu")(ela))
    return keras.Model({"ela": ela}, keras.layers.Dense(1, activation="sigmoid")(x))


PROVENANCE = {"profile": "smoke", "seed": 0, "data": "synthetic", "metrics": {"val_pixel_f1": 0.5}}


def test_save_and_load_a_mask_model(tmp_path: Path) -> None:
    model = mask_model()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.train_on_batch({"rgb": np.zeros((1, 32, 32, 3)), "ela": np.zeros((1, 32, 32, 3))}, np.ones((1, 32, 32, 1)))
    keras_path, json_path = save_model_artifact(model, tmp_path / "models", "mask_model",
                                                {"task": "segment", "crop": 64, "threshold": 0.4,
                                                 "architecture": "tiny", "provenance": PROVENANCE,
                                                 "details": {"loss": "bce"}})
    assert (keras_path.name, json_path.name) == ("mask_model.keras", "mask_model.json")
    info = json.loads(json_path.read_text())
    assert info["model_file"] == "mask_model.keras" and info["task"] == "segment" and info["format"] == 1
    assert set(info["streams"]) == {"rgb", "ela"} and info["tile"] == 128 and info["threshold"] == 0.4
    assert info["provenance"] == PROVENANCE and info["details"] == {"loss": "bce"}
    assert not list((tmp_path / "models").glob(".*")), "no temporary file is left behind"
    for path in (tmp_path / "models", keras_path, json_path):  # the folder, the .keras or the .json
        reloaded, loaded = load_model_artifact(path)
        assert loaded == info
    assert getattr(reloaded, "optimizer", None) is None, "the artifact carries optimizer state it never uses"
    x = {"rgb": np.random.default_rng(0).random((1, 32, 32, 3)), "ela": np.zeros((1, 32, 32, 3))}
    np.testing.assert_allclose(reloaded.predict_on_batch(x), model.predict_on_batch(x), atol=1e-6)


def test_a_classifier_describes_itself(tmp_path: Path) -> None:
    keras_path, _ = save_model_artifact(classifier(32), tmp_path, "classifier", {"threshold": 0.7})
    _, info = load_model_artifact(keras_path)
    assert info["task"] == "classify" and info["crop"] == 32 and info["streams"] == ["ela"]
    assert info["provenance"] == {"data": None, "metrics": None, "profile": None, "seed": None}


def test_one_folder_holds_both_models_and_the_task_picks(tmp_path: Path) -> None:
    save_model_artifact(classifier(), tmp_path, "classifier", {"task": "classify"})
    save_model_artifact(mask_model(), tmp_path, "mask_model", {"task": "segment"})
    with pytest.raises(ModelArtifactError, match="several saved models"):
        load_model_artifact(tmp_path)
    assert load_model_artifact(tmp_path, task="segment")[1]["name"] == "mask_model"
    assert find_artifact(tmp_path, task="classify")[0].name == "classifier.keras"
    with pytest.raises(ModelArtifactError, match="not a classify model"):
        load_model_artifact(tmp_path / "mask_model.keras", task="classify")
    assert find_model_artifacts(tmp_path) == {"classify": tmp_path / "classifier.keras",
                                              "segment": tmp_path / "mask_model.keras"}
    assert find_model_artifacts(tmp_path / "nothing") == {}


@pytest.mark.parametrize("case", ["empty folder", "missing path", "text file", "json without model"])
def test_a_path_that_is_not_a_saved_model_says_what_was_expected(tmp_path: Path, case: str) -> None:
    path = {"empty folder": tmp_path, "missing path": tmp_path / "absent", "text file": tmp_path / "notes.txt",
            "json without model": tmp_path / "lonely.json"}[case]
    if case == "text file":
        path.write_text("hello")
    if case == "json without model":
        path.write_text(json.dumps({"format": 1, "model_file": "lonely.keras"}))
    with pytest.raises(ModelArtifactError) as caught:
        load_model_artifact(path)
    message = str(caught.value)
    assert str(path) in message
    assert "a folder holding NAME.keras and NAME.json, or a .keras file" in message or "is missing" in message


def test_descriptions_use_one_set_of_keys(tmp_path: Path) -> None:
    with pytest.raises(ModelArtifactError, match="unknown model description key"):
        save_model_artifact(mask_model(), tmp_path, "m", {"file": "m.keras"})
    with pytest.raises(ModelArtifactError, match="provenance keys"):
        save_model_artifact(mask_model(), tmp_path, "m", {"provenance": {"val_auc": 0.9}})
    with pytest.raises(ModelArtifactError, match="threshold"):
        save_model_artifact(mask_model(), tmp_path, "m", {"threshold": 1.5})
    with pytest.raises(ModelArtifactError, match="image_score"):
        save_model_artifact(mask_model(), tmp_path, "m", {"image_score": {"rule": "median"}})
    assert not list(tmp_path.iterdir()), "a refused description writes nothing"
    assert {"task", "streams", "crop", "tile", "overlap", "threshold", "provenance"} <= set(INFO_KEYS)
