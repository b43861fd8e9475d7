"""Item data roles of the gallery model, and the roles that change together."""

from __future__ import annotations

import enum

from PySide6.QtCore import Qt


class GalleryRole(enum.IntEnum):
    """Item data roles of GalleryModel beyond Qt's standard ones."""

    SCORE = Qt.ItemDataRole.UserRole + 1  # float, or None for an unreadable file
    FLAGGED = enum.auto()  # bool at the current threshold, or None for an unreadable file
    # The text of the engine.images.Status, because PySide turns a str enum into str.
    STATUS = enum.auto()
    RELATIVE_PATH = enum.auto()  # str with "/" separators, relative to the scored folder
    RECORD = enum.auto()  # engine.scoring.ScoredFile, without its thumbnail array
    THUMBNAIL = enum.auto()  # JPEG bytes, or None when there is no thumbnail
    THUMBNAIL_KEY = enum.auto()  # str that identifies the thumbnail's content
    SCORE_SORT_KEY = enum.auto()  # float score, with -inf for an unreadable file
    TILE = enum.auto()  # Tile: everything a gallery tile shows, never None for a valid row
    OVERRIDE = enum.auto()  # "keep" or "reject" when the curator decided, else None
    DECISION = enum.auto()  # final decision, "keep" or "reject"


# Roles whose values change with the threshold or an override. FLAGGED is the
# proxy's filter role, so it is always named in dataChanged for these changes.
DECISION_ROLES = [GalleryRole.FLAGGED, GalleryRole.OVERRIDE, GalleryRole.DECISION,
                  GalleryRole.TILE]


# THUMBNAIL and TILE change when a deferred item gets its thumbnail.
THUMBNAIL_ROLES = [GalleryRole.THUMBNAIL, GalleryRole.THUMBNAIL_KEY, GalleryRole.TILE]
