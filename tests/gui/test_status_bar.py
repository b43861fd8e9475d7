"""Tests of the status bar's progress display: counts, rate and time left."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QPoint
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QApplication, QFrame, QLabel, QToolTip
from pytestqt.qtbot import QtBot

from engine.modelfile import ReferenceModel
from gui.main_window import MainWindow
from gui.status_bar import MainStatusBar, describe_rate, format_duration


class ManualClock:
    """A clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def status_bar(qtbot: QtBot, clock: ManualClock) -> MainStatusBar:
    bar = MainStatusBar(clock=clock)
    qtbot.addWidget(bar)
    bar.show()
    return bar


@pytest.mark.parametrize(("done", "total", "elapsed", "expected"), [
    (0, 100, 5.0, ""),  # nothing done yet
    (10, 100, 0.1, ""),  # too early for a steady rate
    (500, 2000, 2.0, "250 images/s · 6 s left"),
    (3, 100, 2.0, "1.5 images/s · 1 min 05 s left"),  # slow jobs keep one decimal
    (500, 500, 2.0, "250 images/s"),  # finished: no time left
    (40, 0, 1.0, "40 images/s"),  # total not known yet
])
def test_describe_rate(done: int, total: int, elapsed: float, expected: str) -> None:
    assert describe_rate(done, total, elapsed) == expected


@pytest.mark.parametrize(("seconds", "expected"), [
    (0.2, "1 s"),  # rounded up, never "0 s" while work remains
    (59.0, "59 s"),
    (185.0, "3 min 05 s"),
    (7440.0, "2 h 04 min"),
])
def test_format_duration(seconds: float, expected: str) -> None:
    assert format_duration(seconds) == expected


def test_status_bar_starts_hidden(status_bar: MainStatusBar) -> None:
    assert not status_bar.is_progress_visible()
    assert status_bar.rate_text == ""


def test_progress_shows_rate_and_time_left(
    status_bar: MainStatusBar, clock: ManualClock
) -> None:
    status_bar.show_progress("Scoring", 0, 1000)
    clock.now += 5.0  # listing the folder, before the first image
    status_bar.show_progress("Scoring", 1, 1000)
    clock.now += 2.0
    status_bar.show_progress("Scoring", 401, 1000)

    assert status_bar.is_progress_visible()
    assert status_bar.rate_text == "200 images/s · 3 s left"


def test_new_job_restarts_rate(status_bar: MainStatusBar, clock: ManualClock) -> None:
    status_bar.show_progress("Scoring", 0, 1000)
    clock.now += 10.0
    status_bar.show_progress("Moving", 5, 50)
    clock.now += 1.0
    status_bar.show_progress("Moving", 30, 50)

    assert status_bar.rate_text == "25 images/s · 1 s left"


def test_hide_progress_clears_rate(status_bar: MainStatusBar, clock: ManualClock) -> None:
    status_bar.show_progress("Scoring", 10, 1000)
    clock.now += 1.0
    status_bar.show_progress("Scoring", 110, 1000)
    status_bar.hide_progress()

    assert not status_bar.is_progress_visible()
    assert status_bar.rate_text == ""


def test_window_scan_shows_rate(qtbot: QtBot, window: MainWindow, large_folder: Path) -> None:
    seen: list[str] = []

    def rate_shown() -> bool:
        seen.append(window.status_bar.rate_text)
        return "images/s" in seen[-1]

    with qtbot.waitSignal(window.scoring_finished, timeout=120_000):
        window.open_folder(large_folder)
        qtbot.waitUntil(rate_shown, timeout=60_000)

    assert " left" in seen[-1]
    assert not window.status_bar.is_progress_visible()


def test_progress_refreshed_ten_times_a_second(
    status_bar: MainStatusBar, clock: ManualClock
) -> None:
    status_bar.show_progress("Scoring", 0, 1000)
    status_bar.show_progress("Scoring", 10, 1000)
    clock.now += 0.05
    status_bar.show_progress("Scoring", 20, 1000)

    assert status_bar.progress_text == "Scoring 10 / 1000"

    clock.now += 0.06
    status_bar.show_progress("Scoring", 30, 1000)
    assert status_bar.progress_text == "Scoring 30 / 1000"

    status_bar.show_progress("Scoring", 1000, 1000)
    assert status_bar.progress_text == "Scoring 1000 / 1000"


