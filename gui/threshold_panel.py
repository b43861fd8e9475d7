"""Threshold panel: a slider over the score histogram, the threshold's meaning and counts."""

from __future__ import annotations

import logging
import math
import re
import sys

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Slot
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QStyle,
    QStyleOptionSlider,
    QVBoxLayout,
    QWidget,
)

from engine.modelfile import ReferenceModel
from gui.gallery_items import GalleryCounts
from gui.gallery_model import GalleryModel
from gui.histogram import LogScale, ScoreHistogram
from gui.score_format import format_threshold

logger = logging.getLogger(__name__)

# Slider steps over the histogram's logarithmic axis. Over the typical two to three
# decades of scores, one step changes the threshold by 0.5 to 0.7 %.
SLIDER_STEPS = 1000

# New scores arrive in batches while a folder is scored, so the histogram is
# rebuilt at most this often.
_REFRESH_INTERVAL_MS = 150

# The maximum number of decimals a QDoubleSpinBox takes. It rounds every value to
# its decimals, and with these it keeps every digit of a threshold of 1e-300 or more.
_SPIN_BOX_DECIMALS = 323
# Qt's adaptive step up from 0 is one unit of the last decimal, 1e-323, so the
# step up from 0 goes to this value instead.
_STEP_UP_FROM_ZERO = 0.01
# Text a user may type: digits, one decimal point and an exponent. Python's float()
# would also take "inf", "nan" and underscores.
_NUMBER_PATTERN = re.compile(r"\d*\.?\d*(?:[eE][+-]?\d*)?")


def describe_clean_rate(model: ReferenceModel | None, threshold: float) -> str:
    """Return how many of `model`'s held-out clean images score above `threshold`,
    beside the rate the calibration aims at for new clean images.
    """
    if model is None:
        return "no model: clean reject rate unknown"
    calibration = model.calibration
    count = calibration.clean_scores.size
    above = round(calibration.clean_rejected_fraction(threshold) * count)
    # The held-out images set the thresholds, so at the calibrated threshold few of
    # them, often none, lie above: a count of 0 is no promise for new images, which
    # the target is about.
    # No-break spaces keep each number with its unit when the label wraps.
    return (f"Above it: {above} of {count} held-out clean images "
            f"({100.0 * above / max(count, 1):.1f}\u00a0%). Target for new clean images: "
            f"{100.0 * calibration.target_frr:g}\u00a0% at the calibrated threshold.")


