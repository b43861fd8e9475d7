"""Live plot of the training and validation loss per epoch on a logarithmic axis."""

from __future__ import annotations

import logging
import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from engine.training import EpochReport
from gui.histogram import LogScale

logger = logging.getLogger(__name__)

TRAIN_COLOUR = QColor("#1f6fb2")
VALIDATION_COLOUR = QColor("#e07b00")

# The value axis spans at least this factor, so a nearly flat curve stays flat
# instead of being stretched over the full height, and at least two 1-2-5 ticks
# (at most a factor 2.5 apart) always fall inside it.
_MIN_SPAN = 5.0
_PADDING = 1.15
# Markers are drawn on each epoch's point only while they stay apart.
_MAX_MARKED_EPOCHS = 40
_MAX_EPOCH_TICKS = 8


def loss_scale(losses: np.ndarray) -> LogScale:
    """Return a logarithmic scale over the positive finite `losses`, centred when narrow."""
    positive = losses[np.isfinite(losses) & (losses > 0)]
    if positive.size == 0:
        return LogScale(1e-3, 1e-1)
    low, high = float(positive.min()) / _PADDING, float(positive.max()) * _PADDING
    if high / low < _MIN_SPAN:
        centre = math.sqrt(low * high)
        low, high = centre / math.sqrt(_MIN_SPAN), centre * math.sqrt(_MIN_SPAN)
    return LogScale(low, high)


def epoch_ticks(epochs: int) -> list[int]:
    """Return the epochs labelled on an axis of `epochs` epochs: 1 and multiples of a 1-2-5 step."""
    step = 1
    while epochs / step > _MAX_EPOCH_TICKS:
        step = _next_step(step)
    if step == 1:
        return list(range(1, epochs + 1))
    return [1, *range(step, epochs + 1, step)]


def _next_step(step: int) -> int:
    """Return the 1-2-5 step after `step`: 1, 2, 5, 10, 20, 50, ..."""
    leading = int(str(step)[0])
    return step * 5 // 2 if leading == 2 else step * 2


