"""The models train and reload under every Keras backend the workbook supports (TensorFlow and JAX).

Keras fixes its backend when it is first imported, so each case runs in a fresh Python process with
``KERAS_BACKEND`` set. A case is a snippet of Python that receives the embedded set's manifest path in
``MANIFEST`` and a scratch folder in ``WORK``, trains for a step or two, and ends with ``report(**values)``, which
prints one JSON line; the test parses it. To cover another model (say the segmentation models), add a snippet
to :data:`CASES`: every case runs under every backend of :data:`BACKENDS`.

Model, loss, metric and training code must go through ``keras`` and ``keras.ops`` only;
:func:`test_no_tensorflow_imports_in_training_code` checks that rule in the source, and under JAX a case may
report ``tensorflow_before_saving`` (checked when present): whether TensorFlow was loaded before the first
save. Only before: when TensorFlow is installed, Keras' own ``.keras`` writer imports it whatever the backend.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

BACKENDS = ["tensorflow", "jax"]

PRELUDE = """
import json, os, sys
import numpy as np
MANIFEST, WORK = sys.argv[1], sys.argv[2]

def report(**values):
    import keras
    values["backend"] = keras.backend.backend()
    print("RESULT " + json.dumps(values))
"""

CLASSIFIER = """
import keras
from helpers import training
from helpers.datasets import load_manifest
from helpers.models import classifier
from helpers.models.artifact import load_model_artifact, save_model_artifact
from helpers.pipeline import ForgeryBatches

frame = load_manifest(MANIFEST).head(4)
weights = []
for _ in range(2):  # the same seed, the same initial weights
    training.set_seeds(0)
    model = classifier.multi_stream_classifier(("rgb", "ela"), input_size=32, front="bayar", stem_filters=4,
                                               widths=(8,), dense=8)
    weights.append(model.get_weights())
repeatable = all(np.array_equal(a, b) for a, b in zip(*weights))
tensorflow_before_saving = "tensorflow" in sys.modules
data = ForgeryBatches(frame, streams=classifier.input_streams(model), batch_size=2, size=32, seed=0)
first = model.train_on_batch(*data[0], return_dict=True)["loss"]
history = training.fit_model(model, data, None, epochs=1, run_dir=WORK, verbose=0,
                             callbacks=training.standard_callbacks(WORK, monitor="loss"))
x, _ = ForgeryBatches(frame, streams=classifier.input_streams(model), batch_size=2, size=32, augment=False,
                      shuffle=False)[0]
save_model_artifact(model, WORK, "classifier", {"task": "classify", "architecture": "multi"})
reloaded, _ = load_model_artifact(WORK)
difference = float(np.abs(np.asarray(reloaded.predict_on_batch(x)) - np.asarray(model.predict_on_batch(x))).max())
report(loss=float(history.history["loss"][-1]), first_loss=float(first), steps=len(data),
       reload_difference=difference, repeatable=repeatable, tensorflow_before_saving=tensorflow_before_saving)
"""

CASES: dict[str, str] = {"classifier": CLASSIFIER}
"""Snippets by name; each must call ``report(loss=..., reload_difference=...)``."""


def run_under_backend(backend: str, snippet: str, manifest: str | os.PathLike[str], work: Path,
                      timeout: float = 240) -> dict:
    """Run ``snippet`` (after :data:`PRELUDE`) in a new interpreter with ``KERAS_BACKEND=backend``; its report."""
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "JAX_PLATFORMS": "cpu"}
    code = textwrap.dedent(PRELUDE) + textwrap.dedent(snippet)
    done = subprocess.run([sys.executable, "-c", code, str(manifest), str(work)], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=Path(__file__).resolve().parent.parent)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, (
        f"{backend}: exit {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-5000:]}"
    )
    return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("backend", BACKENDS)
def test_trains_and_reloads_under_backend(backend: str, case: str, synthetic_set: pd.DataFrame, tmp_path) -> None:
    result = run_under_backend(backend, CASES[case], synthetic_set.attrs["manifest"], tmp_path / f"{case}_{backend}")
    assert result["backend"] == backend
    for key in ("loss", "first_loss"):
        assert key not in result or math.isfinite(result[key]), f"{key} is not finite: {result[key]}"
    assert result["reload_difference"] < 1e-5, "the reloaded .keras model predicts differently"
    assert result.get("repeatable", True), "set_seeds did not repeat the initial weights"
    if backend == "jax" and "tensorflow_before_saving" in result:
        assert not result["tensorflow_before_saving"], "seeding, building or data code imported TensorFlow under JAX"


TRAINING_MODULES = ["helpers/training.py", "helpers/metrics.py", "helpers/baselines.py", "helpers/training_plots.py",
                    "helpers/models/classifier.py", "helpers/models/layers.py"]


@pytest.mark.parametrize("module", TRAINING_MODULES)
def test_no_tensorflow_imports_in_training_code(module: str) -> None:
    """``import tensorflow`` appears only in :func:`helpers.training.distribution_scope` (MirroredStrategy)."""
    path = Path(__file__).resolve().parent.parent / module
    if not path.is_file():
        pytest.skip(f"{module} does not exist yet")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    allowed: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "distribution_scope" and module == "helpers/training.py":
            allowed |= {id(inner) for inner in ast.walk(node)}
    offending = [
        node.lineno for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in allowed
        and any(name.split(".")[0] == "tensorflow" for name in
                ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]))
    ]
    assert not offending, f"{module} imports tensorflow on line(s) {offending}; use keras and keras.ops"


# ---------------------------------------------------------------------------------------------------------------
# Mask models (notebook 06): appended; same machinery, one snippet for both models.
# ---------------------------------------------------------------------------------------------------------------
SEGMENTATION = """
import keras
from helpers import training
from helpers.datasets import load_manifest
from helpers.imageio import load_rgb
from helpers.inference import predict_mask
from helpers.models.artifact import load_model_artifact, save_model_artifact
from helpers.models.losses import get_loss
from helpers.models.metrics import PixelF1, PixelIoU
from helpers.models.segmentation import dual_stream_unet, unet_scratch
from helpers.pipeline import ForgeryBatches

