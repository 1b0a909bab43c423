"""Shared fixtures: the real-image fixtures beside the checkout, one embedded set per test session, a stand-in
for TensorFlow's noisy import, a local HTTP server on 127.0.0.1 for the download tests; and the ``gpu`` tier,
skipped on machines without an accelerator."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from helpers import config, quiet
from helpers.datasets.synthetic import synthesize

REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` need an accelerator: skipped, with the reason, on a machine without one."""
    if quiet.nvidia_gpu_present():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU (none found)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture()
def http_server() -> Iterator[Callable[[type[BaseHTTPRequestHandler], Any], str]]:
    """``start(handler, state)``: serve ``handler`` on 127.0.0.1 (a free port) with ``state`` reachable from
    it as ``self.server.state``; returns the base URL. Every server started is shut down after the test."""
    running: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(handler: type[BaseHTTPRequestHandler], state: Any) -> str:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        httpd.state = state  # type: ignore[attr-defined]
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        running.append((httpd, thread))
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    try:
        yield start
    finally:
        for httpd, thread in running:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=5)


@pytest.fixture(scope="session")
def fixtures_manifest() -> Path:
    path = config.fixtures_manifest()
    assert path is not None, (
        "real fixtures not found: expected shared/fixtures/real/manifest.csv beside the checkout "
        "or FORGERY_FIXTURES pointing at it"
    )
    return path


@pytest.fixture(scope="session")
def synthetic_set(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """200 samples, as the smoke profile builds them."""
    return synthesize(tmp_path_factory.mktemp("synthetic"), n=200, seed=3, progress=False)


FAKE_TENSORFLOW = '''
import os
os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
os.write(2, b"I0000 00:00:17.1  42 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.\\n")
os.write(2, b"fake tensorflow: a message that matters\\n")


class config:
    @staticmethod
    def list_physical_devices(kind=None):
        os.write(2, b"E0000 00:00:17.2  42 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
                    b"Failed call to cuInit: UNKNOWN ERROR (303)\\n")
        return []
'''
"""A stand-in for TensorFlow's import: the start-up lines it writes to file descriptor 2, and one that matters."""


@dataclass(frozen=True)
class FakeTensorflow:
    path: Path
    """Folder holding the package ``tensorflow``: put it first on ``PYTHONPATH``."""
    noise: tuple[str, ...] = ("absl::InitializeLog", "cudart_stub", "cuInit")
    """Fragments of the lines that must never reach a terminal or a notebook."""
    message: str = "fake tensorflow: a message that matters"


@pytest.fixture
def fake_tensorflow(tmp_path_factory: pytest.TempPathFactory) -> FakeTensorflow:
    """A package ``tensorflow`` that behaves as :data:`FAKE_TENSORFLOW`."""
    folder = tmp_path_factory.mktemp("fake_tensorflow")
    (folder / "tensorflow").mkdir()
    (folder / "tensorflow" / "__init__.py").write_text(FAKE_TENSORFLOW)
    return FakeTensorflow(folder)


@pytest.fixture()
def make_forgery_set(tmp_path: Path):
    """A factory of tiny manifests on disk: ``make(tampered=3, authentic=3)`` -> manifest path.

    Noise images of 48 x 40 pixels (PNG), tampered ones with a rectangular mask whose size grows with the index,
    tampered rows in dataset ``split[0]`` and authentic ones in ``split[1]`` (by default two different datasets,
    the case where only the whole manifest has both labels). ``extra`` rows (dicts of manifest columns) are
    appended as they are.
    """
    import numpy as np
    from PIL import Image

    def make(tampered: int = 3, authentic: int = 3, *, split: tuple[str, str] = ("forged", "pristine"),
             extra: list[dict] | None = None, folder: str = "set") -> Path:
        root = tmp_path / folder
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(exist_ok=True)
        rng = np.random.default_rng(len(list(root.glob("images/*"))))
        rows = []
        for i in range(tampered + authentic):
            name = f"img{i:02d}.png"
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(root / "images" / name)
            if i < tampered:
                mask = np.zeros((40, 48), np.uint8)
                mask[4 : 12 + 4 * i, 6 : 16 + 4 * i] = 255
                Image.fromarray(mask).save(root / "masks" / name)
                rows.append({"image": f"images/{name}", "mask": f"masks/{name}", "label": 1, "dataset": split[0],
                             "kind": "splice"})
            else:
                rows.append({"image": f"images/{name}", "mask": "", "label": 0, "dataset": split[1],
                             "kind": "authentic"})
        rows += list(extra or [])
        path = root / "manifest.csv"
        pd.DataFrame(rows, columns=["image", "mask", "label", "dataset", "kind"]).to_csv(path, index=False)
        return path

    return make


@pytest.fixture()
def clean_registry(monkeypatch: pytest.MonkeyPatch):
    """The detector registry as it is, restored after the test, so tests may register tiny detectors."""
    from helpers.detectors import base

    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    return base
