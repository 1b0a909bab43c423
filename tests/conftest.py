"""Shared fixtures: the real-image fixtures beside the checkout and one embedded set per test session."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from helpers import config
from helpers.datasets.synthetic import synthesize

REPO = Path(__file__).resolve().parent.parent


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