training.set_seeds(0)
frame = load_manifest(MANIFEST).sort_values("label", ascending=False, kind="stable").head(4)
models = {
    "scratch": unet_scratch(("ela",), base_filters=4, depth=2),
    "dual": dual_stream_unet("resnet18", ("rgb", "ela"), encoder_weights=None, decoder_filters=(16, 8, 8, 8, 8)),
}
losses, differences, shapes, masks = {}, {}, {}, {}
rgb = load_rgb(frame["image_path"].iloc[0])
for name, model in models.items():
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=get_loss("bce_dice"), metrics=[PixelF1(), PixelIoU()],
                  jit_compile=training.jit_compile_setting())
    streams = [t.name for t in model.inputs]
    data = ForgeryBatches(frame, task="segment", streams=streams, batch_size=2, size=32, seed=0)
    history = training.fit_model(model, data, None, epochs=1, run_dir=os.path.join(WORK, name), verbose=0,
                                 callbacks=[])
    losses[name] = float(history.history["loss"][-1])
    masks[name] = predict_mask(model, rgb, tile=64, overlap=0.25, batch_size=64)
    shapes[name] = [list(masks[name].shape), list(rgb.shape[:2]), str(masks[name].dtype), float(masks[name].min()),
                    float(masks[name].max())]
tensorflow_before_saving = "tensorflow" in sys.modules  # Keras' own .keras writer imports it when installed
for name, model in models.items():
    save_model_artifact(model, os.path.join(WORK, name), "mask_model", {"tile": 64})
    reloaded, info = load_model_artifact(os.path.join(WORK, name))
    differences[name] = float(np.abs(predict_mask(reloaded, rgb, tile=64, batch_size=64) - masks[name]).max())
report(loss=max(losses.values()), reload_difference=max(differences.values()),
       tensorflow_before_saving=tensorflow_before_saving, shapes=shapes, losses=losses)
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_mask_models_train_predict_and_reload_under_backend(backend: str, synthetic_set: pd.DataFrame, tmp_path) -> None:
    """Scratch and dual-stream U-Nets (segmentation-models through the Keras 3 shim): fit, tile, save, reload."""
    result = run_under_backend(backend, SEGMENTATION, synthetic_set.attrs["manifest"], tmp_path / f"segment_{backend}",
                               timeout=420)
    assert result["backend"] == backend
    assert all(math.isfinite(loss) for loss in result["losses"].values()), result["losses"]
    for name, (shape, image_shape, dtype, low, high) in result["shapes"].items():
        assert shape == image_shape and dtype == "float32" and 0.0 <= low <= high <= 1.0, name
    assert result["reload_difference"] < 1e-5, "the reloaded mask model predicts differently"
    if backend == "jax":
        assert not result["tensorflow_before_saving"], "mask-model code imported TensorFlow under the JAX backend"


@pytest.mark.parametrize("module", ["helpers/models/segmentation.py", "helpers/models/sm_compat.py",
                                    "helpers/models/losses.py", "helpers/models/metrics.py", "helpers/inference.py",
                                    "helpers/models/artifact.py", "helpers/detectors/learned.py"])
def test_no_tensorflow_imports_in_mask_model_code(module: str) -> None:
    test_no_tensorflow_imports_in_training_code(module)
