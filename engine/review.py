"""Per-folder review state: cached scores, curator overrides, thresholds and locations.

The state is stored in the folder's SQLite review database (see engine.reviewdb for
where that file lives). Opening a store also recovers any move batch that a killed
process left unfinished (see engine.journal). engine.scorestore reads and writes the
score cache, and engine.presence records which files a scan found.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.decisions import Decision
from engine.listing import relative_posix
from engine.records import LOCATIONS, STATUSES, FileIdentity, FileRecord, Location, hash_file
from engine.reviewdb import ReviewDatabase, ReviewStoreError, utc_now
from engine.reviewplaces import describe_split, read_content
from engine.signals import SIGNALS

if TYPE_CHECKING:
    from engine.journal import StoppedBatch
    from engine.listing import SkippedFolder

logger = logging.getLogger(__name__)

# The columns of FileRecord in _record's order, then whether a score is stored for
# the file's current size and mtime_ns, the score and each signal of SIGNALS.
_RECORD_QUERY = f"""
SELECT f.relative_path, f.size, f.mtime_ns, f.status, f.detail, f.width, f.height, f.format,
       f.sha256, f.override, f.override_time, f.location, f.moved_to,
       s.size = f.size AND s.mtime_ns = f.mtime_ns, s.score,
       {", ".join(f"s.{name}" for name in SIGNALS)}
