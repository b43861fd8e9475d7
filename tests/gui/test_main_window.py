"""Tests of the main window on real images scored by the shipped model."""

from __future__ import annotations

import gc
import shutil
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QDialog, QMessageBox, QPushButton
from pytestqt.qtbot import QtBot
from window_helpers import (
    SCORING_TIMEOUT_MS,
    gallery_paths,
    open_and_wait,
    sha256_inventory,
)

import gui.file_commands
from engine.decisions import Decision
from engine.modelfile import ReferenceModel
from engine.quarantine import default_quarantine_dir
from gui.batch_worker import WorkerSignals
from gui.dialogs import ConfirmDialog, ReportDialog
from gui.gallery_items import GalleryCounts
from gui.gallery_proxy import FilterMode, SortKey
from gui.gallery_roles import GalleryRole
from gui.main_window import APP_NAME, MainWindow


@pytest.fixture
def scored_window(qtbot: QtBot, window: MainWindow, mixed_folder: Path) -> MainWindow:
    """The window after scoring the mixed folder."""
    open_and_wait(qtbot, window, mixed_folder)
    return window


def test_window_initial_state(window: MainWindow, default_model: ReferenceModel) -> None:
    assert window.windowTitle() == APP_NAME
    assert window.folder is None
    assert window.proxy_model.rowCount() == 0
    assert window.window_actions.open_folder.isEnabled()
    assert not window.window_actions.move_rejects.isEnabled()
    assert not window.window_actions.export.isEnabled()
    assert not window.window_actions.undo.isEnabled()
    assert not window.window_actions.keep.isEnabled()
    assert not window.is_busy()
    assert not window.status_bar.is_progress_visible()
    assert window.status_bar.counts_text == (
        "0 images · 0 keep · 0 reject · 0 flagged · 0 not scored · 0 decided by you"
    )
    assert window.status_bar.model_text.startswith(
        f"Model: {default_model.name} · calibrated threshold "
    )
    assert window.filter_combo.currentText() == FilterMode.ALL.value
    assert window.sort_combo.currentText() == SortKey.SCORE.value


def test_reopening_during_scans(qtbot: QtBot, window: MainWindow, large_folder: Path) -> None:
    # Each open detaches the running scan while signals it emitted still wait in
    # the queue. When the detached worker was freed before they were delivered,
    # the window read a freed object, and the process crashed in each of three
    # runs of this test.
    for number in range(60):
        window.open_folder(large_folder)
        gc.collect()
        qtbot.wait(15 + number * 7 % 40)
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=SCORING_TIMEOUT_MS)

    assert window.gallery_model.rowCount() == len(list(large_folder.glob("*.png")))
    # Every scan's signals object is gone once its last signal was handled.
    qtbot.waitUntil(lambda: not QCoreApplication.instance().findChildren(WorkerSignals))


def test_made_window_survives_garbage_collection(
    make_window: Callable[[], MainWindow],
) -> None:
    # The parts of a window refer to each other, so once no test variable
    # references it, the cyclic garbage collector can free it. A collection while
    # Qt painted the gallery then deleted a shown window mid-paint and crashed.
    window_reference = weakref.ref(make_window())
    gc.collect()

    window = window_reference()
    assert window is not None
    assert window.isVisible()


def test_window_without_model_disables_scoring(window: MainWindow, mixed_folder: Path) -> None:
    window.set_model(None)
    assert not window.window_actions.open_folder.isEnabled()
    assert window.status_bar.model_text == "No model loaded: scoring is disabled"
    assert not window.open_folder(mixed_folder)
    assert window.folder is None


def test_open_folder_flags_blood_not_retina(scored_window: MainWindow, mixed_folder: Path) -> None:
    paths = gallery_paths(scored_window)
    blood = sorted(p.relative_to(mixed_folder).as_posix()
                   for p in (mixed_folder / "incoming").glob("*.jpg"))
    retina = sorted(p.name for p in mixed_folder.glob("retina_*.png"))

    assert scored_window.folder == mixed_folder.resolve()
    assert str(mixed_folder.resolve()) in scored_window.windowTitle()
    assert sorted(paths[: len(blood)]) == blood
    assert sorted(paths[len(blood) : -1]) == retina
    assert paths[-1] == "empty.png"

    proxy = scored_window.proxy_model
    flags = {proxy.index(row, 0).data(GalleryRole.RELATIVE_PATH):
             proxy.index(row, 0).data(GalleryRole.FLAGGED) for row in range(proxy.rowCount())}
    assert {path: flags[path] for path in blood} == dict.fromkeys(blood, True)
    assert {path: flags[path] for path in retina} == dict.fromkeys(retina, False)
    assert flags["empty.png"] is None


