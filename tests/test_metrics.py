"""Image-level metrics against values computed by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from helpers.metrics import best_threshold, classification_metrics, json_safe, multiclass_metrics, roc_points


def test_balanced_case_by_hand() -> None:
    # predictions at 0.5: [0, 1, 0, 1] -> tn 1, fp 1, fn 1, tp 1
    m = classification_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
    assert m["confusion_matrix"] == [[1, 1], [1, 1]]
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.5)
    # positive-negative pairs ranked right: 0.4>0.1, 0.9>0.1, 0.9>0.6 (not 0.4>0.6) -> 3 of 4
    assert m["roc_auc"] == pytest.approx(0.75)
    assert (m["n"], m["positives"], m["negatives"]) == (4, 2, 2)


def test_imbalanced_case_by_hand() -> None:
    # predictions [0, 1, 0, 1]: tn 2, fp 1, fn 0, tp 1
    m = classification_metrics([0, 0, 0, 1], [0.2, 0.7, 0.3, 0.8])
    assert m["confusion_matrix"] == [[2, 1], [0, 1]]
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1) / 2)
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(1.0)
    assert m["f1"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert m["roc_auc"] == pytest.approx(1.0)


def test_threshold_is_inclusive_and_moves_predictions() -> None:
    assert classification_metrics([0, 1], [0.3, 0.5])["confusion_matrix"] == [[1, 0], [0, 1]]
    high = classification_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], threshold=0.95)
    assert high["confusion_matrix"] == [[2, 0], [2, 0]]
    assert high["precision"] == 0.0 and high["f1"] == 0.0  # no tampered prediction: defined as 0, no warning
    assert high["threshold"] == 0.95
    assert high["roc_auc"] == pytest.approx(0.75)  # threshold-free


def test_one_class_gives_nan_auc_not_an_error() -> None:
    m = classification_metrics([1, 1, 1], [0.2, 0.7, 0.9])
    assert math.isnan(m["roc_auc"])
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)
    assert m["confusion_matrix"] == [[0, 0], [1, 2]]
    fpr, tpr, auc = roc_points([0, 0], [0.1, 0.2])
    assert fpr.size == 0 and tpr.size == 0 and math.isnan(auc)


@pytest.mark.parametrize(
    ("y", "scores", "message"),
    [([0, 1], [0.5], "values"), ([0, 2], [0.1, 0.2], "0 .authentic."), ([0, 1], [0.1, np.nan], "finite"), ([], [], "empty")],
)
def test_bad_inputs_are_refused(y, scores, message) -> None:
    with pytest.raises(ValueError, match=message):
        classification_metrics(y, scores)


def test_multiclass_by_hand() -> None:
    y = [0, 0, 1, 1, 2, 2]
    predicted = [0, 1, 1, 1, 2, 0]
    proba = np.eye(3)[predicted] * 0.7 + 0.1
    m = multiclass_metrics(y, proba, ["authentic", "splice", "removal"])
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    per = m["per_class"]
    assert (per["authentic"]["precision"], per["authentic"]["recall"], per["authentic"]["f1"]) == pytest.approx((0.5, 0.5, 0.5))
    assert (per["splice"]["precision"], per["splice"]["recall"], per["splice"]["f1"]) == pytest.approx((2 / 3, 1.0, 0.8))
    assert (per["removal"]["precision"], per["removal"]["recall"], per["removal"]["f1"]) == pytest.approx((1.0, 0.5, 2 / 3))
    assert [per[name]["support"] for name in ("authentic", "splice", "removal")] == [2, 2, 2]
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)


def test_multiclass_absent_class_and_index_predictions() -> None:
    names = ["authentic", "splice", "copy-move", "removal"]
    m = multiclass_metrics([0, 1, 1], [0, 1, 0], names)  # predicted indices instead of probabilities
    assert m["per_class"]["removal"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["confusion_matrix"][3] == [0, 0, 0, 0] and len(m["confusion_matrix"]) == 4
    # macro F1 over the classes present (authentic: P 1/2 R 1 F 2/3; splice: P 1 R 1/2 F 2/3)
    assert m["macro_f1"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="columns"):
        multiclass_metrics([0, 1], np.ones((2, 3)) / 3, names)
    with pytest.raises(ValueError, match="class indices"):
        multiclass_metrics([0, 4], [0, 1], names)


def test_best_threshold_is_chosen_from_the_scores() -> None:
    threshold = best_threshold([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert 0.2 < threshold <= 0.8
    assert classification_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], threshold)["accuracy"] == 1.0
    assert best_threshold([1, 1], [0.3, 0.4]) == 0.5


def test_json_safe_makes_strict_json() -> None:
    value = {"auc": math.nan, "n": np.int64(3), "x": np.float32(0.5), "cm": np.array([[1, 2], [3, 4]]), "inf": np.inf}
    text = json.dumps(json_safe(value), allow_nan=False)
    assert json.loads(text) == {"auc": None, "n": 3, "x": 0.5, "cm": [[1, 2], [3, 4]], "inf": None}


def test_result_figures_draw_what_they_are_given(tmp_path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers.training_plots import plot_confusion, plot_history, plot_roc_curves

    fig = plot_roc_curves({"compact_ela_cnn": ([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9]),
                           "random_forest": ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]),
                           "one_class": ([1, 1], [0.2, 0.3])})
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["random_forest (AUC 1.000)", "compact_ela_cnn (AUC 0.750)", "one_class (AUC n/a)",
                      "chance (AUC 0.5)"]  # sorted by AUC
    fig = plot_confusion([[3, 1], [0, 2]], ["authentic", "tampered"])
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == ["0\n0%", "1\n25%", "2\n100%", "3\n75%"]
    with pytest.raises(ValueError, match="class names"):
        plot_confusion([[1, 2], [3, 4]], ["a", "b", "c"])
    csv = tmp_path / "history.csv"
    csv.write_text("epoch,loss,val_loss,auc,val_auc\n0,0.7,0.8,0.5,0.4\n1,0.6,0.9,0.6,0.45\n")
    fig = plot_history({"a": csv, "b": {"loss": [0.5, 0.4, 0.3], "val_loss": [5.0, 6.0, 7.0]}},
                       metrics=("loss", "auc", "accuracy"))
    assert [ax.get_title() for ax in fig.axes] == ["loss", "auc"]  # accuracy absent from both histories
    assert fig.axes[0].get_yscale() == "log"  # a validation loss 10x the others
    assert len(fig.axes[1].lines) == 2 and list(fig.axes[1].lines[0].get_xdata()) == [1, 2]
    plt.close("all")
