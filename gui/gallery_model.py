"""Qt list model of scored files with the model's flags and the curator's overrides."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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
from engine.scoring import ScoredFile
from engine.thumbnails import CachedThumbnail
from gui.gallery_items import (
    GalleryCounts,
    GalleryItem,
    RejectionReasons,
    ThumbnailReader,
    Tile,
    count_files,
    count_rejection_reasons,
    describe_file,
)
from gui.gallery_order import SortKey, SortValue, insertion_runs, sort_value
from gui.gallery_roles import DECISION_ROLES, THUMBNAIL_ROLES, GalleryRole

logger = logging.getLogger(__name__)

ModelIndex = QModelIndex | QPersistentModelIndex


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
                return describe_file(record, self._decisions[row], self._row_overrides[row])
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

        A thumbnail with no data and a problem, such as CHANGED_SINCE_SCORED, also
        replaces the thumbnail of an item that has one. A record that is no longer
        the one of its row is ignored, because a scan or an undo replaced the row
        or a move removed it. A deferred row of the same file is repainted instead,
        so that it requests its thumbnail again.
        """
        rows_by_path = self._row_index()
        changed = []
        for thumbnail in thumbnails:
            record = thumbnail.record
            row = rows_by_path.get(record.relative_path)
            if row is None:
                continue
            has_problem = thumbnail.data is None and bool(thumbnail.problem)
            if not self._items[row].deferred and not has_problem:
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
        return count_rejection_reasons(self._flagged, self._decisions, self._row_overrides)

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
        self._counts = count_files(self._flagged, self._decisions, self._row_overrides)
        self.counts_changed.emit()

    def _is_flagged(self, record: ScoredFile) -> bool | None:
        return None if record.score is None else record.score > self._threshold


def _contiguous_runs(rows: list[int]) -> list[tuple[int, int]]:
    """Group sorted row numbers into (first, last) runs of consecutive rows."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and runs[-1][1] == row - 1:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs
