"""Per-folder review state: cached scores, curator overrides, thresholds and locations.

The state is stored in the folder's SQLite review database (see engine.reviewdb for
where that file lives). Opening a store also recovers any move batch that a killed
process left unfinished (see engine.journal).
"""

from __future__ import annotations

import enum
import errno
import hashlib
import logging
import os
import stat
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from engine.decisions import Decision, DecisionSource, decision_source, model_decision
from engine.images import Status
from engine.reviewdb import ReviewDatabase, utc_now
from engine.scoring import ScoredFile
from engine.signals import SIGNALS

if TYPE_CHECKING:
    from engine.journal import StoppedBatch

logger = logging.getLogger(__name__)

# A file whose mtime is this close to the moment its identity was read may change
# again within the same timestamp tick without a visible change, so its cached score
# is not trusted. Two seconds is the mtime resolution of FAT, the coarsest of the
# common file systems.
RACY_WINDOW_NS = 2_000_000_000

# Bytes read at a time when a file's content is hashed.
_CHUNK_BYTES = 1 << 20

# Statuses that depend on the moment of reading, not on the file's content, so they
# are never cached: the next scan reads the file again.
_TRANSIENT_STATUSES = frozenset({Status.MISSING, Status.UNREADABLE})


class Location(enum.StrEnum):
    """Current place of a reviewed file."""

    FOLDER = "folder"
    QUARANTINE = "quarantine"
    # Not found in the folder at the last scan, and not moved by Retina Curator.
    MISSING = "missing"


@dataclass(frozen=True)
class FileIdentity:
    """Size and modification time of a file, and when they were read (all from os.stat)."""

    size: int
    mtime_ns: int
    checked_ns: int


class FileRecord(NamedTuple):
    """The review state of one file, with its score under one model, as the review
    database stores it.

    `score` is None when the file has no cached score under that model for its
    current size and modification time, or when it could not be read; `signals`
    then is None too.
    `moved_to` is the absolute path in quarantine when `location` is QUARANTINE.
    """

    relative_path: str
    size: int
    mtime_ns: int
    status: Status
    detail: str
    width: int
    height: int
    format: str
    sha256: str | None
    score: float | None
    signals: dict[str, float] | None
    override: Decision | None
    override_time: str | None
    location: Location
    moved_to: Path | None

    def model_decision(self, threshold: float) -> Decision | None:
        """Return the model's decision, or None for a readable file not scored yet."""
        if self.status is not Status.OK:
            return Decision.REJECT
        if self.score is None:
            return None
        return model_decision(self.score, threshold)

    def final_decision(self, threshold: float) -> Decision | None:
        """Return the override when there is one, else the model's decision."""
        return self.override or self.model_decision(threshold)

    @property
    def decision_source(self) -> DecisionSource:
        return decision_source(self.override)


def read_identity(path: Path) -> FileIdentity:
    """Stat `path`, following links as image intake does. Raises OSError."""
    checked_ns = time.time_ns()
    stat = os.stat(path)
    return FileIdentity(stat.st_size, stat.st_mtime_ns, checked_ns)


def hash_file(path: Path) -> str:
    """Return the SHA-256 of a regular file's content as hex.

    Raises OSError, also for a pipe or a device, which would block or never end.
    """
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _listed_identity(path: Path) -> FileIdentity:
    """Stat `path` like read_identity, or the link itself when its target cannot be reached.

    A broken link stays in the review this way, with its "unreadable" status, so
    it can be moved out like any other file. Raises OSError when `path` itself is gone.
    """
    checked_ns = time.time_ns()
    stat = _listed_stat(path)
    return FileIdentity(stat.st_size, stat.st_mtime_ns, checked_ns)


def _listed_stat(path: str | Path) -> os.stat_result:
    """Stat `path` as _listed_identity does. Raises OSError when `path` itself is gone."""
    try:
        return os.stat(path)
    except OSError:
        return os.lstat(path)


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

