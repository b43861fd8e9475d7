"""The facts of a reference model: training data and date, threshold, fingerprint and file."""

from __future__ import annotations

import logging
from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout, QWidget

from engine.modelfile import ReferenceModel
from gui.score_format import format_score, format_threshold

logger = logging.getLogger(__name__)


def format_created(value: object) -> str:
    """Return the ISO 8601 time `training['created']` as local "YYYY-MM-DD HH:MM", else "unknown".

    A time without a UTC offset is shown as written.
    """
    if not isinstance(value, str) or not value:
        return "unknown"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        logger.debug("training time %r is not ISO 8601", value)
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M")


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else "unknown"


def model_facts(model: ReferenceModel) -> list[tuple[str, str]]:
    """Return (label, value) rows describing `model`, in the order they are shown."""
    training = model.training
    calibration = model.calibration
    clean_rate = 100.0 * calibration.clean_rejected_fraction(model.threshold)
    threshold = (f"{format_threshold(model.threshold)}, which flags {clean_rate:.1f} % of the "
                 f"{calibration.clean_scores.size} held-out clean images (target "
                 f"{100.0 * calibration.target_frr:g} %)")
    signals = ", ".join(f"{name} {format_score(value)}"
                        for name, value in model.signal_thresholds.items())
    return [
        ("Name", model.name),
        ("Calibrated threshold", threshold),
        ("Signal thresholds", signals or "none"),
        ("Training data", str(training.get("data") or "unknown")),
        ("Trained", format_created(training.get("created"))),
        ("Images trained on", _count(training.get("n_train"))),
        ("Images held out", f"{_count(training.get('n_calibration'))}, to set the threshold"),
        ("Fingerprint", model.fingerprint),
        ("File", str(model.path) if model.path is not None else "not saved"),
    ]


def describe_model_facts(model: ReferenceModel) -> str:
    """Return the facts of `model` as "Label: value" lines, as the status bar's tooltip."""
    return "\n".join(f"{label}: {value}" for label, value in model_facts(model))


class ModelInfoDialog(QDialog):
    """The facts of one reference model, with selectable values so they can be copied."""

    def __init__(self, model: ReferenceModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"About {model.name}")
        self.value_labels: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        for label, value in model_facts(model):
            value_label = QLabel(value, self)
            value_label.setWordWrap(True)
            value_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.value_labels[label] = value_label
            form.addRow(f"{label}:", value_label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        # The wrapped values are as tall as at the size hint's narrower width, so
        # the height is the one that 640 pixels of width need.
        self.resize(640, self.heightForWidth(640))

    def value(self, label: str) -> str:
        """Return the text shown for the fact `label`, such as "Fingerprint"."""
        return self.value_labels[label].text()
