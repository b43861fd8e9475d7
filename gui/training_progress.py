"""Progress header of the training dialog: a status line, the epoch bar and the time left."""

from __future__ import annotations

import logging

from PySide6.QtCore import QElapsedTimer, QTimer, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from engine.training import EpochReport
from gui.training_summary import format_duration

logger = logging.getLogger(__name__)


class TrainingProgress(QWidget):
    """A status line above a progress bar of epochs with the elapsed and the remaining time.

    The remaining time is estimated from the mean time per epoch so far, so it
    appears after the first epoch.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._clock = QElapsedTimer()
        self._last_epoch_ms = 0
        self._epochs_done = 0
        self._build_ui()
        self._connect_signals()

    def _build_ui(self) -> None:
        self.status_label = QLabel(self)
        self.status_label.setWordWrap(True)
        self.progress_bar = QProgressBar(self)
        self.time_label = QLabel(self)
        self.clock_timer = QTimer(self)
        self.clock_timer.setInterval(1000)
        row = QHBoxLayout()
        row.addWidget(self.progress_bar, 1)
        row.addWidget(self.time_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.status_label)
        layout.addLayout(row)

    def _connect_signals(self) -> None:
        self.clock_timer.timeout.connect(self._on_clock_timer_timeout)

    @property
    def status(self) -> str:
        return self.status_label.text()

    def set_status(self, message: str) -> None:
        self.status_label.setText(message)

    def show_busy(self, message: str) -> None:
        """Show `message` over a busy bar, for work of unknown length."""
        self.set_status(message)
        self.progress_bar.setRange(0, 0)
        self.progress_bar.show()
        self.time_label.hide()

    def start_epochs(self, epochs: int, message: str) -> None:
        """Show `message` and an empty bar of `epochs` epochs, and start the clock."""
        self.set_status(message)
        self.progress_bar.setRange(0, epochs)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("epoch %v of %m")
        self.progress_bar.show()
        self._epochs_done = 0
        self._last_epoch_ms = 0
        self._clock.start()
        self.clock_timer.start()
        self.time_label.show()
        self._on_clock_timer_timeout()

    def add_epoch(self, report: EpochReport) -> None:
        self.progress_bar.setValue(report.epoch)
        self._epochs_done = report.epoch
        self._last_epoch_ms = self._clock.elapsed()
        self._on_clock_timer_timeout()

    def finish(self, seconds: float, message: str) -> None:
        """Show `message`, a full bar and the total time of the run."""
        self.clock_timer.stop()
        self.set_status(message)
        self.progress_bar.setValue(self.progress_bar.maximum())
        self.time_label.setText(f"{format_duration(seconds)} in all")
        self.time_label.show()

    def stop_estimate(self) -> None:
        """Stop the clock and show the elapsed time alone, as when a cancel is pending."""
        self.clock_timer.stop()
        self.time_label.setText(f"{format_duration(self._elapsed_s())} elapsed")

    def stop(self, message: str, outcome: str = "Stopped") -> None:
        """Show why the run ended early, and "`outcome` after 12 s" in place of the time left.

        The bar stays only if it counted epochs.
        """
        self.clock_timer.stop()
        self.set_status(message)
        self.time_label.setText(f"{outcome} after {format_duration(self._elapsed_s())}")
        if self.progress_bar.maximum() == 0:
            self.progress_bar.hide()

    def _elapsed_s(self) -> float:
        return self._clock.elapsed() / 1000 if self._clock.isValid() else 0.0

    @Slot()
    def _on_clock_timer_timeout(self) -> None:
        elapsed_s = self._elapsed_s()
        text = f"{format_duration(elapsed_s)} elapsed"
        if self._epochs_done > 0:
            per_epoch_s = self._last_epoch_ms / 1000 / self._epochs_done
            since_epoch_s = elapsed_s - self._last_epoch_ms / 1000
            epochs_left = self.progress_bar.maximum() - self._epochs_done
            left_s = max(0.0, per_epoch_s * epochs_left - since_epoch_s)
            text += f", about {format_duration(left_s)} left"
        self.time_label.setText(text)
