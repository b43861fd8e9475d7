"""Tests of the window settings: recent folders, thumbnail size and layout across restarts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot
from window_helpers import open_and_wait

from gui.main_window import MainWindow
from gui.settings import MAX_RECENT_FOLDERS, MAX_RECENT_MODELS, WindowSettings
from gui.tile_delegate import THUMBNAIL_SIDE


def test_settings_without_store_keep_nothing() -> None:
    settings = WindowSettings(None)
    settings.add_recent_folder(Path("/data/a"))
    assert settings.recent_folders() == []
    assert settings.last_folder() is None
    assert settings.thumbnail_side() == THUMBNAIL_SIDE
    assert settings.geometry() is None
    settings.add_recent_model(Path("/models/a.safetensors"))
    assert settings.recent_models() == []
    assert settings.last_model() is None
    settings.set_last_export_folder(Path("/exports/a"))
    assert settings.last_export_folder() is None


def test_recent_folders_newest_first(settings: QSettings) -> None:
    window_settings = WindowSettings(settings)
    for name in ("a", "b", "a", "c"):
        window_settings.add_recent_folder(Path("/data") / name)
    assert window_settings.recent_folders() == ["/data/c", "/data/a", "/data/b"]
    assert window_settings.last_folder() == "/data/c"
    window_settings.remove_recent_folder("/data/a")
    assert window_settings.recent_folders() == ["/data/c", "/data/b"]


def test_recent_folders_limited(settings: QSettings) -> None:
    window_settings = WindowSettings(settings)
    for number in range(MAX_RECENT_FOLDERS + 3):
        window_settings.add_recent_folder(Path(f"/data/{number}"))
    assert len(window_settings.recent_folders()) == MAX_RECENT_FOLDERS


def test_recent_models_newest_first(settings: QSettings) -> None:
    window_settings = WindowSettings(settings)
    for name in ("a", "b", "a"):
        window_settings.add_recent_model(Path(f"/models/{name}.safetensors"))
    assert window_settings.recent_models() == ["/models/a.safetensors", "/models/b.safetensors"]
    assert window_settings.last_model() == "/models/a.safetensors"
    window_settings.remove_recent_model("/models/a.safetensors")
    assert window_settings.recent_models() == ["/models/b.safetensors"]
    # The last model stays the one to start with, even when it leaves the menu.
    assert window_settings.last_model() == "/models/a.safetensors"


def test_recent_models_limited_and_apart(settings: QSettings) -> None:
    window_settings = WindowSettings(settings)
    window_settings.add_recent_folder(Path("/data/a"))
    for number in range(MAX_RECENT_MODELS + 3):
        window_settings.add_recent_model(Path(f"/models/{number}.safetensors"))
    assert len(window_settings.recent_models()) == MAX_RECENT_MODELS
    assert window_settings.recent_folders() == ["/data/a"]


@pytest.mark.parametrize("stored", ["not a number", ""])  # a damaged settings file
def test_invalid_thumbnail_side_ignored(settings: QSettings, stored: str) -> None:
    settings.setValue("gallery/thumbnail_side", stored)
    assert WindowSettings(settings).thumbnail_side() == THUMBNAIL_SIDE


def test_window_restores_size_and_layout(
    qtbot: QtBot, make_window: Callable[[], MainWindow], settings: QSettings
) -> None:
    first = make_window()
    first.size_slider.setValue(160)
    first.ui.detail_dock.hide()
    first.close()
    assert settings.value("window/geometry") is not None

    second = make_window()
    assert second.gallery_view.thumbnail_side == 160
    assert second.size_slider.value() == 160
    assert not second.ui.detail_dock.isVisible()
    assert second.ui.threshold_dock.isVisible()


def test_open_recent_menu_reopens_folder(
    qtbot: QtBot, make_window: Callable[[], MainWindow], mixed_folder: Path
) -> None:
    first = make_window()
    open_and_wait(qtbot, first, mixed_folder)
    first.close()

    second = make_window()
    recent = [action for action in second.window_actions.recent_menu.actions() if action.data()]
    assert [action.data() for action in recent] == [str(mixed_folder.resolve())]
    assert second.window_actions.recent_menu.isEnabled()
    with qtbot.waitSignal(second.scoring_finished, timeout=120_000):
        recent[0].trigger()
    assert second.folder == mixed_folder.resolve()


def test_clear_recent_menu(qtbot: QtBot, window: MainWindow, mixed_folder: Path) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    clear = next(action for action in window.window_actions.recent_menu.actions()
                 if action.text() == "&Clear Menu")
    clear.trigger()
    assert not [action for action in window.window_actions.recent_menu.actions() if action.data()]
    assert not window.window_actions.recent_menu.isEnabled()


def test_missing_recent_folder_removed(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, settings: QSettings
) -> None:
    missing = tmp_path / "gone"
    WindowSettings(settings).add_recent_folder(missing)
    window.window_actions.set_recent_folders([str(missing)])
    window.window_actions.recent_menu.actions()[0].trigger()
    assert WindowSettings(settings).recent_folders() == []
    assert window.folder is None
