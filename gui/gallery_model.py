"""Qt list model of scored files, and the sort and filter proxy the gallery shows."""

from __future__ import annotations

import enum
import itertools
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)

from engine.scoring import ScoredFile

logger = logging.getLogger(__name__)

ModelIndex = QModelIndex | QPersistentModelIndex

# Thumbnail cache keys stay unique across rescans of the same folder, so a pixmap
# cached for an earlier version of a file is never shown for a newer one.
_thumbnail_serials = itertools.count()


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


@dataclass(frozen=True)
class GalleryItem:
    """One gallery tile: a scored file and its JPEG-encoded thumbnail."""

    record: ScoredFile
    thumbnail: bytes | None
    thumbnail_key: str

    @classmethod
    def create(cls, record: ScoredFile, thumbnail: bytes | None) -> GalleryItem:
        """Make an item with a fresh thumbnail cache key."""
        return cls(record, thumbnail, f"{next(_thumbnail_serials)}:{record.path}")


class Tile(NamedTuple):
    """A gallery item with its flag at the model's current threshold."""

    item: GalleryItem
    flagged: bool | None


class GalleryCounts(NamedTuple):
    """Numbers of files in the gallery, where `total` = `flagged` + `kept` + `unreadable`."""

    total: int
    flagged: int
    kept: int
    unreadable: int


def format_score(score: float) -> str:
    """Format a reconstruction error with at least 4 decimals and 3 significant digits."""
    if score <= 0.0 or not math.isfinite(score):
        return f"{score:.4f}"
    decimals = max(4, 2 - math.floor(math.log10(score)))
    return f"{score:.{decimals}f}"


