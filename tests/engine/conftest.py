"""Fixtures for engine tests: a small model trained on real retina images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.framing import Framing
from engine.modelfile import ReferenceModel
from engine.training import TrainingData, TrainingOptions, frame_arrays, train_model


@pytest.fixture(scope="session")
def retina_arrays(data_root: Path) -> np.ndarray:
    """200 RetinaMNIST train images, framed."""
    with np.load(data_root / "medmnist" / "retinamnist.npz") as arrays:
        return frame_arrays(arrays["train_images"][:200], Framing())


@pytest.fixture(scope="session")
def tiny_model(retina_arrays: np.ndarray) -> ReferenceModel:
    """A model trained for a few epochs: fast, real, but not accurate."""
    data = TrainingData(retina_arrays, "200 RetinaMNIST train images")
    return train_model(data, Framing(), TrainingOptions(epochs=3))
