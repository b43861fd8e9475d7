"""The delegate that paints one gallery tile: thumbnail, badges, name and score."""

from __future__ import annotations

import logging
import math

from PySide6.QtCore import (
    QCoreApplication,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    QThread,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QPainter,
    QPalette,
    QPen,
    QPixmap,
    QPixmapCache,
)
from PySide6.QtWidgets import QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from engine.decisions import Decision
from gui.gallery_items import GalleryItem, Tile, placeholder_text
from gui.gallery_roles import GalleryRole
from gui.score_format import format_score
from gui.thumbnails import thumbnail_pixmap

logger = logging.getLogger(__name__)

ModelIndex = QModelIndex | QPersistentModelIndex

# Default side of the square that thumbnails are fitted into, in logical pixels.
THUMBNAIL_SIDE = 128
_PADDING = 6

# Red marks the model's flag and its rejections. The curator's own decisions get
# colours of their own, so a tile shows both opinions when they differ.
FLAG_COLOUR = QColor("#c62828")
KEPT_BY_YOU_COLOUR = QColor("#2e7d32")
REJECTED_BY_YOU_COLOUR = QColor("#6a1b9a")
_FLAG_BADGE = "FLAGGED"
_OVERRIDE_BADGES = {
    Decision.KEEP: ("KEPT BY YOU", KEPT_BY_YOU_COLOUR),
    Decision.REJECT: ("REJECTED BY YOU", REJECTED_BY_YOU_COLOUR),
}
_PLACEHOLDER_BACKGROUND = QColor("#8a8a8a")
_PLACEHOLDER_TEXT = QColor("#f5f5f5")


def frame_colour(tile: Tile) -> QColor | None:
    """Return the colour of the tile's frame: who rejected it or who kept it, if anyone."""
    if tile.override is not None:
        return _OVERRIDE_BADGES[tile.override][1]
    return FLAG_COLOUR if tile.decision is Decision.REJECT else None


