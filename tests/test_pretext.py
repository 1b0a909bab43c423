"""The manipulation-family pretext task: a head that shares the forensic network's trunk, trained on a budget."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers.datasets.online import packaged_photos
from helpers.models.forensic_net import forensic_net
from helpers.models.pretext import PRETEXT_CLASSES, family_pretext_model, pretrain_families

STREAMS = ("rgb", "ela")


def test_the_head_shares_the_mask_models_trunk() -> None:
    net = forensic_net(STREAMS, width=8, front_filters=4)
    classifier = family_pretext_model(net)
    assert classifier.output_shape == (None, len(PRETEXT_CLASSES))
    assert PRETEXT_CLASSES[0] == "authentic" and len(set(PRETEXT_CLASSES)) == len(PRETEXT_CLASSES) == 10
    for name in ("rgb_bayar", "stem1_conv", "context3b_conv", "anomaly"):
        assert classifier.get_layer(name) is net.get_layer(name)
    # The mask head is not part of the classifier.
    names = {layer.name for layer in classifier.layers}
    assert "logits" not in names and "mask" not in names
    x = {"rgb": np.zeros((2, 32, 32, 3), np.float32), "ela": np.zeros((2, 32, 32, 3), np.float32)}
    probabilities = keras.ops.convert_to_numpy(classifier(x))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)


def test_a_model_without_the_feature_layer_is_refused() -> None:
    inputs = keras.Input((None, None, 3), name="rgb")
    plain = keras.Model(inputs, keras.layers.Conv2D(1, 1, name="only")(inputs))
    with pytest.raises(ValueError, match="no layer 'anomaly'"):
        family_pretext_model(plain)


@pytest.mark.slow
def test_pretraining_moves_the_mask_models_weights_and_reports_accuracy() -> None:
    keras.utils.set_random_seed(0)
    net = forensic_net(STREAMS, width=8, front_filters=4)
    before = [w.copy() for w in net.get_layer("stem1_conv").get_weights()]
    mask_head = [w.copy() for w in net.get_layer("logits").get_weights()]
    result = pretrain_families(net, packaged_photos(), streams=STREAMS, budget_s=8.0, size=64, batch_size=4,
                               batches_per_epoch=3, validation_batches=2, threads=1, progress=False)
    assert result.samples_seen >= 4 and result.samples_seen % 4 == 0 and result.curve
    assert 0.0 <= result.best_val_accuracy <= 1.0
    assert all("val_accuracy" in row for row in result.curve)
    assert result.summary()["classes"] == list(PRETEXT_CLASSES)
    after = net.get_layer("stem1_conv").get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(before, after))  # the shared trunk trained
    for a, b in zip(mask_head, net.get_layer("logits").get_weights()):
        np.testing.assert_array_equal(a, b)  # the mask head did not
    with pytest.raises(ValueError, match="budget_s"):
        pretrain_families(net, packaged_photos(), streams=STREAMS, budget_s=0.0)