class LossPlot(QWidget):
    """Mean squared error of the training and the held-out images after each epoch.

    The epoch axis spans the planned epochs from the start, so the curves grow from
    left to right as training runs. The value axis is logarithmic because the loss
    falls by decades during a run.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._reports: list[EpochReport] = []
        self._epochs = 1
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 180)
        self.setToolTip("Loss after each epoch: the mean squared error per pixel of the "
                        "training images and of the held-out images.")

    def sizeHint(self) -> QSize:
        return QSize(560, 260)

    @property
    def reports(self) -> list[EpochReport]:
        """The epochs plotted so far, first epoch first."""
        return list(self._reports)

    @property
    def epochs(self) -> int:
        """Length of the epoch axis."""
        return self._epochs

    def start(self, epochs: int) -> None:
        """Clear the curves and size the epoch axis for a run of `epochs` epochs."""
        self._reports = []
        self._epochs = max(1, epochs)
        self.update()

    def add_epoch(self, report: EpochReport) -> None:
        self._reports.append(report)
        self._epochs = max(self._epochs, report.epochs, report.epoch)
        self.update()

    def value_scale(self) -> LogScale:
        """Return the scale of the value axis for the epochs plotted so far."""
        losses = [loss for report in self._reports
                  for loss in (report.train_loss, report.validation_loss)]
        return loss_scale(np.array(losses, dtype=float))

    # Painting

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = QFontMetrics(self.font())
        scale = self.value_scale()
        plot = self._plot_rect(metrics, scale)
        painter.fillRect(plot, self.palette().color(QPalette.ColorRole.Base))
        self._paint_value_axis(painter, plot, metrics, scale)
        self._paint_epoch_axis(painter, plot, metrics)
        if self._reports:
            self._paint_series(painter, plot, scale, [r.train_loss for r in self._reports],
                               TRAIN_COLOUR)
            self._paint_series(painter, plot, scale, [r.validation_loss for r in self._reports],
                               VALIDATION_COLOUR)
        else:
            painter.setPen(self._text_colour())
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter,
                             "No epoch has finished yet.")
        self._paint_legend(painter, plot, metrics)
        painter.end()

    def _plot_rect(self, metrics: QFontMetrics, scale: LogScale) -> QRectF:
        label_width = max((metrics.horizontalAdvance(_tick_label(t)) for t in scale.ticks()),
                          default=0)
        left = metrics.height() + label_width + 12
        top = metrics.height() + 12
        bottom = 2 * metrics.height() + 8
        return QRectF(left, top, max(1, self.width() - left - 14),
                      max(1, self.height() - top - bottom))

    def _text_colour(self) -> QColor:
        return self.palette().color(QPalette.ColorRole.PlaceholderText)

    def _x(self, plot: QRectF, epoch: float) -> float:
        span = max(1, self._epochs - 1)
        return plot.left() + (epoch - 1) / span * plot.width()

    @staticmethod
    def _y(plot: QRectF, scale: LogScale, value: float) -> float:
        return plot.bottom() - scale.position(value) * plot.height()

    def _paint_value_axis(self, painter: QPainter, plot: QRectF, metrics: QFontMetrics,
                          scale: LogScale) -> None:
        grid = self.palette().color(QPalette.ColorRole.Mid)
        grid.setAlpha(90)
        last_top = math.inf
        for tick in scale.ticks():
            y = self._y(plot, scale, tick)
            painter.setPen(QPen(grid, 1, Qt.PenStyle.DotLine))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            label = _tick_label(tick)
            baseline = y + metrics.ascent() / 2 - 1
            if baseline < last_top - 4:
                painter.setPen(self._text_colour())
                painter.drawText(QPointF(plot.left() - 6 - metrics.horizontalAdvance(label),
                                         baseline), label)
                last_top = baseline - metrics.ascent()
        painter.setPen(QPen(self._text_colour(), 1))
        painter.drawLine(plot.bottomLeft(), plot.topLeft())
        # The axis title reads upwards along the left edge.
        painter.save()
        painter.translate(metrics.ascent(), plot.center().y())
        painter.rotate(-90)
        title = "mean squared error"
        painter.drawText(QPointF(-metrics.horizontalAdvance(title) / 2, 0), title)
        painter.restore()

    def _paint_epoch_axis(self, painter: QPainter, plot: QRectF, metrics: QFontMetrics) -> None:
        painter.setPen(QPen(self._text_colour(), 1))
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        baseline = plot.bottom() + 4 + metrics.ascent()
        last_right = -math.inf
        for epoch in epoch_ticks(self._epochs):
            x = self._x(plot, epoch)
            painter.drawLine(QPointF(x, plot.bottom()), QPointF(x, plot.bottom() + 3))
            label = str(epoch)
            width = metrics.horizontalAdvance(label)
            left = min(max(0.0, x - width / 2), self.width() - width)
            if left > last_right + 6:
                painter.drawText(QPointF(left, baseline), label)
                last_right = left + width
        title = "epoch"
        painter.drawText(QPointF(plot.center().x() - metrics.horizontalAdvance(title) / 2,
                                 baseline + metrics.height()), title)

    def _paint_series(self, painter: QPainter, plot: QRectF, scale: LogScale,
                      losses: list[float], colour: QColor) -> None:
        points = [QPointF(self._x(plot, epoch), self._y(plot, scale, loss))
                  for epoch, loss in enumerate(losses, start=1) if math.isfinite(loss)]
        if not points:
            return
        path = QPainterPath(points[0])
        for point in points[1:]:
            path.lineTo(point)
        painter.setPen(QPen(colour, 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)
        if len(points) == 1 or self._epochs <= _MAX_MARKED_EPOCHS:
            painter.setBrush(colour)
            for point in points:
                painter.drawEllipse(point, 2.5, 2.5)

    def _paint_legend(self, painter: QPainter, plot: QRectF, metrics: QFontMetrics) -> None:
        last = self._reports[-1] if self._reports else None
        entries = (
            (TRAIN_COLOUR, "training images", last.train_loss if last else None),
            (VALIDATION_COLOUR, "held-out images", last.validation_loss if last else None),
        )
        texts = [text if value is None else f"{text} {_tick_label(value, 3)}"
                 for _, text, value in entries]
        width = sum(22 + metrics.horizontalAdvance(text) + 16 for text in texts) - 16
        x = plot.right() - width
        middle = plot.top() - 6 - metrics.height() / 2
        for (colour, _, _), text in zip(entries, texts, strict=True):
            painter.setPen(QPen(colour, 2))
            painter.drawLine(QPointF(x, middle), QPointF(x + 16, middle))
            painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
            painter.drawText(QPointF(x + 22, middle + metrics.ascent() / 2 - 1), text)
            x += 22 + metrics.horizontalAdvance(text) + 16


def _tick_label(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}g}"
