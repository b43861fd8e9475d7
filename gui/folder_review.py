"""The open folder's review: the model that scores it, its session, its scans and its threshold."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QModelIndex, QObject, QTimer, Signal, Slot

from engine.modelfile import ReferenceModel
from engine.reviewdb import ReviewStoreError
from gui.file_jobs import FileJobs
from gui.gallery_model import GalleryModel
from gui.review_session import ReviewSession
from gui.scanner import FolderScanner
from gui.window_layout import WindowLayout

logger = logging.getLogger(__name__)

# A dragged threshold is stored in the review this long after the last move.
_THRESHOLD_SAVE_DELAY_MS = 500

_NO_MODEL_TEXT = "No model is loaded, so images cannot be scored. Choose a model file " \
                 "with Model › Open Model…."
_SCORING_TEXT = "Listing and scoring images…"
_EMPTY_FOLDER_TEXT = "No image files were found in this folder."
_NOTHING_SHOWN_TEXT = ("No image to show here. Choose Show: All to see every image left "
                       "in the folder.")


@dataclass(frozen=True)
class StoppedScan:
    """How far a scan of the open folder got before it was cancelled or failed.

    `scored` counts the files it put into the gallery, from the score cache or
    scored anew, and `total` the image files it listed, 0 when it stopped before
    the listing was done.
    """

    scored: int
    total: int

    @property
    def unscored(self) -> int | None:
        """The number of listed files the scan did not reach, or None when unknown."""
        return self.total - self.scored if self.total else None


class FolderReview(QObject):
    """The review of the window's open folder and the model that scores it.

    Opening a folder makes its ReviewSession current and shows its decisions and
    threshold in the gallery. A scan fills the gallery in the background, and
    closing the folder empties it. A new threshold is stored in the review once it
    has not changed for _THRESHOLD_SAVE_DELAY_MS. `stopped_scan` is the last scan
    when it left files of the folder unscored.

    Signals:
        session_changed(object): this ReviewSession is open now, or None after closing.
        scanning_changed(): a scan started or ended, so the enabled actions may change.
        scoring_finished(): every image of the open folder has been scored.
        scoring_failed(str): scoring stopped on an error, described by the message.
        scoring_cancelled(): scoring stopped early at the user's request.
        error_occurred(str, str): opening the folder, scoring it or saving its
            decisions failed, with this title and message.
        report_requested(str, str, list): a finished scan has something to report,
            with this title, summary and list of lines.
    """

    session_changed = Signal(object)
    scanning_changed = Signal()
    scoring_finished = Signal()
    scoring_failed = Signal(str)
    scoring_cancelled = Signal()
    error_occurred = Signal(str, str)
    report_requested = Signal(str, str, list)

    def __init__(self, ui: WindowLayout, gallery_model: GalleryModel, scanner: FolderScanner,
                 jobs: FileJobs, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ui = ui
        self._gallery_model = gallery_model
        self._scanner = scanner
        self._jobs = jobs
        self._model: ReferenceModel | None = None
        self._session: ReviewSession | None = None
        self._stopped_scan: StoppedScan | None = None
        # The subfolders of the open folder that a scan could not list, as last reported.
        self._reported_skipped: list[str] = []
        # The number of image files the running scan listed, 0 until it has.
        self._scan_total = 0
        self._threshold_timer = QTimer(self)
        self._threshold_timer.setSingleShot(True)
        self._threshold_timer.setInterval(_THRESHOLD_SAVE_DELAY_MS)
        self._connect_signals()

    def _connect_signals(self) -> None:
        self._gallery_model.threshold_changed.connect(self._on_gallery_threshold_changed)
        self._threshold_timer.timeout.connect(self.save_threshold)
        self._scanner.progressed.connect(self._on_scanner_progressed)
        self._scanner.scan_finished.connect(self._on_scanner_scan_finished)
        self._scanner.scan_failed.connect(self._on_scanner_scan_failed)
        self._scanner.scan_cancelled.connect(self._on_scanner_scan_cancelled)

    @property
    def model(self) -> ReferenceModel | None:
        """The reference model used for scoring, or None when none could be loaded."""
        return self._model

    @property
    def session(self) -> ReviewSession | None:
        """The review state of the open folder, or None before one is opened."""
        return self._session

    @property
    def stopped_scan(self) -> StoppedScan | None:
        """The last scan of the open folder when it was cancelled or failed before it
        reached every file. None after a scan that reached every file, while a scan
        runs, and before the first scan.
        """
        return self._stopped_scan

    def set_model(self, model: ReferenceModel | None) -> None:
        """Use `model` for scoring and flagging, and score the open folder again with it.

        None disables scoring and stops a running scan.
        """
        self.save_threshold()
        self._model = model
        self._ui.set_model(model)
        session = self._session
        if model is not None:
            self._gallery_model.set_threshold(model.threshold if session is None
                                              else session.use_model(model))
        if session is None:
            self._ui.gallery_view.set_placeholder_text(self._ui.no_folder_text if model
                                                       else _NO_MODEL_TEXT)
        elif model is None:
            if self._scanner.is_running():
                self._note_stopped_scan()
            self._scanner.detach()
            self._end_scoring()
        else:
            # NOTE: rescan() does nothing while files are moved or exported, so
            # ModelCommands does not switch models then.
            self.rescan()

    def open(self, folder: Path) -> ReviewSession | None:
        """Open the review of `folder` and show its decisions and threshold in the gallery.

        Returns the session, or None if the folder cannot be opened, after
        error_occurred has given the reason. The caller scores the folder with rescan().
        """
        problem = self._open_problem(folder)
        if problem:
            self.error_occurred.emit("Opening folder failed", problem)
            return None
        assert self._model is not None
        try:
            session = ReviewSession.open(folder, self._model)
            overrides, threshold = session.overrides(), session.threshold()
        except (ReviewStoreError, sqlite3.Error) as error:
            self.error_occurred.emit("Opening folder failed", str(error))
            return None
        self._switch_session(session)
        self._gallery_model.set_overrides(overrides)
        self._gallery_model.set_threshold(threshold)
        return session

    def rescan(self) -> None:
        """Score the open folder again, reading unchanged files from the score cache."""
        if self._session is None or self._model is None or self._jobs.is_running():
            return
        # The items kept for undo may hold another model's scores. Files that an
        # undo brings back without their item are found by the scan that follows.
        self._jobs.forget_moved_items()
        self._stopped_scan = None
        self._scan_total = 0
        self._ui.gallery_view.set_placeholder_text(_SCORING_TEXT)
        self._scanner.start(self._model, self._session.folder,
                            self._ui.gallery_view.thumbnail_pixels, self._session.store)
        self._ui.status_bar.show_progress("Scoring", 0, 0)
        self.scanning_changed.emit()

    def close(self) -> None:
        """Close the open review and empty the gallery, as before the first folder opened."""
        # Nothing more is saved to the review, because its database may have gone with
        # the folder. So a threshold moved in the last half second is not kept.
        self._threshold_timer.stop()
        scanning = self._scanner.is_running()
        self._scanner.detach()
        self._stopped_scan = None
        self._reported_skipped = []
        session, self._session = self._session, None
        self._jobs.forget_moved_items()
        self.session_changed.emit(None)
        # A cancelled scan may still save its last scores, as in _switch_session().
        if session is not None and not scanning:
            session.close()
        self._gallery_model.clear()
        self._gallery_model.set_overrides({})
        # A model reset moves the view's current index without a signal.
        self._ui.detail_pane.show_index(QModelIndex())
        self._ui.detail_pane.set_selection_count(0)
        if self._model is not None:
            self._gallery_model.set_threshold(self._model.threshold)
        self._ui.status_bar.hide_progress()
        # A "Ready: …" message of the closed folder would read as if it were still open.
        self._ui.status_bar.clearMessage()
        self._ui.threshold_panel.refresh_histogram()

    @Slot()
    def save_threshold(self) -> None:
        """Store the gallery's threshold in the open review now.

        A failure is logged and shown in the status bar, not raised.
        """
        self._threshold_timer.stop()
        if self._session is None:
            return
        try:
            self._session.save_threshold(self._gallery_model.threshold)
        except (ReviewStoreError, sqlite3.Error) as error:
            logger.error("Saving the threshold of %s failed: %s", self._session.folder, error)
            self._ui.status_bar.showMessage(f"Saving the threshold failed: {error}", 10_000)

    # Opening folders

    def _open_problem(self, folder: Path) -> str:
        if not folder.exists():
            return f"{folder} does not exist."
        if not folder.is_dir():
            return f"{folder} is not a folder."
        if self._jobs.is_running():
            return "Files are being moved or exported. Wait until that ends."
        if self._model is None:
            return _NO_MODEL_TEXT
        return ""

    def _switch_session(self, session: ReviewSession) -> None:
        """Make `session` the open review, storing the threshold of the previous one."""
        self.save_threshold()
        # The previous store is not closed here: a cancelled scan may still save its
        # last scores to it, and its connection closes once the worker lets go of it.
        self._session = session
        self._reported_skipped = []
        self._jobs.forget_moved_items()
        self.session_changed.emit(session)

    @Slot(float)
    def _on_gallery_threshold_changed(self, _threshold: float) -> None:
        self._threshold_timer.start()

    # Scoring

    @Slot(int, int)
    def _on_scanner_progressed(self, done: int, total: int) -> None:
        self._scan_total = total
        self._ui.status_bar.show_progress("Scoring", done, total)

    @Slot(float)
    def _on_scanner_scan_finished(self, elapsed: float) -> None:
        self._end_scoring()
        total = self._gallery_model.rowCount()
        self._ui.status_bar.showMessage(*self._scanner.finished_message(total, elapsed))
        skipped = [folder.path for folder in self._scanner.skipped_folders]
        # Reported once a folder, not again on each reload while it stays unreadable.
        if skipped and skipped != self._reported_skipped:
            self.report_requested.emit("Folders Not Read", *self._scanner.skipped_folders_report())
        self._reported_skipped = skipped
        self.scoring_finished.emit()

    @Slot(str)
    def _on_scanner_scan_failed(self, message: str) -> None:
        self._note_stopped_scan()
        self._end_scoring()
        self.error_occurred.emit("Scoring failed", message)
        self.scoring_failed.emit(message)

    @Slot()
    def _on_scanner_scan_cancelled(self) -> None:
        self._note_stopped_scan()
        self._end_scoring()
        self._ui.status_bar.showMessage(
            f"Scoring cancelled after {self._gallery_model.rowCount()} files.", 10_000
        )
        self.scoring_cancelled.emit()

    def _note_stopped_scan(self) -> None:
        scored = self._gallery_model.rowCount()
        # A cancel that comes after the last file stops a scan that left none out.
        if self._scan_total == 0 or scored < self._scan_total:
            self._stopped_scan = StoppedScan(scored, self._scan_total)
            logger.info("scoring of %s stopped after %d of %d files",
                        None if self._session is None else self._session.folder,
                        scored, self._scan_total)

    def _end_scoring(self) -> None:
        self._ui.status_bar.hide_progress()
        self._ui.threshold_panel.refresh_histogram()
        if self._session is not None:
            try:
                self._session.flush_pending()
                # The scan may have dropped decisions on files that took the name of
                # a file that left, and the gallery read the decisions before it.
                self._gallery_model.set_overrides(self._session.overrides())
            except (ReviewStoreError, sqlite3.Error) as error:
                self.error_occurred.emit("Saving decisions failed", str(error))
        view = self._ui.gallery_view
        view.set_placeholder_text(
            _EMPTY_FOLDER_TEXT if self._gallery_model.rowCount() == 0 else _NOTHING_SHOWN_TEXT
        )
        proxy = self._ui.proxy_model
        if not view.currentIndex().isValid() and proxy.rowCount():
            view.setCurrentIndex(proxy.index(0, 0))
        self.scanning_changed.emit()
