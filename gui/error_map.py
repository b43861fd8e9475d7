"""Colours for error maps on one fixed scale per model, and the legend that explains them."""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize
from PySide6.QtGui import QColor, QFontMetrics, QImage, QLinearGradient, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from engine.modelfile import ReferenceModel
from engine.signals import RECONSTRUCTION
from gui.score_format import format_score

logger = logging.getLogger(__name__)

# The top of the colour scale is this multiple of the reconstruction threshold.
# With the shipped model, 99.6 % of the per-pixel errors of the first 200 RetinaMNIST
# test images lie below it, and their 99th percentile is 2.0 × the threshold. About
# 6 % of the pixels of all images in the bundled demo folder lie above it.
FULL_SCALE_MULTIPLE = 3.0

# Anchors of the colour scale, from no error (black) to full scale (pale yellow),
# rising in lightness so the order reads the same in greyscale.
_ANCHORS = (
    (0.00, (0, 0, 0)),
    (0.25, (52, 20, 110)),
    (0.50, (165, 42, 110)),
    (0.75, (240, 118, 36)),
    (1.00, (252, 240, 165)),
)


def _lookup_table(size: int = 256) -> np.ndarray:
    positions = np.linspace(0.0, 1.0, size)
    stops = np.array([stop for stop, _ in _ANCHORS])
    colours = np.array([colour for _, colour in _ANCHORS], dtype=float)
    channels = [np.interp(positions, stops, colours[:, channel]) for channel in range(3)]
    return np.stack(channels, axis=1).round().astype(np.uint8)


COLOUR_TABLE = _lookup_table()


# Top of the colour scale for a model whose threshold and clean scores are all 0.
_FALLBACK_SCALE = 1e-3


def full_scale(model: ReferenceModel) -> float:
    """Return the per-pixel error shown in the top colour, the same for every image.

    The scale follows the reconstruction signal's calibrated threshold. A model
    file may store a threshold of 0, and then the largest clean error sets the
    scale instead.
    """
    calibration = model.signals[RECONSTRUCTION]
    for reference in (calibration.threshold, float(calibration.clean_scores.max(initial=0.0))):
        if reference > 0:
            return FULL_SCALE_MULTIPLE * reference
    return _FALLBACK_SCALE


def colourise(error_map: np.ndarray, scale: float) -> np.ndarray:
    """Map an (h, w) array of squared errors to (h, w, 3) uint8 colours.

    Errors are divided by `scale`, never by the image's own maximum, so equal
    colours mean equal errors across images. Errors above `scale` get the top colour.
    Raises ValueError unless `scale` is positive.
    """
    if not scale > 0:
        raise ValueError(f"the error map scale must be positive, got {scale}")
    levels = np.clip(error_map / scale, 0.0, 1.0) * (len(COLOUR_TABLE) - 1)
    return COLOUR_TABLE[levels.round().astype(np.intp)]


def rgb_image(pixels: np.ndarray) -> QImage:
    """Return a QImage that owns a copy of an (h, w, 3) uint8 RGB array. Safe in any thread."""
    array = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = array.shape[:2]
    image = QImage(array.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return image.copy()


class ErrorMapLegend(QWidget):
    """A colour bar from 0 to the model's full-scale error, with the threshold marked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._scale = 0.0
        self._threshold = 0.0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Squared error per pixel, averaged over the colour channels. One "
                        "scale for every image, so equal colours mean equal errors.")

    def set_model(self, model: ReferenceModel | None) -> None:
        self._scale = 0.0 if model is None else full_scale(model)
        self._threshold = 0.0 if model is None else model.signals[RECONSTRUCTION].threshold
        self.update()

    @property
    def full_scale(self) -> float:
        """Error at the top of the bar, 0 without a model."""
        return self._scale

    def sizeHint(self) -> QSize:
        return QSize(240, 2 * QFontMetrics(self.font()).height() + 16)

    def paintEvent(self, _event: object) -> None:
        if self._scale <= 0:
            return
        painter = QPainter(self)
        metrics = QFontMetrics(self.font())
        bar = QRectF(4, 2, self.width() - 8, 12)
        gradient = QLinearGradient(bar.topLeft(), bar.topRight())
        for stop, (red, green, blue) in _ANCHORS:
            gradient.setColorAt(stop, QColor(red, green, blue))
        painter.fillRect(bar, gradient)
        text = self.palette().color(QPalette.ColorRole.WindowText)
        painter.setPen(QPen(text, 1))
        painter.drawRect(bar)
        baseline = bar.bottom() + 3 + metrics.ascent()
        painter.drawText(QPointF(bar.left(), baseline), "0")
        top_label = f"≥ {format_score(self._scale)}"
        painter.drawText(QPointF(bar.right() - metrics.horizontalAdvance(top_label), baseline),
                         top_label)
        x = bar.left() + bar.width() * self._threshold / self._scale
        painter.drawLine(QPointF(x, bar.top() - 1), QPointF(x, bar.bottom() + 2))
        label = f"threshold {format_score(self._threshold)}"
        painter.drawText(QPointF(x - metrics.horizontalAdvance(label) / 2, baseline), label)
        caption = "Error map colour: squared error per pixel"
        painter.drawText(QPointF(bar.left(), baseline + metrics.height()), caption)
        painter.end()
