"""Window settings kept in QSettings: layout, thumbnail size, recent folders and models.

They also store the folder that the last finished export wrote to.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from gui.tile_delegate import THUMBNAIL_SIDE

logger = logging.getLogger(__name__)

MAX_RECENT_FOLDERS = 8
MAX_RECENT_MODELS = 8

_GEOMETRY = "window/geometry"
_STATE = "window/state"
_THUMBNAIL_SIDE = "gallery/thumbnail_side"
_LAST_FOLDER = "folders/last"
_RECENT_FOLDERS = "folders/recent"
_LAST_MODEL = "models/last"
_RECENT_MODELS = "models/recent"
_LAST_EXPORT_FOLDER = "export/last_folder"


class WindowSettings:
    """Typed access to the window's QSettings. Without a QSettings nothing is kept.

    Tests and screenshot runs pass None, so they never touch the user's settings.
    """

    def __init__(self, settings: QSettings | None) -> None:
        self._settings = settings

    @property
    def qsettings(self) -> QSettings | None:
        """The QSettings underneath, for dialogs that keep their own settings."""
        return self._settings

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
        return self._text(_LAST_FOLDER)

    def recent_folders(self) -> list[str]:
        """Return the recently opened folders, newest first."""
        return self._paths(_RECENT_FOLDERS)[:MAX_RECENT_FOLDERS]

    def add_recent_folder(self, folder: Path) -> None:
        """Put `folder` first in the recent folders and make it the last folder."""
        self._put_first(_RECENT_FOLDERS, str(folder), MAX_RECENT_FOLDERS)
        self._set(_LAST_FOLDER, str(folder))

    def remove_recent_folder(self, folder: str) -> None:
        self._remove(_RECENT_FOLDERS, folder)

    def clear_recent_folders(self) -> None:
        self._set(_RECENT_FOLDERS, [])

    def last_model(self) -> str | None:
        """Return the path of the model file used last, or None."""
        return self._text(_LAST_MODEL)

    def recent_models(self) -> list[str]:
        """Return the paths of the recently used model files, newest first."""
        return self._paths(_RECENT_MODELS)[:MAX_RECENT_MODELS]

    def add_recent_model(self, path: Path) -> None:
        """Put `path` first in the recent models and make it the model to start with."""
        self._put_first(_RECENT_MODELS, str(path), MAX_RECENT_MODELS)
        self._set(_LAST_MODEL, str(path))

    def remove_recent_model(self, path: str) -> None:
        self._remove(_RECENT_MODELS, path)

    def clear_recent_models(self) -> None:
        self._set(_RECENT_MODELS, [])

    def last_export_folder(self) -> str | None:
        """Return the folder that the last finished export wrote to, or None."""
        return self._text(_LAST_EXPORT_FOLDER)

    def set_last_export_folder(self, folder: Path) -> None:
        self._set(_LAST_EXPORT_FOLDER, str(folder))

    def sync(self) -> None:
        if self._settings is not None:
            self._settings.sync()

    def _bytes(self, key: str) -> QByteArray | None:
        if self._settings is None:
            return None
        value = self._settings.value(key)
        return value if isinstance(value, QByteArray) else None

    def _text(self, key: str) -> str | None:
        if self._settings is None:
            return None
        value = self._settings.value(key)
        return str(value) if value else None

    def _paths(self, key: str) -> list[str]:
        if self._settings is None:
            return []
        value = self._settings.value(key, [])
        # An INI file returns a single-element list as a plain string.
        paths = [value] if isinstance(value, str) else list(value or [])
        return [str(path) for path in paths if path]

    def _put_first(self, key: str, path: str, limit: int) -> None:
        paths = [path, *(known for known in self._paths(key) if known != path)]
        self._set(key, paths[:limit])

    def _remove(self, key: str, path: str) -> None:
        self._set(key, [known for known in self._paths(key) if known != path])

    def _set(self, key: str, value: object) -> None:
        if self._settings is not None:
            self._settings.setValue(key, value)