class ThresholdSpinBox(QDoubleSpinBox):
    """A spin box for any threshold the engine takes: finite and at least 0.

    A plain QDoubleSpinBox rounds its value to the decimals it shows. This one
    keeps the full value, so a threshold set by the slider or on the command line
    stays as it is, and shows it as format_threshold does. Text that still reads
    as the current value leaves the value unchanged: pressing Enter in the box, or
    leaving it, never rounds the threshold to the digits shown. A value may be
    typed with more digits than are shown, or with an exponent ("2e-5").
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(_SPIN_BOX_DECIMALS)
        self.setRange(0.0, sys.float_info.max)
        self.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)

    def textFromValue(self, value: float) -> str:
        return format_threshold(value)

    def valueFromText(self, text: str) -> float:
        text = text.strip()
        if text == self.textFromValue(self.value()):
            return self.value()
        return float(text)

    def validate(self, text: str, position: int) -> tuple[QValidator.State, str, int]:
        candidate = text.strip()
        if not _NUMBER_PATTERN.fullmatch(candidate):
            return QValidator.State.Invalid, text, position
        try:
            value = float(candidate)
        except ValueError:
            # A number still being typed, such as "" or "2e-".
            return QValidator.State.Intermediate, text, position
        if not math.isfinite(value):
            return QValidator.State.Invalid, text, position
        return QValidator.State.Acceptable, text, position

    def stepBy(self, steps: int) -> None:
        if self.value() == 0.0 and steps > 0:
            self.setValue(_STEP_UP_FROM_ZERO)
            steps -= 1
        if steps:
            super().stepBy(steps)


class ThresholdPanel(QWidget):
    """Sets the gallery's threshold by slider, histogram, spin box or reset button.

    Two-way bound to a GalleryModel: the controls set the model's threshold, and
    the model's threshold_changed signal moves the controls, so a threshold set
    from anywhere shows here. The panel emits no signals of its own.
    """

    def __init__(self, gallery_model: GalleryModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._gallery_model = gallery_model
        self._model: ReferenceModel | None = None
        self._syncing = False
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(_REFRESH_INTERVAL_MS)
        self._build_ui()
        self._connect_signals()
        self.set_reference_model(None)

    def _build_ui(self) -> None:
        self.histogram = ScoreHistogram(self)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setAccessibleName("Threshold slider")
        self.slider.setToolTip("Drag to move the threshold; the gallery re-flags at once")
        plot = QVBoxLayout()
        plot.setSpacing(0)
        plot.addWidget(self.histogram, 1)
        plot.addWidget(self.slider)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self._build_controls())
        layout.addLayout(plot, 1)

    def _build_controls(self) -> QWidget:
        """Build the column of the exact threshold, its meaning, the counts and Reset."""
        self.spin_box = ThresholdSpinBox(self)
        self.spin_box.setKeyboardTracking(False)
        self.spin_box.setAccessibleName("Threshold")
        self.spin_box.setToolTip("Threshold on the combined score, 1 at the model's "
                                 "calibrated threshold: files scored above it are flagged")
        self.clean_rate_label = QLabel(self)
        self.clean_rate_label.setWordWrap(True)
        self.flagged_label = QLabel(self)
        self.decisions_label = QLabel(self)
        self.decisions_label.setToolTip("Files whose decision you set yourself count as "
                                        "decided by you")
        self.reset_button = QPushButton("Reset to Calibrated", self)

        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Threshold", self.spin_box)
        for widget in (self.clean_rate_label, self.flagged_label, self.decisions_label,
                       self.reset_button):
            form.addRow(widget)
        controls = QWidget(self)
        controls.setLayout(form)
        controls.setFixedWidth(250)
        return controls

    def _connect_signals(self) -> None:
        self.slider.valueChanged.connect(self._on_slider_value_changed)
        self.spin_box.valueChanged.connect(self._on_spin_box_value_changed)
        self.histogram.threshold_requested.connect(self._on_histogram_threshold_requested)
        self.reset_button.clicked.connect(self._on_reset_button_clicked)
        self._gallery_model.threshold_changed.connect(self._on_gallery_threshold_changed)
        self._gallery_model.counts_changed.connect(self._on_gallery_counts_changed)
        self._gallery_model.rowsInserted.connect(self._on_gallery_rows_changed)
        self._gallery_model.rowsRemoved.connect(self._on_gallery_rows_changed)
        self._gallery_model.modelReset.connect(self._on_gallery_rows_changed)
        self._refresh_timer.timeout.connect(self._on_refresh_timer_timeout)

    # Public interface

    @property
    def threshold(self) -> float:
        """The threshold shown, which is always the gallery model's."""
        return self._gallery_model.threshold

    @property
    def scale(self) -> LogScale:
        """The logarithmic axis shared by the histogram and the slider."""
        return self.histogram.scale

    def set_reference_model(self, model: ReferenceModel | None) -> None:
        """Show the calibration of `model`. None disables the controls."""
        self._model = model
        self.setEnabled(model is not None)
        self._refresh_histogram()
        self._show_threshold()

    def reset_to_calibrated(self) -> None:
        """Set the gallery's threshold to the model's calibrated one."""
        if self._model is not None:
            self._gallery_model.set_threshold(self._model.threshold)

    def refresh_histogram(self) -> None:
        """Rebuild the histogram from the gallery's scores now, as when a scan has ended."""
        self._refresh_timer.stop()
        self._refresh_histogram()
        self._show_threshold()

    def slider_threshold(self) -> float:
        """Return the threshold at the slider's current position."""
        return self.scale.value(self.slider.value() / SLIDER_STEPS)

    # Model to widgets

    def _show_threshold(self) -> None:
        threshold = self._gallery_model.threshold
        self._syncing = True
        try:
            with QSignalBlocker(self.slider), QSignalBlocker(self.spin_box):
                if math.isfinite(threshold):
                    self.slider.setValue(round(self.scale.position(threshold) * SLIDER_STEPS))
                    self.spin_box.setValue(threshold)
        finally:
            self._syncing = False
        calibrated = math.nan if self._model is None else self._model.threshold
        self.histogram.set_thresholds(threshold, calibrated)
        self.clean_rate_label.setText(describe_clean_rate(self._model, threshold))
        self.reset_button.setEnabled(self._model is not None and threshold != calibrated)
        self.reset_button.setToolTip(
            "Go back to the threshold stored with the model"
            + ("" if self._model is None else f": {format_threshold(calibrated)}")
        )

    def _show_counts(self, counts: GalleryCounts) -> None:
        scored = counts.total - counts.not_scored
        self.flagged_label.setText(f"Flagged: <b>{counts.flagged}</b> of {scored} scored")
        self.decisions_label.setText(
            f"Keep <b>{counts.kept}</b> · reject <b>{counts.rejected}</b>"
            # Short enough for five-digit counts in the panel's fixed width.
            f" · {counts.overridden} by you"
        )

    def _refresh_histogram(self) -> None:
        scores = np.asarray(self._gallery_model.scores(), dtype=float)
        clean = np.zeros(0) if self._model is None else self._model.calibration.clean_scores
        # The axis leaves the current threshold out, so that it stays put while the
        # slider is dragged. A threshold beyond the axis shows at its end.
        calibrated = [] if self._model is None else [self._model.threshold]
        scale = LogScale.covering(np.concatenate([scores, clean, calibrated]))
        self.histogram.set_data(scale, scores, clean)

    # Slots

    @Slot(int)
    def _on_slider_value_changed(self, value: int) -> None:
        if not self._syncing:
            self._gallery_model.set_threshold(self.scale.value(value / SLIDER_STEPS))

    @Slot(float)
    def _on_spin_box_value_changed(self, value: float) -> None:
        if not self._syncing:
            self._gallery_model.set_threshold(value)

    @Slot(float)
    def _on_histogram_threshold_requested(self, value: float) -> None:
        self._gallery_model.set_threshold(value)

    @Slot()
    def _on_reset_button_clicked(self) -> None:
        self.reset_to_calibrated()

    @Slot(float)
    def _on_gallery_threshold_changed(self, _threshold: float) -> None:
        self._show_threshold()

    @Slot()
    def _on_gallery_counts_changed(self) -> None:
        self._show_counts(self._gallery_model.counts())

    @Slot()
    def _on_gallery_rows_changed(self) -> None:
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    @Slot()
    def _on_refresh_timer_timeout(self) -> None:
        # The axis may have changed, which moves the slider for the same threshold.
        self.refresh_histogram()

    # Layout

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)  # type: ignore[arg-type]
        self.histogram.set_margins(*self._slider_groove_margins())

    def _slider_groove_margins(self) -> tuple[int, int]:
        """Return the distances from the slider's edges to the handle centre's end positions."""
        option = QStyleOptionSlider()
        self.slider.initStyleOption(option)
        handle = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                             QStyle.SubControl.SC_SliderHandle, self.slider)
        half = handle.width() // 2
        return half, half
