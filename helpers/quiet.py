"""A quiet start: no TensorFlow, absl or CUDA chatter on a machine without a GPU.

Serves every notebook (``import helpers`` runs :func:`install` before anything imports TensorFlow) and
``python -m helpers workbook``, whose kernels inherit the same environment and import this module before their
first cell (:data:`KERNEL_ARGUMENTS`).

Why each step:

* ``TF_CPP_MIN_LOG_LEVEL=2`` drops TensorFlow's INFO and WARNING lines from C++ (errors still show);
* ``CUDA_VISIBLE_DEVICES=""`` only when the machine has no NVIDIA device (no ``/dev/nvidia*``, no WSL GPU, no
  ``nvidia-smi``): TensorFlow then does not probe CUDA and print "failed call to cuInit ... (303)". A value the
  user set is never touched, and a real GPU is never hidden;
* the lines TensorFlow writes straight to the process's stderr while it is imported ("All log messages before
  absl::InitializeLog() ...", "cudart_stub.cc ... Could not find cuda drivers") ignore every setting, so the
  import runs with file descriptor 2 captured and only the lines matching :data:`NOISE` are dropped; anything
  else is written back, so a real error still reaches the terminal;
* absl's Python logger is set to errors only, which hides TensorFlow's Python-side start-up warnings.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.abc
import importlib.machinery
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, MutableMapping, Sequence
from types import ModuleType
from typing import Any

__all__ = [
    "NOISE",
    "KERNEL_ARGUMENTS",
    "INLINE_FIGURE_DPI",
    "nvidia_gpu_present",
    "quiet_environment",
    "filtered_native_stderr",
    "install",
    "quiet_kernel",
    "device_note",
]

NOISE = re.compile(
    "|".join(
        [
            r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
            r"cudart_stub\.cc.*Could not find cuda drivers",
            r"failed call to cuInit",
            r"Unable to register cu(DNN|FFT|BLAS) factory",
            r"computation placer already registered",
            r"cpu_feature_guard\.cc",
            r"^To enable the following instructions: .* rebuild TensorFlow",
            r"TF-TRT Warning: Could not find TensorRT",
            r"oneDNN custom operations are on",
        ]
    )
)
"""Start-up lines known to carry no information for a user; nothing else is ever dropped."""

INLINE_FIGURE_DPI = 72
"""Dots per inch of the figures a workbook notebook shows (see :data:`KERNEL_ARGUMENTS`)."""

KERNEL_ARGUMENTS: tuple[str, ...] = (
    # Import helpers (and so this module's import hook) before the first cell, which may import keras first.
    # Then quiet_kernel(): the kernel's own event loop, stopped by the runner after the last cell, may report a
    # pending control task ("Task was destroyed but it is pending!"), nothing a notebook did.
    "--IPKernelApp.exec_lines=['import helpers', 'helpers.quiet.quiet_kernel()']",
    # The kernel application's own log goes to the runner's terminal: a notice per notebook that a local kernel
    # talks over TCP, and "KeyboardInterrupt caught in kernel" when the runner shuts a kernel down after its last
    # cell. A notebook's errors reach its outputs and the run's summary, not this log.
    "--IPKernelApp.log_level=CRITICAL",
    # Inline figures at 72 dots per inch instead of matplotlib's 100: every PNG a notebook shows is stored twice
    # (the executed notebook and its HTML page), and photo grids at 100 dpi took 1-3 MB each, most of a smoke
    # run's writes. A 15-inch figure is still 1080 px wide, a screen's worth.
    f"--InlineBackend.print_figure_kwargs={{'bbox_inches': 'tight', 'dpi': {INLINE_FIGURE_DPI}}}",
)
"""Arguments the workbook runner gives every kernel it starts."""

_NOISY_PACKAGES = frozenset({"tensorflow"})
_INSTALLED = False


def nvidia_gpu_present() -> bool:
    """True when the machine shows any sign of an NVIDIA GPU: a device node, WSL's GPU bridge or ``nvidia-smi``.

    Errs on the side of "present": a false "absent" would hide a real GPU, a false "present" only costs the
    CUDA probe's log line.
    """
    return bool(glob.glob("/dev/nvidia[0-9]*")) or os.path.exists("/dev/dxg") or shutil.which("nvidia-smi") is not None


def quiet_environment(environ: MutableMapping[str, str] | None = None, *, gpu: bool | None = None) -> dict[str, str]:
    """Set, in ``environ`` (default: ``os.environ``), the variables that keep TensorFlow quiet; return those set.

    Only unset variables are set, so a user's own choice (``CUDA_VISIBLE_DEVICES=1``, a verbose log level)
    wins. ``gpu`` overrides the detection of :func:`nvidia_gpu_present` (tests).
    """
    target = os.environ if environ is None else environ
    wanted = {"TF_CPP_MIN_LOG_LEVEL": "2"}
    if not (nvidia_gpu_present() if gpu is None else gpu):
        wanted["CUDA_VISIBLE_DEVICES"] = ""
    changed = {key: value for key, value in wanted.items() if key not in target}
    target.update(changed)
    return changed


@contextlib.contextmanager
def filtered_native_stderr(noise: re.Pattern[str] = NOISE) -> Iterator[None]:
    """Capture what native code writes to file descriptor 2 inside the block; write back all but ``noise``.

    Python's own ``sys.stderr`` is flushed first so nothing is reordered. Where descriptor 2 cannot be
    duplicated (no console), the block runs uncaptured.
    """
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(keepends=True) if not noise.search(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    """Wraps a package's loader so that executing the package runs inside :func:`filtered_native_stderr`."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        _quiet_absl()
        with filtered_native_stderr():
            self._loader.exec_module(module)
            if os.environ.get("CUDA_VISIBLE_DEVICES") == "":
                _probe_devices(module)
        _quiet_absl()

    def __getattr__(self, name: str) -> Any:  # get_filename, get_resource_reader, is_package, ...
        return getattr(self._loader, name)


