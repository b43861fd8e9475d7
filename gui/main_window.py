"""Main window: open a folder, score it in the background, review and move out rejects."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QStyle,
    QToolBar,
    QWidget,
)

from engine.modelfile import ReferenceModel
from engine.quarantine import default_quarantine_dir
from gui.gallery_model import FilterMode, GalleryModel, GalleryProxyModel, SortKey
from gui.gallery_view import GalleryView
from gui.mover import FileMover
from gui.scanner import FolderScanner
from gui.status_bar import MainStatusBar

logger = logging.getLogger(__name__)

APP_NAME = "Retina Curator"
DEFAULT_SIZE = QSize(1200, 800)

# Closing waits this long for a running job to stop at its next file. Scoring
# stops within one batch of decodes, a move within one file copy.
SHUTDOWN_TIMEOUT_MS = 30_000

_SETTINGS_GEOMETRY = "window/geometry"
_SETTINGS_LAST_FOLDER = "folders/last"

_NO_FOLDER_TEXT = "Open a folder of images to score it: File › Open Folder… (Ctrl+O), " \
                  "or drop a folder here."
_NO_MODEL_TEXT = "No model is loaded, so images cannot be scored. Start Retina Curator " \
                 "with --model and a valid model file."
_SCORING_TEXT = "Listing and scoring images…"
_EMPTY_FOLDER_TEXT = "No image files were found in this folder."


class MainWindow(QMainWindow):
    """The Retina Curator window: a gallery of one folder's images sorted by score.

    Signals:
        scoring_finished(): every image of the open folder has been scored.
        scoring_failed(str): scoring stopped on an error, described by the message.
        scoring_cancelled(): scoring stopped early at the user's request.
        move_finished(int, int): a move ended with this many files moved and failed.
    """

    scoring_finished = Signal()
    scoring_failed = Signal(str)
    scoring_cancelled = Signal()
    move_finished = Signal(int, int)

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._model: ReferenceModel | None = None
        self._folder: Path | None = None
        self._pool = QThreadPool(self)
        self.gallery_model = GalleryModel(parent=self)
        self._scanner = FolderScanner(self._pool, self.gallery_model, self)
        self._mover = FileMover(self._pool, self.gallery_model, self)
        self._build_ui()
        self._connect_signals()
        self._restore_settings()
        self._update_actions()

    # Construction

    def _build_ui(self) -> None:
        self.setWindowTitle(APP_NAME)
        self.resize(DEFAULT_SIZE)
        self.setAcceptDrops(True)
        self.proxy_model = GalleryProxyModel(self)
        self.proxy_model.setSourceModel(self.gallery_model)
        self.gallery_view = GalleryView(self)
        self.gallery_view.setModel(self.proxy_model)
        self.gallery_view.set_placeholder_text(_NO_FOLDER_TEXT)
        self.setCentralWidget(self.gallery_view)
        self.status_bar = MainStatusBar(self)
        self.setStatusBar(self.status_bar)
        self._build_actions()
        self._build_menus()
        self._build_toolbar()

    def _build_actions(self) -> None:
        style = self.style()
        self.open_action = QAction(
            style.standardIcon(QStyle.StandardPixmap.SP_DirOpenIcon), "&Open Folder…", self
        )
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.setStatusTip("Choose a folder and score every image in it")
        self.move_action = QAction(
            style.standardIcon(QStyle.StandardPixmap.SP_FileDialogToParent),
            "&Move Flagged Out…", self,
        )
        self.move_action.setStatusTip(
            "Move every flagged image to the quarantine folder beside the open folder"
        )
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(self.open_action)
        file_menu.addAction(self.move_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)

    def _build_toolbar(self) -> None:
        toolbar = QToolBar("Main", self)
        toolbar.setObjectName("main_toolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        toolbar.addAction(self.open_action)
        toolbar.addAction(self.move_action)
        toolbar.addSeparator()
        self.filter_combo = QComboBox(toolbar)
        self.filter_combo.addItems([mode.value for mode in FilterMode])
        self.filter_combo.setToolTip("Which images the gallery shows")
        self.sort_combo = QComboBox(toolbar)
        self.sort_combo.addItems([key.value for key in SortKey])
        self.sort_combo.setToolTip("Score: highest reconstruction error first")
        for caption, combo in (("Show ", self.filter_combo), ("  Sort by ", self.sort_combo)):
            label = QLabel(caption, toolbar)
            label.setBuddy(combo)
            toolbar.addWidget(label)
            toolbar.addWidget(combo)
        self.addToolBar(toolbar)

    def _connect_signals(self) -> None:
        self.open_action.triggered.connect(self._on_open_action_triggered)
        self.move_action.triggered.connect(self._on_move_action_triggered)
        self.quit_action.triggered.connect(self.close)
        self.filter_combo.currentTextChanged.connect(self._on_filter_combo_changed)
        self.sort_combo.currentTextChanged.connect(self._on_sort_combo_changed)
        self.gallery_model.counts_changed.connect(self._on_gallery_counts_changed)
        self.status_bar.cancel_requested.connect(self._on_status_bar_cancel_requested)
        self._scanner.progressed.connect(self._on_scanner_progressed)
        self._scanner.scan_finished.connect(self._on_scanner_scan_finished)
        self._scanner.scan_failed.connect(self._on_scanner_scan_failed)
        self._scanner.scan_cancelled.connect(self._on_scanner_scan_cancelled)
        self._mover.progressed.connect(self._on_mover_progressed)
        self._mover.move_ended.connect(self._on_mover_move_ended)

    # Public interface

    @property
    def model(self) -> ReferenceModel | None:
        """The reference model used for scoring, or None when none could be loaded."""
        return self._model

    @property
    def folder(self) -> Path | None:
        """The open folder, or None before one is opened."""
        return self._folder

    def is_busy(self) -> bool:
        """Return True while scoring or moving files runs."""
        return self._scanner.is_running() or self._mover.is_running()

    def running_job_count(self) -> int:
        """Return the number of background jobs whose threads have not returned yet."""
        return self._pool.activeThreadCount()

    def set_model(self, model: ReferenceModel | None) -> None:
        """Use `model` for scoring and flagging. None disables scoring."""
        self._model = model
        self.status_bar.set_model(model)
        if model is not None:
            self.gallery_model.set_threshold(model.threshold)
        if self._folder is None:
            self.gallery_view.set_placeholder_text(_NO_FOLDER_TEXT if model else _NO_MODEL_TEXT)
        self._update_actions()

    def open_folder(self, folder: Path) -> bool:
        """Show `folder` and start scoring it, or return False if that is not possible.

        A scan already running is cancelled. The reason for a refusal is shown in a
        message box.
        """
        folder = Path(folder).expanduser().resolve()
        if not folder.is_dir():
            self._show_error("Opening folder failed", f"{folder} is not a folder.")
            return False
        if self._mover.is_running():
            self._show_error("Opening folder failed",
                             "Files are being moved. Wait until the move ends.")
            return False
        if self._model is None:
            self._show_error("Opening folder failed", _NO_MODEL_TEXT)
            return False
        self._folder = folder
        self.setWindowTitle(f"{folder} — {APP_NAME}")
        if self._settings is not None:
            self._settings.setValue(_SETTINGS_LAST_FOLDER, str(folder))
        self.gallery_view.set_placeholder_text(_SCORING_TEXT)
        self._scanner.start(self._model, folder, self.gallery_view.thumbnail_pixels)
        self.status_bar.show_progress("Scoring", 0, 0)
        self._update_actions()
        return True

    def move_flagged_out(self) -> None:
        """Ask for confirmation, then move every flagged file to the quarantine folder."""
        if self._folder is None or self.is_busy():
            return
        relative_paths = self.gallery_model.flagged_paths()
        if not relative_paths:
            self.status_bar.showMessage("No flagged images to move.", 5000)
            return
        try:
            destination = default_quarantine_dir(self._folder)
        except ValueError as error:
            self._show_error("Moving flagged images failed", str(error))
            return
        count = len(relative_paths)
        noun = "image" if count == 1 else "images"
        answer = QMessageBox.question(
            self, "Move Flagged Out",
            f"Move {count} flagged {noun} out of\n{self._folder}\ninto\n{destination}?\n\n"
            "Subfolders are kept, and no file is overwritten or deleted.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        self.status_bar.show_progress("Moving", 0, count)
        self._mover.start(self._folder, relative_paths, destination)
        self._update_actions()

    # Scoring

    @Slot(int, int)
    def _on_scanner_progressed(self, done: int, total: int) -> None:
        self.status_bar.show_progress("Scoring", done, total)

    @Slot(float)
    def _on_scanner_scan_finished(self, elapsed: float) -> None:
        self._end_scoring()
        total = self.gallery_model.rowCount()
        self.status_bar.showMessage(f"Scored {total} files in {elapsed:.1f} s.", 10_000)
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
        if self.gallery_model.rowCount() == 0:
            self.gallery_view.set_placeholder_text(_EMPTY_FOLDER_TEXT)
        self._update_actions()

    # Moving flagged files out

    @Slot(int, int)
    def _on_mover_progressed(self, done: int, total: int) -> None:
        self.status_bar.show_progress("Moving", done, total)

    @Slot(int, list)
    def _on_mover_move_ended(self, moved: int, errors: list[str]) -> None:
        assert self._folder is not None
        self.status_bar.hide_progress()
        self._update_actions()
        destination = default_quarantine_dir(self._folder)
        self.status_bar.showMessage(f"Moved {moved} files to {destination}.", 10_000)
        if errors:
            self._show_message(
                "Move Flagged Out",
                f"{len(errors)} files could not be moved and are still in {self._folder}. "
                f"{moved} files were moved to {destination}.",
                details="\n".join(errors),
            )
        self.move_finished.emit(moved, len(errors))

    # Slots of widgets and actions

    @Slot()
    def _on_open_action_triggered(self) -> None:
        start = str(self._folder or self._last_folder() or Path.home())
        chosen = QFileDialog.getExistingDirectory(self, "Open Folder", start)
        if chosen:
            self.open_folder(Path(chosen))

    @Slot()
    def _on_move_action_triggered(self) -> None:
        self.move_flagged_out()

    @Slot(str)
    def _on_filter_combo_changed(self, text: str) -> None:
        self.proxy_model.set_filter_mode(FilterMode(text))

    @Slot(str)
    def _on_sort_combo_changed(self, text: str) -> None:
        self.proxy_model.set_sort_key(SortKey(text))

    @Slot()
    def _on_gallery_counts_changed(self) -> None:
        self.status_bar.set_counts(self.gallery_model.counts())
        self._update_actions()

    @Slot()
    def _on_status_bar_cancel_requested(self) -> None:
        self._scanner.cancel()
        self._mover.cancel()

    # Window events

    def closeEvent(self, event: QCloseEvent) -> None:
        """Cancel running jobs and wait for them, so no thread outlives the window."""
        if self.is_busy():
            logger.info("cancelling background jobs because the window closes")
        self._scanner.detach()
        self._mover.detach()
        if not self._pool.waitForDone(SHUTDOWN_TIMEOUT_MS):
            logger.error("background jobs still run %d s after the window closed",
                         SHUTDOWN_TIMEOUT_MS // 1000)
        self._save_settings()
        super().closeEvent(event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._dropped_folder(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        folder = self._dropped_folder(event)
        if folder is not None:
            event.acceptProposedAction()
            self.open_folder(folder)

    @staticmethod
    def _dropped_folder(event: QDragEnterEvent | QDropEvent) -> Path | None:
        urls = event.mimeData().urls()
        if len(urls) != 1 or not urls[0].isLocalFile():
            return None
        path = Path(urls[0].toLocalFile())
        return path if path.is_dir() else None

    # Helpers

    def _update_actions(self) -> None:
        busy = self.is_busy()
        self.open_action.setEnabled(self._model is not None and not self._mover.is_running())
        has_flagged = self.gallery_model.counts().flagged > 0
        self.move_action.setEnabled(self._folder is not None and not busy and has_flagged)

    def _show_error(self, title: str, message: str) -> None:
        logger.error("%s: %s", title, message)
        self._show_message(title, message)

    def _show_message(self, title: str, message: str, details: str = "") -> None:
        """Show a warning without blocking, so a running job keeps updating the window."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, message,
                          QMessageBox.StandardButton.Ok, self)
        if details:
            box.setDetailedText(details)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def _last_folder(self) -> str | None:
        if self._settings is None:
            return None
        value = self._settings.value(_SETTINGS_LAST_FOLDER)
        return str(value) if value else None

    def _restore_settings(self) -> None:
        if self._settings is None:
            return
        geometry = self._settings.value(_SETTINGS_GEOMETRY)
        if geometry is not None:
            self.restoreGeometry(geometry)

    def _save_settings(self) -> None:
        if self._settings is not None:
            self._settings.setValue(_SETTINGS_GEOMETRY, self.saveGeometry())
            self._settings.sync()
