"""The open folder's review state as the window uses it: overrides, threshold and batches."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from engine.decisions import Decision
from engine.journal import Batch, StoppedBatch, last_undoable_batch, mark_stop_reported
from engine.modelfile import ReferenceModel
from engine.review import ReviewStore
from engine.reviewdb import ReviewStoreError
from engine.undo import undo_store

logger = logging.getLogger(__name__)


class ReviewSession:
    """A ReviewStore opened for one folder and one model.

    Curator decisions on files that a running scan has not saved to the store yet
    are held back and written by flush_pending(), because the store accepts
    decisions only on files it contains. Methods raise ReviewStoreError or
    sqlite3.Error when the database fails.
    """

    def __init__(self, store: ReviewStore, model: ReferenceModel) -> None:
        self.store = store
        self.model = model
        self._fingerprint = model.fingerprint
        self._pending: dict[str, Decision | None] = {}

    @classmethod
    def open(cls, folder: Path, model: ReferenceModel) -> ReviewSession:
        """Open the review of `folder`, recovering any move batch a killed process left.

        Raises ReviewStoreError if the review database cannot be opened.
        """
        return cls(ReviewStore.open(folder), model)

    @property
    def folder(self) -> Path:
        return self.store.folder

    @property
    def recovered(self) -> list[str]:
        """Messages about move batches that opening the review recovered."""
        return list(self.store.recovered)

    @property
    def split_notice(self) -> str:
        """The notice of a review split between two databases, or "" (see ReviewStore)."""
        return self.store.split_notice

    @property
    def stopped(self) -> list[StoppedBatch]:
        """Batches whose move or undo stopped before it reached every file, and whose
        stop was not reported yet when the review was opened.
        """
        return list(self.store.stopped)

    def mark_stop_reported(self, batch_id: int) -> None:
        """Record that the window has shown the stop of the batch, so that no later open
        shows it again. A failure is logged, and the stop is then shown again.
        """
        self.store.stopped = [stop for stop in self.store.stopped if stop.id != batch_id]
        mark_stop_reported(self.store, batch_id)

    @property
    def database_path(self) -> Path:
        return self.store.path

    def close(self) -> None:
        self.store.close()

    def use_model(self, model: ReferenceModel) -> float:
        """Switch to the scores and threshold choice of `model` and return that threshold.

        The threshold is the one chosen for this folder and `model`, else the
        calibrated one. If reading it fails, the error is logged and the calibrated
        one returned. The curator's decisions, also those held back for
        flush_pending(), belong to files and not to a model, so they stay.
        """
        self.model = model
        self._fingerprint = model.fingerprint
        try:
            return self.threshold()
        except (ReviewStoreError, sqlite3.Error) as error:
            logger.error("Reading the threshold of %s for model %s failed: %s", self.folder,
                         model.name, error)
            return model.threshold

    def overrides(self) -> dict[str, Decision]:
        """Return the curator's decisions by relative path, also on files moved out.

        A file that undo brings back thus shows its decision again.
        """
        # One query of the decided files: reading every record of a 20 000-file
        # review took 0.2 s of the window's time on each open.
        return self.store.overrides()

    def threshold(self) -> float:
        """Return the threshold chosen for this folder and model, else the calibrated one."""
        return self.store.threshold_for(self._fingerprint, self.model.threshold)

    def save_threshold(self, threshold: float) -> None:
        """Keep `threshold` for this folder and model. The calibrated value is stored as None."""
        choice = None if threshold == self.model.threshold else threshold
        self.store.set_threshold_choice(self._fingerprint, choice)

    def set_override(self, relative_paths: Iterable[str], decision: Decision | None) -> int:
        """Store the curator's decision on files, or clear it with None.

        Returns how many decisions wait for flush_pending() because their files
        are not in the store yet.
        """
        paths = list(relative_paths)
        try:
            self.store.set_override(paths, decision)
        except ValueError:
            # Some file is not saved yet, and the store changed nothing, so each
            # file is stored on its own.
            for relative_path in paths:
                try:
                    self.store.set_override([relative_path], decision)
                except ValueError:
                    self._pending[relative_path] = decision
        else:
            for relative_path in paths:
                self._pending.pop(relative_path, None)
        return len(self._pending)

    def flush_pending(self) -> list[str]:
        """Store the decisions held back and return the paths still unknown to the store."""
        pending, self._pending = self._pending, {}
        unknown = []
        for relative_path, decision in pending.items():
            try:
                self.store.set_override([relative_path], decision)
            except ValueError:
                unknown.append(relative_path)
        if unknown:
            logger.warning("%d decisions of %s were not stored because their files are not "
                           "in the review, first: %s", len(unknown), self.folder, unknown[0])
        return unknown

    def undoable_batch(self) -> Batch | None:
        """Return the newest move batch that undo would reverse, or None."""
        try:
            return last_undoable_batch(undo_store(self.store))
        except sqlite3.Error as error:
            logger.error("Reading the move journal of %s failed: %s", self.folder, error)
            return None
