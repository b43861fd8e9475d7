"""File › Open Folder and Open Recent, and folders dropped on the window."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QWidget

from gui.actions import WindowActions
from gui.settings import WindowSettings

logger = logging.getLogger(__name__)


def dropped_folder(event: QDragEnterEvent | QDropEvent) -> Path | None:
    """Return the folder that `event` carries, or None unless it is exactly one local folder."""
    urls = event.mimeData().urls()
    if len(urls) != 1 or not urls[0].isLocalFile():
        return None
    path = Path(urls[0].toLocalFile())
    return path if path.is_dir() else None


def describe_missing_folder(folder: Path) -> str:
    """Return why `folder`, which was opened before, cannot be opened now."""
    if folder.exists():
        return f"{folder} is no longer a folder."
    return (f"{folder} no longer exists: it was removed or renamed, or the disk it is on "
            "is not connected.")


class FolderCommands(QObject):
    """Asks which folder to open and keeps the recent folders in the settings.

    The window opens the folder and reports each one it opened with remember_folder().

    Signals:
        folder_requested(object): the user chose this folder (a Path) to open.
        folder_missing(object): the user chose this folder (a Path) in Open Recent,
            but it is no longer a folder. It has left the menu.
    """

    folder_requested = Signal(object)
    folder_missing = Signal(object)

    def __init__(self, window: QWidget, settings: WindowSettings) -> None:
        super().__init__(window)
        self._window = window
        self._settings = settings
        self._actions: WindowActions | None = None
        self._folder: Path | None = None

    def connect_actions(self, actions: WindowActions) -> None:
        """Run Open Folder and Open Recent here and fill Open Recent from the settings."""
        self._actions = actions
        actions.open_folder.triggered.connect(self.ask_and_open_folder)
        actions.recent_folder_requested.connect(self._on_actions_recent_folder_requested)
        actions.clear_recent_requested.connect(self._on_actions_clear_recent_requested)
        actions.set_recent_folders(self._settings.recent_folders())

    def remember_folder(self, folder: Path) -> None:
        """Put the opened `folder` first in Open Recent."""
        self._folder = folder
        self._settings.add_recent_folder(folder)
        self._refresh_recent_menu()

    @Slot()
    def ask_and_open_folder(self) -> None:
        """Ask for a folder, starting in the open or last one, and request to open it."""
        start = str(self._folder or self._settings.last_folder() or Path.home())
        chosen = QFileDialog.getExistingDirectory(self._window, "Open Folder", start)
        if chosen:
            self.folder_requested.emit(Path(chosen))

    @Slot(str)
    def _on_actions_recent_folder_requested(self, folder: str) -> None:
        if Path(folder).is_dir():
            self.folder_requested.emit(Path(folder))
            return
        self._settings.remove_recent_folder(folder)
        self._refresh_recent_menu()
        self.folder_missing.emit(Path(folder))

    @Slot()
    def _on_actions_clear_recent_requested(self) -> None:
        self._settings.clear_recent_folders()
        self._refresh_recent_menu()

    def _refresh_recent_menu(self) -> None:
        if self._actions is not None:
            self._actions.set_recent_folders(self._settings.recent_folders())
