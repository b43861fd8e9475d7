"""Background scoring of a folder, appended to the gallery model batch by batch."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal, Slot

from engine.listing import SkippedFolder
from engine.modelfile import ReferenceModel
from engine.review import ReviewStore
from gui.gallery_items import GalleryItem
from gui.gallery_model import GalleryModel
from gui.thumbnail_loader import ThumbnailLoader
from gui.workers import ScoringWorker

logger = logging.getLogger(__name__)

# At most this many rows enter the gallery per pass of the event loop, so the window
# paints between passes. A row placed apart from the other rows of its batch costs
# the proxy and the view about 30 µs in a gallery of 20 000. Cached results come in
# score order, so they enter as a few runs of adjacent rows and cost far less.
MAX_ROWS_PER_INSERT = 1024
# How long the status bar shows that a scan finished, in milliseconds. A message
# that names folders the scan could not read stays until the next message instead.
READY_MESSAGE_MS = 10_000


class FolderScanner(QObject):
    """Runs one ScoringWorker at a time and appends its results to the gallery.

    Starting a scan detaches the previous one: it is cancelled, and the signals it
    still emits are ignored, so its results never mix with the new folder's.
    Results wait in a queue and enter the gallery MAX_ROWS_PER_INSERT at a time, one
    insertion per pass of the event loop. The scan counts as running, and its end
    signal comes, only once the queue is empty. Cached scores enter without their
    thumbnails, which a ThumbnailLoader reads as their tiles are painted.
    `skipped_folders` lists the subfolders that the last finished scan could not
    list, so their images are not in the gallery.

    Signals:
        progressed(int, int): files scored and total files of the running scan.
        scan_finished(float): every file was scored, in this many seconds.
        scan_failed(str): the scan stopped on an error, described by the message.
        scan_cancelled(): the scan stopped early at a cancel request.
    """

    progressed = Signal(int, int)
    scan_finished = Signal(float)
    scan_failed = Signal(str)
    scan_cancelled = Signal()

    def __init__(
        self, pool: QThreadPool, gallery_model: GalleryModel, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._pool = pool
        self._gallery_model = gallery_model
        self._worker: ScoringWorker | None = None
        self._folder: Path | None = None
        self._started = 0.0
        self._queue: list[GalleryItem] = []
        self.skipped_folders: list[SkippedFolder] = []
        self._end: Callable[[], None] | None = None
        self._insert_timer = QTimer(self)
        self._insert_timer.setSingleShot(True)
        self._insert_timer.setInterval(0)
        self._insert_timer.timeout.connect(self._on_insert_timer_timeout)
        self._thumbnails = ThumbnailLoader(pool, parent=self)
        gallery_model.set_thumbnail_reader(self._thumbnails.read)
        self._thumbnails.loaded.connect(gallery_model.set_thumbnails)

    def is_running(self) -> bool:
        return self._worker is not None

    def thumbnails_loading(self) -> bool:
        """Return whether thumbnails of tiles already painted are still being decoded."""
        return self._thumbnails.is_loading()

    def start(self, model: ReferenceModel, folder: Path, thumbnail_pixels: int,
              store: ReviewStore | None = None) -> None:
        """Clear the gallery and start scoring the images under `folder` into it.

        With `store`, cached scores are used and new ones saved there.
        """
        self.detach()
        self.skipped_folders = []
        self._gallery_model.clear()
        self._thumbnails.start(model.framing, thumbnail_pixels)
        worker = ScoringWorker(model, folder, thumbnail_pixels, store)
        worker.signals.items_produced.connect(self._on_worker_items_produced)
        worker.signals.progressed.connect(self._on_worker_progressed)
        worker.signals.finished.connect(self._on_worker_finished)
        worker.signals.failed.connect(self._on_worker_failed)
        worker.signals.cancelled.connect(self._on_worker_cancelled)
        self._worker = worker
        self._folder = folder
        self._started = time.perf_counter()
        logger.info("scoring %s with model %s", folder, model.name)
        self._pool.start(worker)

    def finished_message(self, file_count: int, elapsed: float) -> tuple[str, int]:
        """Return the status bar's message after a finished scan of `file_count` files
        and how long to show it in milliseconds, 0 for until the next message.
        """
        # Unchanged files come from the score cache, so "scored" would overstate the work.
        ready = f"Ready: {file_count} files in {elapsed:.1f} s."
        if not self.skipped_folders:
            return ready, READY_MESSAGE_MS
        # The window never shows the listing's warnings, so the message stays. It
        # names no folder: a deep path would not fit beside the counts.
        return f"{ready} {_could_not_be_read(len(self.skipped_folders))}", 0

    def skipped_folders_report(self) -> tuple[str, list[str]]:
        """Return the summary and the lines, one a folder with its reason, of a report on
        the subfolders that the last finished scan could not list.
        """
        summary = (f"{_could_not_be_read(len(self.skipped_folders))} Each is listed below "
                   "with the reason. Once they can be read, File › Reload Folder (F5) "
                   "scores their images.")
        lines = [f"{folder.path}: {folder.detail}" for folder in self.skipped_folders]
        return summary, lines

    def cancel(self) -> None:
        """Ask the running scan to stop after the file in progress, then emit scan_cancelled."""
        if self._worker is not None:
            self._worker.cancel()

    def detach(self) -> None:
        """Cancel the running scan without waiting for it and ignore its remaining signals.

        Thumbnails being decoded again for the gallery are cancelled too, and asked
        for again when their tiles are painted.
        """
        self.cancel()
        self._thumbnails.stop()
        self._worker = None
        self._queue.clear()
        self._end = None
        self._insert_timer.stop()

    def _is_current(self) -> bool:
        return (self._worker is not None and self._end is None
                and self.sender() is self._worker.signals)

    def _end_after_queue(self, end: Callable[[], None]) -> None:
        """Run `end` once every queued result is in the gallery."""
        self._end = end
        if not self._queue:
            self._on_insert_timer_timeout()

    @Slot()
    def _on_insert_timer_timeout(self) -> None:
        rows, self._queue = self._queue[:MAX_ROWS_PER_INSERT], self._queue[MAX_ROWS_PER_INSERT:]
        self._gallery_model.insert_items(rows)
        if self._queue:
            self._insert_timer.start()
        elif self._end is not None:
            end, self._end = self._end, None
            self._worker = None
            end()

    @Slot(list)
    def _on_worker_items_produced(self, items: list[GalleryItem]) -> None:
        if self._is_current():
            self._queue.extend(items)
            if not self._insert_timer.isActive():
                self._insert_timer.start()

    @Slot(int, int)
    def _on_worker_progressed(self, done: int, total: int) -> None:
        if self._is_current():
            self.progressed.emit(done, total)

    @Slot()
    def _on_worker_finished(self) -> None:
        worker = self._worker
        if worker is not None and self._is_current():
            self.skipped_folders = list(worker.skipped_folders)
            self._end_after_queue(self._finish)

    @Slot(str)
    def _on_worker_failed(self, message: str) -> None:
        if self._is_current():
            self._end_after_queue(lambda: self.scan_failed.emit(message))

    @Slot()
    def _on_worker_cancelled(self) -> None:
        if self._is_current():
            self._end_after_queue(self.scan_cancelled.emit)

    def _finish(self) -> None:
        elapsed = time.perf_counter() - self._started
        logger.debug("%s: %d gallery items in %.1f s",
                     self._folder, self._gallery_model.rowCount(), elapsed)
        self.scan_finished.emit(elapsed)


def _could_not_be_read(count: int) -> str:
    folders, images = ("1 folder", "its") if count == 1 else (f"{count} folders", "their")
    return f"{folders} could not be read, so {images} images are not shown."
