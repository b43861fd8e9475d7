"""Qt list model of scored files with the model's flags and the curator's overrides."""

from __future__ import annotations

import enum
import itertools
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)

from engine.decisions import Decision, final_decision
from engine.images import Status
from engine.scoring import ScoredFile
from engine.thumbcache import CachedThumbnail
from gui.gallery_order import SortKey, SortValue, insertion_runs, sort_value

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
    OVERRIDE = enum.auto()  # "keep" or "reject" when the curator decided, else None
    DECISION = enum.auto()  # final decision, "keep" or "reject"


# Roles whose values change with the threshold or an override. FLAGGED is the
# proxy's filter role, so it is always named in dataChanged for these changes.
DECISION_ROLES = [GalleryRole.FLAGGED, GalleryRole.OVERRIDE, GalleryRole.DECISION,
                  GalleryRole.TILE]


# THUMBNAIL and TILE change when a deferred item gets its thumbnail.
THUMBNAIL_ROLES = [GalleryRole.THUMBNAIL, GalleryRole.THUMBNAIL_KEY, GalleryRole.TILE]


@dataclass(frozen=True)
class GalleryItem:
    """One gallery tile: a scored file and its JPEG-encoded thumbnail.

    A `deferred` item has no thumbnail yet, although its file is readable, such as
    a score read from the score cache: the gallery model reads the thumbnail with
    its ThumbnailReader when the tile is first shown. `thumbnail_problem` is the
    reason why a readable file got no thumbnail, when it is known, such as "the
    file was removed or renamed".
    """

    record: ScoredFile
    thumbnail: bytes | None
    thumbnail_key: str
    deferred: bool = False
    thumbnail_problem: str = ""

    @classmethod
    def create(cls, record: ScoredFile, thumbnail: bytes | None, deferred: bool = False,
               thumbnail_problem: str = "") -> GalleryItem:
        """Make an item with a fresh thumbnail cache key."""
        return cls(record, thumbnail, f"{next(_thumbnail_serials)}:{record.relative_path}",
                   deferred, thumbnail_problem)


# Returns the thumbnail of a deferred item's record, or None while it is not
# available yet; GalleryModel.set_thumbnails then delivers it.
ThumbnailReader = Callable[[ScoredFile], bytes | None]


class Tile(NamedTuple):
    """A gallery item with the model's flag, the curator's override and the final decision."""

    item: GalleryItem
    flagged: bool | None
    override: Decision | None
    decision: Decision


class GalleryCounts(NamedTuple):
    """Numbers of files in the gallery.

    `flagged` counts scored files above the threshold, whatever the curator
    decided. `not_scored` counts the files that could not be scored, whatever
    their status: empty, damaged, too large, unreadable… `kept` + `rejected` =
    `total` count final decisions, where a file that was not scored is rejected
    unless the curator keeps it. `overridden` counts files with a curator's decision.
    """

    total: int = 0
    flagged: int = 0
    kept: int = 0
    rejected: int = 0
    not_scored: int = 0
    overridden: int = 0


class RejectionReasons(NamedTuple):
    """Files to reject: flagged by the model, not scored, and rejected by the curator."""

    flagged: int
    not_scored: int
    curator: int


def format_score(score: float) -> str:
    """Format a score or signal with at least 2 decimals and 3 significant digits."""
    if score <= 0.0 or not math.isfinite(score):
        return f"{score:.2f}"
    decimals = max(2, 2 - math.floor(math.log10(score)))
    return f"{score:.{decimals}f}"


def format_threshold(threshold: float) -> str:
    """Format a threshold with at least 2 decimals and 4 significant digits.

    On a typical folder one slider step moves the threshold by 0.5 to 0.7 %
    (gui.threshold_panel.SLIDER_STEPS). 4 digits show each step as a new value,
    where the 3 of format_score show some neighbouring steps as one. Thresholds
    of a million and more, or below 0.0001, are written with an exponent.
    """
    if threshold <= 0.0 or not math.isfinite(threshold):
        return f"{threshold:.2f}"
    exponent = math.floor(math.log10(threshold))
    if exponent >= 6 or exponent < -4:
        return f"{threshold:.3e}"
    decimals = max(2, 3 - exponent)
    return f"{threshold:.{decimals}f}"


