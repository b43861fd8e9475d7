"""Main window: open a folder, score it in the background, review it and act on the decisions."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QMainWindow, QWidget

from engine.modelfile import ReferenceModel
from engine.plurals import counted
from gui.actions import WindowActions
from gui.dialogs import ShortcutDialog, show_report, show_warning
from gui.file_commands import FileCommands
from gui.file_jobs import FileJobs
from gui.folder_commands import FolderCommands, describe_missing_folder, dropped_folder
from gui.folder_review import FolderReview
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


class MainWindow(QMainWindow):
    """The Retina Curator window: gallery, threshold panel, detail pane and file commands.

    Signals:
        scoring_finished(): every image of the open folder has been scored.
        scoring_failed(str): scoring stopped on an error, described by the message.
        scoring_cancelled(): scoring stopped early at the user's request.
        move_finished(int, int): a move ended with this many files moved and failed.
        undo_finished(int, int): an undo ended with this many files moved back and failed.
        export_finished(object): an export ended with this engine.export_results.ExportSummary.
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
        # A folder named at start whose model failed to load, opened with the next model.
        self._waiting_folder: Path | None = None
        self._pool = QThreadPool(self)
        self.gallery_model = GalleryModel(parent=self)
        self._scanner = FolderScanner(self._pool, self.gallery_model, self)
        self._jobs = FileJobs(self._pool, self.gallery_model, self)
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
        self.folder_review = FolderReview(self.ui, self.gallery_model, self._scanner, self._jobs,
                                          self)
        self.file_commands = FileCommands(self, self.gallery_model, self._jobs, self._settings,
                                          lambda: self.folder_review.stopped_scan)
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
        self.controller.decision_applied.connect(self._on_controller_decision_applied)
        self.controller.decision_failed.connect(self._on_controller_decision_failed)
        self.status_bar.cancel_requested.connect(self._on_status_bar_cancel_requested)
        review = self.folder_review
        review.session_changed.connect(self._on_folder_review_session_changed)
        review.scanning_changed.connect(self._update_actions)
        review.error_occurred.connect(self._show_error)
        review.report_requested.connect(self._on_folder_review_report_requested)
        review.scoring_finished.connect(self.scoring_finished)
        review.scoring_failed.connect(self.scoring_failed)
        review.scoring_cancelled.connect(self.scoring_cancelled)
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
        return self.folder_review.model

    @property
    def folder(self) -> Path | None:
        """The open folder, or None before one is opened."""
        return None if self.session is None else self.session.folder

    @property
    def session(self) -> ReviewSession | None:
        """The review state of the open folder, or None before one is opened."""
        return self.folder_review.session

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
        self.folder_review.set_model(model)
        self._update_actions()
        self.model_changed.emit(model)
        if model is not None and self._waiting_folder is not None:
            folder, self._waiting_folder = self._waiting_folder, None
            self.open_folder(folder)

    def open_folder_with_model(self, folder: Path) -> None:
        """Open `folder` now if a model is loaded, else as soon as one loads."""
        if self.model is not None:
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
        session = self.folder_review.open(folder)
        if session is None:
            return False
        self.setWindowTitle(f"{folder} — {APP_NAME}")
        self.folder_commands.remember_folder(folder)
        if session.recovered:
            show_report(self, "Interrupted Moves Recovered", "Retina Curator was stopped "
                              "while moving files of this folder. Each file is now in "
                              "exactly one place:", session.recovered)
        if session.split_notice:
            show_report(self, "Review Split Between Two Databases", session.split_notice, [])
        if not self._unattended:
            show_stop_notice(self, session, self.file_commands.undo_hint)
        self.rescan()
        return True

    def reload_folder(self) -> bool:
        """Open the current folder again: its listing is read anew and changed files scored.

        Returns False if no folder is open or it cannot be opened again. A folder
        that no longer exists is closed, so that no command acts on files that are gone.
        """
        session = self.session
        if session is None:
            return False
        if not session.folder.is_dir():
            self._on_folder_missing(session.folder)
            return False
        return self.open_folder(session.folder)

    def thumbnails_loading(self) -> bool:
        """Return whether thumbnails of tiles already painted are still being decoded."""
        return self._scanner.thumbnails_loading()

    def rescan(self) -> None:
        """Score the open folder again, reading unchanged files from the score cache."""
        self.folder_review.rescan()

    def show_shortcuts(self) -> ShortcutDialog:
        """Open the list of keyboard shortcuts without blocking and return it."""
        dialog = ShortcutDialog(self.window_actions.shortcut_rows(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    # Opening folders

    @Slot(object)
    def _on_folder_missing(self, folder: Path) -> None:
        message = describe_missing_folder(folder)
        if self.session is not None and self.session.folder == folder \
                and not self._jobs.is_running():
            self._close_folder(message)
        self._show_error("Folder not found", message)

    def _close_folder(self, reason: str) -> None:
        """Close the open review and empty the gallery, as before the first folder opened."""
        self.folder_review.close()
        self.setWindowTitle(APP_NAME)
        self.gallery_view.set_placeholder_text(f"{reason} {self.ui.no_folder_text}")
        self._update_actions()

    @Slot(object)
    def _on_folder_review_session_changed(self, session: ReviewSession | None) -> None:
        self.controller.set_session(session)
        self.file_commands.set_session(session)

    @Slot(str, str, list)
    def _on_folder_review_report_requested(self, title: str, summary: str,
                                           lines: list[str]) -> None:
        if not self._unattended:
            show_report(self, title, summary, lines)

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
        verb = {"keep": "Kept", "reject": "Rejected"}.get(decision, "Cleared the decision on")
        self.status_bar.showMessage(f"{verb} {counted(count, 'image')}.", 4000)

    @Slot(str)
    def _on_controller_decision_failed(self, message: str) -> None:
        self._show_error("Saving the decision failed", message)

    @Slot()
    def _on_gallery_counts_changed(self) -> None:
        self.status_bar.set_counts(self.gallery_model.counts())
        self._update_actions()

    @Slot(float)
    def _on_gallery_threshold_changed(self, _threshold: float) -> None:
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
        self.folder_review.save_threshold()
        if self.session is not None:
            self.session.close()
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
        self.ui.update_actions(self.window_actions, has_model=self.model is not None,
                               has_folder=self.session is not None,
                               scanning=self._scanner.is_running(),
                               file_job=self._jobs.is_running(),
                               can_undo=self.file_commands.undo_batch is not None)

    def _show_error(self, title: str, message: str) -> None:
        logger.error("%s: %s", title, message)
        show_warning(self, title, message)