class GalleryModel(QAbstractListModel):
    """Scored files of one folder, flagged against an adjustable threshold.

    A file is flagged when its score is strictly greater than the threshold, the
    same rule the engine applies.

    Signals:
        counts_changed(): the number of files, flagged or kept files changed.
    """

    counts_changed = Signal()

    def __init__(self, threshold: float = math.inf, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._items: list[GalleryItem] = []
        self._flagged: list[bool | None] = []
        self._threshold = threshold
        self._counts = GalleryCounts(0, 0, 0, 0)

    # Qt model interface

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item = self._items[index.row()]
        record = item.record
        match role:
            case Qt.ItemDataRole.DisplayRole:
                return record.path.name
            case Qt.ItemDataRole.ToolTipRole:
                return self._tooltip(record)
            case GalleryRole.SCORE:
                return record.score
            case GalleryRole.FLAGGED:
                return self._flagged[index.row()]
            case GalleryRole.STATUS:
                return record.status.value
            case GalleryRole.RELATIVE_PATH:
                return record.relative_path
            case GalleryRole.RECORD:
                return record
            case GalleryRole.THUMBNAIL:
                return item.thumbnail
            case GalleryRole.THUMBNAIL_KEY:
                return item.thumbnail_key
            case GalleryRole.SCORE_SORT_KEY:
                return -math.inf if record.score is None else record.score
            case GalleryRole.TILE:
                return Tile(item, self._flagged[index.row()])
        return None

    def roleNames(self) -> dict[int, QByteArray]:
        names = super().roleNames()
        names.update({role.value: QByteArray(role.name.lower().encode()) for role in GalleryRole})
        return names

    # Contents

    @property
    def threshold(self) -> float:
        """Score above which a file is flagged."""
        return self._threshold

    def set_threshold(self, threshold: float) -> None:
        """Re-flag every file against `threshold` and report the rows that changed."""
        self._threshold = threshold
        flagged = [self._is_flagged(item.record) for item in self._items]
        changed = [row for row, value in enumerate(flagged) if value != self._flagged[row]]
        self._flagged = flagged
        # One signal per run of changed rows, because the proxy re-checks the filter
        # and sort position of every row in a signal's range through Python calls.
        roles = [GalleryRole.FLAGGED, GalleryRole.TILE]
        for first, last in _contiguous_runs(changed):
            self.dataChanged.emit(self.index(first), self.index(last), roles)
        if changed:
            self._recount()
        logger.debug("threshold set to %g, %d files changed flag", threshold, len(changed))

    def append_items(self, items: Sequence[GalleryItem]) -> None:
        """Append a batch of items with one row insertion."""
        if not items:
            return
        first = len(self._items)
        self.beginInsertRows(QModelIndex(), first, first + len(items) - 1)
        self._items.extend(items)
        self._flagged.extend(self._is_flagged(item.record) for item in items)
        self.endInsertRows()
        self._recount()

    def clear(self) -> None:
        """Remove every item."""
        self.beginResetModel()
        self._items.clear()
        self._flagged.clear()
        self.endResetModel()
        self._recount()

    def remove_paths(self, relative_paths: Iterable[str]) -> int:
        """Remove the items with these relative paths and return how many were removed."""
        requested = set(relative_paths)
        rows = [
            row for row, item in enumerate(self._items)
            if item.record.relative_path in requested
        ]
        # Contiguous runs are removed from the end so earlier row numbers stay valid.
        for first, last in reversed(_contiguous_runs(rows)):
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._items[first : last + 1]
            del self._flagged[first : last + 1]
            self.endRemoveRows()
        if rows:
            self._recount()
        return len(rows)

    def item(self, row: int) -> GalleryItem:
        """Return the item at `row`. Raises IndexError outside 0..rowCount()-1."""
        return self._items[row]

    def flag_at(self, row: int) -> bool | None:
        """Return whether the file at `row` is flagged, or None if it has no score."""
        return self._flagged[row]

    def flagged_paths(self) -> list[str]:
        """Return the relative paths of the flagged files, in model order."""
        return [
            item.record.relative_path
            for item, flagged in zip(self._items, self._flagged, strict=True)
            if flagged
        ]

    def counts(self) -> GalleryCounts:
        """Return the numbers of all, flagged, kept and unreadable files."""
        return self._counts

    def _recount(self) -> None:
        # Two list.count() calls run in C, so recounting after each batch stays cheap.
        flagged = self._flagged.count(True)
        kept = self._flagged.count(False)
        unreadable = len(self._flagged) - flagged - kept
        self._counts = GalleryCounts(len(self._items), flagged, kept, unreadable)
        self.counts_changed.emit()

    def _is_flagged(self, record: ScoredFile) -> bool | None:
        return None if record.score is None else record.score > self._threshold

    @staticmethod
    def _tooltip(record: ScoredFile) -> str:
        lines = [record.relative_path]
        if record.score is not None:
            lines.append(f"{record.width} × {record.height} {record.format}")
            lines.append(f"Score {format_score(record.score)}")
        else:
            lines.append(describe_status(record))
        return "\n".join(lines)


def describe_status(record: ScoredFile) -> str:
    """Return the status of `record` with its detail, without repeating the status."""
    status = record.status.value
    if not record.detail:
        return status
    if record.detail.startswith(status):
        return record.detail
    return f"{status}: {record.detail}"


def _contiguous_runs(rows: list[int]) -> list[tuple[int, int]]:
    """Group sorted row numbers into (first, last) runs of consecutive rows."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and runs[-1][1] == row - 1:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs


class SortKey(enum.StrEnum):
    """Gallery order. The value is the text shown to the user."""

    SCORE = "Score"  # highest score first, unreadable files last
    NAME = "Name"  # relative path, case-insensitive


class FilterMode(enum.StrEnum):
    """Gallery filter. The value is the text shown to the user."""

    ALL = "All"
    FLAGGED = "Flagged"
    KEPT = "Kept"
    UNREADABLE = "Unreadable"


class GalleryProxyModel(QSortFilterProxyModel):
    """Sort and filter proxy of a GalleryModel that re-sorts and re-filters as rows change.

    Sorting compares role values in C++ (the score sort key or the relative path),
    so that inserting thousands of rows calls no Python per comparison.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._filter_mode = FilterMode.ALL
        self._sort_key = SortKey.SCORE
        self.setDynamicSortFilter(True)
        # filterAcceptsRow() reads the flag, and naming its role here makes the proxy
        # re-filter, without re-sorting, the rows of a threshold change.
        self.setFilterRole(GalleryRole.FLAGGED)
        self.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.set_sort_key(SortKey.SCORE)

    @property
    def filter_mode(self) -> FilterMode:
        return self._filter_mode

    @property
    def sort_key(self) -> SortKey:
        return self._sort_key

    def set_sort_key(self, key: SortKey) -> None:
        """Order rows by `key`."""
        self._sort_key = key
        if key is SortKey.SCORE:
            self.setSortRole(GalleryRole.SCORE_SORT_KEY)
            self.sort(0, Qt.SortOrder.DescendingOrder)
        else:
            self.setSortRole(GalleryRole.RELATIVE_PATH)
            self.sort(0, Qt.SortOrder.AscendingOrder)

    def set_filter_mode(self, mode: FilterMode) -> None:
        """Show only the rows that `mode` selects."""
        self.beginFilterChange()
        self._filter_mode = mode
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: ModelIndex) -> bool:
        if self._filter_mode is FilterMode.ALL:
            return True
        source = self.sourceModel()
        assert isinstance(source, GalleryModel)
        flagged = source.flag_at(source_row)
        match self._filter_mode:
            case FilterMode.FLAGGED:
                return flagged is True
            case FilterMode.KEPT:
                return flagged is False
            case FilterMode.UNREADABLE:
                return flagged is None
        return True
