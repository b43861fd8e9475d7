"""Background move of flagged files out of the open folder, applied to the gallery."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal, Slot

from engine.quarantine import MoveOutcome
from gui.gallery_model import GalleryModel
from gui.workers import MoveWorker

logger = logging.getLogger(__name__)


class FileMover(QObject):
    """Runs one MoveWorker at a time and removes each moved file from the gallery.

    Signals:
        progressed(int, int): files done and total files of the running move.
        move_ended(int, list): the move ended (ran to its end, was cancelled or
            failed) with this many files moved and a list of per-file error
            messages for the files that stayed in place.
    """

    progressed = Signal(int, int)
    move_ended = Signal(int, list)

    def __init__(
        self, pool: QThreadPool, gallery_model: GalleryModel, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._pool = pool
        self._gallery_model = gallery_model
        self._worker: MoveWorker | None = None
        self._moved_count = 0
        self._errors: list[str] = []

    def is_running(self) -> bool:
        return self._worker is not None

    def start(self, folder: Path, relative_paths: list[str], destination: Path) -> None:
        """Start moving `folder/relative_path` files into `destination` in the background.

        Raises RuntimeError if a move is already running.
        """
        if self._worker is not None:
            raise RuntimeError(f"{self._worker.action} is still running")
        worker = MoveWorker(folder, relative_paths, destination)
        worker.signals.items_produced.connect(self._on_worker_items_produced)
        worker.signals.progressed.connect(self._on_worker_progressed)
        worker.signals.finished.connect(self._on_worker_ended)
        worker.signals.cancelled.connect(self._on_worker_ended)
        worker.signals.failed.connect(self._on_worker_failed)
        self._worker = worker
        self._moved_count = 0
        self._errors = []
        logger.info("moving %d files from %s to %s", len(relative_paths), folder, destination)
        self._pool.start(worker)

    def cancel(self) -> None:
        """Ask the running move to stop after the file in progress."""
        if self._worker is not None:
            self._worker.cancel()

    def detach(self) -> None:
        """Cancel the running move and ignore its remaining signals."""
        self.cancel()
        self._worker = None

    def _is_current(self) -> bool:
        return self._worker is not None and self.sender() is self._worker.signals

    @Slot(list)
    def _on_worker_items_produced(self, outcomes: list[MoveOutcome]) -> None:
        if not self._is_current():
            return
        moved = [outcome.relative_path for outcome in outcomes if outcome.error is None]
        self._moved_count += len(moved)
        self._errors.extend(outcome.error for outcome in outcomes if outcome.error)
        self._gallery_model.remove_paths(moved)

    @Slot(int, int)
    def _on_worker_progressed(self, done: int, total: int) -> None:
        if self._is_current():
            self.progressed.emit(done, total)

    @Slot(str)
    def _on_worker_failed(self, message: str) -> None:
        if self._is_current():
            self._errors.append(message)
            self._end()

    @Slot()
    def _on_worker_ended(self) -> None:
        if self._is_current():
            self._end()

    def _end(self) -> None:
        self._worker = None
        self.move_ended.emit(self._moved_count, list(self._errors))
