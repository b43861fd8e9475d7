"""Main window: open a folder, score it in the background, review it and act on the decisions."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from PySide6.QtCore import (
    QModelIndex,
    QSettings,
    QSize,
    Qt,
    QThreadPool,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QMainWindow, QWidget

from engine.modelfile import ReferenceModel
from engine.reviewdb import ReviewStoreError
from gui.actions import WindowActions
from gui.dialogs import ShortcutDialog, show_report, show_warning
from gui.file_commands import FileCommands
from gui.file_jobs import FileJobs
from gui.folder_commands import FolderCommands, describe_missing_folder, dropped_folder
from gui.gallery_model import GalleryModel
from gui.model_commands import ModelCommands
from gui.review_controller import ReviewController
from gui.review_session import ReviewSession
from gui.scanner import FolderScanner
from gui.settings import WindowSettings
from gui.stop_notice import show_stop_notice
from gui.window_layout import WindowLayout

logger = logging.getLogger(__name__)

APP_NAME = "Retina Curator"
DEFAULT_SIZE = QSize(1200, 800)

# Closing waits this long for a running job to stop at its next file. Scoring
# stops within one batch of decodes, a move within one file copy.
SHUTDOWN_TIMEOUT_MS = 30_000

# A dragged threshold is stored in the review this long after the last move.
_THRESHOLD_SAVE_DELAY_MS = 500

_NO_MODEL_TEXT = "No model is loaded, so images cannot be scored. Choose a model file " \
                 "with Model › Open Model…."
_SCORING_TEXT = "Listing and scoring images…"
_EMPTY_FOLDER_TEXT = "No image files were found in this folder."
_NOTHING_SHOWN_TEXT = ("No image to show here. Choose Show: All to see every image left "
                       "in the folder.")


class MainWindow(QMainWindow):
    """The Retina Curator window: gallery, threshold panel, detail pane and file commands.

    Signals:
        scoring_finished(): every image of the open folder has been scored.
        scoring_failed(str): scoring stopped on an error, described by the message.
        scoring_cancelled(): scoring stopped early at the user's request.
        move_finished(int, int): a move ended with this many files moved and failed.
        undo_finished(int, int): an undo ended with this many files moved back and failed.
        export_finished(object): an export ended with this engine.export.ExportSummary.
        model_changed(object): the window scores with this ReferenceModel now, or None.
    """

    scoring_finished = Signal()
    scoring_failed = Signal(str)
    scoring_cancelled = Signal()
    move_finished = Signal(int, int)
    undo_finished = Signal(int, int)
    export_finished = Signal(object)
    model_changed = Signal(object)

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None,
                 unattended: bool = False) -> None:
        """`unattended` makes a window that no one reads, such as one that saves a
        screenshot: it leaves the one-time report of a stopped move for the next window.
        """
        super().__init__(parent)
        self._settings = WindowSettings(settings)
        self._unattended = unattended
        self._model: ReferenceModel | None = None
        self._session: ReviewSession | None = None
        # A folder named at start whose model failed to load, opened with the next model.
        self._waiting_folder: Path | None = None
        self._pool = QThreadPool(self)
        self.gallery_model = GalleryModel(parent=self)
        self._scanner = FolderScanner(self._pool, self.gallery_model, self)
        self._jobs = FileJobs(self._pool, self.gallery_model, self)
        self._threshold_timer = QTimer(self)
        self._threshold_timer.setSingleShot(True)
        self._threshold_timer.setInterval(_THRESHOLD_SAVE_DELAY_MS)
        self._build_ui()
        self._connect_signals()
        self.ui.restore()
        self._update_actions()

    # Construction

    def _build_ui(self) -> None:
        self.setWindowTitle(APP_NAME)
        self.resize(DEFAULT_SIZE)
        self.setAcceptDrops(True)
        self.ui = WindowLayout(self, self.gallery_model, self._pool, self._settings)
        self.proxy_model = self.ui.proxy_model
        self.gallery_view = self.ui.gallery_view
        self.threshold_panel = self.ui.threshold_panel
        self.detail_pane = self.ui.detail_pane
        self.status_bar = self.ui.status_bar
        self.filter_combo = self.ui.filter_combo
        self.sort_combo = self.ui.sort_combo
        self.size_slider = self.ui.size_slider
        self.window_actions = WindowActions(self, self.gallery_view)
        self.ui.add_actions(self.window_actions)
        self.controller = ReviewController(self.gallery_view, self.proxy_model,
                                           self.gallery_model, self)
        self.file_commands = FileCommands(self, self.gallery_model, self._jobs, self._settings)
        self.folder_commands = FolderCommands(self, self._settings)
        self.model_commands = ModelCommands(self, self._settings, self._jobs)
        self.gallery_view.set_placeholder_text(self.ui.no_folder_text)

    def _connect_signals(self) -> None:
        actions = self.window_actions
        actions.quit.triggered.connect(self.close)
        actions.shortcuts.triggered.connect(self.show_shortcuts)
        self.controller.connect_actions(actions)
        self.file_commands.connect_actions(actions)
        self.folder_commands.connect_actions(actions)
        self.folder_commands.folder_requested.connect(self.open_folder)
        self.folder_commands.folder_missing.connect(self._on_folder_missing)
        self.window_actions.reload_folder.triggered.connect(self.reload_folder)
        self.model_commands.connect_actions(actions)
        self.model_commands.model_loaded.connect(self.set_model)
        self.model_changed.connect(self.model_commands.remember_model)
        self._connect_workers()

    def _connect_workers(self) -> None:
        self.gallery_model.counts_changed.connect(self._on_gallery_counts_changed)
        self.gallery_model.threshold_changed.connect(self._on_gallery_threshold_changed)
        self._threshold_timer.timeout.connect(self._save_threshold)
        self.controller.decision_applied.connect(self._on_controller_decision_applied)
        self.controller.decision_failed.connect(self._on_controller_decision_failed)
        self.status_bar.cancel_requested.connect(self._on_status_bar_cancel_requested)
        self._scanner.progressed.connect(self._on_scanner_progressed)
        self._scanner.scan_finished.connect(self._on_scanner_scan_finished)
        self._scanner.scan_failed.connect(self._on_scanner_scan_failed)
        self._scanner.scan_cancelled.connect(self._on_scanner_scan_cancelled)
        self._jobs.progressed.connect(self._on_jobs_progressed)
        self._jobs.job_ended.connect(self._on_jobs_job_ended)
        self.file_commands.undo_available.connect(self._on_file_commands_undo_available)
        self.file_commands.rescan_requested.connect(self.rescan)
        self.file_commands.folder_missing.connect(self._on_folder_missing)
        self.file_commands.move_finished.connect(self.move_finished)
        self.file_commands.undo_finished.connect(self.undo_finished)
        self.file_commands.export_finished.connect(self.export_finished)

    # Public interface

    @property
    def model(self) -> ReferenceModel | None:
        """The reference model used for scoring, or None when none could be loaded."""
        return self._model

    @property
    def folder(self) -> Path | None:
        """The open folder, or None before one is opened."""
        return None if self._session is None else self._session.folder

    @property
    def session(self) -> ReviewSession | None:
        """The review state of the open folder, or None before one is opened."""
        return self._session

    def is_busy(self) -> bool:
        """Return True while scoring or a file job runs."""
        return self._scanner.is_running() or self._jobs.is_running()

    def running_job_count(self) -> int:
        """Return the number of background jobs whose threads have not returned yet."""
        return self._pool.activeThreadCount()

    def set_model(self, model: ReferenceModel | None) -> None:
        """Use `model` for scoring and flagging. None disables scoring.

        With a folder open, a running scan is cancelled and the folder scored again
        through the score cache, so only files that `model` has not scored yet go
        through it. The folder's threshold choice for `model` applies, else its
        calibrated threshold, and the curator's decisions stay.
        """
        self._save_threshold()
        self._model = model
        self.ui.set_model(model)
        session = self._session
        if model is not None:
            self.gallery_model.set_threshold(model.threshold if session is None
                                             else session.use_model(model))
        if session is None:
            self.gallery_view.set_placeholder_text(self.ui.no_folder_text if model
                                                   else _NO_MODEL_TEXT)
        elif model is None:
            self._scanner.detach()
            self._end_scoring()
        else:
            # NOTE: rescan() does nothing while files are moved or exported, so
            # ModelCommands does not switch models then.
            self.rescan()
        self._update_actions()
        self.model_changed.emit(model)
        if model is not None and self._waiting_folder is not None:
            folder, self._waiting_folder = self._waiting_folder, None
            self.open_folder(folder)

    def open_folder_with_model(self, folder: Path) -> None:
        """Open `folder` now if a model is loaded, else as soon as one loads."""
        if self._model is not None:
            self.open_folder(folder)
            return
        self._waiting_folder = folder
        self.gallery_view.set_placeholder_text(
            f"No model is loaded, so {folder} cannot be scored yet. Choose a model with "
            "Model › Open Model… or Model › Use Bundled Model, and the folder opens.")

    def open_folder(self, folder: Path | str) -> bool:
        """Open the review of `folder` and score it, or return False if that is not possible.

        Cached scores show at once and only new or changed files are scored. A scan
        already running is cancelled. The reason for a refusal is shown in a message box.
        """
        folder = Path(folder).expanduser().resolve()
        problem = self._open_problem(folder)
        if problem:
            self._show_error("Opening folder failed", problem)
            return False
        assert self._model is not None
        try:
            session = ReviewSession.open(folder, self._model)
            overrides, threshold = session.overrides(), session.threshold()
        except (ReviewStoreError, sqlite3.Error) as error:
            self._show_error("Opening folder failed", str(error))
            return False
        self._switch_session(session)
        self.gallery_model.set_overrides(overrides)
        self.gallery_model.set_threshold(threshold)
        self.setWindowTitle(f"{folder} — {APP_NAME}")
        self.folder_commands.remember_folder(folder)
        if session.recovered:
            show_report(self, "Interrupted Moves Recovered", "Retina Curator was stopped "
                              "while moving files of this folder. Each file is now in "
                              "exactly one place:", session.recovered)
        if not self._unattended:
            show_stop_notice(self, session, self.file_commands.undo_hint)
        self.rescan()
        return True

    def reload_folder(self) -> bool:
        """Open the current folder again: its listing is read anew and changed files scored.

        Returns False if no folder is open or it cannot be opened again. A folder
        that no longer exists is closed, so that no command acts on files that are gone.
        """
        if self._session is None:
            return False
        if not self._session.folder.is_dir():
            self._on_folder_missing(self._session.folder)
            return False
        return self.open_folder(self._session.folder)

    def thumbnails_loading(self) -> bool:
        """Return whether thumbnails of tiles already painted are still being decoded."""
        return self._scanner.thumbnails_loading()

    def rescan(self) -> None:
        """Score the open folder again, reading unchanged files from the score cache."""
        if self._session is None or self._model is None or self._jobs.is_running():
            return
        # The items kept for undo may hold another model's scores. Files that an
        # undo brings back without their item are found by the scan that follows.
        self._jobs.forget_moved_items()
        self.gallery_view.set_placeholder_text(_SCORING_TEXT)
        self._scanner.start(self._model, self._session.folder,
                            self.gallery_view.thumbnail_pixels, self._session.store)
        self.status_bar.show_progress("Scoring", 0, 0)
        self._update_actions()

    def show_shortcuts(self) -> ShortcutDialog:
        """Open the list of keyboard shortcuts without blocking and return it."""
        dialog = ShortcutDialog(self.window_actions.shortcut_rows(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

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
        self._save_threshold()
        # The previous store is not closed here: a cancelled scan may still save its
        # last scores to it, and its connection closes once the worker lets go of it.
        self._session = session
        self._jobs.forget_moved_items()
        self.controller.set_session(session)
        self.file_commands.set_session(session)

    @Slot(object)
    def _on_folder_missing(self, folder: Path) -> None:
        message = describe_missing_folder(folder)
        if self._session is not None and self._session.folder == folder \
                and not self._jobs.is_running():
            self._close_folder(message)
        self._show_error("Folder not found", message)

    def _close_folder(self, reason: str) -> None:
        """Close the open review and empty the gallery, as before the first folder opened."""
        # Nothing more is saved to the review, because its database may have gone with
        # the folder. So a threshold moved in the last half second is not kept.
        self._threshold_timer.stop()
        scanning = self._scanner.is_running()
        self._scanner.detach()
        session, self._session = self._session, None
        self._jobs.forget_moved_items()
        self.controller.set_session(None)
        self.file_commands.set_session(None)
        # A cancelled scan may still save its last scores, as in _switch_session().
        if session is not None and not scanning:
            session.close()
        self.gallery_model.clear()
        self.gallery_model.set_overrides({})
        # A model reset moves the view's current index without a signal.
        self.detail_pane.show_index(QModelIndex())
        self.detail_pane.set_selection_count(0)
        if self._model is not None:
            self.gallery_model.set_threshold(self._model.threshold)
        self.status_bar.hide_progress()
        # A "Ready: …" message of the closed folder would read as if it were still open.
        self.status_bar.clearMessage()
        self.threshold_panel.refresh_histogram()
        self.setWindowTitle(APP_NAME)
        self.gallery_view.set_placeholder_text(f"{reason} {self.ui.no_folder_text}")
        self._update_actions()

    @Slot()
    def _save_threshold(self) -> None:
        self._threshold_timer.stop()
        if self._session is None:
            return
        try:
            self._session.save_threshold(self.gallery_model.threshold)
        except (ReviewStoreError, sqlite3.Error) as error:
            logger.error("Saving the threshold of %s failed: %s", self._session.folder, error)
            self.status_bar.showMessage(f"Saving the threshold failed: {error}", 10_000)

    # Scoring

    @Slot(int, int)
    def _on_scanner_progressed(self, done: int, total: int) -> None:
        self.status_bar.show_progress("Scoring", done, total)

    @Slot(float)
    def _on_scanner_scan_finished(self, elapsed: float) -> None:
        self._end_scoring()
        total = self.gallery_model.rowCount()
        # Unchanged files come from the score cache, so "scored" would overstate the work.
        self.status_bar.showMessage(f"Ready: {total} files in {elapsed:.1f} s.", 10_000)
        self.scoring_finished.emit()

    @Slot(str)
    def _on_scanner_scan_failed(self, message: str) -> None:
        self._end_scoring()
        self._show_error("Scoring failed", message)
        self.scoring_failed.emit(message)

    @Slot()
    def _on_scanner_scan_cancelled(self) -> None:
        self._end_scoring()
        self.status_bar.showMessage(
            f"Scoring cancelled after {self.gallery_model.rowCount()} files.", 10_000
        )
        self.scoring_cancelled.emit()

    def _end_scoring(self) -> None:
        self.status_bar.hide_progress()
        self.threshold_panel.refresh_histogram()
        if self._session is not None:
            try:
                self._session.flush_pending()
                # The scan may have dropped decisions on files that took the name of
                # a file that left, and the gallery read the decisions before it.
                self.gallery_model.set_overrides(self._session.overrides())
            except (ReviewStoreError, sqlite3.Error) as error:
                self._show_error("Saving decisions failed", str(error))
        self.gallery_view.set_placeholder_text(
            _EMPTY_FOLDER_TEXT if self.gallery_model.rowCount() == 0 else _NOTHING_SHOWN_TEXT
        )
        if not self.gallery_view.currentIndex().isValid() and self.proxy_model.rowCount():
            self.gallery_view.setCurrentIndex(self.proxy_model.index(0, 0))
        self._update_actions()

    # File jobs

    @Slot(str, int, int)
    def _on_jobs_progressed(self, verb: str, done: int, total: int) -> None:
        self.status_bar.show_progress(verb, done, total)

    @Slot(object)
    def _on_jobs_job_ended(self, _report: object) -> None:
        self.status_bar.hide_progress()
        self._update_actions()

    @Slot(str)
    def _on_file_commands_undo_available(self, text: str) -> None:
        self.window_actions.undo.setText(text or "&Undo Move")
        self._update_actions()

    # Slots of widgets and actions

    @Slot(int, str)
    def _on_controller_decision_applied(self, count: int, decision: str) -> None:
        noun = "image" if count == 1 else "images"
        verb = {"keep": "Kept", "reject": "Rejected"}.get(decision, "Cleared the decision on")
        self.status_bar.showMessage(f"{verb} {count} {noun}.", 4000)

    @Slot(str)
    def _on_controller_decision_failed(self, message: str) -> None:
        self._show_error("Saving the decision failed", message)

    @Slot()
    def _on_gallery_counts_changed(self) -> None:
        self.status_bar.set_counts(self.gallery_model.counts())
        self._update_actions()

    @Slot(float)
    def _on_gallery_threshold_changed(self, _threshold: float) -> None:
        self._threshold_timer.start()
        self._update_actions()

    @Slot()
    def _on_status_bar_cancel_requested(self) -> None:
        self._scanner.cancel()
        self._jobs.cancel()

    # Window events

    def closeEvent(self, event: QCloseEvent) -> None:
        """Cancel running jobs and wait for them, so no thread outlives the window.

        A running move, undo or export is stopped only after the user confirms, and
        the window stays open otherwise. Scoring stops without a question, because
        a cancelled scan keeps its scores and changes no file.
        """
        if not self.file_commands.confirm_close():
            event.ignore()
            return
        if self.is_busy():
            logger.info("cancelling background jobs because the window closes")
        self._scanner.detach()
        self._jobs.detach()
        if not self._pool.waitForDone(SHUTDOWN_TIMEOUT_MS):
            logger.error("background jobs still run %d s after the window closed",
                         SHUTDOWN_TIMEOUT_MS // 1000)
        self._save_threshold()
        if self._session is not None:
            self._session.close()
        self.ui.save()
        self._settings.sync()
        super().closeEvent(event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_folder(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        folder = dropped_folder(event)
        if folder is not None:
            event.acceptProposedAction()
            self.open_folder(folder)

    # Helpers

    def _update_actions(self) -> None:
        self.ui.update_actions(self.window_actions, has_model=self._model is not None,
                               has_folder=self._session is not None,
                               scanning=self._scanner.is_running(),
                               file_job=self._jobs.is_running(),
                               can_undo=self.file_commands.undo_batch is not None)

    def _show_error(self, title: str, message: str) -> None:
        logger.error("%s: %s", title, message)
        show_warning(self, title, message)
