"""Window settings kept in QSettings: layout, thumbnail size, last and recent folders."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from gui.tile_delegate import THUMBNAIL_SIDE

logger = logging.getLogger(__name__)

MAX_RECENT_FOLDERS = 8

_GEOMETRY = "window/geometry"
_STATE = "window/state"
_THUMBNAIL_SIDE = "gallery/thumbnail_side"
_LAST_FOLDER = "folders/last"
_RECENT_FOLDERS = "folders/recent"


class WindowSettings:
    """Typed access to the window's QSettings. Without a QSettings nothing is kept.

    Tests and screenshot runs pass None, so they never touch the user's settings.
    """

    def __init__(self, settings: QSettings | None) -> None:
        self._settings = settings

    def geometry(self) -> QByteArray | None:
        return self._bytes(_GEOMETRY)

    def window_state(self) -> QByteArray | None:
        """Return the saved arrangement of toolbars and docks, or None."""
        return self._bytes(_STATE)

    def save_layout(self, geometry: QByteArray, state: QByteArray) -> None:
        self._set(_GEOMETRY, geometry)
        self._set(_STATE, state)

    def thumbnail_side(self) -> int:
        """Return the saved thumbnail side in logical pixels, or the default."""
        if self._settings is None:
            return THUMBNAIL_SIDE
        try:
            return int(self._settings.value(_THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        except (TypeError, ValueError):
            return THUMBNAIL_SIDE

    def set_thumbnail_side(self, side: int) -> None:
        self._set(_THUMBNAIL_SIDE, side)

    def last_folder(self) -> str | None:
        if self._settings is None:
            return None
        value = self._settings.value(_LAST_FOLDER)
        return str(value) if value else None

    def recent_folders(self) -> list[str]:
        """Return the recently opened folders, newest first."""
        if self._settings is None:
            return []
        value = self._settings.value(_RECENT_FOLDERS, [])
        # An INI file returns a single-element list as a plain string.
        folders = [value] if isinstance(value, str) else list(value or [])
        return [str(folder) for folder in folders if folder][:MAX_RECENT_FOLDERS]

    def add_recent_folder(self, folder: Path) -> None:
        """Put `folder` first in the recent folders and make it the last folder."""
        text = str(folder)
        folders = [text, *(known for known in self.recent_folders() if known != text)]
        self._set(_RECENT_FOLDERS, folders[:MAX_RECENT_FOLDERS])
        self._set(_LAST_FOLDER, text)

    def remove_recent_folder(self, folder: str) -> None:
        self._set(_RECENT_FOLDERS, [known for known in self.recent_folders() if known != folder])

    def clear_recent_folders(self) -> None:
        self._set(_RECENT_FOLDERS, [])

    def sync(self) -> None:
        if self._settings is not None:
            self._settings.sync()

    def _bytes(self, key: str) -> QByteArray | None:
        if self._settings is None:
            return None
        value = self._settings.value(key)
        return value if isinstance(value, QByteArray) else None

    def _set(self, key: str, value: object) -> None:
        if self._settings is not None:
            self._settings.setValue(key, value)