# The files whose score can be trusted (see ReviewStore._trusted_identities).
_TRUSTED_FILES = """
FROM files AS f
JOIN scores AS s ON s.relative_path = f.relative_path AND s.model_fingerprint = ?
WHERE s.size = f.size AND s.mtime_ns = f.mtime_ns AND abs(s.mtime_ns - s.checked_ns) > ?
"""
_TRUSTED_QUERY = "SELECT f.relative_path, f.size, f.mtime_ns" + _TRUSTED_FILES
# The same files with what a cached ScoredFile takes from their rows, in the
# order of _scored_file. For 20 000 files it took 57 ms against 23 ms for
# _TRUSTED_QUERY, which is all a caller that builds no results needs.
_CACHED_QUERY = f"""
SELECT f.relative_path, f.size, f.mtime_ns, f.status, f.detail, f.width, f.height, f.format,
       s.score, {", ".join(f"s.{name}" for name in SIGNALS)}
""" + _TRUSTED_FILES


class ReviewStore:
    """The review state of one folder, read from and written to its review database.

    All methods may be called from any thread. Relative paths use forward slashes,
    as in ScoredFile.relative_path.
    """

    def __init__(self, database: ReviewDatabase) -> None:
        self.database = database
        self.folder = database.folder
        self.recovered: list[str] = []
        self.stopped: list[StoppedBatch] = []

    @classmethod
    def open(cls, folder: Path) -> ReviewStore:
        """Open the review of `folder` and recover any interrupted move batch.

        `recovered` lists messages for the user: a summary of each recovered
        batch, then one line per file whose place recovery settled. `stopped`
        lists the batches whose move or undo stopped before it reached every
        file, while no report has shown that stop yet. The caller reports them
        and calls engine.journal.mark_stop_reported for each. Raises
        ReviewStoreError if the database cannot be opened.
        """
        # Imported here because engine.journal builds on this module.
        from engine.journal import recover_batches, unreported_stops

        store = cls(ReviewDatabase.open(folder))
        store.recovered = recover_batches(store)
        store.stopped = unreported_stops(store)
        return store

    @property
    def path(self) -> Path:
        """The SQLite file of this review."""
        return self.database.path

    def close(self) -> None:
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

    # --- score cache -------------------------------------------------------------

    def cached(
        self, model_fingerprint: str, paths: Sequence[Path], threshold: float
    ) -> tuple[list[ScoredFile], list[Path]]:
        """Split `paths` into cached results and files that must be scored.

        A file is cached when its current size and mtime_ns equal those stored
        with its score under `model_fingerprint`, and that mtime was not within
        RACY_WINDOW_NS of the moment they were read. Cached results have no thumbnail,
        and `flagged` is computed with `threshold`.
        """
        relative_paths = [self.relative_path(path) for path in paths]
        hits, misses, _ = self.lookup(model_fingerprint, relative_paths, threshold)
        return hits, misses

    def lookup(
        self, model_fingerprint: str, relative_paths: Sequence[str], threshold: float
    ) -> tuple[list[ScoredFile], list[Path], dict[str, FileIdentity]]:
        """Do what `cached` does for the files at `relative_paths`, and also return the
        identity of each miss read now.

        Misses are the folder / relative path, in the order of `relative_paths`.
        """
        # The trusted files of _trusted_identities, with their cached results.
        rows = {row[0]: row for row in self.database.query_tuples(
            _CACHED_QUERY, (model_fingerprint, RACY_WINDOW_NS))}
        stale, identities = self._find_stale(
            relative_paths, {relative_path: row[1:3] for relative_path, row in rows.items()})
        hits: list[ScoredFile] = []
        misses: list[Path] = []
        for index, relative_path in enumerate(relative_paths):
            if index in stale:
                misses.append(self.folder / relative_path)
            else:
                hits.append(_scored_file(self.folder, rows[relative_path], threshold))
        logger.debug("Cache of %s under model %s: %d hits, %d misses",
                     self.folder, model_fingerprint, len(hits), len(misses))
        return hits, misses, identities

    def stale_files(
        self, model_fingerprint: str, relative_paths: Sequence[str]
    ) -> tuple[list[str], dict[str, FileIdentity]]:
        """Return the files of `relative_paths` that `cached` would not find, in that order.

        Also returns the identity read now of each of them that could be stat-ed.
        Unlike `cached`, it builds no result for the cached files, for a caller that
        reads them from the review afterwards.
        """
        stale, identities = self._find_stale(
            relative_paths, self._trusted_identities(model_fingerprint))
        logger.debug("Cache of %s under model %s: %d hits, %d misses", self.folder,
                     model_fingerprint, len(relative_paths) - len(stale), len(stale))
        return [relative_paths[index] for index in sorted(stale)], identities

    def _find_stale(
        self, relative_paths: Sequence[str], trusted: Mapping[str, tuple[int, int]]
    ) -> tuple[set[int], dict[str, FileIdentity]]:
        """Return the indexes of the files without a current cached score, and their identities.

        `trusted` holds the model's _trusted_identities. A file that cannot be
        stat-ed is stale and has no identity.
        """
        # Strings, not Paths: a Path costs more to build than the stat.
        prefix = os.path.join(self.folder, "")
        stale: set[int] = set()
        identities: dict[str, FileIdentity] = {}
        for index, relative_path in enumerate(relative_paths):
            checked_ns = time.time_ns()
            try:
                stat = _listed_stat(prefix + relative_path)
            except OSError:
                stale.add(index)
                continue
            if trusted.get(relative_path) != (stat.st_size, stat.st_mtime_ns):
                stale.add(index)
                identities[relative_path] = FileIdentity(stat.st_size, stat.st_mtime_ns,
                                                         checked_ns)
        return stale, identities

    def _trusted_identities(self, model_fingerprint: str) -> dict[str, tuple[int, int]]:
        """Return the size and mtime_ns of each file whose cached score can be trusted.

        A score can be trusted when it was computed for the file's stored size and
        mtime_ns, and that mtime was not within RACY_WINDOW_NS of the moment they
        were read. Only an mtime near that moment can repeat after a later change.
        An mtime far in the future (a skewed camera clock) cannot, so it stays trusted.
        """
        rows = self.database.query_tuples(_TRUSTED_QUERY, (model_fingerprint, RACY_WINDOW_NS))
        return {relative_path: (size, mtime_ns) for relative_path, size, mtime_ns in rows}

    def save_scores(
        self,
        model_fingerprint: str,
        results: Iterable[ScoredFile],
        identities: dict[str, FileIdentity] | None = None,
    ) -> int:
        """Store the intake result and score of each file and return how many were cached.

        `identities` gives the size and mtime_ns read before a file was decoded; a
        file without one is stat-ed now, and skipped if that fails, unless it was
        found missing: that file is marked missing, like one the listing did not
        find. Results with a transient status (missing, unreadable) update the
        file's status but are not cached, so the next scan reads those files again.
        """
        identities = identities or {}
        cached = 0
        with self.database.transaction() as connection:
            for item in results:
                identity = identities.get(item.relative_path)
                if identity is None:
                    try:
                        identity = _listed_identity(item.path)
                    except OSError:
                        if item.status is Status.MISSING:
                            # Removed between the listing and its decoding.
                            connection.execute(
                                "UPDATE files SET location = 'missing' "
                                "WHERE relative_path = ? AND location = 'folder'",
                                (item.relative_path,))
                        continue
                connection.execute(_UPSERT_FILE, _file_values(item, identity))
                if item.status in _TRANSIENT_STATUSES:
                    continue
                connection.execute(
                    "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (item.relative_path, model_fingerprint, identity.size,
                     identity.mtime_ns, identity.checked_ns, item.score,
                     *(None if item.signals is None else item.signals.get(name)
                       for name in SIGNALS)),
                )
                cached += 1
        return cached

    def save_sha256(self, relative_path: str, identity: FileIdentity, sha256: str) -> None:
        """Store the SHA-256 of a file's content, valid while its size and mtime_ns match."""
        with self.database.transaction() as connection:
            connection.execute(
                "UPDATE files SET sha256 = ? WHERE relative_path = ? AND size = ? "
                "AND mtime_ns = ?",
                (sha256, relative_path, identity.size, identity.mtime_ns),
            )

    def mark_listed(self, relative_paths: Iterable[str]) -> None:
        """Record that exactly `relative_paths` were found in the folder by a scan.

        Files found are in the folder, even one that was moved out before and
        whose name has been taken again. Files not found and not moved out are
        marked missing. A curator's decision stays with the content it was made
        on: it is dropped when the file at its name now contains other content, see
        `_replaced_decisions`.
        """
        listed = set(relative_paths)
        # Outside the transaction: hashing changed files may take a while.
        replaced = self._replaced_decisions(listed)
        with self.database.transaction() as connection:
            # Comparing in Python and updating only the files that changed took
            # 4 ms for 8000 files, where a temporary table of the listing took 12 ms.
            found_again: list[tuple[str]] = []
            not_found: list[tuple[str]] = []
            cursor = connection.cursor()
            cursor.row_factory = None
            for relative_path, location in cursor.execute(
                    "SELECT relative_path, location FROM files").fetchall():
                if relative_path in listed:
                    if location != Location.FOLDER:
                        found_again.append((relative_path,))
                elif location == Location.FOLDER:
                    not_found.append((relative_path,))
            connection.executemany(
                "UPDATE files SET location = 'folder', moved_to = NULL WHERE relative_path = ?",
                found_again,
            )
            # The decision is dropped only if it is still the one judged above.
            connection.executemany(
                "UPDATE files SET override = NULL, override_time = NULL, "
                "override_sha256 = NULL "
                "WHERE relative_path = ? AND override_time IS ? AND override_sha256 IS ?",
                replaced,
            )
            connection.executemany(
                "UPDATE files SET location = 'missing' WHERE relative_path = ?", not_found
            )
        for relative_path, *_ in replaced:
            logger.info("Dropped the decision on %s: the file now contains other content",
                        relative_path)

    def _replaced_decisions(self, listed: set[str]) -> list[tuple[str, str, str | None]]:
        """Return the path, decision time and decided digest of each listed file whose
        decision no longer applies to the file found at its name.

        A decision applies while the file keeps the size and mtime_ns it had when it
        was last scored. When they changed, it applies if the content has the
        SHA-256 the decision was made on, so a folder copied without its times keeps
        its decisions. A decision stored without a digest applies to a file that
        stayed in the folder, and not to one found again after it was moved out or
        missing with another size or mtime_ns.
        """
        decided_files = self.database.query_tuples(
            "SELECT relative_path, location, size, mtime_ns, override_sha256, override_time "
            "FROM files WHERE override IS NOT NULL")
        replaced = []
        for relative_path, location, size, mtime_ns, decided_sha256, decided in decided_files:
            if relative_path not in listed:
                continue
            path = self.folder / relative_path
            try:
                now = _listed_stat(path)
            except OSError:
                # Gone again since the listing: the next scan marks it missing.
                continue
            if (now.st_size, now.st_mtime_ns) == (size, mtime_ns):
                continue
            if decided_sha256 is None:
                applies = location == Location.FOLDER
            else:
                try:
                    applies = hash_file(path) == decided_sha256
                except OSError as error:
                    logger.warning("Reading %s failed, so its decision is dropped: %s",
                                   path, error.strerror or error)
                    applies = False
            if not applies:
                replaced.append((relative_path, decided, decided_sha256))
        return replaced

    # --- curator decisions -------------------------------------------------------

    def set_override(self, relative_paths: Iterable[str], decision: Decision | None) -> None:
        """Set the curator's decision on files, or clear it with None.

        A decision is stored with the SHA-256 of the file's content when the file
        is as it was last scored, the version the curator saw, so that the
        decision stays with that content (see mark_listed). Raises ValueError,
        changing nothing, if a path is not in the review.
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
        absolute = os.path.abspath(path)
        # Slicing the string gives what Path.relative_to gives for a path that
        # starts with the folder's, in 1.5 µs instead of 6.4 µs. A scan computes
        # it twice for every file.
        prefix = os.path.join(self.folder, "")
        if absolute.startswith(prefix) and len(absolute) > len(prefix):
            return absolute[len(prefix):].replace(os.sep, "/")
        return Path(absolute).relative_to(self.folder).as_posix()


_UPSERT_FILE = """
INSERT INTO files (relative_path, size, mtime_ns, status, detail, width, height, format,
                   location)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'folder')
