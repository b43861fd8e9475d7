"""Formatting of scores, signals and thresholds for labels, tooltips and reports."""

from __future__ import annotations

import math


def format_score(score: float) -> str:
    """Format a score or signal with at least 2 decimals and 3 significant digits."""
    if score <= 0.0 or not math.isfinite(score):
        return f"{score:.2f}"
    decimals = max(2, 2 - math.floor(math.log10(score)))
    return f"{score:.{decimals}f}"


def format_threshold(threshold: float) -> str:
    """Format a threshold with at least 2 decimals and 4 significant digits.

    On a typical folder one slider step moves the threshold by 0.5 to 0.7 %
    (gui.threshold_panel.SLIDER_STEPS). 4 digits show each step as a new value,
    where the 3 of format_score show some neighbouring steps as one. Thresholds
    of a million and more, or below 0.0001, are written with an exponent.
    """
    if threshold <= 0.0 or not math.isfinite(threshold):
        return f"{threshold:.2f}"
    exponent = math.floor(math.log10(threshold))
    if exponent >= 6 or exponent < -4:
        return f"{threshold:.3e}"
    decimals = max(2, 3 - exponent)
    return f"{threshold:.{decimals}f}"