def test_scored_window_counts_and_status(scored_window: MainWindow, mixed_folder: Path) -> None:
    counts = scored_window.gallery_model.counts()
    assert counts == GalleryCounts(total=19, flagged=6, kept=12, rejected=7, not_scored=1)
    assert scored_window.status_bar.counts_text == (
        "19 images · 12 keep · 7 reject · 6 flagged · 1 not scored · 0 decided by you"
    )
    assert not scored_window.status_bar.is_progress_visible()
    assert not scored_window.is_busy()
    assert scored_window.window_actions.move_rejects.isEnabled()
    assert scored_window.window_actions.export.isEnabled()
    assert scored_window.window_actions.keep.isEnabled()


def test_unlistable_subfolder_named_in_status(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path,
    make_too_deep_folder: Callable[[Path, Path], str],
) -> None:
    unlistable = make_too_deep_folder(mixed_folder, mixed_folder / "retina_0000.png")

    open_and_wait(qtbot, window, mixed_folder)
    reports = reports_titled(window, "Folders Not Read")
    with qtbot.waitSignal(window.scoring_finished, timeout=60_000):
        window.rescan()

    message = window.status_bar.currentMessage()
    assert message.startswith("Ready: 19 files in ")
    assert message.endswith(" s. 1 folder could not be read, so its images are not shown.")
    assert window.gallery_model.rowCount() == 19
    [report] = reports
    assert report.details.toPlainText() == f"{unlistable}: File name too long"
    # A reload that finds the same folder unreadable does not report it again.
    assert reports_titled(window, "Folders Not Read") == [report]


def reports_titled(window: MainWindow, title: str) -> list[ReportDialog]:
    return [dialog for dialog in window.findChildren(ReportDialog)
            if dialog.isVisible() and dialog.windowTitle() == title]


@pytest.mark.parametrize(
    ("mode", "rows"),
    [(FilterMode.FLAGGED, 6), (FilterMode.KEPT, 12), (FilterMode.REJECTED, 7),
     (FilterMode.OVERRIDDEN, 0), (FilterMode.NOT_SCORED, 1), (FilterMode.ALL, 19)],
)
def test_filter_combo_filters_gallery(scored_window: MainWindow, mode: FilterMode,
                                      rows: int) -> None:
    scored_window.filter_combo.setCurrentText(mode.value)
    assert scored_window.proxy_model.filter_mode is mode
    assert scored_window.proxy_model.rowCount() == rows
    flags = {scored_window.proxy_model.index(row, 0).data(GalleryRole.FLAGGED)
             for row in range(rows)}
    expected = {FilterMode.FLAGGED: {True}, FilterMode.KEPT: {False},
                FilterMode.REJECTED: {True, None}, FilterMode.OVERRIDDEN: set(),
                FilterMode.NOT_SCORED: {None}, FilterMode.ALL: {True, False, None}}[mode]
    assert flags == expected


def test_sort_combo_orders_by_name(scored_window: MainWindow) -> None:
    scored_window.sort_combo.setCurrentText(SortKey.NAME.value)
    paths = gallery_paths(scored_window)
    assert paths == sorted(paths, key=str.casefold)


def test_move_rejects_out_moves_blood_and_empty(
    qtbot: QtBot, scored_window: MainWindow, mixed_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = sha256_inventory(mixed_folder)
    rejected = {path for path in before if path.startswith("incoming/")} | {"empty.png"}
    destination = default_quarantine_dir(mixed_folder.resolve())
    questions: list[str] = []

    def answer_yes(_parent: object, _title: str, text: str) -> bool:
        questions.append(text)
        return True

    monkeypatch.setattr(gui.file_commands, "confirm", answer_yes)
    with qtbot.waitSignal(scored_window.move_finished, timeout=SCORING_TIMEOUT_MS) as finished:
        scored_window.window_actions.move_rejects.trigger()

    assert finished.args == [7, 0]
    assert len(questions) == 1
    assert "Move 7 images out of" in questions[0]
    assert "6 flagged by the model, 1 not scored, 0 rejected by you" in questions[0]
    assert str(destination) in questions[0]
    assert sha256_inventory(destination) == {path: before[path] for path in rejected}
    assert sha256_inventory(mixed_folder) == {
        path: digest for path, digest in before.items() if path not in rejected
    }
    assert scored_window.gallery_model.counts() == GalleryCounts(12, 0, 12, 0, 0, 0)
    assert set(gallery_paths(scored_window)) == set(before) - rejected
    assert not scored_window.window_actions.move_rejects.isEnabled()
    assert scored_window.window_actions.undo.isEnabled()
    assert scored_window.window_actions.undo.text() == "Undo Move of 7 images"


def test_move_declined_moves_nothing(
    scored_window: MainWindow, mixed_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = sha256_inventory(mixed_folder)
    monkeypatch.setattr(gui.file_commands, "confirm", lambda *_args: False)
    scored_window.window_actions.move_rejects.trigger()
    assert not scored_window.is_busy()
    assert sha256_inventory(mixed_folder) == before
    assert not default_quarantine_dir(mixed_folder.resolve()).exists()
    assert scored_window.gallery_model.counts().rejected == 7
    assert not scored_window.window_actions.undo.isEnabled()


def test_close_during_scoring_waits(
    qtbot: QtBot, window: MainWindow, large_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    questions: list[str] = []

    def answer(dialog: ConfirmDialog) -> QDialog.DialogCode:
        questions.append(dialog.windowTitle())
        return QDialog.DialogCode.Rejected

    monkeypatch.setattr(ConfirmDialog, "exec", answer)
    before = sha256_inventory(large_folder)
    with qtbot.waitSignal(window.gallery_model.rowsInserted, timeout=SCORING_TIMEOUT_MS):
        window.open_folder(large_folder)
    assert window.is_busy()

    assert window.close()

    # A cancelled scan changes no file, so closing shows no question.
    assert questions == []
    assert window.running_job_count() == 0
    assert not window.is_busy()
    assert window.gallery_model.rowCount() < len(before)
    assert sha256_inventory(large_folder) == before


def test_cancel_button_stops_scoring(
    qtbot: QtBot, window: MainWindow, large_folder: Path
) -> None:
    with qtbot.waitSignal(window.gallery_model.rowsInserted, timeout=SCORING_TIMEOUT_MS):
        window.open_folder(large_folder)
    cancel_button = window.status_bar.findChild(QPushButton)
    assert cancel_button.isVisible()

    with qtbot.waitSignal(window.scoring_cancelled, timeout=SCORING_TIMEOUT_MS):
        qtbot.mouseClick(cancel_button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: window.running_job_count() == 0, timeout=SCORING_TIMEOUT_MS)
    assert not window.status_bar.is_progress_visible()
    assert 0 < window.gallery_model.rowCount() < len(list(large_folder.glob("*.png")))


def test_reopen_during_scoring_drops_old_scan(
    qtbot: QtBot, window: MainWindow, large_folder: Path, mixed_folder: Path
) -> None:
    window.open_folder(large_folder)
    open_and_wait(qtbot, window, mixed_folder)
    qtbot.waitUntil(lambda: window.running_job_count() == 0, timeout=SCORING_TIMEOUT_MS)
    assert window.folder == mixed_folder.resolve()
    assert window.gallery_model.counts().total == 19
    assert set(gallery_paths(window)) == set(sha256_inventory(mixed_folder))


def test_open_missing_folder_shows_error(window: MainWindow, tmp_path: Path) -> None:
    missing = tmp_path / "does-not-exist"
    assert not window.open_folder(missing)
    assert window.folder is None
    boxes = [box for box in window.findChildren(QMessageBox) if box.isVisible()]
    assert len(boxes) == 1
    assert boxes[0].text() == f"{missing} does not exist."


def visible_messages(window: MainWindow) -> list[str]:
    return [box.text() for box in window.findChildren(QMessageBox) if box.isVisible()]


def assert_closed_as_gone(window: MainWindow, folder: Path) -> None:
    """Check that the window closed `folder`, which was removed, and showed why."""
    expected = (f"{folder} no longer exists: it was removed or renamed, or the disk it is on "
                "is not connected.")
    assert visible_messages(window) == [expected]
    assert window.folder is None
    assert window.windowTitle() == APP_NAME
    assert window.gallery_model.rowCount() == 0
    assert window.detail_pane.shown_path is None
    actions = window.window_actions
    for action in (actions.move_rejects, actions.export, actions.undo, actions.reload_folder,
                   actions.keep, actions.reject):
        assert not action.isEnabled(), action.text()
    assert actions.open_folder.isEnabled()
    assert window.status_bar.counts_text.startswith("0 images")
    assert window.status_bar.currentMessage() == ""


def test_reload_of_removed_folder_closes_it(
    qtbot: QtBot, scored_window: MainWindow, mixed_folder: Path
) -> None:
    folder = mixed_folder.resolve()
    assert scored_window.window_actions.move_rejects.isEnabled()
    shutil.rmtree(folder)

    scored_window.window_actions.reload_folder.trigger()

    assert_closed_as_gone(scored_window, folder)
    assert not default_quarantine_dir(folder).exists()


def test_open_recent_of_removed_folder(
    qtbot: QtBot, scored_window: MainWindow, mixed_folder: Path
) -> None:
    folder = mixed_folder.resolve()
    recent_menu = scored_window.window_actions.recent_menu
    assert str(folder) in [action.data() for action in recent_menu.actions()]
    shutil.rmtree(folder)

    scored_window.window_actions.recent_folder_requested.emit(str(folder))

    assert_closed_as_gone(scored_window, folder)
    assert str(folder) not in [action.data() for action in recent_menu.actions()]


def test_move_in_removed_folder_closes_it(
    qtbot: QtBot, scored_window: MainWindow, mixed_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = mixed_folder.resolve()
    questions: list[str] = []
    monkeypatch.setattr(gui.file_commands, "confirm",
                        lambda _parent, _title, text: questions.append(text) or True)
    shutil.rmtree(folder)

    scored_window.window_actions.move_rejects.trigger()

    assert questions == []
    assert_closed_as_gone(scored_window, folder)
    assert not default_quarantine_dir(folder).exists()


def test_drop_folder_opens_it(qtbot: QtBot, window: MainWindow, mixed_folder: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(mixed_folder))])
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.scoring_finished, timeout=SCORING_TIMEOUT_MS):
        window.dropEvent(drop)
    assert window.folder == mixed_folder.resolve()


def test_drop_file_ignored(window: MainWindow, mixed_folder: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(mixed_folder / "retina_0000.png"))])
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    enter.ignore()
    window.dragEnterEvent(enter)
    assert not enter.isAccepted()


def test_decision_during_scoring_stored(
    qtbot: QtBot, window: MainWindow, large_folder: Path
) -> None:
    with qtbot.waitSignal(window.gallery_model.rowsInserted, timeout=SCORING_TIMEOUT_MS):
        window.open_folder(large_folder)
    first = window.gallery_model.item(0).record.relative_path
    window.controller.advance = False
    window.gallery_view.setCurrentIndex(
        window.proxy_model.mapFromSource(window.gallery_model.index(0))
    )
    assert window.controller.decide(Decision.KEEP) == 1
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=SCORING_TIMEOUT_MS)

    session = window.session
    assert session is not None
    record = session.store.record(first)
    assert record is not None
    assert record.override is Decision.KEEP


def test_placeholder_when_filter_hides_all(qtbot: QtBot, window: MainWindow,
                                           mixed_folder: Path) -> None:
    window.filter_combo.setCurrentText(FilterMode.OVERRIDDEN.value)

    open_and_wait(qtbot, window, mixed_folder)

    assert window.proxy_model.rowCount() == 0
    assert "Choose Show: All" in window.gallery_view.placeholder_text()
    assert "scoring" not in window.gallery_view.placeholder_text()