class _QuietImportFinder(importlib.abc.MetaPathFinder):
    """Finds the noisy packages with the other finders and hands back their spec with a :class:`_QuietLoader`."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _NOISY_PACKAGES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _QuietLoader(spec.loader)
        return spec


def _probe_devices(tensorflow: ModuleType) -> None:
    """Let TensorFlow look for GPUs now, inside the capture: even with CUDA hidden it calls cuInit once, and
    logs the failure as an error, at the first device query."""
    with contextlib.suppress(Exception):
        tensorflow.config.list_physical_devices("GPU")


def _quiet_absl() -> None:
    try:
        from absl import logging as absl_logging  # a TensorFlow dependency: absent means nothing to quiet
    except ImportError:
        return
    absl_logging.set_verbosity(absl_logging.ERROR)


def install() -> None:
    """Set the quiet environment and wrap TensorFlow's import; idempotent, and harmless once TensorFlow is in."""
    global _INSTALLED
    if _INSTALLED:
        return
    quiet_environment()
    if not any(isinstance(finder, _QuietImportFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietImportFinder())
    _INSTALLED = True


def quiet_kernel() -> None:
    """In a workbook kernel (:data:`KERNEL_ARGUMENTS`): asyncio's logger reports only critical errors, so the
    kernel's shutdown after the last cell prints no "Task was destroyed but it is pending!" to the terminal."""
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)


def device_note(environ: MutableMapping[str, str] | None = None) -> str | None:
    """One plain sentence when CUDA is hidden because no NVIDIA GPU was found (``None`` otherwise)."""
    env = os.environ if environ is None else environ
    if env.get("CUDA_VISIBLE_DEVICES") == "" and not nvidia_gpu_present():
        return "no NVIDIA GPU found: the notebooks run on the CPU (CUDA is hidden from TensorFlow)"
    return None
