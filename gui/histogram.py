"""Histogram of a folder's scores on a logarithmic axis, with the threshold drawn as a line."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QMouseEvent, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from gui.score_format import format_threshold
from gui.tile_delegate import FLAG_COLOUR

logger = logging.getLogger(__name__)

BIN_COUNT = 64
_KEPT_COLOUR = QColor("#5c7c99")
_CLEAN_COLOUR = QColor("#2e7d32")
_AXIS_HEIGHT = 16
_TOP_MARGIN = 16

# Mantissas of the axis ticks in each decade: 0.001, 0.002, 0.005, 0.01, ...
_TICK_MANTISSAS = (1.0, 2.0, 5.0)


def paint_ticks(painter: QPainter, plot: QRectF, scale: LogScale, metrics: QFontMetrics,
                baseline: float, widget_width: int) -> None:
    """Draw tick marks under `plot`, labelling only the ticks whose labels do not overlap."""
    last_right = -math.inf
    for tick in scale.ticks():
        x = plot.left() + scale.position(tick) * plot.width()
        painter.drawLine(QPointF(x, plot.bottom()), QPointF(x, plot.bottom() + 3))
        label = f"{tick:g}"
        width = metrics.horizontalAdvance(label)
        left = min(max(0.0, x - width / 2), widget_width - width)
        if left > last_right + 6:
            painter.drawText(QPointF(left, baseline), label)
            last_right = left + width


@dataclass(frozen=True)
class LogScale:
    """Maps scores in [`low`, `high`] to positions 0–1 on a logarithmic axis.

    The combined scores of the bundled model span more than a decade: clean images
    lie near 0.5, blood-cell images near 3 and blank frames up to 8. Both bounds
    must be positive.
    """

    low: float
    high: float

    @classmethod
    def covering(cls, values: np.ndarray, padding: float = 1.25) -> LogScale:
        """Return a scale over the positive finite `values`, widened by the factor `padding`.

        The scale spans at least one decade. Without such values it is 0.0001–0.1.
        """
        positive = values[np.isfinite(values) & (values > 0)]
        if positive.size == 0:
            return cls(1e-4, 1e-1)
        low, high = float(positive.min()) / padding, float(positive.max()) * padding
        return cls(low, max(high, low * 10))

    def position(self, value: float) -> float:
        """Return where `value` lies, 0 at `low` and 1 at `high`, clamped to 0–1."""
        if value <= self.low:
            return 0.0
        fraction = math.log(value / self.low) / math.log(self.high / self.low)
        return min(1.0, fraction)

    def value(self, position: float) -> float:
        """Return the score at `position` (0–1), the inverse of position()."""
        return self.low * (self.high / self.low) ** min(1.0, max(0.0, position))

    def ticks(self) -> list[float]:
        """Return the 1-2-5 tick values between `low` and `high`."""
        values = []
        for exponent in range(math.floor(math.log10(self.low)),
                              math.ceil(math.log10(self.high)) + 1):
            for mantissa in _TICK_MANTISSAS:
                tick = mantissa * 10.0 ** exponent
                if self.low <= tick <= self.high:
                    values.append(tick)
        return values

    def bin_edges(self, count: int = BIN_COUNT) -> np.ndarray:
        return np.geomspace(self.low, self.high, count + 1)


class ScoreHistogram(QWidget):
    """Bars of the folder's scores, the clean calibration scores as an outline, and lines.

    Bar heights grow with the square root of the count, so a few flagged files stay
    visible next to thousands of clean ones. The clean outline is scaled to the
    same number of files as the bars. The solid line is the threshold, the dashed
    line the calibrated one. Clicking or dragging requests a threshold.

    Signals:
        threshold_requested(float): the user clicked or dragged to this score.
    """

    threshold_requested = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._scale = LogScale.covering(np.zeros(0))
        self._counts = np.zeros(BIN_COUNT)
        self._clean_scores = np.zeros(0)
        self._clean_counts = np.zeros(BIN_COUNT)
        self._threshold = math.nan
        self._calibrated = math.nan
        self._left = 0
        self._right = 0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(70)
        self.setCursor(Qt.CursorShape.SizeHorCursor)
        self.setToolTip("Scores of this folder on a logarithmic axis. "
                        "Click or drag to move the threshold.")

    @property
    def scale(self) -> LogScale:
        return self._scale

    @property
    def bin_counts(self) -> np.ndarray:
        """Number of folder scores in each bin, lowest scores first."""
        return self._counts.copy()

    def sizeHint(self) -> QSize:
        return QSize(400, 96)

    def set_margins(self, left: int, right: int) -> None:
        """Leave `left` and `right` pixels free, to line the axis up with a slider's groove."""
        self._left, self._right = left, right
        self.update()

    def set_data(self, scale: LogScale, scores: np.ndarray, clean_scores: np.ndarray) -> None:
        """Show `scores` and the clean calibration `clean_scores` over `scale`."""
        self._scale = scale
        edges = scale.bin_edges()
        clipped = np.clip(scores, edges[0], edges[-1])
        self._counts = np.histogram(clipped, edges)[0].astype(float)
        self._clean_scores = clean_scores
        clean = np.histogram(np.clip(clean_scores, edges[0], edges[-1]), edges)[0]
        total = max(1, clean.sum())
        self._clean_counts = clean * (max(1.0, self._counts.sum()) / total)
        self.update()

    def set_thresholds(self, threshold: float, calibrated: float) -> None:
        self._threshold, self._calibrated = threshold, calibrated
        self.update()

    # Painting

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        plot = self._plot_rect()
        painter.fillRect(plot, self.palette().color(QPalette.ColorRole.Base))
        peak = math.sqrt(max(1.0, self._counts.max(initial=0), self._clean_counts.max(initial=0)))
        self._paint_bars(painter, plot, peak)
        self._paint_clean_outline(painter, plot, peak)
        self._paint_axis(painter, plot)
        if self._calibrated != self._threshold:
            self._paint_line(painter, plot, self._calibrated, Qt.PenStyle.DashLine,
                             "calibrated", below=True)
        self._paint_line(painter, plot, self._threshold, Qt.PenStyle.SolidLine, "threshold",
                         below=False)
        painter.end()

    def _plot_rect(self) -> QRectF:
        return QRectF(self._left, _TOP_MARGIN, self.width() - self._left - self._right,
                      self.height() - _TOP_MARGIN - _AXIS_HEIGHT)

    def _x(self, plot: QRectF, value: float) -> float:
        return plot.left() + self._scale.position(value) * plot.width()

    def _paint_bars(self, painter: QPainter, plot: QRectF, peak: float) -> None:
        edges = self._scale.bin_edges()
        painter.setPen(Qt.PenStyle.NoPen)
        for index, count in enumerate(self._counts):
            if count == 0:
                continue
            left, right = self._x(plot, edges[index]), self._x(plot, edges[index + 1])
            height = math.sqrt(count) / peak * plot.height()
            centre = math.sqrt(edges[index] * edges[index + 1])
            painter.setBrush(FLAG_COLOUR if centre > self._threshold else _KEPT_COLOUR)
            painter.drawRect(QRectF(left + 0.5, plot.bottom() - height,
                                    max(1.0, right - left - 1.0), height))

    def _paint_clean_outline(self, painter: QPainter, plot: QRectF, peak: float) -> None:
        edges = self._scale.bin_edges()
        path = QPainterPath(QPointF(plot.left(), plot.bottom()))
        for index, count in enumerate(self._clean_counts):
            top = plot.bottom() - math.sqrt(count) / peak * plot.height()
            path.lineTo(self._x(plot, edges[index]), top)
            path.lineTo(self._x(plot, edges[index + 1]), top)
        path.lineTo(plot.right(), plot.bottom())
        painter.setPen(QPen(_CLEAN_COLOUR, 1.5))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)

    def _paint_axis(self, painter: QPainter, plot: QRectF) -> None:
        text_colour = self.palette().color(QPalette.ColorRole.PlaceholderText)
        metrics = QFontMetrics(self.font())
        painter.setPen(QPen(text_colour, 1))
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        paint_ticks(painter, plot, self._scale, metrics, plot.bottom() + 3 + metrics.ascent(),
                    self.width())
        self._paint_legend(painter, plot, metrics)

    def _paint_legend(self, painter: QPainter, plot: QRectF, metrics: QFontMetrics) -> None:
        x = plot.left() + 2
        middle = _TOP_MARGIN / 2
        entries = ((_KEPT_COLOUR, "this folder"), (FLAG_COLOUR, "flagged"),
                   (_CLEAN_COLOUR, "clean calibration images"))
        for index, (colour, text) in enumerate(entries):
            if index < 2:
                painter.fillRect(QRectF(x, middle - 4, 8, 8), colour)
            else:
                painter.setPen(QPen(colour, 1.5))
                painter.drawLine(QPointF(x, middle), QPointF(x + 10, middle))
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(QPointF(x + 13, middle + metrics.ascent() / 2 - 1), text)
            x += 13 + metrics.horizontalAdvance(text) + 14

    def _paint_line(self, painter: QPainter, plot: QRectF, value: float,
                    style: Qt.PenStyle, label: str, below: bool) -> None:
        if not math.isfinite(value) or value <= 0:
            return
        x = self._x(plot, value)
        colour = self.palette().color(QPalette.ColorRole.WindowText)
        painter.setPen(QPen(colour, 2 if style is Qt.PenStyle.SolidLine else 1, style))
        painter.drawLine(QPointF(x, plot.top() - (0 if below else 4)), QPointF(x, plot.bottom()))
        text = label if below else f"{label} {format_threshold(value)}"
        metrics = QFontMetrics(self.font())
        width = metrics.horizontalAdvance(text)
        left = x + 4 if x + 4 + width < self.width() else x - 4 - width
        top = plot.top() + metrics.ascent() + (metrics.height() if below else 0)
        painter.drawText(QPointF(left, top), text)

    # Mouse

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._request_at(event.position().x())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._request_at(event.position().x())

    def _request_at(self, x: float) -> None:
        plot = self._plot_rect()
        if plot.width() <= 0:
            return
        self.threshold_requested.emit(self._scale.value((x - plot.left()) / plot.width()))