class TileDelegate(QStyledItemDelegate):
    """Paints a tile: thumbnail, file name, score and badges.

    A FLAGGED badge at the top marks the model's flag. A KEPT BY YOU or REJECTED
    BY YOU badge at the bottom marks the curator's override. The frame has the
    colour of the final decision's source. A file without a score (unreadable,
    damaged, not an image…) gets a grey placeholder with its status text.
    """

    def __init__(self, view: QListView) -> None:
        super().__init__(view)
        self._view = view
        self._side = THUMBNAIL_SIDE
        self._badge_font = QFont()
        self._badge_font.setBold(True)
        self._badge_font.setPointSizeF(max(6.5, self._badge_font.pointSizeF() * 0.75))

    @property
    def thumbnail_side(self) -> int:
        """Side of the square that thumbnails are fitted into, in logical pixels."""
        return self._side

    def set_thumbnail_side(self, side: int) -> None:
        self._side = side

    def sizeHint(self, option: QStyleOptionViewItem, index: ModelIndex) -> QSize:
        line_height = QFontMetrics(option.font).height()
        return QSize(self._side + 2 * _PADDING, self._side + 2 * line_height + 3 * _PADDING)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        # One role fetches everything, which saves many round trips through Qt per tile.
        tile: Tile = index.data(GalleryRole.TILE)
        painter.drawPixmap(option.rect.topLeft(), self._tile_pixmap(option, tile))
        if option.state & QStyle.StateFlag.State_Selected:
            self._paint_selection(painter, option)

    def _tile_pixmap(self, option: QStyleOptionViewItem, tile: Tile) -> QPixmap:
        """Return the tile as painted when not selected, from QPixmapCache if there.

        Painting a tile takes about twenty Qt calls from Python, and new rows move
        the visible tiles on every batch of a scan, so each tile is painted once.
        """
        ratio = self._view.devicePixelRatioF()
        size = option.rect.size()
        key = (f"tile:{tile.item.thumbnail_key}:{tile.flagged}:{tile.override}:"
               f"{tile.decision}:{size.width()}x{size.height()}@{ratio:g}:"
               f"{option.palette.cacheKey()}")
        cached: QPixmap | None = QPixmapCache.find(key)
        if cached is not None:
            return cached

        assert QThread.currentThread() is QCoreApplication.instance().thread()
        pixmap = QPixmap(math.ceil(size.width() * ratio), math.ceil(size.height() * ratio))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.GlobalColor.transparent)
        tile_painter = QPainter(pixmap)
        self._render_tile(tile_painter, option, QRect(QPoint(0, 0), size), tile)
        tile_painter.end()
        QPixmapCache.insert(key, pixmap)
        return pixmap

    def _render_tile(
        self, painter: QPainter, option: QStyleOptionViewItem, bounds: QRect, tile: Tile
    ) -> None:
        item = tile.item
        rect = bounds.adjusted(1, 1, -1, -1)
        image_rect = QRect(rect.left() + (rect.width() - self._side) // 2,
                           rect.top() + _PADDING, self._side, self._side)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self._paint_background(painter, option, rect, frame_colour(tile))
        if item.thumbnail:
            self._paint_thumbnail(painter, image_rect, item)
        else:
            self._paint_placeholder(painter, image_rect, placeholder_text(item))
        if tile.flagged:
            self._paint_badge(painter, image_rect, _FLAG_BADGE, FLAG_COLOUR, top=True)
        if tile.override is not None:
            text, colour = _OVERRIDE_BADGES[tile.override]
            self._paint_badge(painter, image_rect, text, colour, top=False)
        text_rect = QRect(rect.left() + _PADDING, image_rect.bottom() + _PADDING,
                          rect.width() - 2 * _PADDING, rect.bottom() - image_rect.bottom())
        self._paint_labels(painter, option, text_rect, item, tile.flagged is True)

    def _paint_background(
        self, painter: QPainter, option: QStyleOptionViewItem, rect: QRect,
        frame: QColor | None,
    ) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(option.palette.color(QPalette.ColorRole.AlternateBase))
        painter.drawRoundedRect(rect, 4, 4)
        if frame is not None:
            painter.setPen(QPen(frame, 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect.adjusted(1, 1, -1, -1), 4, 4)

    def _paint_selection(self, painter: QPainter, option: QStyleOptionViewItem) -> None:
        highlight = option.palette.color(QPalette.ColorRole.Highlight)
        tint = QColor(highlight)
        tint.setAlpha(35)
        rect = option.rect.adjusted(1, 1, -1, -1)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(highlight, 3))
        painter.setBrush(tint)
        painter.drawRoundedRect(rect.adjusted(1, 1, -1, -1), 4, 4)
        painter.restore()

    def _paint_thumbnail(self, painter: QPainter, target: QRect, item: GalleryItem) -> None:
        assert item.thumbnail is not None
        ratio = self._view.devicePixelRatioF()
        pixmap = thumbnail_pixmap(item.thumbnail_key, item.thumbnail, ratio)
        if pixmap.isNull():
            painter.fillRect(target, _PLACEHOLDER_BACKGROUND)
            return
        # Small images (such as 28 px MedMNIST files) are scaled up to fill the tile.
        scale = min(target.width() / pixmap.width(), target.height() / pixmap.height())
        width = max(1, round(pixmap.width() * scale))
        height = max(1, round(pixmap.height() * scale))
        fitted = QRect(0, 0, width, height)
        fitted.moveCenter(target.center())
        painter.drawPixmap(fitted, pixmap)

    def _paint_placeholder(self, painter: QPainter, target: QRect, text: str) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(_PLACEHOLDER_BACKGROUND)
        painter.drawRect(target)
        painter.setPen(_PLACEHOLDER_TEXT)
        painter.drawText(target.adjusted(8, 8, -8, -8),
                         Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)

    def _paint_badge(self, painter: QPainter, image_rect: QRect, text: str, colour: QColor,
                     top: bool) -> None:
        metrics = QFontMetrics(self._badge_font)
        width = min(metrics.horizontalAdvance(text) + 10, image_rect.width() - 8)
        badge = QRect(0, 0, width, metrics.height() + 4)
        if top:
            badge.moveTopLeft(image_rect.topLeft() + QPoint(4, 4))
        else:
            badge.moveBottomLeft(image_rect.bottomLeft() + QPoint(4, -4))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(badge, 3, 3)
        painter.setFont(self._badge_font)
        painter.setPen(QColor("white"))
        shown = metrics.elidedText(text, Qt.TextElideMode.ElideRight, badge.width() - 6)
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, shown)

    def _paint_labels(
        self, painter: QPainter, option: QStyleOptionViewItem, rect: QRect,
        item: GalleryItem, flagged: bool,
    ) -> None:
        metrics = QFontMetrics(option.font)
        line_height = metrics.height()
        name = metrics.elidedText(item.record.path.name, Qt.TextElideMode.ElideMiddle,
                                  rect.width())
        painter.setFont(option.font)
        painter.setPen(option.palette.color(QPalette.ColorRole.Text))
        # A fallback font for other scripts, such as CJK, can make the line taller
        # than this font's: centred and unclipped, it stays readable.
        painter.drawText(QRect(rect.left(), rect.top(), rect.width(), line_height),
                         Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextDontClip, name)

        score = item.record.score
        score_text = "not scored" if score is None else format_score(score)
        score_font = QFont(option.font)
        score_font.setBold(flagged)
        painter.setFont(score_font)
        if flagged:
            painter.setPen(FLAG_COLOUR)
        else:
            painter.setPen(option.palette.color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(QRect(rect.left(), rect.top() + line_height, rect.width(), line_height),
                         Qt.AlignmentFlag.AlignHCenter, score_text)
