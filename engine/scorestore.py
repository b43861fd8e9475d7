"""The review's score cache: which files need scoring, their cached results, and new scores."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.images import Status
from engine.records import STATUSES, FileIdentity, listed_identity, listed_stat
from engine.scoring import ScoredFile
from engine.signals import SIGNALS

if TYPE_CHECKING:
    from engine.review import ReviewStore

logger = logging.getLogger(__name__)

# A file whose mtime is this close to the moment its identity was read may change
# again within the same timestamp tick without a visible change, so its cached score
# is not trusted. Two seconds is the mtime resolution of FAT, the coarsest of the
# common file systems.
RACY_WINDOW_NS = 2_000_000_000

# Statuses that depend on the moment of reading, not on the file's content, so they
# are never cached: the next scan reads the file again.
_TRANSIENT_STATUSES = frozenset({Status.MISSING, Status.UNREADABLE})

# The files whose score can be trusted (see _trusted_identities).
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

# Marks a file removed after the listing, before its size could be read. A file new
# to the review gets a row, so that the outputs list it as missing. Its unknown size
# and mtime_ns are stored as 0. It has no cached score, so it is scored when it
# comes back.
_MARK_MISSING = """
INSERT INTO files (relative_path, size, mtime_ns, status, detail, location)
VALUES (?, 0, 0, 'missing', ?, 'missing')
ON CONFLICT (relative_path) DO UPDATE SET location = 'missing' WHERE location = 'folder'
"""


def cached(
    store: ReviewStore, model_fingerprint: str, paths: Sequence[Path], threshold: float
) -> tuple[list[ScoredFile], list[Path]]:
    """Split `paths` into cached results and files that must be scored.

    A file is cached when its current size and mtime_ns equal those stored
    with its score under `model_fingerprint`, and that mtime was not within
    RACY_WINDOW_NS of the moment they were read. Cached results have no thumbnail,
    and `flagged` is computed with `threshold`.
    """
    relative_paths = [store.relative_path(path) for path in paths]
    hits, misses, _ = lookup(store, model_fingerprint, relative_paths, threshold)
    return hits, misses


def lookup(
    store: ReviewStore, model_fingerprint: str, relative_paths: Sequence[str], threshold: float
) -> tuple[list[ScoredFile], list[Path], dict[str, FileIdentity]]:
    """Do what `cached` does for the files at `relative_paths`, and also return the
    identity of each miss read now.

    Misses are the folder / relative path, in the order of `relative_paths`.
    """
    # The trusted files of _trusted_identities, with their cached results.
    rows = {row[0]: row for row in store.database.query_tuples(
        _CACHED_QUERY, (model_fingerprint, RACY_WINDOW_NS))}
    stale, identities = _find_stale(
        store, relative_paths,
        {relative_path: row[1:3] for relative_path, row in rows.items()})
    hits: list[ScoredFile] = []
    misses: list[Path] = []
    for index, relative_path in enumerate(relative_paths):
        if index in stale:
            misses.append(store.folder / relative_path)
        else:
            hits.append(_scored_file(store.folder, rows[relative_path], threshold))
    logger.debug("Cache of %s under model %s: %d hits, %d misses",
                 store.folder, model_fingerprint, len(hits), len(misses))
    return hits, misses, identities


def stale_files(
    store: ReviewStore, model_fingerprint: str, relative_paths: Sequence[str]
) -> tuple[list[str], dict[str, FileIdentity]]:
    """Return the files of `relative_paths` that `cached` would not find, in that order.

    Also returns the identity read now of each of them that could be stat-ed.
    Unlike `cached`, it builds no result for the cached files, for a caller that
    reads them from the review afterwards.
    """
    stale, identities = _find_stale(
        store, relative_paths, _trusted_identities(store, model_fingerprint))
    logger.debug("Cache of %s under model %s: %d hits, %d misses", store.folder,
                 model_fingerprint, len(relative_paths) - len(stale), len(stale))
    return [relative_paths[index] for index in sorted(stale)], identities


def _find_stale(
    store: ReviewStore, relative_paths: Sequence[str], trusted: Mapping[str, tuple[int, int]]
) -> tuple[set[int], dict[str, FileIdentity]]:
    """Return the indexes of the files without a current cached score, and their identities.

    `trusted` contains the model's _trusted_identities. A file that cannot be
    stat-ed is stale and has no identity.
    """
    # Strings, not Paths: a Path costs more to build than the stat.
    prefix = os.path.join(store.folder, "")
    stale: set[int] = set()
    identities: dict[str, FileIdentity] = {}
    for index, relative_path in enumerate(relative_paths):
        checked_ns = time.time_ns()
        try:
            stat = listed_stat(prefix + relative_path)
        except OSError:
            stale.add(index)
            continue
        if trusted.get(relative_path) != (stat.st_size, stat.st_mtime_ns):
            stale.add(index)
            identities[relative_path] = FileIdentity(stat.st_size, stat.st_mtime_ns,
                                                     checked_ns)
    return stale, identities


def _trusted_identities(store: ReviewStore, model_fingerprint: str) -> dict[str, tuple[int, int]]:
    """Return the size and mtime_ns of each file whose cached score can be trusted.

    A score can be trusted when it was computed for the file's stored size and
    mtime_ns, and that mtime was not within RACY_WINDOW_NS of the moment they
    were read. Only an mtime near that moment can repeat after a later change.
    An mtime far in the future (a skewed camera clock) cannot, so it stays trusted.
    """
    rows = store.database.query_tuples(_TRUSTED_QUERY, (model_fingerprint, RACY_WINDOW_NS))
    return {relative_path: (size, mtime_ns) for relative_path, size, mtime_ns in rows}


def save_scores(
    store: ReviewStore,
    model_fingerprint: str,
    results: Iterable[ScoredFile],
    identities: dict[str, FileIdentity] | None = None,
) -> int:
    """Store the intake result and score of each file and return how many were cached.

    `identities` gives the size and mtime_ns read before a file was decoded. A
    file without one is stat-ed now, and skipped if that fails. A file that
    intake found missing is marked missing instead, like one the listing did not
    find. A file new to the review is added to it as missing. Results with a
    transient status (missing, unreadable) update the file's status but are not
    cached, so the next scan reads those files again.
    """
    identities = identities or {}
    cached_count = 0
    with store.database.transaction() as connection:
        for item in results:
            identity = identities.get(item.relative_path)
            if identity is None:
                try:
                    identity = listed_identity(item.path)
                except OSError:
                    if item.status is Status.MISSING:
                        # Removed between the listing and its decoding.
                        connection.execute(_MARK_MISSING, (item.relative_path, item.detail))
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
            cached_count += 1
    return cached_count


def _file_values(item: ScoredFile, identity: FileIdentity) -> tuple[object, ...]:
    return (item.relative_path, identity.size, identity.mtime_ns, item.status.value,
            item.detail, item.width, item.height, item.format)


def _scored_file(folder: Path, row: tuple[Any, ...], threshold: float) -> ScoredFile:
    """Return the cached result of a _CACHED_QUERY row."""
    relative_path, size, mtime_ns, stored_status, detail, width, height, image_format, score = (
        row[:9])
    status = STATUSES[stored_status]
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
