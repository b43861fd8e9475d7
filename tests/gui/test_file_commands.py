"""Tests of the review's persistence and file commands: restart, move, undo and export."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QPushButton,
    QWidget,
)
from pytestqt.qtbot import QtBot
from window_helpers import (
    AGE_S,
    JOB_TIMEOUT_MS,
    SCORING_TIMEOUT_MS,
    gallery_paths,
    open_and_wait,
    read_only_bind,
    select_paths,
    sha256_inventory,
)

import gui.file_commands
from engine.decisions import Decision
from engine.modelfile import ReferenceModel
from engine.moves import move_batch
from engine.quarantine import default_quarantine_dir
from engine.review import ReviewStore
from engine.reviewdb import DB_FILE_NAME, DB_FOLDER_NAME, ReviewDatabase
from engine.reviewplaces import fallback_database_path
from engine.scorecache import score_with_cache
from gui.dialogs import ConfirmDialog, ReportDialog, dialog_screen
from gui.export_dialog import ExportDialog, ExportOptions
from gui.gallery_roles import GalleryRole
from gui.main_window import MainWindow
from gui.settings import WindowSettings

REPOSITORY = Path(__file__).resolve().parents[2]
BLOOD_KEPT = "incoming/"  # prefix of the blood-cell files, all flagged by the model

# A name of 220 characters, with no place where a line may break. With a prefix
# or suffix it stays below the limit of 255 bytes of common file systems.
LONG_NAME = "_".join(f"session{number:02d}lefteye" for number in range(13))


# A folder name of 230 characters without a line-break opportunity.
FOLDER_NAME_230 = f"{LONG_NAME}_retina_01"


@pytest.fixture
def questions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Answer Yes to every confirmation and collect the questions asked."""
    asked: list[str] = []

    def answer_yes(_parent: object, _title: str, text: str) -> bool:
        asked.append(text)
        return True

    monkeypatch.setattr(gui.file_commands, "confirm", answer_yes)
    return asked


def score_times(window: MainWindow) -> dict[str, int]:
    """Map each file to when its cached score was taken, from the review database."""
    session = window.session
    assert session is not None
    rows = session.store.database.query("SELECT relative_path, checked_ns FROM scores")
    return {row["relative_path"]: row["checked_ns"] for row in rows}


def decide(window: MainWindow, relative_path: str, decision: Decision) -> None:
    select_paths(window, [relative_path])
    window.controller.decide(decision)


def move_rejects(qtbot: QtBot, window: MainWindow) -> list[int]:
    """Move the rejects out and return the move_finished arguments."""
    with qtbot.waitSignal(window.move_finished, timeout=JOB_TIMEOUT_MS) as finished:
        assert window.file_commands.move_rejects_out()
    return list(finished.args)


def first_blood(window: MainWindow) -> str:
    return next(path for path in gallery_paths(window) if path.startswith(BLOOD_KEPT))


# Persistence


def test_decisions_survive_restart(
    qtbot: QtBot, make_window: Callable[[], MainWindow], mixed_folder: Path
) -> None:
    first = make_window()
    open_and_wait(qtbot, first, mixed_folder)
    blood = first_blood(first)
    decide(first, blood, Decision.KEEP)
    decide(first, "retina_0003.png", Decision.REJECT)
    # Between the retina images' combined scores and the blood images'.
    first.gallery_model.set_threshold(1.05)
    first.close()

    second = make_window()
    open_and_wait(qtbot, second, mixed_folder)

    assert second.gallery_model.overrides() == {blood: Decision.KEEP,
                                                "retina_0003.png": Decision.REJECT}
    assert second.gallery_model.threshold == 1.05
    assert second.threshold_panel.spin_box.value() == pytest.approx(1.05)
    counts = second.gallery_model.counts()
    assert (counts.overridden, counts.rejected) == (2, 1 + 5 + 1)


def test_reopen_rescores_only_changed_files(
    qtbot: QtBot, make_window: Callable[[], MainWindow], mixed_folder: Path, data_root: Path
) -> None:
    first = make_window()
    open_and_wait(qtbot, first, mixed_folder)
    before = score_times(first)
    first.close()
    changed = mixed_folder / "retina_0001.png"
    Image.new("RGB", (28, 28), (200, 30, 30)).save(changed)
    moment = os.stat(changed).st_mtime - AGE_S
    os.utime(changed, (moment, moment))

    second = make_window()
    open_and_wait(qtbot, second, mixed_folder)
    after = score_times(second)

    assert set(after) == set(before)
    rescored = {path for path in after if after[path] != before[path]}
    assert rescored == {"retina_0001.png"}
    assert second.gallery_model.counts().total == 19


