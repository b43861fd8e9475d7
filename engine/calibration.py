"""Thresholds set from the scores of clean images the model never trained on."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_TARGET_FRR = 0.01


@dataclass(frozen=True)
class Calibration:
    """A threshold and the clean score distribution it was chosen from.

    An image is flagged when its score is strictly greater than `threshold`.
    `clean_scores` are sorted ascending, in the same unit as the score.
    """

    target_frr: float
    threshold: float
    clean_scores: np.ndarray

    @property
    def limited_by_sample(self) -> bool:
        """True when too few clean scores exist for the target rate.

        The threshold is then the largest clean score, and about 1 in n + 1 new clean
        images score above it, more than the target rate.
        """
        size = self.clean_scores.size
        return math.ceil((size + 1) * (1.0 - self.target_frr)) > size

    def clean_rejected_fraction(self, threshold: float) -> float:
        """Return the fraction of clean calibration images `threshold` would flag."""
        above = self.clean_scores.size - np.searchsorted(self.clean_scores, threshold, "right")
        return float(above) / max(1, self.clean_scores.size)

    def percentile(self, score: float) -> float:
        """Return the percentage (0–100) of clean images that scored below `score`."""
        below = np.searchsorted(self.clean_scores, score, "left")
        return 100.0 * float(below) / max(1, self.clean_scores.size)


def calibrate(clean_scores: np.ndarray, target_frr: float = DEFAULT_TARGET_FRR) -> Calibration:
    """Choose the threshold that flags at most `target_frr` of unseen clean images.

    The threshold is the ceil((n + 1)(1 - target_frr))-th smallest clean score, the
    split-conformal quantile: for a new clean image drawn like the calibration set,
    the chance of a score above it is at most `target_frr`. With too few clean
    images for that rank (see `too_few_for`), the largest clean score is used.

    Raises ValueError for an empty score array or a rate outside (0, 1).
    """
    if not 0.0 < target_frr < 1.0:
        raise ValueError(f"target false-reject rate must be in (0, 1), got {target_frr}")
    scores = np.sort(np.asarray(clean_scores, dtype=np.float64))
    if scores.size == 0:
        raise ValueError("calibration needs at least one clean score")
    rank = min(_conformal_rank(scores.size, target_frr), scores.size)
    return Calibration(target_frr, float(scores[rank - 1]), scores)


def too_few_for(size: int, target_frr: float) -> bool:
    """Return whether `size` clean images are too few to calibrate at `target_frr`."""
    return _conformal_rank(size, target_frr) > size


def _conformal_rank(size: int, target_frr: float) -> int:
    return math.ceil((size + 1) * (1.0 - target_frr))
