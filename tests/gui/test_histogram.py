"""Tests of the score histogram's logarithmic axis and its bins."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from pytestqt.qtbot import QtBot

from gui.histogram import BIN_COUNT, LogScale, ScoreHistogram


def test_scale_covers_values_with_padding() -> None:
    scale = LogScale.covering(np.array([0.001, 0.01, 0.05]))
    assert scale.low == pytest.approx(0.001 / 1.25)
    assert scale.high == pytest.approx(0.05 * 1.25)


@pytest.mark.parametrize(
    "values",
    [np.zeros(0), np.array([0.0, -1.0, np.nan, np.inf])],  # nothing usable: default range
)
def test_scale_without_positive_values(values: np.ndarray) -> None:
    scale = LogScale.covering(values)
    assert (scale.low, scale.high) == (1e-4, 1e-1)


def test_scale_spans_at_least_a_decade() -> None:
    scale = LogScale.covering(np.array([0.004, 0.004]))
    assert scale.high / scale.low == pytest.approx(10)


@pytest.mark.parametrize("value", [0.0005, 0.001, 0.0039, 0.02])
def test_position_and_value_invert(value: float) -> None:
    scale = LogScale(0.0001, 0.1)
    assert scale.value(scale.position(value)) == pytest.approx(value)


def test_position_clamped() -> None:
    scale = LogScale(0.001, 0.1)
    assert scale.position(0.0) == 0.0
    assert scale.position(1.0) == 1.0
    assert scale.position(0.01) == pytest.approx(0.5)


def test_ticks_are_1_2_5_steps() -> None:
    assert LogScale(0.0009, 0.03).ticks() == pytest.approx([0.001, 0.002, 0.005, 0.01, 0.02])


def test_histogram_counts_every_score(qtbot: QtBot) -> None:
    histogram = ScoreHistogram()
    qtbot.addWidget(histogram)
    scores = np.array([0.001, 0.0011, 0.002, 0.03, 0.5])  # 0.5 lies beyond the axis
    histogram.set_data(LogScale(0.0005, 0.05), scores, np.array([0.001, 0.002]))
    counts = histogram.bin_counts
    assert counts.shape == (BIN_COUNT,)
    assert counts.sum() == 5
    assert counts[-1] == 1


def test_histogram_drag_requests_threshold(qtbot: QtBot) -> None:
    histogram = ScoreHistogram()
    qtbot.addWidget(histogram)
    histogram.resize(400, 100)
    histogram.set_data(LogScale(0.001, 0.1), np.array([0.002]), np.zeros(0))
    with qtbot.waitSignal(histogram.threshold_requested, timeout=1000) as requested:
        qtbot.mouseClick(histogram, Qt.MouseButton.LeftButton, pos=QPoint(200, 50))
    assert requested.args[0] == pytest.approx(0.01, rel=0.05)
