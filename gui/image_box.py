"""A widget that shows one image fitted into its rectangle, or a short text in its place."""

from __future__ import annotations

import logging

from PySide6.QtCore import QCoreApplication, QRect, QSize, Qt, QThread
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

logger = logging.getLogger(__name__)

# A neutral dark ground, as image viewers use, so margins never read as image content.
_GROUND = QColor("#2b2b2b")
_TEXT = QColor("#d8d8d8")


class ImageBox(QWidget):
    """Paints a pixmap scaled to fit with its aspect ratio kept, centred on a dark grey ground.

    Small model images (28 × 28) are enlarged without smoothing, so each pixel
    stays a visible square.
    """

    def __init__(self, minimum_side: int, accessible_name: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixmap = QPixmap()
        self._smooth = True
        self._text = ""
        self.setMinimumSize(minimum_side, minimum_side)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName(accessible_name)

    @property
    def has_image(self) -> bool:
        return not self._pixmap.isNull()

    @property
    def text(self) -> str:
        """The text shown in place of an image."""
        return self._text

    def pixmap(self) -> QPixmap:
        return self._pixmap

    def sizeHint(self) -> QSize:
        return self.minimumSize()

    def set_image(self, image: QImage | None, smooth: bool = True) -> None:
        """Show `image`, converted to a pixmap here in the GUI thread. None clears the box."""
        # QPixmap is not safe to create in another thread; workers hand over QImage.
        assert QThread.currentThread() is QCoreApplication.instance().thread()
        self._pixmap = QPixmap() if image is None else QPixmap.fromImage(image)
        self._smooth = smooth
        self._text = ""
        self.update()

    def set_pixmap(self, pixmap: QPixmap, smooth: bool = True) -> None:
        self._pixmap = pixmap
        self._smooth = smooth
        self._text = ""
        self.update()

    def set_text(self, text: str) -> None:
        """Clear the image and show `text` in its place."""
        self._pixmap = QPixmap()
        self._text = text
        self.update()

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        area = self.rect()
        painter.fillRect(area, _GROUND)
        if self._pixmap.isNull():
            painter.setPen(_TEXT)
            painter.drawText(area.adjusted(6, 6, -6, -6),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._text)
            painter.end()
            return
        ratio = self._pixmap.devicePixelRatio()
        width, height = self._pixmap.width() / ratio, self._pixmap.height() / ratio
        scale = min(area.width() / width, area.height() / height)
        target = QRect(0, 0, max(1, round(width * scale)), max(1, round(height * scale)))
        target.moveCenter(area.center())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._smooth)
        painter.drawPixmap(target, self._pixmap)
        painter.end()
