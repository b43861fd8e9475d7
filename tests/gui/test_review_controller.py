"""Tests of reviewing by keyboard: P, X and U decisions, advancing and multi-selection."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from window_helpers import current_path, gallery_paths, open_and_wait, select_paths

from engine.decisions import Decision
from gui.dialogs import ShortcutDialog
from gui.gallery_proxy import FilterMode
from gui.gallery_roles import GalleryRole
from gui.main_window import MainWindow


@pytest.fixture
def review_window(qtbot: QtBot, window: MainWindow, mixed_folder: Path) -> MainWindow:
    """The window after scoring the mixed folder, active, with the gallery focused."""
    open_and_wait(qtbot, window, mixed_folder)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    window.gallery_view.setFocus()
    qtbot.waitUntil(window.gallery_view.hasFocus, timeout=5000)
    return window


def decision_of(window: MainWindow, relative_path: str) -> tuple[str | None, str]:
    """Return the (override, final decision) of a file in the gallery."""
    row = window.gallery_model.row_of(relative_path)
    assert row is not None, relative_path
    index = window.gallery_model.index(row)
    return index.data(GalleryRole.OVERRIDE), index.data(GalleryRole.DECISION)


def test_first_image_current_after_scoring(review_window: MainWindow) -> None:
    paths = gallery_paths(review_window)
    assert current_path(review_window) == paths[0]
    assert review_window.detail_pane.shown_path is not None
    assert review_window.detail_pane.shown_path.as_posix().endswith(paths[0])


def test_p_keeps_and_advances(qtbot: QtBot, review_window: MainWindow) -> None:
    paths = gallery_paths(review_window)
    select_paths(review_window, [paths[0]])
    assert decision_of(review_window, paths[0]) == (None, "reject")

    qtbot.keyClick(review_window.gallery_view, Qt.Key.Key_P)

    assert decision_of(review_window, paths[0]) == ("keep", "keep")
    assert current_path(review_window) == paths[1]
    assert review_window.controller.selected_paths() == [paths[1]]


def test_x_rejects_and_u_clears(qtbot: QtBot, review_window: MainWindow) -> None:
    paths = gallery_paths(review_window)
    retina = paths[-2]  # the lowest score of a readable file: kept by the model
    select_paths(review_window, [retina])
    qtbot.keyClick(review_window.gallery_view, Qt.Key.Key_X)
    assert decision_of(review_window, retina) == ("reject", "reject")

    select_paths(review_window, [retina])
    qtbot.keyClick(review_window.gallery_view, Qt.Key.Key_U)
    assert decision_of(review_window, retina) == (None, "keep")
    assert review_window.gallery_model.counts().overridden == 0


def test_decision_applies_to_selection(qtbot: QtBot, review_window: MainWindow) -> None:
    paths = gallery_paths(review_window)
    chosen = [paths[1], paths[3], paths[4]]
    select_paths(review_window, chosen)
    assert review_window.detail_pane.selection_label.text().startswith("3 images selected")

    qtbot.keyClick(review_window.gallery_view, Qt.Key.Key_P)

    for relative_path in chosen:
        assert decision_of(review_window, relative_path) == ("keep", "keep")
    assert decision_of(review_window, paths[2]) == (None, "reject")
    # The image after the last selected one becomes the only selected image.
    assert current_path(review_window) == paths[5]
    assert review_window.controller.selected_paths() == [paths[5]]


def test_shift_arrow_extends_selection(qtbot: QtBot, review_window: MainWindow) -> None:
    paths = gallery_paths(review_window)
    select_paths(review_window, [paths[0]])
    qtbot.keyClick(review_window.gallery_view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(review_window.gallery_view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert review_window.controller.selected_paths() == paths[:3]


def test_arrow_keys_navigate(qtbot: QtBot, review_window: MainWindow) -> None:
    paths = gallery_paths(review_window)
    select_paths(review_window, [paths[2]])
    qtbot.keyClick(review_window.gallery_view, Qt.Key.Key_Right)
    assert current_path(review_window) == paths[3]
    qtbot.keyClick(review_window.gallery_view, Qt.Key.Key_Left)
    qtbot.keyClick(review_window.gallery_view, Qt.Key.Key_Left)
    assert current_path(review_window) == paths[1]
    assert review_window.controller.selected_paths() == [paths[1]]


def test_advance_can_be_switched_off(qtbot: QtBot, review_window: MainWindow) -> None:
    paths = gallery_paths(review_window)
    review_window.window_actions.advance.setChecked(False)
    select_paths(review_window, [paths[0]])
    qtbot.keyClick(review_window.gallery_view, Qt.Key.Key_P)
    assert current_path(review_window) == paths[0]


def test_advance_past_hidden_tile(qtbot: QtBot, review_window: MainWindow) -> None:
    review_window.filter_combo.setCurrentText(FilterMode.REJECTED.value)
    paths = gallery_paths(review_window)
    select_paths(review_window, [paths[0]])
    qtbot.keyClick(review_window.gallery_view, Qt.Key.Key_P)
    # The kept image leaves the Rejected filter, and the next one takes its place.
    assert gallery_paths(review_window) == paths[1:]
    assert current_path(review_window) == paths[1]


def test_last_decision_stays_on_last_tile(qtbot: QtBot, review_window: MainWindow) -> None:
    paths = gallery_paths(review_window)
    select_paths(review_window, [paths[-1]])
    qtbot.keyClick(review_window.gallery_view, Qt.Key.Key_P)
    assert current_path(review_window) == paths[-1]


def test_override_survives_threshold_change(qtbot: QtBot, review_window: MainWindow) -> None:
    paths = gallery_paths(review_window)
    flagged, kept = paths[0], paths[-2]
    select_paths(review_window, [flagged])
    qtbot.keyClick(review_window.gallery_view, Qt.Key.Key_P)
    select_paths(review_window, [kept])
    qtbot.keyClick(review_window.gallery_view, Qt.Key.Key_X)

    for threshold in (1e-6, 1.0, review_window.model.threshold):
        review_window.gallery_model.set_threshold(threshold)
        assert decision_of(review_window, flagged) == ("keep", "keep"), threshold
        assert decision_of(review_window, kept) == ("reject", "reject"), threshold


def test_decisions_stored_in_review(qtbot: QtBot, review_window: MainWindow) -> None:
    paths = gallery_paths(review_window)
    select_paths(review_window, [paths[0]])
    qtbot.keyClick(review_window.gallery_view, Qt.Key.Key_P)
    session = review_window.session
    assert session is not None
    assert session.overrides() == {paths[0]: Decision.KEEP}


def test_review_menu_has_every_key(review_window: MainWindow) -> None:
    menu = next(action.menu() for action in review_window.menuBar().actions()
                if action.text() == "&Review")
    shortcuts = {action.shortcut().toString() for action in menu.actions()}
    assert {"P", "X", "U", "Right", "Left", "?"} <= shortcuts


def test_toolbar_has_review_actions(review_window: MainWindow) -> None:
    toolbar_actions = review_window.ui.toolbar.actions()
    actions = review_window.window_actions
    for action in (actions.keep, actions.reject, actions.clear_decision, actions.next_image,
                   actions.previous_image, actions.undo):
        assert action in toolbar_actions, action.text()


def test_question_mark_opens_shortcuts(qtbot: QtBot, review_window: MainWindow) -> None:
    with qtbot.waitSignal(review_window.window_actions.shortcuts.triggered, timeout=5000):
        qtbot.keyClick(review_window.gallery_view, Qt.Key.Key_Question)
    dialogs = [dialog for dialog in review_window.findChildren(ShortcutDialog)
               if dialog.isVisible()]
    assert len(dialogs) == 1
    keys = {key for key, _action in dialogs[0].rows()}
    assert {"P", "X", "U", "Right", "Left", "Ctrl+Z"} <= keys
