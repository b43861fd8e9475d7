"""Virtualised thumbnail grid of the gallery."""

from __future__ import annotations

import logging
import math

from PySide6.QtCore import Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QAbstractItemView, QListView, QWidget

from gui.tile_delegate import THUMBNAIL_SIDE, TileDelegate

logger = logging.getLogger(__name__)

_SPACING = 8

# Range of the thumbnail size slider, in logical pixels. Below 112 px the
# REJECTED BY YOU badge no longer fits at the default font size and is elided.
# At 192 px the JPEG thumbnails of a 20 000-image folder take about 270 MB, an
# estimate scaled from about 6 KB per thumbnail at 128 px.
MIN_THUMBNAIL_SIDE = 112
MAX_THUMBNAIL_SIDE = 192


class GalleryView(QListView):
    """Grid of gallery tiles, of which only the visible ones are painted and decoded.

    Shows a placeholder text in place of the grid while its model is empty.
    Extended selection: Shift and Ctrl with clicks or arrow keys select several tiles.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._placeholder_text = ""
        self._delegate = TileDelegate(self)
        self.setItemDelegate(self._delegate)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setWrapping(True)
        self.setSpacing(_SPACING // 2)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setMouseTracking(True)
        self.setAccessibleName("Gallery")

    @property
    def thumbnail_side(self) -> int:
        """Side of the square that thumbnails are fitted into, in logical pixels."""
        return self._delegate.thumbnail_side

    @property
    def thumbnail_pixels(self) -> int:
        """Side to decode thumbnails at, in device pixels, for the current tile size.

        Never below the default size, so tiles enlarged later stay sharp up to it.
        """
        side = max(THUMBNAIL_SIDE, self.thumbnail_side)
        return math.ceil(side * self.devicePixelRatioF())

    def set_thumbnail_side(self, side: int) -> None:
        """Fit thumbnails into `side` × `side` logical pixels, clamped to the slider range."""
        side = min(MAX_THUMBNAIL_SIDE, max(MIN_THUMBNAIL_SIDE, side))
        if side == self._delegate.thumbnail_side:
            return
        self._delegate.set_thumbnail_side(side)
        # Uniform item sizes are cached by the view until the next layout.
        self.doItemsLayout()
        current = self.currentIndex()
        if current.isValid():
            self.scrollTo(current)

    def placeholder_text(self) -> str:
        """Return the text shown while the model has no rows."""
        return self._placeholder_text

    def set_placeholder_text(self, text: str) -> None:
        """Set the text shown while the model has no rows."""
        self._placeholder_text = text
        self.viewport().update()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        model = self.model()
        if (model is not None and model.rowCount() > 0) or not self._placeholder_text:
            return
        painter = QPainter(self.viewport())
        painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(self.viewport().rect().adjusted(24, 24, -24, -24),
                         Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                         self._placeholder_text)
        painter.end()