FROM files AS f
LEFT JOIN scores AS s ON s.relative_path = f.relative_path AND s.model_fingerprint = ?
"""
# The index of the first column after the file's own in a _RECORD_QUERY row.
_SCORE_COLUMN = 13


class ReviewStore:
    """The review state of one folder, read from and written to its review database.

    All methods may be called from any thread. Relative paths use forward slashes,
    as in ScoredFile.relative_path. When the review is split between two databases
    (see engine.reviewplaces), `other` is the review in the database not in use,
    where undo looks for batches too, and `split_notice` is the message about it
    for the user.
    """

    def __init__(self, database: ReviewDatabase) -> None:
        self.database = database
        self.folder = database.folder
        self.recovered: list[str] = []
        self.stopped: list[StoppedBatch] = []
        # The subfolders that the last scan through this store could not list. The
        # code that lists the folder sets them, and the score CSV and the export
        # name them, because their files are in neither.
        self.skipped_folders: list[SkippedFolder] = []
        self.other: ReviewStore | None = None
        self.split_notice = ""

    @classmethod
    def open(cls, folder: Path) -> ReviewStore:
        """Open the review of `folder` and recover any interrupted move batch.

        `recovered` lists messages for the user: a summary of each recovered
        batch, then one line per file whose place recovery settled. `stopped`
        lists the batches whose move or undo stopped before it reached every
        file, while no report has shown that stop yet. The caller reports them
        and calls engine.journal.mark_stop_reported for each. The caller also
        shows `split_notice` if it is not empty. Raises ReviewStoreError if the
        database cannot be opened.
        """
        # Imported here because engine.journal builds on this module.
        from engine.journal import recover_batches, unreported_stops

        store = cls(ReviewDatabase.open(folder))
        store.recovered = recover_batches(store)
        store.stopped = unreported_stops(store)
        if store.database.other_path is not None:
            store._open_other(store.database.other_path)
        return store

    def _open_other(self, path: Path) -> None:
        """Open the review in the other database at `path` and recover its batches.

        Its stops are not listed, because their batch ids belong to that database.
        """
        from engine.journal import recover_batches

        try:
            other = ReviewStore(ReviewDatabase.open_existing(self.folder, path))
        except ReviewStoreError as error:
            self.split_notice = (f"The review of {self.folder} is split between two "
                                 f"databases. {error} Undo does not find the move batches "
                                 "stored there.")
            logger.error("%s", self.split_notice)
            return
        self.other = other
        self.recovered += recover_batches(other)
        content = read_content(path)
        if content is not None and content.needs_undo_or_review:
            self.split_notice = describe_split(self.folder, self.path, content)

    @property
    def path(self) -> Path:
        """The SQLite file of this review."""
        return self.database.path

    def close(self) -> None:
        if self.other is not None:
            self.other.close()
        self.database.close()

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- records -----------------------------------------------------------------

    def records(self, model_fingerprint: str = "") -> list[FileRecord]:
        """Return every file of the review, sorted by relative path.

        A record's score is the one cached under `model_fingerprint` for the
        file's stored size and modification time.
        """
        return list(self.iter_records(model_fingerprint))

    def iter_records(self, model_fingerprint: str = "") -> Iterator[FileRecord]:
        """Yield what `records` returns, building each record only when it is requested.

        The rows are read at once, so later changes to the review do not show. A
        caller that handles one record at a time keeps few of them alive. With 8000
        records alive, the `score` command set off a full garbage collection every
        few runs, which took 60–70 ms with torch loaded.
        """
        rows = self.database.query_tuples(_RECORD_QUERY + " ORDER BY f.relative_path",
                                          (model_fingerprint,))
        return map(_record, rows)

    def record(self, relative_path: str, model_fingerprint: str = "") -> FileRecord | None:
        rows = self.database.query_tuples(_RECORD_QUERY + " WHERE f.relative_path = ?",
                                          (model_fingerprint, relative_path))
        return _record(rows[0]) if rows else None

    def overrides(self) -> dict[str, Decision]:
        """Return the curator's decisions by relative path, also on files moved out."""
        rows = self.database.query(
            "SELECT relative_path, override FROM files WHERE override IS NOT NULL"
        )
        return {row["relative_path"]: Decision(row["override"]) for row in rows}

    def relative_paths_to_reject(self, model_fingerprint: str, threshold: float) -> list[str]:
        """Return the files in the folder whose final decision is reject, sorted."""
        return [
            record.relative_path
            for record in self.records(model_fingerprint)
            if record.location is Location.FOLDER
            and record.final_decision(threshold) is Decision.REJECT
        ]

    def save_sha256(self, relative_path: str, identity: FileIdentity, sha256: str) -> None:
        """Store the SHA-256 of a file's content, valid while its size and mtime_ns match."""
        with self.database.transaction() as connection:
            connection.execute(
                "UPDATE files SET sha256 = ? WHERE relative_path = ? AND size = ? "
                "AND mtime_ns = ?",
                (sha256, relative_path, identity.size, identity.mtime_ns),
            )

    # --- curator decisions -------------------------------------------------------

    def set_override(self, relative_paths: Iterable[str], decision: Decision | None) -> None:
        """Set the curator's decision on files, or clear it with None.

        A decision is stored with the SHA-256 of the file's content when the file
        is as it was last scored, the version the curator saw, so that the
        decision stays with that content (see engine.presence.mark_listed). Raises
        ValueError, changing nothing, if a path is not in the review.
        """
        paths = list(relative_paths)
        stamp = None if decision is None else utc_now()
        value = None if decision is None else decision.value
        digests = {} if decision is None else self._scored_digests(paths)
        with self.database.transaction() as connection:
            for relative_path in paths:
                changed = connection.execute(
                    "UPDATE files SET override = ?, override_time = ?, override_sha256 = ? "
                    "WHERE relative_path = ?",
                    (value, stamp, digests.get(relative_path), relative_path),
                ).rowcount
                if not changed:
                    raise ValueError(
                        f"Setting the decision failed: {relative_path} is not in the review "
                        f"of {self.folder}. Score the folder first."
                    )
        logger.debug("Set the decision of %d files to %s", len(paths), value)

    def _scored_digests(self, relative_paths: list[str]) -> dict[str, str]:
        """Return the SHA-256 of each file that still has the size and mtime_ns it
        was scored with, from the review when stored there.

        Files in quarantine, changed since their scan or unreadable get none.
        """
        digests = {}
        for relative_path in relative_paths:
            rows = self.database.query_tuples(
                "SELECT size, mtime_ns, sha256 FROM files "
                "WHERE relative_path = ? AND location = 'folder'", (relative_path,))
            if not rows:
                continue
            size, mtime_ns, stored = rows[0]
            path = self.folder / relative_path
            try:
                now = os.stat(path)
                if (now.st_size, now.st_mtime_ns) == (size, mtime_ns):
                    digests[relative_path] = stored or hash_file(path)
            except OSError:
                continue
        return digests

    def threshold_choice(self, model_fingerprint: str) -> float | None:
        """Return the threshold chosen for this folder and model, or None for calibrated."""
        rows = self.database.query(
            "SELECT threshold FROM thresholds WHERE model_fingerprint = ?", (model_fingerprint,)
        )
        return float(rows[0]["threshold"]) if rows else None

    def set_threshold_choice(self, model_fingerprint: str, threshold: float | None) -> None:
        """Choose the threshold for this folder and model; None returns to the calibrated one."""
        with self.database.transaction() as connection:
            if threshold is None:
                connection.execute("DELETE FROM thresholds WHERE model_fingerprint = ?",
                                   (model_fingerprint,))
            else:
                connection.execute("INSERT OR REPLACE INTO thresholds VALUES (?, ?)",
                                   (model_fingerprint, float(threshold)))

    def threshold_for(self, model_fingerprint: str, calibrated: float) -> float:
        """Return the folder's chosen threshold for the model, else `calibrated`."""
        choice = self.threshold_choice(model_fingerprint)
        return calibrated if choice is None else choice

    def relative_path(self, path: Path) -> str:
        """Return the relative path of `path` under the folder, with forward slashes.

        Raises ValueError for a path outside the folder.
        """
        return relative_posix(os.path.abspath(path), self.folder)


def _cached_values(row: tuple[Any, ...]) -> tuple[float | None, dict[str, float] | None]:
    """Return the score and signals of a _RECORD_QUERY row, or None where none is current."""
    current, score, *signals = row[_SCORE_COLUMN:]
    if not current or score is None:
        return None, None
    if signals[0] is None:
        return float(score), None
    return float(score), {name: float(value) for name, value in zip(SIGNALS, signals, strict=True)}


def _record(row: tuple[Any, ...]) -> FileRecord:
    (relative_path, size, mtime_ns, status, detail, width, height, image_format, sha256,
     override, override_time, location, moved_to) = row[:_SCORE_COLUMN]
    score, signals = _cached_values(row)
    return FileRecord(
        relative_path=relative_path,
        size=size,
        mtime_ns=mtime_ns,
        status=STATUSES[status],
        detail=detail,
        width=width,
        height=height,
        format=image_format,
        sha256=sha256,
        score=score,
        signals=signals,
        override=None if override is None else Decision(override),
        override_time=override_time,
        location=LOCATIONS[location],
        moved_to=None if moved_to is None else Path(moved_to),
    )
