"""Tests of the thumbnail grid, its tile painting and the thumbnail helpers."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import PySide6
import pytest
from PySide6.QtGui import QColor, QImage, QPixmapCache
from pytestqt.qtbot import QtBot

from gui.gallery_proxy import FilterMode
from gui.gallery_roles import GalleryRole
from gui.gallery_view import MAX_THUMBNAIL_SIDE, MIN_THUMBNAIL_SIDE, GalleryView
from gui.main_window import MainWindow
from gui.thumbnails import encode_thumbnail, thumbnail_pixmap
from gui.tile_delegate import FLAG_COLOUR, THUMBNAIL_SIDE

SCORING_TIMEOUT_MS = 120_000
PLACEHOLDER_GREY = QColor("#8a8a8a")


def count_colour(image: QImage, colour: QColor) -> int:
    """Count the pixels of `image` that have exactly the RGB of `colour`."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    pixels = np.frombuffer(rgb.constBits(), np.uint8).reshape(rgb.height(), rgb.bytesPerLine())
    pixels = pixels[:, : rgb.width() * 3].reshape(rgb.height(), rgb.width(), 3)
    return int(np.all(pixels == (colour.red(), colour.green(), colour.blue()), axis=2).sum())


@pytest.fixture
def scored_window(qtbot: QtBot, window: MainWindow, mixed_folder: Path) -> MainWindow:
    with qtbot.waitSignal(window.scoring_finished, timeout=SCORING_TIMEOUT_MS):
        window.open_folder(mixed_folder)
    return window


@pytest.fixture
def view(qtbot: QtBot) -> GalleryView:
    gallery_view = GalleryView()
    qtbot.addWidget(gallery_view)
    return gallery_view


def test_view_initial_state(view: GalleryView) -> None:
    assert view.model() is None
    assert view.uniformItemSizes()
    assert view.viewMode() is GalleryView.ViewMode.IconMode
    assert view.selectionMode() is GalleryView.SelectionMode.ExtendedSelection
    assert view.thumbnail_side == THUMBNAIL_SIDE
    assert view.thumbnail_pixels == round(THUMBNAIL_SIDE * view.devicePixelRatioF())


@pytest.mark.parametrize(
    ("requested", "side"),
    [(160, 160), (10, MIN_THUMBNAIL_SIDE), (1000, MAX_THUMBNAIL_SIDE)],  # in range, clamped
)
def test_thumbnail_side_resizes_tiles(scored_window: MainWindow, requested: int,
                                      side: int) -> None:
    view = scored_window.gallery_view
    first = scored_window.proxy_model.index(0, 0)
    before = view.visualRect(first).width()
    view.set_thumbnail_side(requested)
    assert view.thumbnail_side == side
    assert view.visualRect(first).width() - before == side - THUMBNAIL_SIDE
    # Thumbnails are never decoded below the default size, so enlarged tiles stay sharp.
    assert view.thumbnail_pixels >= round(THUMBNAIL_SIDE * view.devicePixelRatioF())


def test_flagged_tiles_show_red_badge(scored_window: MainWindow) -> None:
    scored_window.filter_combo.setCurrentText(FilterMode.FLAGGED.value)
    flagged_image = scored_window.gallery_view.grab().toImage()
    scored_window.filter_combo.setCurrentText(FilterMode.KEPT.value)
    kept_image = scored_window.gallery_view.grab().toImage()

    # Badge and frame of six flagged tiles, each well over 500 pixels.
    assert count_colour(flagged_image, FLAG_COLOUR) > 6 * 500
    assert count_colour(kept_image, FLAG_COLOUR) == 0


def test_unreadable_tile_shows_placeholder(scored_window: MainWindow) -> None:
    scored_window.filter_combo.setCurrentText(FilterMode.NOT_SCORED.value)
    image = scored_window.gallery_view.grab().toImage()
    assert count_colour(image, PLACEHOLDER_GREY) > THUMBNAIL_SIDE * THUMBNAIL_SIDE // 2


def test_painted_tiles_cache_pixmaps(scored_window: MainWindow) -> None:
    view = scored_window.gallery_view
    view.grab()
    first = scored_window.proxy_model.index(0, 0)
    key = f"{first.data(GalleryRole.THUMBNAIL_KEY)}@{view.devicePixelRatioF():g}"
    assert QPixmapCache.find(key) is not None


def test_thumbnail_round_trip(qtbot: QtBot) -> None:
    array = np.zeros((40, 60, 3), np.uint8)
    array[:, :30] = (200, 30, 30)
    encoded = encode_thumbnail(array)
    pixmap = thumbnail_pixmap("test:round-trip", encoded, 2.0)
    assert pixmap.width() == 60
    assert pixmap.height() == 40
    assert pixmap.devicePixelRatio() == 2.0
    left = pixmap.toImage().pixelColor(10, 20)
    assert abs(left.red() - 200) < 12
    assert abs(left.green() - 30) < 12


def test_encode_thumbnail_rejects_grey_array() -> None:
    with pytest.raises(ValueError, match=r"\(h, w, 3\) uint8"):
        encode_thumbnail(np.zeros((8, 8), np.uint8))


def test_pixmap_outside_gui_thread_asserts(qtbot: QtBot) -> None:
    encoded = encode_thumbnail(np.zeros((8, 8, 3), np.uint8))
    errors: list[BaseException] = []

    def make_pixmap() -> None:
        try:
            thumbnail_pixmap("test:thread", encoded, 1.0)
        except AssertionError as error:
            errors.append(error)

    thread = threading.Thread(target=make_pixmap)
    thread.start()
    thread.join(timeout=10)
    assert len(errors) == 1


def test_painting_keeps_none_references(scored_window: MainWindow) -> None:
    # PySide6 6.12.0 drops a reference to None on every wrapped call that returns
    # None, such as QPainter.save(). On CPython 3.11, where None is not immortal, the
    # demo window aborted with "deallocating None" after about 80 repaints.
    view = scored_window.gallery_view
    before = sys.getrefcount(None)
    for _ in range(5):
        view.grab()
    dropped = before - sys.getrefcount(None)
    assert dropped < 100, (
        f"painting the gallery 5 times dropped {dropped} references to None; "
        f"PySide6 {PySide6.__version__} on Python {sys.version.split()[0]} has a "
        "reference-count bug that aborts the app. Install another PySide6 release "
        "(6.11.3 does not have it) or use Python 3.12 or later."
    )
