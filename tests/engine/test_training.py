"""Tests of training: determinism, cancellation and input checks."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
import torch

from engine.framing import Framing
from engine.signals import COLOUR, MIN_COLOUR_THRESHOLD
from engine.training import (
    EpochReport,
    TrainingCancelled,
    TrainingData,
    TrainingOptions,
    train_model,
)


def test_same_seed_same_weights(retina_arrays: np.ndarray) -> None:
    data = TrainingData(retina_arrays[:100], "100 retina images")
    options = TrainingOptions(epochs=2, seed=7)

    first = train_model(data, Framing(), options)
    second = train_model(data, Framing(), options)

    for key, tensor in first.autoencoder.state_dict().items():
        assert torch.equal(tensor, second.autoencoder.state_dict()[key]), key
    assert first.threshold == second.threshold


def test_progress_reports_every_epoch(retina_arrays: np.ndarray) -> None:
    reports: list[EpochReport] = []
    data = TrainingData(retina_arrays[:100], "100 retina images")

    model = train_model(data, Framing(), TrainingOptions(epochs=3), progress=reports.append)

    assert [report.epoch for report in reports] == [1, 2, 3]
    assert all(report.train_loss > 0 for report in reports)
    assert model.training["n_train"] + model.training["n_calibration"] == 100
    assert model.calibration.clean_scores.size == model.training["n_calibration"]


def test_cancel_stops_training(retina_arrays: np.ndarray) -> None:
    cancel = threading.Event()
    data = TrainingData(retina_arrays[:100], "100 retina images")

    def cancel_after_first(report: EpochReport) -> None:
        cancel.set()

    with pytest.raises(TrainingCancelled):
        train_model(data, Framing(), TrainingOptions(epochs=50), cancel_after_first, cancel)


def test_too_few_images_rejected(retina_arrays: np.ndarray) -> None:
    data = TrainingData(retina_arrays[:30], "30 retina images")

    with pytest.raises(ValueError, match="too few"):
        train_model(data, Framing(), TrainingOptions(epochs=1))


def test_small_calibration_split_warns_once(
    retina_arrays: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    # 30 of 100 images are held out: too few for 1 % split over three signals.
    data = TrainingData(retina_arrays[:100], "100 retina images")

    with caplog.at_level(logging.WARNING):
        train_model(data, Framing(), TrainingOptions(epochs=1))

    warnings = [record.getMessage() for record in caplog.records
                if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("30 held-out images are too few for the 0.33 %")
    assert "each of the 3 signals (1 % in all)" in warnings[0]


def test_colour_threshold_never_zero(retina_arrays: np.ndarray) -> None:
    # No held-out image of 65 falls outside the colour range, so the held-out
    # maximum is 0, and any image just outside would score without bound.
    data = TrainingData(retina_arrays[:65], "65 retina images")

    model = train_model(data, Framing(), TrainingOptions(epochs=2))

    assert model.signals[COLOUR].clean_scores.max() == 0.0
    assert model.signal_thresholds[COLOUR] == MIN_COLOUR_THRESHOLD


def test_copies_of_one_image_rejected(retina_arrays: np.ndarray) -> None:
    # Every code of 66 copies is the same, so every held-out latent distance is 0.
    data = TrainingData(np.repeat(retina_arrays[:1], 66, axis=0), "66 copies of one image")

    with pytest.raises(ValueError, match="held-out images are all alike"):
        train_model(data, Framing(), TrainingOptions(epochs=2))
