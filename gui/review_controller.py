"""Keyboard review: keep, reject or clear the selected images, and move through the gallery."""

from __future__ import annotations

import logging
import sqlite3

from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Signal,
    Slot,
)

from engine.decisions import Decision
from engine.reviewdb import ReviewStoreError
from gui.actions import WindowActions
from gui.gallery_model import GalleryModel
from gui.gallery_proxy import GalleryProxyModel
from gui.gallery_roles import GalleryRole
from gui.gallery_view import GalleryView
from gui.review_session import ReviewSession

logger = logging.getLogger(__name__)

_SELECT = (QItemSelectionModel.SelectionFlag.ClearAndSelect
           | QItemSelectionModel.SelectionFlag.Current)


class ReviewController(QObject):
    """Applies the curator's decisions to the selected gallery images.

    A decision is stored in the review session first, then shown in the gallery
    model. If storing fails, the gallery stays as it was. After a decision the
    current image moves to the one after the last selected image, when
    `advance` is set.

    Signals:
        decision_applied(int, str): this many images got the decision "keep",
            "reject" or "" (cleared).
        decision_failed(str): storing a decision failed, described by the message.
    """

    decision_applied = Signal(int, str)
    decision_failed = Signal(str)

    def __init__(self, view: GalleryView, proxy: GalleryProxyModel, gallery_model: GalleryModel,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._view = view
        self._proxy = proxy
        self._gallery_model = gallery_model
        self._session: ReviewSession | None = None
        self.advance = True

    def connect_actions(self, actions: WindowActions) -> None:
        """Run the decision and navigation actions of the window on this controller."""
        actions.keep.triggered.connect(self.keep_selected)
        actions.reject.triggered.connect(self.reject_selected)
        actions.clear_decision.triggered.connect(self.clear_selected)
        actions.next_image.triggered.connect(self.go_next)
        actions.previous_image.triggered.connect(self.go_previous)
        actions.advance.toggled.connect(self.set_advance)
        actions.select_all.triggered.connect(self._view.selectAll)

    def set_session(self, session: ReviewSession | None) -> None:
        """Store decisions in `session`. None keeps them in the gallery model only."""
        self._session = session

    def selected_rows(self) -> list[int]:
        """Return the selected proxy rows in order, or the current row when none is selected."""
        selection = self._view.selectionModel()
        rows = sorted({index.row() for index in selection.selectedIndexes()})
        current = self._view.currentIndex()
        if not rows and current.isValid():
            rows = [current.row()]
        return rows

    def selected_paths(self) -> list[str]:
        """Return the relative paths of the selected images, in gallery order."""
        return [str(self._proxy.index(row, 0).data(GalleryRole.RELATIVE_PATH))
                for row in self.selected_rows()]

    def decide(self, decision: Decision | None) -> int:
        """Give the selected images `decision` (None clears it) and return how many."""
        rows = self.selected_rows()
        if not rows:
            return 0
        paths = [str(self._proxy.index(row, 0).data(GalleryRole.RELATIVE_PATH)) for row in rows]
        following = QPersistentModelIndex(self._proxy.index(rows[-1] + 1, 0))
        if not self._store(paths, decision):
            return 0
        self._gallery_model.set_override(paths, decision)
        if self.advance:
            self._advance(following, rows[-1])
        self.decision_applied.emit(len(paths), "" if decision is None else decision.value)
        return len(paths)

    @Slot()
    def keep_selected(self) -> None:
        self.decide(Decision.KEEP)

    @Slot()
    def reject_selected(self) -> None:
        self.decide(Decision.REJECT)

    @Slot()
    def clear_selected(self) -> None:
        self.decide(None)

    @Slot(bool)
    def set_advance(self, advance: bool) -> None:
        """Go to the next image after each decision, or stay on the decided one."""
        self.advance = advance

    @Slot()
    def go_next(self) -> None:
        """Make the image after the current one current and the only one selected."""
        self._go_by(1)

    @Slot()
    def go_previous(self) -> None:
        """Make the image before the current one current and the only one selected."""
        self._go_by(-1)

    def _go_by(self, step: int) -> None:
        count = self._proxy.rowCount()
        if count == 0:
            return
        current = self._view.currentIndex()
        row = 0 if not current.isValid() else min(count - 1, max(0, current.row() + step))
        self._make_current(self._proxy.index(row, 0))

    def _advance(self, following: QPersistentModelIndex, last_row: int) -> None:
        if following.isValid():
            self._make_current(self._proxy.index(following.row(), 0))
            return
        # The decided images were the last ones, or the filter hid the next one.
        count = self._proxy.rowCount()
        if count:
            self._make_current(self._proxy.index(min(last_row, count - 1), 0))

    def _make_current(self, index: QModelIndex) -> None:
        self._view.selectionModel().setCurrentIndex(index, _SELECT)
        self._view.scrollTo(index)

    def _store(self, paths: list[str], decision: Decision | None) -> bool:
        if self._session is None:
            return True
        try:
            waiting = self._session.set_override(paths, decision)
        except (ReviewStoreError, sqlite3.Error) as error:
            message = (f"Saving the decision on {len(paths)} images failed: {error}. "
                       "The gallery is unchanged; try again.")
            logger.error("%s", message)
            self.decision_failed.emit(message)
            return False
        if waiting:
            logger.debug("%d decisions wait until their files are saved", waiting)
        return True
