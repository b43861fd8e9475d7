"""Background file jobs of the open folder: move rejects out, undo a move, export the kept set."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal, Slot

from engine.export import CleanedSetExport
from engine.export_results import ExportedFile, ExportSummary
from engine.images import Status
from engine.quarantine import MoveOutcome
from engine.review import ReviewStore
from engine.undo import UndoOutcome
from gui.batch_worker import BatchWorker
from gui.gallery_items import GalleryItem
from gui.gallery_model import GalleryModel
from gui.workers import ExportWorker, MoveWorker, UndoWorker

logger = logging.getLogger(__name__)


class JobKind(enum.StrEnum):
    """A kind of file job. The value is the verb shown with its progress."""

    MOVE = "Moving"
    UNDO = "Undoing"
    EXPORT = "Exporting"


@dataclass
class JobReport:
    """The end of a file job.

    `total` is the number of files the job acts on: the rejects a move was started
    with, the kept files an export copies, and the files of the batch an undo
    moves back, 0 until the undo has found its batch.
    `done` lists the relative paths moved, moved back or exported. `errors` has
    one sentence per file that failed, and the job's own failure if it stopped.
    `unknown_returns` are files moved back whose gallery items are no longer at
    hand (moved out before a restart), so the folder must be scanned again.
    `locked_out` is True when the job did not start because another process was
    moving files of the folder; `done` and `errors` are then empty. `batch_id` is
    the journaled batch that a move made or an undo moved back, or None.
    """

    kind: JobKind
    destination: Path | None = None
    total: int = 0
    done: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cancelled: bool = False
    failed: bool = False
    locked_out: bool = False
    unknown_returns: list[str] = field(default_factory=list)
    export_summary: ExportSummary | None = None
    batch_id: int | None = None

    def ended_cleanly(self) -> bool:
        """Return True if the job ran to its end without an error and, for an export,
        left complete manifests, so that its report has nothing the user must read.
        """
        if self.cancelled or self.failed or self.locked_out or self.errors:
            return False
        return self.export_summary is None or self.export_summary.complete


class FileJobs(QObject):
    """Runs one file job at a time and applies its results to the gallery.

    Moved files leave the gallery and their items are kept, so that an undo in
    the same session puts them back without decoding them again.

    Signals:
        progressed(str, int, int): the job's verb, files done and total files.
        job_ended(JobReport): the job ran to its end, was cancelled, failed, or
            did not start because another process was moving files of the folder.
    """

    progressed = Signal(str, int, int)
    job_ended = Signal(object)

    def __init__(self, pool: QThreadPool, gallery_model: GalleryModel,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = pool
        self._gallery_model = gallery_model
        self._worker: BatchWorker | None = None
        self._report: JobReport | None = None
        self._moved_items: dict[str, GalleryItem] = {}

    def is_running(self) -> bool:
        return self._worker is not None

    @property
    def running_report(self) -> JobReport | None:
        """The report of the running job with the files done so far, or None."""
        return self._report if self._worker is not None else None

    def forget_moved_items(self) -> None:
        """Drop the items kept for undo, as when another folder is opened."""
        self._moved_items.clear()

    def start_move(self, store: ReviewStore, relative_paths: list[str], destination: Path) -> None:
        """Move `relative_paths` of the store's folder into `destination` as one batch."""
        worker = MoveWorker(store.folder, relative_paths, destination, store)
        self._start(worker, JobReport(JobKind.MOVE, destination, total=len(relative_paths)))

    def start_undo(self, store: ReviewStore) -> None:
        """Move the files of the newest undoable batch back to their original paths."""
        self._start(UndoWorker(store), JobReport(JobKind.UNDO))

    def start_export(self, export: CleanedSetExport) -> None:
        """Run a CleanedSetExport whose destination and options were checked already."""
        self._start(ExportWorker(export),
                    JobReport(JobKind.EXPORT, export.destination, total=export.kept_count))

    def cancel(self) -> None:
        """Ask the running job to stop after the file in progress."""
        if self._worker is not None:
            self._worker.cancel()

    def detach(self) -> None:
        """Cancel the running job and ignore its remaining signals."""
        self.cancel()
        self._worker = None

    def _start(self, worker: BatchWorker, report: JobReport) -> None:
        if self._worker is not None:
            raise RuntimeError(f"{self._worker.action} is still running")
        worker.signals.items_produced.connect(self._on_worker_items_produced)
        worker.signals.progressed.connect(self._on_worker_progressed)
        worker.signals.finished.connect(self._on_worker_finished)
        worker.signals.cancelled.connect(self._on_worker_cancelled)
        worker.signals.failed.connect(self._on_worker_failed)
        worker.signals.locked_out.connect(self._on_worker_locked_out)
        self._worker = worker
        self._report = report
        logger.info("%s started", worker.action)
        self._pool.start(worker)

    def _is_current(self) -> bool:
        return self._worker is not None and self.sender() is self._worker.signals

    @Slot(list)
    def _on_worker_items_produced(self, outcomes: list[object]) -> None:
        if not self._is_current():
            return
        assert self._report is not None
        if self._report.kind is JobKind.MOVE:
            self._apply_moves([o for o in outcomes if isinstance(o, MoveOutcome)])
        elif self._report.kind is JobKind.UNDO:
            self._apply_returns([o for o in outcomes if isinstance(o, UndoOutcome)])
        else:
            self._note_exports([o for o in outcomes if isinstance(o, ExportedFile)])

    def _apply_moves(self, outcomes: list[MoveOutcome]) -> None:
        assert self._report is not None
        moved = [outcome.relative_path for outcome in outcomes if outcome.error is None]
        self._report.done += moved
        self._report.errors += [outcome.error for outcome in outcomes if outcome.error]
        for item in self._gallery_model.remove_paths(moved):
            self._moved_items[item.record.relative_path] = item

    def _apply_returns(self, outcomes: list[UndoOutcome]) -> None:
        assert self._report is not None
        returned = [outcome.relative_path for outcome in outcomes if outcome.error is None]
        self._report.done += returned
        self._report.errors += [outcome.error for outcome in outcomes if outcome.error]
        items = []
        for relative_path in returned:
            item = self._moved_items.pop(relative_path, None)
            if item is None:
                self._report.unknown_returns.append(relative_path)
            elif self._gallery_model.row_of(relative_path) is None:
                items.append(_returned(item))
        self._gallery_model.insert_items(items)

    def _note_exports(self, outcomes: list[ExportedFile]) -> None:
        assert self._report is not None
        self._report.done += [o.relative_path for o in outcomes if o.destination is not None]
        self._report.errors += [outcome.error for outcome in outcomes if outcome.error]

    @Slot(int, int)
    def _on_worker_progressed(self, done: int, total: int) -> None:
        if self._is_current():
            assert self._report is not None
            if self._report.kind is JobKind.UNDO:
                # The undo worker's total is the batch's files in quarantine.
                self._report.total = total
            self.progressed.emit(self._report.kind.value, done, total)

    @Slot()
    def _on_worker_finished(self) -> None:
        if self._is_current():
            self._end()

    @Slot()
    def _on_worker_cancelled(self) -> None:
        if self._is_current():
            assert self._report is not None
            self._report.cancelled = True
            self._end()

    @Slot(str)
    def _on_worker_failed(self, message: str) -> None:
        if self._is_current():
            assert self._report is not None
            self._report.failed = True
            self._report.errors.append(message)
            self._end()

    @Slot(str)
    def _on_worker_locked_out(self, _message: str) -> None:
        if self._is_current():
            assert self._report is not None
            self._report.locked_out = True
            self._end()

    def _end(self) -> None:
        worker, report = self._worker, self._report
        self._worker = self._report = None
        assert report is not None
        if isinstance(worker, ExportWorker):
            report.export_summary = worker.export.summary
        elif isinstance(worker, (MoveWorker, UndoWorker)):
            report.batch_id = worker.batch_id
        logger.info("%s ended: %d files done, %d errors", report.kind.value, len(report.done),
                    len(report.errors))
        self.job_ended.emit(report)


def _returned(item: GalleryItem) -> GalleryItem:
    """Return the gallery item of a file moved back, which reads its thumbnail again if
    it had none.

    A tile painted while its file was away got no thumbnail, or the problem that the
    file was gone. The record is copied, so that a thumbnail still on its way for the
    item as it was is not given to the new one.
    """
    if item.thumbnail is not None or item.record.status is not Status.OK:
        return item
    return GalleryItem.create(replace(item.record), None, deferred=True)
