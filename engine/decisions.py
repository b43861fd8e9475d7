"""The keep-or-reject decision on a file: the model's, the curator's, and the final one."""

from __future__ import annotations

import enum
import logging

logger = logging.getLogger(__name__)


class Decision(enum.StrEnum):
    """Outcome for a file: keep leaves it in the cleaned set, and reject moves it out."""

    KEEP = "keep"
    REJECT = "reject"


class DecisionSource(enum.StrEnum):
    """Maker of a file's final decision: the model, or the curator by an override."""

    MODEL = "model"
    CURATOR = "curator"


def model_decision(score: float | None, threshold: float) -> Decision:
    """Reject a score above `threshold`, and a file without a score (it could not be read)."""
    if score is None or score > threshold:
        return Decision.REJECT
    return Decision.KEEP


def final_decision(score: float | None, threshold: float, override: Decision | None) -> Decision:
    """Return `override` when it is set, whatever the threshold, else the model's decision."""
    return override or model_decision(score, threshold)


def decision_source(override: Decision | None) -> DecisionSource:
    return DecisionSource.MODEL if override is None else DecisionSource.CURATOR
