"""Sort and filter proxy that the gallery shows over a GalleryModel."""

from __future__ import annotations

import enum
import logging

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QSortFilterProxyModel

from engine.decisions import Decision
from engine.images import Status
from gui.gallery_model import GalleryModel
from gui.gallery_order import SortKey
from gui.gallery_roles import GalleryRole

__all__ = ["FilterMode", "GalleryProxyModel", "SortKey"]

logger = logging.getLogger(__name__)

ModelIndex = QModelIndex | QPersistentModelIndex


class FilterMode(enum.StrEnum):
    """Gallery filter. The value is the text shown to the user."""

    ALL = "All"
    FLAGGED = "Flagged"  # scored above the threshold, whatever the curator decided
    KEPT = "Kept"  # final decision keep
    REJECTED = "Rejected"  # final decision reject, files not scored included
    OVERRIDDEN = "Decided by you"
    # Every file whose intake status is not ok: empty, damaged, too large, unreadable…
    NOT_SCORED = "Not scored"


class GalleryProxyModel(QSortFilterProxyModel):
    """Filter proxy of a GalleryModel that re-filters rows as they change.

    The proxy never sorts: the GalleryModel keeps its rows in the chosen order, so
    a new row costs no comparisons in Python. Sorting in the proxy took about 15
    Python comparisons per new row in a gallery of 20 000, 0.2 ms per row.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._filter_mode = FilterMode.ALL
        self.setDynamicSortFilter(True)
        # GalleryModel names this role in every dataChanged of a threshold or
        # override change, so those rows are filtered again.
        self.setFilterRole(GalleryRole.FLAGGED)

    @property
    def filter_mode(self) -> FilterMode:
        return self._filter_mode

    @property
    def sort_key(self) -> SortKey:
        """Order of the rows, which is the GalleryModel's."""
        return self._gallery().sort_key

    def set_sort_key(self, key: SortKey) -> None:
        """Order rows by `key`, which the GalleryModel below does."""
        self._gallery().set_sort_key(key)

    def set_filter_mode(self, mode: FilterMode) -> None:
        """Show only the rows that `mode` selects."""
        self.beginFilterChange()
        self._filter_mode = mode
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: ModelIndex) -> bool:
        if self._filter_mode is FilterMode.ALL:
            return True
        source = self._gallery()
        match self._filter_mode:
            case FilterMode.FLAGGED:
                return source.flag_at(source_row) is True
            case FilterMode.KEPT:
                return source.decision_at(source_row) is Decision.KEEP
            case FilterMode.REJECTED:
                return source.decision_at(source_row) is Decision.REJECT
            case FilterMode.OVERRIDDEN:
                return source.override_at(source_row) is not None
            case FilterMode.NOT_SCORED:
                return source.item(source_row).record.status is not Status.OK
        return True

    def _gallery(self) -> GalleryModel:
        source = self.sourceModel()
        assert isinstance(source, GalleryModel), "the source model must be a GalleryModel"
        return source
