"""Tests of threshold calibration from clean scores."""

from __future__ import annotations

import numpy as np
import pytest

from engine.calibration import calibrate


def test_threshold_is_conformal_rank() -> None:
    scores = np.arange(1, 300).astype(float)[::-1]  # 299 scores, unsorted

    calibration = calibrate(scores, target_frr=0.01)

    # ceil(300 * 0.99) = 297th smallest of 1..299
    assert calibration.threshold == 297.0
    assert calibration.clean_rejected_fraction(calibration.threshold) == pytest.approx(2 / 299)


def test_percentile_and_rejected_fraction() -> None:
    calibration = calibrate(np.array([1.0, 2.0, 3.0, 4.0]), target_frr=0.25)

    assert calibration.percentile(2.5) == 50.0
    assert calibration.percentile(0.0) == 0.0
    assert calibration.clean_rejected_fraction(1.5) == 0.75


def test_few_scores_fall_back_to_maximum() -> None:
    calibration = calibrate(np.array([0.1, 0.3, 0.2]), target_frr=0.01)

    assert calibration.threshold == 0.3


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.5])
def test_invalid_rate_rejected(rate: float) -> None:
    with pytest.raises(ValueError, match="false-reject rate"):
        calibrate(np.array([1.0]), target_frr=rate)