ON CONFLICT (relative_path) DO UPDATE SET
    sha256 = CASE WHEN size = excluded.size AND mtime_ns = excluded.mtime_ns
                  THEN sha256 END,
    size = excluded.size, mtime_ns = excluded.mtime_ns, status = excluded.status,
    detail = excluded.detail, width = excluded.width, height = excluded.height,
    format = excluded.format, location = 'folder', moved_to = NULL
"""


def _file_values(item: ScoredFile, identity: FileIdentity) -> tuple[object, ...]:
    return (item.relative_path, identity.size, identity.mtime_ns, item.status.value,
            item.detail, item.width, item.height, item.format)


def _cached_values(row: tuple[Any, ...]) -> tuple[float | None, dict[str, float] | None]:
    """Return the score and signals of a _RECORD_QUERY row, or None where none is current."""
    current, score, *signals = row[_SCORE_COLUMN:]
    if not current or score is None:
        return None, None
    if signals[0] is None:
        return float(score), None
    return float(score), {name: float(value) for name, value in zip(SIGNALS, signals, strict=True)}


# Looking a stored value up here took 0.05 µs, and calling the enum 0.3 µs.
_STATUSES = {status.value: status for status in Status}
_LOCATIONS = {location.value: location for location in Location}


def _record(row: tuple[Any, ...]) -> FileRecord:
    (relative_path, size, mtime_ns, status, detail, width, height, image_format, sha256,
     override, override_time, location, moved_to) = row[:_SCORE_COLUMN]
    score, signals = _cached_values(row)
    return FileRecord(
        relative_path=relative_path,
        size=size,
        mtime_ns=mtime_ns,
        status=_STATUSES[status],
        detail=detail,
        width=width,
        height=height,
        format=image_format,
        sha256=sha256,
        score=score,
        signals=signals,
        override=None if override is None else Decision(override),
        override_time=override_time,
        location=_LOCATIONS[location],
        moved_to=None if moved_to is None else Path(moved_to),
    )


def _scored_file(folder: Path, row: tuple[Any, ...], threshold: float) -> ScoredFile:
    """Return the cached result of a _CACHED_QUERY row."""
    relative_path, size, mtime_ns, stored_status, detail, width, height, image_format, score = (
        row[:9])
    status = _STATUSES[stored_status]
    signals = None
    if score is not None and row[9] is not None:
        signals = dict(zip(SIGNALS, map(float, row[9:]), strict=True))
    return ScoredFile(
        root=folder,
        relative_path=relative_path,
        status=status,
        detail=detail,
        score=None if score is None else float(score),
        flagged=None if score is None else score > threshold,
        thumbnail=None,
        width=width,
        height=height,
        format=image_format,
        signals=signals,
        # Set for readable files only, as engine.scoring sets them.
        size=size if status is Status.OK else None,
        mtime_ns=mtime_ns if status is Status.OK else None,
    )
