"""Summary panels of the training dialog: the new model's calibration and the skipped files."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPalette, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.images import LoadedImage
from engine.modelfile import ReferenceModel
from gui.calibration_histogram import CalibrationHistogram
from gui.dialogs import WrappedText
from gui.score_format import format_score

logger = logging.getLogger(__name__)

# The skipped files table grows to this many rows, then scrolls.
_VISIBLE_ROWS = 5


def calibration_images_needed(target_frr: float) -> int:
    """Return the fewest clean images that engine.calibration needs for `target_frr`.

    With n < this many, it uses the largest clean score as the threshold, which
    about 1 in n + 1 new clean images exceed: more than the target rate.
    """
    count = 1
    while math.ceil((count + 1) * (1.0 - target_frr)) > count:
        count += 1
    return count


def format_duration(seconds: float) -> str:
    """Format a duration as "42 s", "3 min 05 s" or "1 h 02 min"."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class CalibrationSummary(QGroupBox):
    """The threshold, image counts, training time and model file of a trained model.

    Signals:
        output_change_requested(): the user clicked Change… to pick another model file.
    """

    output_change_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Calibration", parent)
        self.threshold_label = _value_label(self)
        self.rate_label = _value_label(self)
        self.rate_note = _note_label(self)
        self.images_label = _value_label(self)
        self.time_label = _value_label(self)
        self.output_view = PathView(self)
        self.output_button = QPushButton("Change…", self)
        self.output_button.clicked.connect(self.output_change_requested)
        self.output_note = _note_label(self)
        self.histogram = CalibrationHistogram(self)

        # The button goes below the path, so that the path has the whole column.
        output_row = QHBoxLayout()
        output_row.addWidget(self.output_button)
        output_row.addStretch(1)
        form = QFormLayout()
        form.addRow("Threshold:", self.threshold_label)
        form.addRow("Target false-reject rate:", self.rate_label)
        form.addRow(self.rate_note)
        form.addRow("Images:", self.images_label)
        form.addRow("Training time:", self.time_label)
        form.addRow("Model file:", self.output_view)
        form.addRow("", output_row)
        form.addRow(self.output_note)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.histogram, 1)

    def show_model(self, model: ReferenceModel) -> None:
        """Fill the panel from a trained model's calibration and training record."""
        calibration = model.calibration
        training = model.training
        n_calibration = int(calibration.clean_scores.size)
        signals = ", ".join(f"{name} {format_score(value)}"
                            for name, value in model.signal_thresholds.items())
        self.threshold_label.setText(
            f"<span style='font-size:large; font-weight:600'>"
            f"{format_score(calibration.threshold)}</span>&nbsp; combined score "
            f"({signals})")
        self.rate_label.setText(f"{100 * calibration.target_frr:g} % of good images")
        # Each of the signals is calibrated at its share of the rate.
        needed = calibration_images_needed(calibration.target_frr / max(1, len(model.signals)))
        self.rate_note.setText(
            f"{n_calibration} held-out images are too few for this rate, so each signal's "
            f"threshold is its largest held-out value, which about 1 in {n_calibration + 1} "
            f"new good images exceed. {needed} held-out images would be needed."
            if n_calibration < needed else "")
        self.rate_note.setVisible(n_calibration < needed)
        self.images_label.setText(f"{training.get('n_train', '?')} trained on, "
                                  f"{n_calibration} held out to set the threshold")
        self.time_label.setText(format_duration(float(training.get("seconds", 0.0))))
        self.histogram.set_calibration(calibration)

    @property
    def output_text(self) -> str:
        """The model file shown under Model file, as text."""
        return self.output_view.toPlainText()

    def show_output(self, path: Path, note: str = "") -> None:
        """Show the whole path of the file that Save and use writes, with `note` below it."""
        self.output_view.setPlainText(str(path))
        self.output_view.updateGeometry()
        self.output_note.setText(note)
        self.output_note.setVisible(bool(note))


class SkippedFilesBox(QGroupBox):
    """Table of the files that could not be read as images, with the reason for each."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Skipped files", parent)
        self.table = QTableWidget(0, 2, self)
        self.table.setHorizontalHeaderLabels(["File", "Status"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)

    def set_files(self, skipped: list[LoadedImage], folder: Path) -> None:
        """List `skipped` by their path under `folder` and show their number in the title."""
        self.setTitle(f"Skipped files ({len(skipped)}): not used for training")
        self.table.setRowCount(len(skipped))
        for row, item in enumerate(skipped):
            name = item.path
            if name.is_relative_to(folder):
                name = name.relative_to(folder)
            name_item = QTableWidgetItem(str(name))
            name_item.setToolTip(str(item.path))
            self.table.setItem(row, 0, name_item)
            self.table.setItem(row, 1, QTableWidgetItem(item.detail or str(item.status)))
        self._fit_rows(min(len(skipped), _VISIBLE_ROWS))

    def _fit_rows(self, rows: int) -> None:
        """Make the table `rows` rows high. Further rows scroll."""
        height = self.table.horizontalHeader().sizeHint().height()
        height += rows * self.table.verticalHeader().defaultSectionSize()
        self.table.setFixedHeight(height + 2 * self.table.frameWidth())

    def rows(self) -> list[tuple[str, str]]:
        """Return the (file, status) pairs shown."""
        return [(self._text(row, 0), self._text(row, 1)) for row in range(self.table.rowCount())]

    def _text(self, row: int, column: int) -> str:
        item = self.table.item(row, column)
        return item.text() if item is not None else ""


class _WholeTextHeight:
    """Mixed into a wrapping text widget, before its Qt class, so that a short dialog
    never cuts it off.

    When a dialog is too short for every widget's heightForWidth, its layout
    squeezes a wrapping widget down to its minimumSizeHint. Qt computes that hint
    for a width of its own choosing, which cuts off the last lines. Here the
    minimum height is that of the whole text at the widget's width, so the layout
    takes the room from other widgets or makes the dialog taller.
    """

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        # Before its layout first sets its geometry, the widget's width is a default
        # that has nothing to do with the room it gets.
        if not self.testAttribute(Qt.WidgetAttribute.WA_Resized):
            return hint
        return QSize(hint.width(), max(hint.height(), self.heightForWidth(self.width())))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        # The minimum height depends on the width, so the layout must read it again.
        if event.size().width() != event.oldSize().width():
            self.updateGeometry()


class WrappedLabel(_WholeTextHeight, QLabel):
    """A word-wrapped label whose minimum height is that of its whole text."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)

    def minimumSizeHint(self) -> QSize:
        # An empty label keeps Qt's hint.
        return super().minimumSizeHint() if self.text() else QLabel.minimumSizeHint(self)


class PathView(_WholeTextHeight, WrappedText):
    """A selectable path shown whole, wrapped also inside long names.

    A QLabel breaks a path only after a slash, and a line edit shows only the
    part of it that fits. Like WrappedLabel, the minimum height is that of the
    whole text at the widget's width. Only a path taller than the maximum height
    of a WrappedText scrolls.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)


def _value_label(parent: QWidget) -> QLabel:
    label = WrappedLabel(parent)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _note_label(parent: QWidget) -> QLabel:
    """Return a grey value label for an explanation under a row."""
    label = _value_label(parent)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    label.hide()
    return label