def test_reload_lists_outside_changes(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    before = set(gallery_paths(window))
    removed = first_blood(window)
    (mixed_folder / removed).unlink()
    (mixed_folder / "added.png").write_bytes((mixed_folder / "retina_0001.png").read_bytes())

    with qtbot.waitSignal(window.scoring_finished, timeout=SCORING_TIMEOUT_MS):
        window.window_actions.reload_folder.trigger()

    assert set(gallery_paths(window)) == before - {removed} | {"added.png"}
    assert window.window_actions.reload_folder.isEnabled()


def test_reload_drops_decision_on_new_file(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, questions: list[str]
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    decide(window, "retina_0002.png", Decision.REJECT)
    move_rejects(qtbot, window)
    # Another image takes the name of the one the curator rejected.
    (mixed_folder / "retina_0002.png").write_bytes(
        (mixed_folder / "retina_0003.png").read_bytes())

    with qtbot.waitSignal(window.scoring_finished, timeout=SCORING_TIMEOUT_MS):
        window.window_actions.reload_folder.trigger()
    overrides = gallery_overrides(window)

    assert "retina_0002.png" in overrides
    assert overrides["retina_0002.png"] is None


def test_reload_drops_decision_on_overwritten_file(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    decide(window, "retina_0002.png", Decision.REJECT)
    decide(window, "retina_0004.png", Decision.REJECT)
    # Another program writes another image over the first decided file and
    # rewrites the second with its own bytes, which only changes its times.
    (mixed_folder / "retina_0002.png").write_bytes(
        (mixed_folder / "retina_0003.png").read_bytes())
    (mixed_folder / "retina_0004.png").write_bytes(
        (mixed_folder / "retina_0004.png").read_bytes())

    with qtbot.waitSignal(window.scoring_finished, timeout=SCORING_TIMEOUT_MS):
        window.window_actions.reload_folder.trigger()
    overrides = gallery_overrides(window)

    assert overrides["retina_0002.png"] is None
    assert overrides["retina_0004.png"] == Decision.REJECT


def gallery_overrides(window: MainWindow) -> dict[str, str | None]:
    """Return the curator's decision shown for each file of the gallery."""
    proxy = window.proxy_model
    return {proxy.index(row, 0).data(GalleryRole.RELATIVE_PATH):
            proxy.index(row, 0).data(GalleryRole.OVERRIDE) for row in range(proxy.rowCount())}


# Move rejects out, with per-file errors


def test_move_lists_per_file_errors(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, questions: list[str]
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    vanished = first_blood(window)
    (mixed_folder / vanished).unlink()

    assert move_rejects(qtbot, window) == [6, 1]

    report = window.file_commands.last_report
    assert report is not None
    assert report.summary.startswith("1 image could not be moved")
    assert report.summary.endswith(f"6 images were moved to {mixed_folder}_rejected.")
    assert len(report.lines) == 1
    assert vanished in report.lines[0]


def test_move_rejected_when_quarantine_is_file(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, questions: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The window was started with `python main.py`, so the advice names that command.
    monkeypatch.setattr(sys, "argv", ["main.py"])
    open_and_wait(qtbot, window, mixed_folder)
    blocker = default_quarantine_dir(mixed_folder)
    blocker.write_bytes(b"a file where the quarantine folder goes")
    before = sha256_inventory(mixed_folder)

    started = window.file_commands.move_rejects_out()

    report = window.file_commands.last_report
    assert not started
    assert questions == []
    assert report is not None
    # The window has no choice of quarantine folder, so the advice fixes the one
    # it uses or points to the command line.
    assert report.summary == (
        f"Moving files failed: {blocker} is a file, not a folder. Rename or move the file "
        f"{blocker}, then move the rejects out again. Move Rejects Out always moves to "
        f"{blocker}. To move the rejects to another folder, run: python main.py "
        f"move-rejects {mixed_folder} --to DEST")
    assert sha256_inventory(mixed_folder) == before


def move_with_read_only(
    qtbot: QtBot, window: MainWindow, folder: Path, read_only: Path
) -> tuple[bool, str]:
    """Open `folder` while `read_only` is mounted read-only, ask to move its rejects
    out, close the window, and return whether the move started and the report's summary.
    """
    with read_only_bind(read_only):
        open_and_wait(qtbot, window, folder)
        started = window.file_commands.move_rejects_out()
        report = window.file_commands.last_report
        assert report is not None
        summary = report.summary
        window.close()
    return started, summary


def test_move_report_for_read_only_parent(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, questions: list[str],
) -> None:
    # The window was started through its installed entry point, so the advice names
    # the installed command line.
    monkeypatch.setattr(sys, "argv", [str(Path(sys.executable).parent / "retina-curator")])
    parent = tmp_path / "locked"
    parent.mkdir()
    folder = mixed_folder.rename(parent / "batch")
    # The review database cannot go into the read-only folder, so it goes here.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    before = sha256_inventory(folder)

    started, summary = move_with_read_only(qtbot, window, folder, parent)

    assert not started
    assert questions == []
    assert summary == (
        f"Moving files failed: {parent} cannot be written to (read-only, or no permission). "
        f"Make {parent} writable, then move the rejects out again. Move Rejects Out always "
        f"moves to {folder}_rejected. To move the rejects to another folder, run: "
        f"retina-curator-cli move-rejects {folder} --to DEST")
    assert sha256_inventory(folder) == before
    assert sorted(path.name for path in parent.iterdir()) == ["batch"]


def test_move_report_for_read_only_folder(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, questions: list[str],
) -> None:
    # The review database cannot go into the read-only folder, so it goes here.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    before = sha256_inventory(mixed_folder)

    started, summary = move_with_read_only(qtbot, window, mixed_folder, mixed_folder)

    # Refused before the question, and before a quarantine folder is made.
    assert not started
    assert questions == []
    assert summary.startswith(
        f"Moving files failed: {mixed_folder} is on a read-only file system, so none of the ")
    assert summary.endswith(" can be moved out of it. Remount it read-write, or review a "
                            "copy of the folder on a writable disk.")
    assert sha256_inventory(mixed_folder) == before
    assert not default_quarantine_dir(mixed_folder).exists()


def test_cancelled_move_reports_the_rest(
    qtbot: QtBot, window: MainWindow, large_folder: Path, questions: list[str]
) -> None:
    before = sha256_inventory(large_folder)
    open_and_wait(qtbot, window, large_folder)
    # Every image scores above 0.01, a hundredth of the calibrated threshold, so all
    # are flagged.
    window.gallery_model.set_threshold(0.01)
    total = window.gallery_model.counts().rejected
    cancel_button = window.status_bar.findChild(QPushButton)

    with qtbot.waitSignal(window.move_finished, timeout=JOB_TIMEOUT_MS) as finished:
        assert window.file_commands.move_rejects_out()
        # The worker checks for a cancel after each file, so at least one moves.
        cancel_button.click()

    moved, failed = finished.args
    quarantine = default_quarantine_dir(large_folder)
    assert total == len(before)
    assert 0 < moved < total
    assert failed == 0
    assert len(list(quarantine.iterdir())) == moved
    images = "1 image" if moved == 1 else f"{moved} images"
    assert window.statusBar().currentMessage() == (
        f"Move cancelled: {moved} of {total} moved, {total - moved} stay. Ctrl+Z moves "
        f"{'it' if moved == 1 else 'them'} back.")
    report = window.file_commands.last_report
    assert report is not None
    assert report.windowTitle() == "Move Rejects Out"
    assert f"The other {total - moved} images stay in {large_folder}, because the move was " \
        "cancelled before them." in report.summary
    assert report.summary.endswith(f"Edit › Undo Move (Ctrl+Z) moves the {images} back.")

    with qtbot.waitSignal(window.undo_finished, timeout=JOB_TIMEOUT_MS) as undone:
        window.window_actions.undo.trigger()
    assert undone.args == [moved, 0]
    assert sha256_inventory(large_folder) == before


def test_move_report_fits_long_names(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, questions: list[str]
) -> None:
    folder = mixed_folder.rename(mixed_folder.with_name(f"batch_{LONG_NAME}"))
    blood = sorted((folder / "incoming").iterdir())[0]
    vanished = blood.rename(blood.with_name(f"{LONG_NAME}.jpg"))
    open_and_wait(qtbot, window, folder)
    vanished.unlink()

    assert move_rejects(qtbot, window) == [6, 1]
    report = window.file_commands.last_report
    assert report is not None
    qtbot.waitExposed(report)

    screen = dialog_screen(report).availableGeometry()
    assert report.frameGeometry().width() <= screen.width()
    assert report.summary_view.horizontalScrollBar().maximum() == 0
    assert report.details.horizontalScrollBar().maximum() == 0
    assert report.summary.endswith(f"6 images were moved to {folder}_rejected.")
    assert len(report.lines) == 1
    assert f"incoming/{vanished.name}" in report.lines[0]


@dataclass
class Confirmation:
    """What a confirmation showed: its class, its text and whether all of it fit."""

    class_name: str
    frame_width: int
    screen_width: int
    text: str = ""
    scroll_ranges: tuple[int, int] | None = None


def cancel_confirmation(start: Callable[[], bool]) -> tuple[bool, list[Confirmation]]:
    """Call `start`, measure the confirmation it opens, cancel it and return both results.

    The confirmation runs its own event loop, so it is measured from a timer.
    """
    seen: list[Confirmation] = []

    def measure_and_cancel() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(10, measure_and_cancel)
            return
        QTest.qWaitForWindowExposed(dialog)
        confirmation = Confirmation(type(dialog).__name__, dialog.frameGeometry().width(),
                                    dialog_screen(dialog).availableGeometry().width())
        if isinstance(dialog, ConfirmDialog):
            confirmation.text = dialog.text
            confirmation.scroll_ranges = (dialog.text_view.horizontalScrollBar().maximum(),
                                          dialog.text_view.verticalScrollBar().maximum())
        seen.append(confirmation)
        dialog.reject()

    QTimer.singleShot(0, measure_and_cancel)
    return start(), seen


def test_move_confirmation_shows_long_folder(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path
) -> None:
    folder = mixed_folder.rename(mixed_folder.with_name(FOLDER_NAME_230))
    open_and_wait(qtbot, window, folder)

    started, [seen] = cancel_confirmation(window.file_commands.move_rejects_out)

    assert len(FOLDER_NAME_230) == 230
    assert not started
    assert seen.class_name == "ConfirmDialog"
    assert f"out of\n{folder}\ninto\n{folder}_rejected?" in seen.text
    # The menu item by its own name, with its shortcut.
    assert f"{window.file_commands.undo_hint} moves them back." in seen.text
    assert "Edit › Undo Move" in seen.text
    # Every line wraps within the dialog, and nothing is scrolled out of sight.
    assert seen.scroll_ranges == (0, 0)
    assert seen.frame_width <= seen.screen_width
    assert not default_quarantine_dir(folder).exists()


def test_export_confirmation_shows_long_folder(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, tmp_path: Path
) -> None:
    folder = mixed_folder.rename(mixed_folder.with_name(FOLDER_NAME_230))
    open_and_wait(qtbot, window, folder)
    destination = tmp_path / f"cleaned_{FOLDER_NAME_230}"

    started, [seen] = cancel_confirmation(
        lambda: window.file_commands.export_cleaned_set(ExportOptions(destination)))

    assert not started
    assert seen.class_name == "ConfirmDialog"
    assert f"in\n{folder}\nto\n{destination}?" in seen.text
    assert seen.scroll_ranges == (0, 0)
    assert seen.frame_width <= seen.screen_width
    assert not destination.exists()


def test_move_reports_folder_locked(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, questions: list[str]
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    before = sha256_inventory(mixed_folder)
    other = ReviewDatabase.open(mixed_folder)

    try:
        with other.batch_lock():
            finished = move_rejects(qtbot, window)
    finally:
        other.close()

    assert finished == [0, 0]
    report = window.file_commands.last_report
    assert report is not None
    assert report.windowTitle() == "Move Rejects Out"
    assert report.summary.startswith("No file was moved, because another program")
    assert report.summary.endswith(f"is moving files in {mixed_folder}. Try again when it "
                                   "has finished.")
    assert report.lines == []
    assert sha256_inventory(mixed_folder) == before
    assert window.gallery_model.counts().total == 19
    assert not window.window_actions.undo.isEnabled()


# Closing the window during a file job

CLOSE_TITLE = "Close Retina Curator"


@dataclass
class CloseQuestion:
    """The text and button labels of a question shown as the window closed."""

    text: str
    yes_text: str
    cancel_text: str


def answer_close(monkeypatch: pytest.MonkeyPatch, stop: bool) -> list[CloseQuestion]:
    """Answer Yes to each confirmation before a job, and `stop` to the question on closing.

    The question on closing is the real dialog, answered as soon as it would
    open, so the job cannot end while it is open. Returns the list that collects
    the questions shown on closing.
    """
    close_questions: list[CloseQuestion] = []
    monkeypatch.setattr(gui.file_commands, "confirm", lambda *_args, **_kwargs: True)
    open_dialog = ConfirmDialog.exec

    def answer(dialog: ConfirmDialog) -> int | QDialog.DialogCode:
        if dialog.windowTitle() != CLOSE_TITLE:
            return open_dialog(dialog)
        buttons = dialog.buttons
        close_questions.append(CloseQuestion(
            dialog.text, buttons.button(QDialogButtonBox.StandardButton.Yes).text(),
            buttons.button(QDialogButtonBox.StandardButton.Cancel).text()))
        return QDialog.DialogCode.Accepted if stop else QDialog.DialogCode.Rejected

    monkeypatch.setattr(ConfirmDialog, "exec", answer)
    return close_questions


def images_text(count: int) -> str:
    return "1 image" if count == 1 else f"{count} images"


def test_close_during_move_keeps_working(
    qtbot: QtBot, window: MainWindow, large_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    close_questions = answer_close(monkeypatch, stop=False)
    open_and_wait(qtbot, window, large_folder)
    # Every image scores above a hundredth of the calibrated threshold.
    window.gallery_model.set_threshold(0.01)
    total = window.gallery_model.counts().rejected
    quarantine = default_quarantine_dir(large_folder)

    with qtbot.waitSignal(window.move_finished, timeout=JOB_TIMEOUT_MS) as finished:
        assert window.file_commands.move_rejects_out()
        # The move's end reaches the window only through the event loop, so to the
        # window the move is still running.
        assert not window.close()

    assert window.isVisible()
    assert finished.args == [total, 0]
    assert len(close_questions) == 1
    question = close_questions[0]
    assert question.text.startswith(
        f"Rejected images are being moved out of\n{large_folder}\ninto\n{quarantine}\n")
    assert "Closing stops the move after the current file." in question.text
    assert "Edit › Undo Move (Ctrl+Z) moves them back" in question.text
    assert (question.yes_text, question.cancel_text) == ("Stop and Close", "Keep Working")
    # Once the move has ended, the window closes without a question.
    assert window.close()
    assert len(close_questions) == 1


def test_close_during_move_stops_between_files(
    qtbot: QtBot, make_window: Callable[[], MainWindow], large_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    close_questions = answer_close(monkeypatch, stop=True)
    before = sha256_inventory(large_folder)
    quarantine = default_quarantine_dir(large_folder)
    first = make_window()
    open_and_wait(qtbot, first, large_folder)
    first.gallery_model.set_threshold(0.01)

    assert first.file_commands.move_rejects_out()
    assert first.close()

    assert len(close_questions) == 1
    assert first.running_job_count() == 0
    moved = sha256_inventory(quarantine)
    stayed = sha256_inventory(large_folder)
    # The worker checks for a cancel after each file, so at least one moves.
    assert 0 < len(moved) < len(before)
    assert moved.keys().isdisjoint(stayed.keys())
    assert moved | stayed == before

    # The files that moved are one batch, which the next window moves back.
    second = make_window()
    open_and_wait(qtbot, second, large_folder)
    assert second.window_actions.undo.text() == f"Undo Move of {images_text(len(moved))}"
    with qtbot.waitSignal(second.undo_finished, timeout=JOB_TIMEOUT_MS) as undone:
        second.window_actions.undo.trigger()
    assert undone.args == [len(moved), 0]
    assert sha256_inventory(large_folder) == before


def test_close_during_undo_asks_first(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    close_questions = answer_close(monkeypatch, stop=False)
    before = sha256_inventory(mixed_folder)
    open_and_wait(qtbot, window, mixed_folder)
    assert move_rejects(qtbot, window) == [7, 0]
    assert close_questions == []

    with qtbot.waitSignal(window.undo_finished, timeout=JOB_TIMEOUT_MS) as finished:
        assert window.file_commands.undo_last_move()
        assert not window.close()

    assert finished.args == [7, 0]
    assert len(close_questions) == 1
    assert close_questions[0].text.startswith(
        f"Images are being moved back from the quarantine folder into\n{mixed_folder}\n")
    assert "Closing stops the undo after the current file." in close_questions[0].text
    assert sha256_inventory(mixed_folder) == before


def test_close_during_export_asks_first(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    close_questions = answer_close(monkeypatch, stop=False)
    destination = tmp_path / "cleaned"
    open_and_wait(qtbot, window, mixed_folder)

    with qtbot.waitSignal(window.export_finished, timeout=JOB_TIMEOUT_MS) as finished:
        assert window.file_commands.export_cleaned_set(ExportOptions(destination))
        assert not window.close()

    assert not finished.args[0].cancelled
    assert len(close_questions) == 1
    assert close_questions[0].text.startswith(
        f"The kept images of\n{mixed_folder}\nare being exported to\n{destination}\n")
    assert "export again to the same folder with the merge option" in close_questions[0].text
    assert len(read_manifest(destination)) == 19


def confirm_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answer Yes to each confirmation before a job, and leave any question on closing
    to the real dialog.
    """
    real_confirm = gui.file_commands.confirm

    def answer(parent: QWidget, title: str, text: str, yes_text: str = "",
               cancel_text: str = "") -> bool:
        if title == CLOSE_TITLE:
            return real_confirm(parent, title, text, yes_text, cancel_text)
        return True

    monkeypatch.setattr(gui.file_commands, "confirm", answer)


@dataclass
class WatchedQuestion:
    """What the question on closing showed while it was open, read from a timer.

    `counts` pairs the count in the question with the count of the status bar's
    progress at each look, -1 before the job's first progress. `final_text` is
    the question's text when it closed, and `answered` is True when the test had
    to answer it because it stayed open after the job ended.
    """

    counts: list[tuple[int, int]]
    final_text: str = ""
    answered: bool = False


def watch_close_question(window: MainWindow, job_ended: Callable[[], bool], verb: str,
                         count_pattern: str) -> tuple[WatchedQuestion, QTimer]:
    """Look at the question on closing every 5 ms while it is open, without answering it.

    `count_pattern` finds the count in the question's text, and `verb` starts the
    status bar's progress text of the job, as in "Moving 12 / 40". Once `job_ended`
    returns True, a question still open is answered with Keep Working, so a
    question that never closes by itself fails the test instead of blocking it.
    Returns the record and the timer, which the caller stops.
    """
    watched = WatchedQuestion([])
    timer = QTimer()

    def look() -> None:
        # Not the active modal widget, which a report opened over the question would be.
        questions = [dialog for dialog in window.findChildren(ConfirmDialog)
                     if dialog.isVisible() and dialog.windowTitle() == CLOSE_TITLE]
        if not questions:
            return
        [dialog] = questions
        if not watched.counts:
            dialog.finished.connect(lambda _result: setattr(watched, "final_text", dialog.text))
        match = re.search(count_pattern, dialog.text)
        assert match is not None
        # Before the job's first progress, the status bar still shows the scan's.
        progress = re.match(rf"{verb} (\d+) / ", window.status_bar.progress_text)
        watched.counts.append((int(match[1]), int(progress[1]) if progress else -1))
        if job_ended():
            watched.answered = True
            dialog.reject()

    timer.timeout.connect(look)
    timer.start(5)
    return watched, timer


def test_close_question_follows_move(
    qtbot: QtBot, window: MainWindow, large_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    confirm_jobs(monkeypatch)
    open_and_wait(qtbot, window, large_folder)
    window.gallery_model.set_threshold(0.01)
    total = window.gallery_model.counts().rejected
    before = sha256_inventory(large_folder)
    ended: list[list[int]] = []
    window.move_finished.connect(lambda moved, failed: ended.append([moved, failed]))
    watched, timer = watch_close_question(window, lambda: bool(ended), "Moving",
                                          r"\n(\d+) of \d+ images? moved so far")

    assert window.file_commands.move_rejects_out()
    closed = window.close()
    timer.stop()

    # The move ended while the question was open, and closed it and the window.
    assert ended == [[total, 0]]
    assert not watched.answered
    assert closed
    assert not window.isVisible()
    assert f"\n{total} of {images_text(total)} moved so far." in watched.final_text
    # No look found the question's count behind the status bar's, which is
    # refreshed less often, also while the move was under way.
    seen = [(question, progress) for question, progress in watched.counts if progress >= 0]
    assert [pair for pair in seen if pair[0] < pair[1]] == []
    assert any(0 < progress < total for _question, progress in seen), seen
    assert sha256_inventory(default_quarantine_dir(large_folder)) == before


def test_close_question_follows_export(
    qtbot: QtBot, window: MainWindow, large_folder: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    confirm_jobs(monkeypatch)
    open_and_wait(qtbot, window, large_folder)
    kept_count = window.gallery_model.counts().kept
    destination = tmp_path / "cleaned"
    ended: list[object] = []
    window.export_finished.connect(ended.append)
    watched, timer = watch_close_question(window, lambda: bool(ended), "Exporting",
                                          r"\n(\d+) of \d+ kept images? exported so far")

    assert window.file_commands.export_cleaned_set(ExportOptions(destination))
    closed = window.close()
    timer.stop()

    assert len(ended) == 1
    assert not watched.answered
    assert closed
    assert (f"\n{kept_count} of {kept_count} kept {'image' if kept_count == 1 else 'images'} "
            "exported so far.") in watched.final_text
    counts = [question for question, _progress in watched.counts]
    assert counts == sorted(counts)
    manifest = json.loads((destination / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["complete"] is True
    assert sum(row["exported"] for row in manifest["files"]) == kept_count


def test_close_question_follows_undo(
    qtbot: QtBot, window: MainWindow, large_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    confirm_jobs(monkeypatch)
    before = sha256_inventory(large_folder)
    open_and_wait(qtbot, window, large_folder)
    window.gallery_model.set_threshold(0.01)
    total = window.gallery_model.counts().rejected
    with qtbot.waitSignal(window.move_finished, timeout=JOB_TIMEOUT_MS):
        assert window.file_commands.move_rejects_out()
    ended: list[list[int]] = []
    window.undo_finished.connect(lambda back, failed: ended.append([back, failed]))
    watched, timer = watch_close_question(window, lambda: bool(ended), "Undoing",
                                          r"\n(\d+) (?:of \d+ images?|images?) moved back")

    assert window.file_commands.undo_last_move()
    closed = window.close()
    timer.stop()

    assert ended == [[total, 0]]
    assert closed
    assert f"\n{total} of {images_text(total)} moved back so far." in watched.final_text
    assert sha256_inventory(large_folder) == before


def test_close_question_leaves_failed_move_open(
    qtbot: QtBot, window: MainWindow, large_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    confirm_jobs(monkeypatch)
    open_and_wait(qtbot, window, large_folder)
    window.gallery_model.set_threshold(0.01)
    total = window.gallery_model.counts().rejected
    # Removed after scoring, so the move reports it as an error.
    (large_folder / "retina_0000.png").unlink()
    ended: list[list[int]] = []
    window.move_finished.connect(lambda moved, failed: ended.append([moved, failed]))
    watched, timer = watch_close_question(window, lambda: bool(ended), "Moving",
                                          r"\n(\d+) of \d+ images? moved so far")

    assert window.file_commands.move_rejects_out()
    closed = window.close()
    timer.stop()

    # The question closed by itself, and the window stays open to show the error.
    assert ended == [[total - 1, 1]]
    assert not watched.answered
    assert not closed
    assert window.isVisible()
    [report] = visible_reports(window, "Move Rejects Out")
    assert len(report.lines) == 1
    assert "retina_0000.png" in report.lines[0]
    assert window.close()


def visible_reports(window: MainWindow, title: str) -> list[ReportDialog]:
    """The reports with `title` that the window shows."""
    return [dialog for dialog in window.findChildren(ReportDialog)
            if dialog.isVisible() and dialog.windowTitle() == title]


STOPPED_MOVE_TITLE = "Move Stopped Part-Way"
STOPPED_UNDO_TITLE = "Undo Stopped Part-Way"


def test_stopped_move_reported_once(
    qtbot: QtBot, make_window: Callable[[], MainWindow], large_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer_close(monkeypatch, stop=True)
    quarantine = default_quarantine_dir(large_folder)
    first = make_window()
    open_and_wait(qtbot, first, large_folder)
    first.gallery_model.set_threshold(0.01)
    total = first.gallery_model.counts().rejected
    assert first.file_commands.move_rejects_out()
    assert first.close()
    moved = len(sha256_inventory(quarantine))

    second = make_window()
    open_and_wait(qtbot, second, large_folder)
    notices = visible_reports(second, STOPPED_MOVE_TITLE)
    assert second.close()
    third = make_window()
    open_and_wait(qtbot, third, large_folder)

    assert 0 < moved < total
    assert len(notices) == 1
    assert notices[0].summary == (
        f"Moving rejects out of {large_folder} was stopped before it reached every image. "
        f"{images_text(moved)} {'was' if moved == 1 else 'were'} moved to {quarantine}, and "
        f"the other {total - moved} stay in the folder. Edit › Undo Move (Ctrl+Z) moves "
        f"{'it' if moved == 1 else f'the {moved} images'} back. File › Move Rejects Out… "
        "moves the others out as well.")
    assert notices[0].lines == []
    # Seen once, so a later open shows nothing, and the moved files stay undoable.
    assert visible_reports(third, STOPPED_MOVE_TITLE) == []
    assert third.window_actions.undo.text() == f"Undo Move of {images_text(moved)}"


def test_screenshot_leaves_stop_report(
    qtbot: QtBot, make_window: Callable[[], MainWindow], large_folder: Path,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    answer_close(monkeypatch, stop=True)
    first = make_window()
    open_and_wait(qtbot, first, large_folder)
    first.gallery_model.set_threshold(0.01)
    assert first.file_commands.move_rejects_out()
    assert first.close()

    # A screenshot run shows the window to no one, so the report waits for a real one.
    code = "import sys; from gui.app import main; sys.exit(main(sys.argv[1:]))"
    screenshot = subprocess.run(
        [sys.executable, "-c", code, str(large_folder), "--screenshot",
         str(tmp_path / "window.png")],
        env=dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPOSITORY)),
        capture_output=True, text=True, timeout=SCORING_TIMEOUT_MS / 1000, check=False)
    assert screenshot.returncode == 0, screenshot.stderr
    second = make_window()
    open_and_wait(qtbot, second, large_folder)

    assert len(visible_reports(second, STOPPED_MOVE_TITLE)) == 1


def test_stopped_undo_reported_once(
    qtbot: QtBot, make_window: Callable[[], MainWindow], large_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer_close(monkeypatch, stop=True)
    before = sha256_inventory(large_folder)
    quarantine = default_quarantine_dir(large_folder)
    first = make_window()
    open_and_wait(qtbot, first, large_folder)
    first.gallery_model.set_threshold(0.01)
    assert move_rejects(qtbot, first) == [len(before), 0]
    assert first.file_commands.undo_last_move()
    assert first.close()
    still_out = len(sha256_inventory(quarantine))
    back = len(before) - still_out

    second = make_window()
    open_and_wait(qtbot, second, large_folder)
    notices = visible_reports(second, STOPPED_UNDO_TITLE)
    with qtbot.waitSignal(second.undo_finished, timeout=JOB_TIMEOUT_MS) as undone:
        second.window_actions.undo.trigger()
    qtbot.waitUntil(lambda: not second.is_busy(), timeout=SCORING_TIMEOUT_MS)
    assert second.close()
    third = make_window()
    open_and_wait(qtbot, third, large_folder)

    assert 0 < back < len(before)
    assert len(notices) == 1
    assert notices[0].summary == (
        f"Undoing the move of rejects out of {large_folder} was stopped before it reached "
        f"every image. {images_text(back)} {'is' if back == 1 else 'are'} back in the "
        f"folder, and {still_out} {'is' if still_out == 1 else 'are'} still in {quarantine}. "
        f"Edit › Undo Move (Ctrl+Z) moves {'it' if still_out == 1 else 'them'} back.")
    assert undone.args == [still_out, 0]
    assert sha256_inventory(large_folder) == before
    assert visible_reports(third, STOPPED_UNDO_TITLE) == []


def test_cancelled_move_not_reported_again(
    qtbot: QtBot, make_window: Callable[[], MainWindow], large_folder: Path,
    questions: list[str],
) -> None:
    first = make_window()
    open_and_wait(qtbot, first, large_folder)
    first.gallery_model.set_threshold(0.01)
    cancel_button = first.status_bar.findChild(QPushButton)
    with qtbot.waitSignal(first.move_finished, timeout=JOB_TIMEOUT_MS) as finished:
        assert first.file_commands.move_rejects_out()
        cancel_button.click()
    report = first.file_commands.last_report
    assert first.close()

    second = make_window()
    open_and_wait(qtbot, second, large_folder)
    session = second.session
    assert session is not None
    unreported = session.store.database.query(
        "SELECT id FROM batches WHERE unreported_stop IS NOT NULL")

    # The report at the cancel gave the counts already.
    assert report is not None
    assert report.summary.startswith("The move was cancelled after")
    assert unreported == []
    assert visible_reports(second, STOPPED_MOVE_TITLE) == []
    assert second.window_actions.undo.text() == f"Undo Move of {images_text(finished.args[0])}"


# Commands after scoring stopped part-way


def cancel_scoring(qtbot: QtBot, window: MainWindow, folder: Path) -> int:
    """Open `folder`, cancel its scoring once the first images are in the gallery, and
    return how many images it scored.
    """
    with qtbot.waitSignal(window.gallery_model.rowsInserted, timeout=SCORING_TIMEOUT_MS):
        assert window.open_folder(folder)
    cancel_button = window.status_bar.findChild(QPushButton)
    with qtbot.waitSignal(window.scoring_cancelled, timeout=SCORING_TIMEOUT_MS):
        qtbot.mouseClick(cancel_button, Qt.MouseButton.LeftButton)
    return window.gallery_model.rowCount()


@dataclass
class Answer:
    """The title, text and Yes label of a confirmation that a test answered."""

    title: str
    text: str
    yes_text: str


def answer_confirmation(start: Callable[[], bool], yes: bool) -> tuple[bool, list[Answer]]:
    """Call `start`, answer the confirmation it opens with Yes or Cancel, and return
    what `start` returned with the confirmation seen.
    """
    seen: list[Answer] = []
    returned = False

    def answer_when_open() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, ConfirmDialog):
            if not returned:
                QTimer.singleShot(10, answer_when_open)
            return
        yes_button = dialog.buttons.button(QDialogButtonBox.StandardButton.Yes)
        seen.append(Answer(dialog.windowTitle(), dialog.text, yes_button.text()))
        if yes:
            dialog.accept()
        else:
            dialog.reject()

    QTimer.singleShot(0, answer_when_open)
    started = start()
    returned = True
    return started, seen


def test_export_after_cancelled_scan_scores_first(
    qtbot: QtBot, window: MainWindow, large_folder: Path, tmp_path: Path
) -> None:
    total = len(list(large_folder.glob("*.png")))
    scored = cancel_scoring(qtbot, window, large_folder)
    destination = tmp_path / "cleaned"

    started, seen = answer_confirmation(
        lambda: window.file_commands.export_cleaned_set(ExportOptions(destination)), yes=True)
    # Score the Rest starts scoring. Whatever started, it ends before the checks.
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=SCORING_TIMEOUT_MS)

    # Nothing is exported: Score the Rest scored the folder instead.
    assert 0 < scored < total
    assert not started
    assert len(seen) == 1
    assert seen[0].title == "Export Cleaned Set"
    assert seen[0].yes_text == "Score the Rest"
    assert seen[0].text.startswith(
        f"Scoring of\n{large_folder}\nstopped after {scored} of {total} files, "
        f"so the other {total - scored} have not been scored yet. An export now would "
        "leave them out")
    assert "as File › Reload Folder (F5) does" in seen[0].text
    assert not destination.exists()
    assert window.gallery_model.rowCount() == total

    # Once every file is scored, the export covers the whole folder.
    with qtbot.waitSignal(window.export_finished, timeout=JOB_TIMEOUT_MS) as finished:
        started, seen = answer_confirmation(
            lambda: window.file_commands.export_cleaned_set(ExportOptions(destination)),
            yes=True)
    assert started
    kept = window.gallery_model.counts().kept
    kept_images = "1 kept image" if kept == 1 else f"{kept} kept images"
    assert seen[0].text.startswith(f"Copy the {kept_images} of the {total} in")
    assert finished.args[0].complete
    payload = json.loads((destination / "manifest.json").read_text(encoding="utf-8"))
    assert payload["complete"] is True
    assert len(payload["files"]) == total


def test_export_after_cancelled_scan_declined(
    qtbot: QtBot, window: MainWindow, large_folder: Path, tmp_path: Path
) -> None:
    cancel_scoring(qtbot, window, large_folder)
    destination = tmp_path / "cleaned"

    started, seen = answer_confirmation(
        lambda: window.file_commands.export_cleaned_set(ExportOptions(destination)), yes=False)

    assert not started
    assert [answer.title for answer in seen] == ["Export Cleaned Set"]
    assert seen[0].text.startswith(f"Scoring of\n{large_folder}\nstopped after ")
    assert seen[0].yes_text == "Score the Rest"
    assert not window.is_busy()
    assert not destination.exists()


def test_move_after_cancelled_scan_names_unscored(
    qtbot: QtBot, window: MainWindow, large_folder: Path
) -> None:
    total = len(list(large_folder.glob("*.png")))
    scored = cancel_scoring(qtbot, window, large_folder)
    window.gallery_model.set_threshold(0.01)

    started, [seen] = cancel_confirmation(window.file_commands.move_rejects_out)

    assert not started
    assert seen.text.startswith(f"Move {images_text(scored)} out of\n{large_folder}\n")
    assert seen.text.endswith(
        f"\n\nScoring stopped after {scored} of {total} files, so the other "
        f"{total - scored} have not been scored yet. They are not moved, even those "
        "that would be rejected. File › Reload Folder (F5) scores them.")
    assert not default_quarantine_dir(large_folder).exists()


# Undo


def test_undo_in_same_session_restores_gallery(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, questions: list[str]
) -> None:
    before = sha256_inventory(mixed_folder)
    open_and_wait(qtbot, window, mixed_folder)
    assert move_rejects(qtbot, window) == [7, 0]

    with qtbot.waitSignal(window.undo_finished, timeout=JOB_TIMEOUT_MS) as finished:
        window.window_actions.undo.trigger()

    assert finished.args == [7, 0]
    assert sha256_inventory(mixed_folder) == before
    assert window.gallery_model.counts().total == 19
    assert not window.is_busy()
    assert not window.window_actions.undo.isEnabled()


def test_undo_after_restart_restores_every_file(
    qtbot: QtBot, make_window: Callable[[], MainWindow], mixed_folder: Path,
    questions: list[str],
) -> None:
    before = sha256_inventory(mixed_folder)
    quarantine = default_quarantine_dir(mixed_folder.resolve())
    first = make_window()
    open_and_wait(qtbot, first, mixed_folder)
    decide(first, "retina_0002.png", Decision.REJECT)
    assert move_rejects(qtbot, first) == [8, 0]
    assert len(sha256_inventory(quarantine)) == 8
    first.close()

    second = make_window()
    open_and_wait(qtbot, second, mixed_folder)
    assert second.gallery_model.counts().total == 11
    assert second.window_actions.undo.isEnabled()
    assert second.window_actions.undo.text() == "Undo Move of 8 images"
    with qtbot.waitSignal(second.undo_finished, timeout=JOB_TIMEOUT_MS) as finished:
        second.window_actions.undo.trigger()
    qtbot.waitUntil(lambda: not second.is_busy(), timeout=SCORING_TIMEOUT_MS)

    assert finished.args == [8, 0]
    assert sha256_inventory(mixed_folder) == before
    assert sha256_inventory(quarantine) == {}
    # The files came back with their decisions, so moving out again moves the same 8.
    assert second.gallery_model.counts().total == 19
    assert second.gallery_model.overrides() == {"retina_0002.png": Decision.REJECT}
    assert second.gallery_model.counts().rejected == 8


def test_undo_waits_for_missing_quarantine(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, tmp_path: Path,
    questions: list[str],
) -> None:
    before = sha256_inventory(mixed_folder)
    quarantine = default_quarantine_dir(mixed_folder.resolve())
    open_and_wait(qtbot, window, mixed_folder)
    assert move_rejects(qtbot, window) == [7, 0]
    # As when the disk that contains the quarantine is not connected.
    quarantine.rename(tmp_path / "elsewhere")

    with qtbot.waitSignal(window.undo_finished, timeout=JOB_TIMEOUT_MS) as finished:
        window.window_actions.undo.trigger()

    assert finished.args == [0, 0]
    report = window.file_commands.last_report
    assert report is not None
    assert report.summary.startswith(f"Undo failed: the quarantine folder {quarantine} is "
                                     "not there, so no file was moved back.")
    assert report.lines == []
    assert window.window_actions.undo.isEnabled()

    report.close()
    (tmp_path / "elsewhere").rename(quarantine)
    with qtbot.waitSignal(window.undo_finished, timeout=JOB_TIMEOUT_MS) as finished:
        window.window_actions.undo.trigger()
    assert finished.args == [7, 0]
    assert sha256_inventory(mixed_folder) == before


def test_undo_waits_for_file_moved_away(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, tmp_path: Path,
    questions: list[str],
) -> None:
    before = sha256_inventory(mixed_folder)
    quarantine = default_quarantine_dir(mixed_folder.resolve())
    open_and_wait(qtbot, window, mixed_folder)
    assert move_rejects(qtbot, window) == [7, 0]
    away = sorted(quarantine.rglob("*.jpg"))[0]
    away.rename(tmp_path / "elsewhere.jpg")

    with qtbot.waitSignal(window.undo_finished, timeout=JOB_TIMEOUT_MS) as finished:
        window.window_actions.undo.trigger()

    assert finished.args == [6, 1]
    report = window.file_commands.last_report
    assert report is not None
    assert len(report.lines) == 1
    assert f"nor at {away}, where the move put it. It stays in the batch." in report.lines[0]
    assert window.window_actions.undo.isEnabled()
    assert window.window_actions.undo.text() == "Undo Move of 1 image"

    report.close()
    (tmp_path / "elsewhere.jpg").rename(away)
    with qtbot.waitSignal(window.undo_finished, timeout=JOB_TIMEOUT_MS) as finished:
        window.window_actions.undo.trigger()
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=SCORING_TIMEOUT_MS)
    assert finished.args == [1, 0]
    assert sha256_inventory(mixed_folder) == before
    assert window.gallery_model.counts().total == 19


def move_rejects_into_data_folder(folder: Path, model: ReferenceModel) -> int:
    """Move the folder's rejects with the batch journaled in the data folder's review
    database, and return how many moved.

    A file where the database folder would go makes the folder's own database
    unusable meanwhile. Root ignores permissions, but not that file.
    """
    own = folder / DB_FOLDER_NAME
    away = folder / ".retina-curator-away"
    if own.exists():
        own.rename(away)
    own.write_bytes(b"")
    with ReviewStore.open(folder) as store:
        for _ in score_with_cache(store, model):
            pass
        rejects = store.relative_paths_to_reject(model.fingerprint, model.threshold)
        moved = [outcome for outcome in move_batch(store, rejects, default_quarantine_dir(folder))
                 if outcome.error is None]
    own.unlink()
    if away.exists():
        away.rename(own)
    return len(moved)


def test_undo_finds_batch_beside_empty_database(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, default_model: ReferenceModel,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, questions: list[str],
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    folder = mixed_folder.resolve()
    before = sha256_inventory(folder)
    moved = move_rejects_into_data_folder(folder, default_model)
    # An empty database, as an earlier release left when creating it failed on a full disk.
    (folder / DB_FOLDER_NAME).mkdir()
    (folder / DB_FOLDER_NAME / DB_FILE_NAME).write_bytes(b"")

    open_and_wait(qtbot, window, folder)

    assert moved == 7
    assert window.session is not None
    assert window.session.database_path == fallback_database_path(folder)
    assert window.window_actions.undo.text() == "Undo Move of 7 images"
    with qtbot.waitSignal(window.undo_finished, timeout=JOB_TIMEOUT_MS) as finished:
        window.window_actions.undo.trigger()
    assert finished.args == [7, 0]
    assert sha256_inventory(folder) == before


def test_undo_finds_batch_of_split_review(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, default_model: ReferenceModel,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, questions: list[str],
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    folder = mixed_folder.resolve()
    before = sha256_inventory(folder)
    # A decision in the folder's own database, which is then unusable for a while.
    with ReviewStore.open(folder) as store:
        for _ in score_with_cache(store, default_model):
            pass
        store.set_override(["retina_0001.png"], Decision.KEEP)
    moved = move_rejects_into_data_folder(folder, default_model)

    open_and_wait(qtbot, window, folder)
    reports = visible_reports(window, "Review Split Between Two Databases")

    assert moved == 7
    assert len(reports) == 1
    assert reports[0].summary.startswith(
        f"The review of {folder} is split between two databases. "
        f"{folder / DB_FOLDER_NAME / DB_FILE_NAME} is in use, and "
        f"{fallback_database_path(folder)} also records 7 files in quarantine")
    assert window.gallery_model.overrides() == {"retina_0001.png": Decision.KEEP}
    assert window.window_actions.undo.text() == "Undo Move of 7 images"
    reports[0].close()
    with qtbot.waitSignal(window.undo_finished, timeout=JOB_TIMEOUT_MS) as finished:
        window.window_actions.undo.trigger()
    assert finished.args == [7, 0]
    assert sha256_inventory(folder) == before
    assert not window.window_actions.undo.isEnabled()


def test_undo_reports_folder_locked(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, questions: list[str]
) -> None:
    before = sha256_inventory(mixed_folder)
    quarantine = default_quarantine_dir(mixed_folder.resolve())
    open_and_wait(qtbot, window, mixed_folder)
    assert move_rejects(qtbot, window) == [7, 0]
    moved_out = sha256_inventory(quarantine)
    # As the command line does while it moves files of the same folder.
    other = ReviewDatabase.open(mixed_folder)

    try:
        with (other.batch_lock(),
              qtbot.waitSignal(window.undo_finished, timeout=JOB_TIMEOUT_MS) as finished):
            qtbot.keyClick(window.gallery_view, Qt.Key.Key_Z,
                           Qt.KeyboardModifier.ControlModifier)
    finally:
        other.close()

    assert finished.args == [0, 0]
    report = window.file_commands.last_report
    assert report is not None
    assert report.windowTitle() == "Undo Move"
    assert report.summary.startswith("No file was moved back, because another program")
    assert report.summary.endswith(f"is moving files in {mixed_folder}. Try again when it "
                                   "has finished.")
    assert "could not be moved back" not in report.summary
    assert report.lines == []
    assert sha256_inventory(quarantine) == moved_out
    assert window.gallery_model.counts().total == 12
    assert window.window_actions.undo.isEnabled()
    assert window.window_actions.undo.text() == "Undo Move of 7 images"

    # Once the other program has finished, undo moves the files back.
    report.close()
    with qtbot.waitSignal(window.undo_finished, timeout=JOB_TIMEOUT_MS) as finished:
        window.window_actions.undo.trigger()
    assert finished.args == [7, 0]
    assert sha256_inventory(mixed_folder) == before


# Export


def read_manifest(destination: Path) -> list[dict[str, str]]:
    with (destination / "manifest.csv").open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def answer_export_dialog(window: MainWindow, answer: Callable[[ExportDialog], None]) -> None:
    """Choose File › Export Cleaned Set… and let `answer` fill in and close its dialog.

    The dialog runs its own event loop, so `answer` runs from a timer once it is open.
    """
    answered: list[ExportDialog] = []

    def answer_when_open() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, ExportDialog):
            QTimer.singleShot(10, answer_when_open)
            return
        answered.append(dialog)
        answer(dialog)

    QTimer.singleShot(0, answer_when_open)
    window.window_actions.export.trigger()
    assert len(answered) == 1


def click_export(dialog: ExportDialog) -> None:
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()


def export_and_wait(qtbot: QtBot, window: MainWindow, options: ExportOptions) -> object:
    with qtbot.waitSignal(window.export_finished, timeout=JOB_TIMEOUT_MS) as finished:
        assert window.file_commands.export_cleaned_set(options)
    return finished.args[0]


def test_export_writes_matching_manifest(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, tmp_path: Path, questions: list[str]
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    blood = first_blood(window)
    decide(window, blood, Decision.KEEP)
    decide(window, "retina_0004.png", Decision.REJECT)
    destination = tmp_path / "cleaned"

    summary = export_and_wait(qtbot, window, ExportOptions(destination))

    assert len(questions) == 1
    assert "Copy the 12 kept images of the 19 in" in questions[0]
    assert str(destination) in questions[0]
    rows = read_manifest(destination)
    assert len(rows) == 19
    exported = {row["path"]: row for row in rows if row["exported"] == "true"}
    assert len(exported) == 12 == summary.exported
    assert blood in exported
    assert "retina_0004.png" not in exported
    for relative_path, row in exported.items():
        copy = destination / relative_path
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == row["sha256"], relative_path
        source = mixed_folder / relative_path
        assert hashlib.sha256(source.read_bytes()).hexdigest() == row["sha256"], relative_path
    by_path = {row["path"]: row for row in rows}
    assert by_path[blood]["decision_source"] == "curator"
    assert by_path[blood]["final_decision"] == "keep"
    assert by_path["retina_0004.png"]["final_decision"] == "reject"
    assert by_path["empty.png"]["exported"] == "false"
    payload = json.loads((destination / "manifest.json").read_text(encoding="utf-8"))
    assert payload["complete"] is True
    assert len(payload["files"]) == 19
    report = window.file_commands.last_report
    assert report is not None
    assert "12 images exported" in report.summary


def test_export_hard_links(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, tmp_path: Path, questions: list[str]
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    destination = tmp_path / "linked"
    summary = export_and_wait(qtbot, window, ExportOptions(destination, link=True))
    assert summary.linked == summary.exported == 12
    assert "Hard-link the 12 kept images of the 19 in" in questions[0]
    source = mixed_folder / "retina_0000.png"
    assert os.stat(destination / "retina_0000.png").st_ino == os.stat(source).st_ino


def test_export_into_non_empty_folder_needs_merge(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, tmp_path: Path, questions: list[str]
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    destination = tmp_path / "existing"
    destination.mkdir()
    (destination / "notes.txt").write_text("kept by the curator")

    assert not window.file_commands.export_cleaned_set(ExportOptions(destination))
    report = window.file_commands.last_report
    assert report is not None
    assert "is not empty" in report.summary
    assert sorted(path.name for path in destination.iterdir()) == ["notes.txt"]

    summary = export_and_wait(qtbot, window, ExportOptions(destination, merge=True))
    assert summary.exported == 12
    assert "It is not empty" in questions[-1]
    assert (destination / "notes.txt").read_text() == "kept by the curator"


def test_merge_counts_identical_files_as_there(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, tmp_path: Path, questions: list[str]
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    destination = tmp_path / "cleaned"
    export_and_wait(qtbot, window, ExportOptions(destination))

    summary = export_and_wait(qtbot, window, ExportOptions(destination, merge=True))

    report = window.file_commands.last_report
    assert report is not None
    assert report.summary.startswith(
        f"The export to {destination} finished: 0 images exported. 12 images were there "
        "already with the same content. Not copied, as rejected or not in the folder: 7 "
        "images. Failed: 0.")
    assert summary.already_present == 12
    assert summary.added == 0
    # The manifest lists each of them as in the cleaned set, where it was already.
    with (destination / "manifest (1).csv").open(newline="", encoding="utf-8") as stream:
        rows = [row for row in csv.DictReader(stream) if row["final_decision"] == "keep"]
    assert len(rows) == 12
    assert all(row["exported"] == "true" for row in rows)
    assert all(row["exported_as"] == row["path"] for row in rows)


def test_merge_reports_files_left_behind(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, tmp_path: Path, questions: list[str]
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    destination = tmp_path / "cleaned"
    export_and_wait(qtbot, window, ExportOptions(destination))
    decide(window, "retina_0004.png", Decision.REJECT)

    summary = export_and_wait(qtbot, window, ExportOptions(destination, merge=True))

    report = window.file_commands.last_report
    assert report is not None
    assert summary.left_in_destination == ["retina_0004.png"]
    assert report.lines == [
        f"1 file that is rejected or in quarantine now, and so was not exported, is still in "
        f"{destination} from an earlier export, with the same content: retina_0004.png. It "
        "was left there, because nothing is ever deleted; remove it by hand if the cleaned "
        "set should not have it. The JSON manifest lists it in \"left_in_destination\" of "
        "its summary."
    ]
    assert (destination / "retina_0004.png").is_file()


def test_export_reports_unlistable_subfolder(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, tmp_path: Path, questions: list[str],
    make_too_deep_folder: Callable[[Path, Path], str],
) -> None:
    unlistable = make_too_deep_folder(mixed_folder, mixed_folder / "retina_0000.png")
    open_and_wait(qtbot, window, mixed_folder)
    destination = tmp_path / "cleaned"

    summary = export_and_wait(qtbot, window, ExportOptions(destination))

    report = window.file_commands.last_report
    assert report is not None
    note = (f"1 folder of {mixed_folder} could not be read, so its images were not exported "
            f"and are not in the manifest: {unlistable} (File name too long). Once that is "
            f"fixed, export again, merging into {destination}.")
    assert report.lines == [note]
    manifest = json.loads((destination / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["summary"]["notes"] == [note]
    assert manifest["summary"]["skipped_folders"] == [
        {"path": unlistable, "status": "unreadable", "detail": "File name too long"}]
    assert summary.failed == 0


def test_export_under_file_rejected_before_question(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, tmp_path: Path, questions: list[str]
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    blocker = tmp_path / "exports"
    blocker.write_bytes(b"a file where a folder is needed")

    started = window.file_commands.export_cleaned_set(ExportOptions(blocker / "cleaned"))

    report = window.file_commands.last_report
    assert not started
    assert questions == []
    assert report is not None
    assert report.windowTitle() == "Exporting failed"
    assert report.summary == (f"Exporting failed: {blocker} is a file, not a folder. "
                              "Choose another destination.")


def test_export_failing_to_create_destination_reported(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, tmp_path: Path, settings: QSettings,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    blocker = tmp_path / "exports"
    destination = blocker / "cleaned"

    def answer_yes_then_block(*_args: object) -> bool:
        # A file takes the place of the destination's parent after the checks that
        # run before the question, as another program could, so creating it fails.
        blocker.write_bytes(b"a file where a folder is needed")
        return True

    monkeypatch.setattr(gui.file_commands, "confirm", answer_yes_then_block)
    with qtbot.waitSignal(window.export_finished, timeout=JOB_TIMEOUT_MS) as finished:
        assert window.file_commands.export_cleaned_set(ExportOptions(destination))

    report = window.file_commands.last_report
    assert report is not None
    assert report.windowTitle() == "Exporting failed"
    assert report.summary == (
        f"Exporting failed: creating {destination} failed: not a directory ({destination}). "
        "No image was exported.\n\nManifests: not written")
    assert report.lines == []
    assert finished.args[0].exported == 0
    assert [record for record in caplog.records if record.exc_info] == []
    assert [record.levelno for record in caplog.records
            if f"creating {destination} failed" in record.getMessage()] == [logging.ERROR]
    # Only a finished export is remembered for the next start.
    assert WindowSettings(settings).last_export_folder() is None
    assert blocker.read_bytes() == b"a file where a folder is needed"


def test_export_declined_writes_nothing(
    window: MainWindow, qtbot: QtBot, mixed_folder: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    monkeypatch.setattr(gui.file_commands, "confirm", lambda *_args: False)
    destination = tmp_path / "never"
    assert not window.file_commands.export_cleaned_set(ExportOptions(destination))
    assert not destination.exists()
    assert not window.is_busy()


def test_export_dialog_keeps_rejected_destination(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, settings: QSettings,
    questions: list[str],
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    inside = mixed_folder / "cleaned"
    before = sha256_inventory(mixed_folder)

    def type_inside(dialog: ExportDialog) -> None:
        dialog.destination_edit.setText(str(inside))
        dialog.link_button.setChecked(True)
        click_export(dialog)

    answer_export_dialog(window, type_inside)
    report = window.file_commands.last_report
    assert report is not None
    assert report.windowTitle() == "Exporting failed"
    assert f"the destination {inside} is inside the reviewed folder" in report.summary
    assert questions == []
    assert sha256_inventory(mixed_folder) == before

    opened_with: list[ExportOptions] = []

    def read_and_cancel(dialog: ExportDialog) -> None:
        opened_with.append(dialog.options())
        dialog.reject()

    answer_export_dialog(window, read_and_cancel)
    assert opened_with == [ExportOptions(inside, link=True)]
    # Only a finished export is remembered for the next start.
    assert WindowSettings(settings).last_export_folder() is None


def test_export_folder_remembered_across_runs(
    qtbot: QtBot, make_window: Callable[[], MainWindow], mixed_folder: Path, tmp_path: Path,
    settings: QSettings, questions: list[str],
) -> None:
    destination = tmp_path / "cleaned"
    first = make_window()
    open_and_wait(qtbot, first, mixed_folder)

    def type_destination(dialog: ExportDialog) -> None:
        dialog.destination_edit.setText(str(destination))
        click_export(dialog)

    with qtbot.waitSignal(first.export_finished, timeout=JOB_TIMEOUT_MS) as finished:
        answer_export_dialog(first, type_destination)
    assert finished.args[0].exported == 12
    first.close()

    second = make_window()
    open_and_wait(qtbot, second, mixed_folder)
    opened_with: list[ExportOptions] = []

    def read_and_cancel(dialog: ExportDialog) -> None:
        opened_with.append(dialog.options())
        dialog.reject()

    answer_export_dialog(second, read_and_cancel)
    assert opened_with == [ExportOptions(destination)]
    assert WindowSettings(settings).last_export_folder() == str(destination)


def test_interrupted_move_recovered_on_open(
    qtbot: QtBot, make_window: Callable[[], MainWindow], mixed_folder: Path,
    questions: list[str],
) -> None:
    before = sha256_inventory(mixed_folder)
    first = make_window()
    open_and_wait(qtbot, first, mixed_folder)
    assert move_rejects(qtbot, first) == [7, 0]
    database = first.session.database_path
    first.close()
    # As if the process was killed after moving the files but before journaling
    # all but the first move: the batch is still running, six entries only planned.
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE batches SET state = 'running'")
        connection.execute("UPDATE batch_files SET state = 'planned', moved_to = NULL "
                           "WHERE position > 0")
    connection.close()

    second = make_window()
    open_and_wait(qtbot, second, mixed_folder)

    reports = [dialog for dialog in second.findChildren(ReportDialog) if dialog.isVisible()]
    assert len(reports) == 1
    assert reports[0].windowTitle() == "Interrupted Moves Recovered"
    assert reports[0].lines[0].startswith("Move batch 1 into")
    assert "7 of 7 files are in quarantine" in reports[0].lines[0]
    assert len(reports[0].lines) == 7
    assert second.window_actions.undo.text() == "Undo Move of 7 images"
    with qtbot.waitSignal(second.undo_finished, timeout=JOB_TIMEOUT_MS) as finished:
        second.window_actions.undo.trigger()
    qtbot.waitUntil(lambda: not second.is_busy(), timeout=SCORING_TIMEOUT_MS)
    assert finished.args == [7, 0]
    assert sha256_inventory(mixed_folder) == before
