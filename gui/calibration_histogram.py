"""Histogram of a new model's held-out clean scores with the threshold set from them."""

from __future__ import annotations

import logging
import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from engine.calibration import Calibration
from gui.histogram import LogScale, paint_ticks
from gui.score_format import format_score
from gui.tile_delegate import FLAG_COLOUR

logger = logging.getLogger(__name__)

BIN_COUNT = 24
_CLEAN_COLOUR = QColor("#2e7d32")


class CalibrationHistogram(QWidget):
    """Bars of the held-out clean images' combined scores on a logarithmic axis and the
    threshold line.

    Bars above the threshold, in the flag colour, are held-out clean images that the
    threshold flags. Calibration keeps their share at or below the target false-reject rate.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._scale = LogScale.covering(np.zeros(0))
        self._kept_counts = np.zeros(BIN_COUNT)
        self._flagged_counts = np.zeros(BIN_COUNT)
        self._threshold = math.nan
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 120)
        self.setToolTip("Combined scores of the held-out clean images, which the model "
                        "never trained on: each image's largest signal divided by that "
                        "signal's threshold, set from these images. The line is at 1.")

    def sizeHint(self) -> QSize:
        return QSize(400, 180)

    @property
    def bin_counts(self) -> np.ndarray:
        """Number of clean scores in each bin, lowest scores first."""
        return self._kept_counts + self._flagged_counts

    @property
    def threshold(self) -> float:
        """The threshold drawn, NaN before set_calibration()."""
        return self._threshold

    def set_calibration(self, calibration: Calibration) -> None:
        scores = calibration.clean_scores
        self._scale = LogScale.covering(np.append(scores, calibration.threshold), padding=1.3)
        edges = self._scale.bin_edges(BIN_COUNT)
        clipped = np.clip(scores, edges[0], edges[-1])
        # A bin may hold scores on both sides of the threshold, so the two parts are
        # counted apart and stacked.
        flagged = scores > calibration.threshold
        self._kept_counts = np.histogram(clipped[~flagged], edges)[0].astype(float)
        self._flagged_counts = np.histogram(clipped[flagged], edges)[0].astype(float)
        self._threshold = calibration.threshold
        self.update()

    # Painting

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = QFontMetrics(self.font())
        plot = QRectF(8, metrics.height() + 10, max(1, self.width() - 16),
                      max(1, self.height() - 3 * metrics.height() - 18))
        painter.fillRect(plot, self.palette().color(QPalette.ColorRole.Base))
        self._paint_bars(painter, plot)
        self._paint_axis(painter, plot, metrics)
        self._paint_threshold(painter, plot, metrics)
        painter.end()

    def _x(self, plot: QRectF, value: float) -> float:
        return plot.left() + self._scale.position(value) * plot.width()

    def _text_colour(self) -> QColor:
        return self.palette().color(QPalette.ColorRole.PlaceholderText)

    def _paint_bars(self, painter: QPainter, plot: QRectF) -> None:
        peak = max(1.0, float(self.bin_counts.max(initial=0)))
        unit = (plot.height() - 4) / peak
        edges = self._scale.bin_edges(BIN_COUNT)
        painter.setPen(Qt.PenStyle.NoPen)
        bins = zip(self._kept_counts, self._flagged_counts, strict=True)
        for index, (kept, flagged) in enumerate(bins):
            left, right = self._x(plot, edges[index]), self._x(plot, edges[index + 1])
            width = max(1.0, right - left - 1.0)
            if kept:
                painter.setBrush(_CLEAN_COLOUR)
                painter.drawRect(QRectF(left + 0.5, plot.bottom() - kept * unit, width,
                                        kept * unit))
            if flagged:
                painter.setBrush(FLAG_COLOUR)
                painter.drawRect(QRectF(left + 0.5, plot.bottom() - (kept + flagged) * unit,
                                        width, flagged * unit))
        painter.setPen(self._text_colour())
        painter.drawText(QPointF(plot.left() + 4, plot.top() - 4),
                         f"tallest bar: {int(peak)} images")

    def _paint_axis(self, painter: QPainter, plot: QRectF, metrics: QFontMetrics) -> None:
        painter.setPen(QPen(self._text_colour(), 1))
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        baseline = plot.bottom() + 4 + metrics.ascent()
        paint_ticks(painter, plot, self._scale, metrics, baseline, self.width())
        title = "combined score of each held-out clean image"
        painter.drawText(QPointF(plot.center().x() - metrics.horizontalAdvance(title) / 2,
                                 baseline + metrics.height()), title)

    def _paint_threshold(self, painter: QPainter, plot: QRectF, metrics: QFontMetrics) -> None:
        if not math.isfinite(self._threshold) or self._threshold <= 0:
            return
        x = self._x(plot, self._threshold)
        painter.setPen(QPen(self.palette().color(QPalette.ColorRole.WindowText), 2))
        painter.drawLine(QPointF(x, plot.top() - 2), QPointF(x, plot.bottom()))
        label = f"threshold {format_score(self._threshold)}"
        width = metrics.horizontalAdvance(label)
        left = x - 5 - width if x + 5 + width > plot.right() else x + 5
        # A backing keeps the label readable where it crosses a bar.
        backing = self.palette().color(QPalette.ColorRole.Base)
        backing.setAlpha(210)
        painter.fillRect(QRectF(left - 2, plot.top() + 2, width + 4, metrics.height()), backing)
        painter.drawText(QPointF(left, plot.top() + metrics.ascent() + 2), label)
