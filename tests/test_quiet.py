"""A quiet start: TensorFlow's start-up lines filtered, CUDA hidden only where there is no GPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import quiet

REPO = Path(__file__).resolve().parent.parent


def test_environment_hides_cuda_only_without_a_gpu() -> None:
    env: dict[str, str] = {}
    assert quiet.quiet_environment(env, gpu=False) == {"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    assert env == {"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    with_gpu: dict[str, str] = {}
    quiet.quiet_environment(with_gpu, gpu=True)
    assert "CUDA_VISIBLE_DEVICES" not in with_gpu  # a real GPU is never hidden
    chosen = {"CUDA_VISIBLE_DEVICES": "1", "TF_CPP_MIN_LOG_LEVEL": "0"}
    assert quiet.quiet_environment(chosen, gpu=False) == {}  # the user's own settings win
    assert chosen == {"CUDA_VISIBLE_DEVICES": "1", "TF_CPP_MIN_LOG_LEVEL": "0"}
    assert quiet.device_note({"CUDA_VISIBLE_DEVICES": "1"}) is None


def test_filtered_native_stderr_drops_noise_and_keeps_the_rest(capfd: pytest.CaptureFixture[str]) -> None:
    with quiet.filtered_native_stderr():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 00:00:1.5 7 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not "
                    b"be used.\n")
        os.write(2, b"E0000 00:00:1.5 7 some_kernel.cc:9] a real error\n")
    assert capfd.readouterr().err == "E0000 00:00:1.5 7 some_kernel.cc:9] a real error\n"


def _import_fake_tensorflow(fake_tensorflow, first: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake_tensorflow.path), str(REPO)]),
           "CUDA_VISIBLE_DEVICES": ""}
    code = f"{first}\nimport tensorflow\nprint('imported')"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_importing_helpers_first_silences_tensorflow_start_up(fake_tensorflow) -> None:
    loud = _import_fake_tensorflow(fake_tensorflow, "import os")
    assert loud.returncode == 0 and all(noise in loud.stderr for noise in fake_tensorflow.noise[:2])

    quieted = _import_fake_tensorflow(fake_tensorflow, "import helpers")

    assert quieted.returncode == 0 and quieted.stdout == "imported\n"
    # the CUDA probe ran inside the capture too: its cuInit error is gone with the rest
    assert quieted.stderr == f"{fake_tensorflow.message}\n", quieted.stderr


@pytest.mark.gpu
def test_a_real_gpu_stays_visible() -> None:
    env = {key: value for key, value in os.environ.items() if key != "CUDA_VISIBLE_DEVICES"}
    env["PYTHONPATH"] = str(REPO)
    code = "import helpers, keras; print(keras.distribution.list_devices())"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "gpu" in result.stdout.lower() or "cuda" in result.stdout.lower(), result.stdout


def test_workbook_kernels_keep_asyncio_shutdown_reports_off_the_terminal() -> None:
    import logging

    from helpers import quiet

    assert any("helpers.quiet.quiet_kernel()" in argument for argument in quiet.KERNEL_ARGUMENTS)
    logger = logging.getLogger("asyncio")
    before = logger.level
    try:
        quiet.quiet_kernel()
        assert logger.getEffectiveLevel() == logging.CRITICAL
    finally:
        logger.setLevel(before)
