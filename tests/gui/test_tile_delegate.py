"""Tests of tile painting: the model's flag and the curator's override badges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage
from pytestqt.qtbot import QtBot
from window_helpers import gallery_paths, open_and_wait, select_paths

from engine.decisions import Decision
from gui.gallery_proxy import FilterMode
from gui.main_window import MainWindow
from gui.tile_delegate import FLAG_COLOUR, KEPT_BY_YOU_COLOUR, REJECTED_BY_YOU_COLOUR


def count_colour(image: QImage, colour: QColor) -> int:
    """Count the pixels of `image` that have exactly the RGB of `colour`."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    pixels = np.frombuffer(rgb.constBits(), np.uint8).reshape(rgb.height(), rgb.bytesPerLine())
    pixels = pixels[:, : rgb.width() * 3].reshape(rgb.height(), rgb.width(), 3)
    return int(np.all(pixels == (colour.red(), colour.green(), colour.blue()), axis=2).sum())


@pytest.fixture
def decided_window(qtbot: QtBot, window: MainWindow, mixed_folder: Path) -> MainWindow:
    """The scored mixed folder with one flagged file kept and one retina file rejected."""
    open_and_wait(qtbot, window, mixed_folder)
    window.window_actions.advance.setChecked(False)
    paths = gallery_paths(window)
    select_paths(window, [paths[0]])
    window.controller.decide(Decision.KEEP)
    select_paths(window, ["retina_0001.png"])
    window.controller.decide(Decision.REJECT)
    window.gallery_view.selectionModel().clearSelection()
    window.filter_combo.setCurrentText(FilterMode.OVERRIDDEN.value)
    return window


def test_override_badges_painted(decided_window: MainWindow) -> None:
    image = decided_window.gallery_view.grab().toImage()
    # Badge and frame of each overridden tile, each well over 300 pixels.
    assert count_colour(image, KEPT_BY_YOU_COLOUR) > 300
    assert count_colour(image, REJECTED_BY_YOU_COLOUR) > 300


def test_model_flag_stays_visible_when_kept(decided_window: MainWindow) -> None:
    decided_window.gallery_view.selectionModel().clearSelection()
    select_paths(decided_window, ["retina_0001.png"])
    decided_window.controller.decide(None)
    image = decided_window.gallery_view.grab().toImage()
    # Only the kept flagged tile is left: its FLAGGED badge and score stay red.
    assert decided_window.proxy_model.rowCount() == 1
    assert count_colour(image, FLAG_COLOUR) > 200
    assert count_colour(image, REJECTED_BY_YOU_COLOUR) == 0