def test_long_message_stops_before_counts(qtbot: QtBot, status_bar: MainStatusBar) -> None:
    status_bar.resize(700, 30)
    status_bar.show()
    qtbot.waitExposed(status_bar)
    status_bar.showMessage("Moved 12 images to " + "/very/long/quarantine/folder" * 8)

    # A divider, not the message, is what the counts begin after.
    counts = status_bar.findChildren(QLabel)
    [counts_label] = [label for label in counts if label.text() == status_bar.counts_text]
    dividers = [frame for frame in status_bar.findChildren(QFrame)
                if frame.frameShape() is QFrame.Shape.VLine and frame.isVisible()]
    assert any(divider.geometry().right() < counts_label.geometry().left()
               for divider in dividers)


def test_long_message_cut_with_ellipsis(qtbot: QtBot, status_bar: MainStatusBar) -> None:
    status_bar.resize(1200, 30)
    qtbot.waitExposed(status_bar)
    message = "Moved 12 images to " + "/very/long/quarantine/folder" * 8
    status_bar.showMessage(message)

    shown = status_bar.shown_message()

    assert shown.endswith("…")
    assert message.startswith(shown[:-1])
    counts_left = next(label for label in status_bar.findChildren(QLabel)
                       if label.text() == status_bar.counts_text).x()
    assert status_bar.fontMetrics().horizontalAdvance(shown) < counts_left
    assert status_bar.currentMessage() == message

    # Hovering the cut message shows all of it.
    middle = QPoint(counts_left // 2, status_bar.height() // 2)
    QApplication.sendEvent(status_bar, QHelpEvent(
        QEvent.Type.ToolTip, middle, status_bar.mapToGlobal(middle)))
    assert QToolTip.text() == message


def test_short_message_shown_whole(qtbot: QtBot, status_bar: MainStatusBar) -> None:
    status_bar.resize(1200, 30)
    qtbot.waitExposed(status_bar)
    status_bar.showMessage("Moved 12 images to /data/set_rejected.")

    assert status_bar.shown_message() == "Moved 12 images to /data/set_rejected."


def test_long_model_name_leaves_room(
    qtbot: QtBot, status_bar: MainStatusBar, default_model: ReferenceModel,
) -> None:
    name = "retina_reference_model_trained_on_clinic_A_fundus_photographs_2024_cohort_v3"
    status_bar.resize(1000, 30)
    qtbot.waitExposed(status_bar)
    status_bar.set_model(default_model)
    qtbot.waitUntil(lambda: status_bar.shown_model_text == status_bar.model_text)
    bundled_width = status_bar.minimumSizeHint().width()

    status_bar.set_model(replace(default_model, name=name))
    status_bar.showMessage("Moved 7 images to /data/set_rejected")

    # The name is cut in the middle, the threshold stays, and the message keeps a place.
    model_text = status_bar.shown_model_text
    assert "…" in model_text
    assert model_text.endswith("calibrated threshold 1.000")
    assert status_bar.minimumSizeHint().width() <= bundled_width
    assert status_bar.shown_message().startswith("Moved 7 image")


def test_progress_clears_message(status_bar: MainStatusBar) -> None:
    status_bar.showMessage("Moved 1763 images to /data/set_rejected.", 10_000)

    status_bar.show_progress("Undoing", 0, 1763)

    assert status_bar.currentMessage() == ""
    assert status_bar.is_progress_visible()


def test_message_during_job_hides_progress(qtbot: QtBot, status_bar: MainStatusBar) -> None:
    status_bar.show_progress("Scoring", 0, 100)
    status_bar.showMessage("Saving the threshold failed: disk full", 200)
    status_bar.show_progress("Scoring", 50, 100)

    assert status_bar.currentMessage() == "Saving the threshold failed: disk full"
    assert not status_bar.is_progress_visible()
    qtbot.waitUntil(status_bar.is_progress_visible, timeout=2000)
    assert status_bar.currentMessage() == ""
