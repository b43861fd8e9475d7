"""Shared fixtures: the real data folder and the default model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.modelfile import ReferenceModel, load_model
from engine.resources import DEFAULT_MODEL_PATH

DATA_VARIABLE = "RETINA_CURATOR_DATA"


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The folder of real public images that the tests run on."""
    value = os.environ.get(DATA_VARIABLE)
    if not value:
        pytest.fail(
            f"{DATA_VARIABLE} is not set: point it at the shared data folder "
            "(the one with medmnist/, blood/, fundus/ and other/), as .ci/run does."
        )
    root = Path(value)
    if not (root / "medmnist" / "retinamnist.npz").is_file():
        pytest.fail(f"{DATA_VARIABLE}={root} does not contain medmnist/retinamnist.npz")
    return root


@pytest.fixture(scope="session")
def default_model() -> ReferenceModel:
    """The reference model shipped in resources/."""
    return load_model(DEFAULT_MODEL_PATH)
