"""Tests of the formatting of scores and thresholds."""

from __future__ import annotations

import pytest

from gui.score_format import format_score, format_threshold


@pytest.mark.parametrize(
    ("score", "text"),
    [
        (0.0123, "0.0123"),
        (0.5, "0.500"),
        (0.00412345, "0.00412"),  # below 0.1: more decimals keep 3 significant digits
        (0.0000123, "0.0000123"),
        (0.0, "0.00"),
        (1.25, "1.25"),
        (37.456, "37.46"),
    ],
)
def test_format_score(score: float, text: str) -> None:
    assert format_score(score) == text


@pytest.mark.parametrize(
    ("threshold", "text"),
    [
        (1.0, "1.000"),
        (1.0034567, "1.003"),  # one slider step above 1 shows as a new value
        (0.0123456, "0.01235"),
        (100.0, "100.00"),  # at least 2 decimals, as scores have
        (12345.678, "12345.68"),
        (0.0, "0.00"),
        (2.5e6, "2.500e+06"),  # a million and more: with an exponent
        (0.0000123, "1.230e-05"),  # below 0.0001: with an exponent
    ],
)
def test_format_threshold(threshold: float, text: str) -> None:
    assert format_threshold(threshold) == text