class GalleryModel(QAbstractListModel):
    """Scored files of one folder, flagged against an adjustable threshold.

    Rows are kept in the order of `sort_key`, so that the proxy above never sorts:
    a new row goes straight to its place, and changing the key moves every row
    with one layout change. A file is flagged when its score is strictly greater
    than the threshold, the same rule the engine applies. Its final decision is
    the curator's override when there is one, else the model's decision
    (engine.decisions), so an override survives threshold changes and rescans of
    the folder.

    Signals:
        counts_changed(): the number of files, flagged, kept, rejected or
            overridden files changed.
        threshold_changed(float): the threshold was set to a new value.
    """

    counts_changed = Signal()
    threshold_changed = Signal(float)

    def __init__(self, threshold: float = math.inf, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._items: list[GalleryItem] = []
        self._flagged: list[bool | None] = []
        self._row_overrides: list[Decision | None] = []
        self._decisions: list[Decision] = []
        self._sort_values: list[SortValue] = []
        self._sort_key = SortKey.SCORE
        # The scores of the readable files in no order, for the histogram that is
        # redrawn several times a second while a scan inserts rows. None after a
        # removal, until scores() reads them from the rows again.
        self._scores: list[float] | None = []
        # Rebuilt on the first lookup after rows moved, because an insertion in the
        # middle moves every later row.
        self._rows_by_path: dict[str, int] | None = {}
        # Overrides of the whole folder, also of files not listed yet, so a file
        # that a scan delivers later gets its override at once.
        self._overrides: dict[str, Decision] = {}
        self._threshold = threshold
        self._counts = GalleryCounts()
        self._read_thumbnail: ThumbnailReader | None = None

    # Qt model interface

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        row = index.row()
        record = self._items[row].record
        match role:
            case Qt.ItemDataRole.DisplayRole:
                return record.path.name
            case Qt.ItemDataRole.ToolTipRole:
                return self._tooltip(row)
            case GalleryRole.SCORE:
                return record.score
            case GalleryRole.FLAGGED:
                return self._flagged[row]
            case GalleryRole.STATUS:
                return record.status.value
            case GalleryRole.RELATIVE_PATH:
                return record.relative_path
            case GalleryRole.RECORD:
                return record
            case GalleryRole.THUMBNAIL:
                return self.tile(row).item.thumbnail
            case GalleryRole.THUMBNAIL_KEY:
                return self.tile(row).item.thumbnail_key
            case GalleryRole.SCORE_SORT_KEY:
                return -math.inf if record.score is None else record.score
            case GalleryRole.TILE:
                return self.tile(row)
            case GalleryRole.OVERRIDE:
                override = self._row_overrides[row]
                return None if override is None else override.value
            case GalleryRole.DECISION:
                return self._decisions[row].value
        return None

    def roleNames(self) -> dict[int, QByteArray]:
        names = super().roleNames()
        names.update({role.value: QByteArray(role.name.lower().encode()) for role in GalleryRole})
        return names

    # Threshold and overrides

    @property
    def threshold(self) -> float:
        """Score above which a file is flagged."""
        return self._threshold

    def set_threshold(self, threshold: float) -> None:
        """Re-flag every file against `threshold` and report the rows that changed."""
        if threshold == self._threshold:
            return
        self._threshold = threshold
        flagged = [self._is_flagged(item.record) for item in self._items]
        changed = [row for row, value in enumerate(flagged) if value != self._flagged[row]]
        self._flagged = flagged
        for row in changed:
            self._decisions[row] = self._decide(row)
        self._emit_rows_changed(changed)
        logger.debug("threshold set to %g, %d files changed flag", threshold, len(changed))
        self.threshold_changed.emit(threshold)

    def overrides(self) -> dict[str, Decision]:
        """Return a copy of the curator's decisions, by relative path."""
        return dict(self._overrides)

    def set_overrides(self, overrides: Mapping[str, Decision]) -> None:
        """Replace all of the curator's decisions, such as those read from a review."""
        self._overrides = dict(overrides)
        changed = []
        for row, item in enumerate(self._items):
            override = self._overrides.get(item.record.relative_path)
            if override != self._row_overrides[row]:
                self._row_overrides[row] = override
                self._decisions[row] = self._decide(row)
                changed.append(row)
        self._emit_rows_changed(changed)

    def set_override(self, relative_paths: Iterable[str], decision: Decision | None) -> int:
        """Set the curator's decision on files, or clear it with None.

        Returns the number of rows whose override changed. Paths without a row
        keep the override for when their file is listed.
        """
        changed = []
        for relative_path in relative_paths:
            if decision is None:
                self._overrides.pop(relative_path, None)
            else:
                self._overrides[relative_path] = decision
            row = self._row_index().get(relative_path)
            if row is not None and self._row_overrides[row] != decision:
                self._row_overrides[row] = decision
                self._decisions[row] = self._decide(row)
                changed.append(row)
        self._emit_rows_changed(sorted(changed))
        return len(changed)

    # Contents

    def insert_items(self, items: Sequence[GalleryItem]) -> None:
        """Insert a batch of items at their places in the sort order.

        Each run of adjacent new rows is one row insertion, and the counts are
        updated once for the batch.
        """
        if not items:
            return
        new_values = [sort_value(item.record, self._sort_key) for item in items]
        for first, indexes in insertion_runs(self._sort_values, new_values):
            run = [items[index] for index in indexes]
            last = first + len(run) - 1
            self.beginInsertRows(QModelIndex(), first, last)
            self._items[first:first] = run
            self._sort_values[first:first] = [new_values[index] for index in indexes]
            self._flagged[first:first] = [self._is_flagged(item.record) for item in run]
            self._row_overrides[first:first] = [
                self._overrides.get(item.record.relative_path) for item in run]
            self._decisions[first:first] = [self._decide(row) for row in range(first, last + 1)]
            self._rows_by_path = None
            self.endInsertRows()
        if self._scores is not None:
            self._scores += [item.record.score for item in items if item.record.score is not None]
        self._recount()

    @property
    def sort_key(self) -> SortKey:
        """Order of the rows."""
        return self._sort_key

    def set_sort_key(self, key: SortKey) -> None:
        """Put the rows in the order of `key`, with one layout change.

        Rows of equal value keep their previous relative order.
        """
        if key is self._sort_key:
            return
        self._sort_key = key
        values = [sort_value(item.record, key) for item in self._items]
        order = sorted(range(len(values)), key=values.__getitem__)
        new_rows = [0] * len(order)
        for new_row, old_row in enumerate(order):
            new_rows[old_row] = new_row

        self.layoutAboutToBeChanged.emit()
        for column in self._columns():
            column[:] = [column[row] for row in order]
        self._sort_values = [values[row] for row in order]
        self._rows_by_path = None
        old_indexes = self.persistentIndexList()
        self.changePersistentIndexList(
            old_indexes, [self.index(new_rows[index.row()]) for index in old_indexes])
        self.layoutChanged.emit()

    def clear(self) -> None:
        """Remove every item. The curator's decisions stay until set_overrides()."""
        self.beginResetModel()
        self._items.clear()
        self._flagged.clear()
        self._row_overrides.clear()
        self._decisions.clear()
        self._sort_values.clear()
        self._scores = []
        self._rows_by_path = {}
        self.endResetModel()
        self._recount()

    def remove_paths(self, relative_paths: Iterable[str]) -> list[GalleryItem]:
        """Remove the items with these relative paths and return them, in model order."""
        rows_by_path = self._row_index()
        rows = sorted(
            row for path in set(relative_paths)
            if (row := rows_by_path.get(path)) is not None
        )
        removed = [self._items[row] for row in rows]
        # Contiguous runs are removed from the end so earlier row numbers stay valid.
        for first, last in reversed(_contiguous_runs(rows)):
            self.beginRemoveRows(QModelIndex(), first, last)
            for column in self._columns():
                del column[first : last + 1]
            self._rows_by_path = None
            self.endRemoveRows()
        if rows:
            self._scores = None
            self._recount()
        return removed

    def item(self, row: int) -> GalleryItem:
        """Return the item at `row`. Raises IndexError outside 0..rowCount()-1."""
        return self._items[row]

    def tile(self, row: int) -> Tile:
        """Return what the tile at `row` shows. Raises IndexError outside the rows.

        A deferred item's thumbnail is read here, the first time its tile is shown.
        """
        item = self._items[row]
        if item.deferred and self._read_thumbnail is not None:
            thumbnail = self._read_thumbnail(item.record)
            if thumbnail is not None:
                item = self._items[row] = GalleryItem.create(item.record, thumbnail)
        return Tile(item, self._flagged[row], self._row_overrides[row], self._decisions[row])

    def set_thumbnail_reader(self, reader: ThumbnailReader | None) -> None:
        """Read the thumbnails of deferred items with `reader` when their tiles are shown."""
        self._read_thumbnail = reader

    def set_thumbnails(self, thumbnails: Iterable[CachedThumbnail]) -> None:
        """Give deferred items of these records their thumbnails, or none for good.

        A record that is no longer the one of its row is ignored, because a scan
        or an undo replaced the row or a move removed it. A deferred row of the
        same file is repainted instead, so that it requests its thumbnail again.
        """
        rows_by_path = self._row_index()
        changed = []
        for thumbnail in thumbnails:
            record = thumbnail.record
            row = rows_by_path.get(record.relative_path)
            if row is None or not self._items[row].deferred:
                continue
            if self._items[row].record is record:
                self._items[row] = GalleryItem.create(
                    record, thumbnail.data, thumbnail_problem=thumbnail.problem)
            changed.append(row)
        for first, last in _contiguous_runs(sorted(changed)):
            self.dataChanged.emit(self.index(first), self.index(last), THUMBNAIL_ROLES)

    def row_of(self, relative_path: str) -> int | None:
        """Return the row of the file at `relative_path`, or None if it has none."""
        return self._row_index().get(relative_path)

    def scores(self) -> list[float]:
        """Return the scores of the readable files, in no particular order."""
        if self._scores is None:
            self._scores = [item.record.score for item in self._items
                            if item.record.score is not None]
        return list(self._scores)

    def flag_at(self, row: int) -> bool | None:
        """Return whether the file at `row` is flagged, or None if it has no score."""
        return self._flagged[row]

    def override_at(self, row: int) -> Decision | None:
        return self._row_overrides[row]

    def decision_at(self, row: int) -> Decision:
        """Return the final decision on the file at `row`."""
        return self._decisions[row]

    def rejected_paths(self) -> list[str]:
        """Return the relative paths of the files whose final decision is reject."""
        return [
            item.record.relative_path
            for item, decision in zip(self._items, self._decisions, strict=True)
            if decision is Decision.REJECT
        ]

    def rejection_reasons(self) -> RejectionReasons:
        """Count the files whose final decision is reject by why they are rejected."""
        curator = flagged = not_scored = 0
        for row, decision in enumerate(self._decisions):
            if decision is not Decision.REJECT:
                continue
            if self._row_overrides[row] is not None:
                curator += 1
            elif self._flagged[row] is None:
                not_scored += 1
            else:
                flagged += 1
        return RejectionReasons(flagged, not_scored, curator)

    def counts(self) -> GalleryCounts:
        """Return the numbers of files by flag and by final decision."""
        return self._counts

    def _columns(self) -> tuple[list[Any], ...]:
        """Return the per-row lists, all in row order, for moving or removing rows."""
        return (self._items, self._flagged, self._row_overrides, self._decisions,
                self._sort_values)

    def _row_index(self) -> dict[str, int]:
        if self._rows_by_path is None:
            self._rows_by_path = {
                item.record.relative_path: row for row, item in enumerate(self._items)}
        return self._rows_by_path

    def _decide(self, row: int) -> Decision:
        return final_decision(self._items[row].record.score, self._threshold,
                              self._row_overrides[row])

    def _emit_rows_changed(self, rows: list[int]) -> None:
        # One signal per run of changed rows, because the proxy re-checks the filter
        # and sort position of every row in a signal's range through Python calls.
        for first, last in _contiguous_runs(rows):
            self.dataChanged.emit(self.index(first), self.index(last), DECISION_ROLES)
        if rows:
            self._recount()

    def _recount(self) -> None:
        # list.count() runs in C, so recounting after each batch stays cheap.
        total = len(self._items)
        rejected = self._decisions.count(Decision.REJECT)
        self._counts = GalleryCounts(
            total=total,
            flagged=self._flagged.count(True),
            kept=total - rejected,
            rejected=rejected,
            not_scored=self._flagged.count(None),
            overridden=total - self._row_overrides.count(None),
        )
        self.counts_changed.emit()

    def _is_flagged(self, record: ScoredFile) -> bool | None:
        return None if record.score is None else record.score > self._threshold

    def _tooltip(self, row: int) -> str:
        record = self._items[row].record
        lines = [record.relative_path]
        if record.score is not None:
            lines.append(f"{record.width} × {record.height} {record.format}")
            lines.append(f"Score {format_score(record.score)}")
        else:
            lines.append(describe_status(record))
        lines.append(describe_decision(self._decisions[row], self._row_overrides[row]))
        return "\n".join(lines)


def describe_decision(decision: Decision, override: Decision | None) -> str:
    """Return "Keep (your decision)" or "Reject (model's decision)" and the like."""
    source = "the model's decision" if override is None else "your decision"
    return f"{decision.value.capitalize()} ({source})"


def placeholder_text(item: GalleryItem, detailed: bool = False) -> str:
    """Return what is shown in place of the item's thumbnail when it has none.

    With `detailed`, an unreadable file's status comes with its detail, as
    describe_status gives it.
    """
    if item.deferred:
        return "Loading…"
    if item.thumbnail_problem:
        return sentence_case(item.thumbnail_problem)
    if item.record.status is Status.OK:
        return "No thumbnail"
    return sentence_case(describe_status(item.record) if detailed
                         else item.record.status.value)


def describe_status(record: ScoredFile) -> str:
    """Return the status of `record` with its detail, without repeating the status."""
    status = record.status.value
    if not record.detail:
        return status
    if record.detail.startswith(status):
        return record.detail
    return f"{status}: {record.detail}"


def sentence_case(text: str) -> str:
    """Return `text` with its first letter in upper case and the rest unchanged.

    Unlike str.capitalize, units such as "Mpx" keep their capitals.
    """
    return text[:1].upper() + text[1:]


def _contiguous_runs(rows: list[int]) -> list[tuple[int, int]]:
    """Group sorted row numbers into (first, last) runs of consecutive rows."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and runs[-1][1] == row - 1:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs
