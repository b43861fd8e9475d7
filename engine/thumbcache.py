"""Encoded thumbnails kept on disk in one SQLite file, so a re-opened folder decodes nothing.

The cache lives in the user's cache folder, never inside a scored folder, so a
read-only folder is cached like any other. An entry belongs to one file at one
thumbnail size and is valid only while the file keeps its size and mtime_ns. The
stored bytes are opaque to this module: the caller encodes and decodes them.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.images import Status
from engine.scoring import ScoredFile

logger = logging.getLogger(__name__)

CACHE_FILE_NAME = "thumbnails.sqlite"

# About 45 000 thumbnails of 128 px at the 6 KB a JPEG of that size takes at most.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024

# A file whose mtime is this close to the moment it was stat-ed may change again
# without a new mtime on a file system with coarse timestamps, so its thumbnail is
# not stored. The review store trusts cached scores by the same rule.
_RACY_WINDOW_NS = 2_000_000_000

# A read marks an entry as used only when its last use is older than this, so that
# re-opening a folder writes nothing. Eviction needs no finer order.
_USE_RESOLUTION_NS = 3600 * 1_000_000_000

# Keys per SELECT, below SQLite's default limit of 32 766 bound parameters.
_KEYS_PER_QUERY = 500

# Eviction removes the least recently used entries until the cache is this share
# of its limit, so that it does not run again after every few insertions.
_EVICT_TO_SHARE = 0.75

_SCHEMA = """
CREATE TABLE IF NOT EXISTS thumbnails (
    path TEXT NOT NULL,
    pixels INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    crc32 INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    used_ns INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (path, pixels)
);
CREATE INDEX IF NOT EXISTS thumbnails_by_use ON thumbnails (used_ns);
"""


def default_cache_folder() -> Path:
    """Return $XDG_CACHE_HOME/retina-curator, or ~/.cache/retina-curator without it."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "retina-curator"


@dataclass(frozen=True)
class ThumbnailKey:
    """Key of a cached thumbnail: a file's absolute path, identity and thumbnail side."""

    path: str
    size: int
    mtime_ns: int
    pixels: int
    # False when the mtime was too recent to trust, so the thumbnail is not stored.
    settled: bool = field(default=True, compare=False)


def thumbnail_key(record: ScoredFile, pixels: int, since_ns: int) -> ThumbnailKey | None:
    """Return the key of the record's thumbnail of side `pixels`, or None without one.

    The key is made of the size and mtime_ns that the record was read with, so a
    file that changes afterwards gets a key that no longer matches and is decoded
    again by the next scan. `since_ns` is a time before the record's file was
    stat-ed: an mtime within _RACY_WINDOW_NS after it could repeat after a change,
    so its key is not settled.
    """
    mtime_ns = record.mtime_ns
    if record.status is not Status.OK or record.size is None or mtime_ns is None:
        return None
    text = os.fspath(record.path)
    if not os.path.isabs(text):
        text = str(record.path.absolute())
    settled = (mtime_ns < since_ns - _RACY_WINDOW_NS
               or mtime_ns > time.time_ns() + _RACY_WINDOW_NS)
    return ThumbnailKey(text, record.size, mtime_ns, pixels, settled)


class ThumbnailCache:
    """A bounded SQLite cache of encoded thumbnails, used from the thread that opened it.

    A cache file that SQLite cannot read is deleted and created again. A cache that
    cannot be created at all (a read-only cache folder, a full disk) is disabled:
    every lookup misses and every store is dropped, with one warning in the log
    for each cache file in a process.
    """

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._connection: sqlite3.Connection | None = None
        # Entries read whose use is not stored yet: (path, pixels).
        self._used: list[tuple[str, int]] = []
        try:
            self._connection = self._open()
        except (sqlite3.OperationalError, OSError) as error:
            # Also a lock held too long by another window: its file must stay.
            _warn_disabled(path, "opening %s failed: %s", path, error)
        except sqlite3.DatabaseError as error:
            logger.warning("thumbnail cache %s is damaged (%s), so it is created again",
                           path, error)
            self._connection = self._recreate()

    @property
    def enabled(self) -> bool:
        """Whether the cache file is open."""
        return self._connection is not None

    def close(self) -> None:
        """Store the uses of the entries read, then close the file."""
        if self._connection is not None:
            try:
                self._store_uses()
            except sqlite3.DatabaseError as error:
                logger.warning("Writing thumbnail cache %s failed: %s", self.path, error)
            self._connection.close()
            self._connection = None

    def get_many(self, keys: Sequence[ThumbnailKey]) -> dict[ThumbnailKey, bytes]:
        """Return the cached bytes of each key that has a valid entry.

        An entry of an older version of the file, or whose checksum does not match,
        is left out, so the caller makes the thumbnail again and stores it.
        """
        if self._connection is None or not keys:
            return {}
        found: dict[ThumbnailKey, bytes] = {}
        stale_before = time.time_ns() - _USE_RESOLUTION_NS
        try:
            for start in range(0, len(keys), _KEYS_PER_QUERY):
                found.update(self._get_chunk(keys[start : start + _KEYS_PER_QUERY],
                                             stale_before))
        except sqlite3.DatabaseError as error:
            self._on_error("reading", error)
            return {}
        return found

    def _get_chunk(self, keys: Sequence[ThumbnailKey],
                   stale_before: int) -> dict[ThumbnailKey, bytes]:
        assert self._connection is not None
        by_entry = {(key.path, key.pixels): key for key in keys}
        rows = []
        for pixels in {key.pixels for key in keys}:
            paths = [key.path for key in keys if key.pixels == pixels]
            # "path IN (…)" lets SQLite search the primary key's index, which a
            # row value "(path, pixels) IN (VALUES …)" did not: it read the table.
            rows += self._connection.execute(
                "SELECT path, pixels, size, mtime_ns, crc32, used_ns, data FROM thumbnails "
                f"WHERE pixels = ? AND path IN ({', '.join('?' * len(paths))})",
                [pixels, *paths]).fetchall()
        found = {}
        for path, pixels, size, mtime_ns, crc32, used_ns, data in rows:
            key = by_entry[(path, pixels)]
            if (size, mtime_ns) != (key.size, key.mtime_ns):
                continue
            if zlib.crc32(data) != crc32:
                logger.debug("thumbnail cache entry of %s is corrupt, so it is rebuilt", path)
                continue
            found[key] = bytes(data)
            if used_ns < stale_before:
                self._used.append((path, pixels))
        return found

    def put_many(self, entries: Iterable[tuple[ThumbnailKey, bytes]]) -> None:
        """Store encoded thumbnails, replacing older entries of the same files and sizes.

        Entries of keys that are not settled are left out.
        """
        if self._connection is None:
            return
        now = time.time_ns()
        rows = [(key.path, key.pixels, key.size, key.mtime_ns, zlib.crc32(data), len(data),
                 now, data) for key, data in entries if key.settled]
        if not rows:
            return
        try:
            with self._connection:
                self._connection.executemany(
                    "INSERT OR REPLACE INTO thumbnails VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            self._store_uses()
            self._evict()
        except sqlite3.DatabaseError as error:
            self._on_error("writing", error)

    def total_bytes(self) -> int:
        """Return the size of the stored thumbnails, without SQLite's own overhead."""
        if self._connection is None:
            return 0
        return int(self._connection.execute(
            "SELECT total(bytes) FROM thumbnails").fetchone()[0])

    def _store_uses(self) -> None:
        assert self._connection is not None
        if not self._used:
            return
        now = time.time_ns()
        with self._connection:
            self._connection.executemany(
                "UPDATE thumbnails SET used_ns = ? WHERE path = ? AND pixels = ?",
                [(now, path, pixels) for path, pixels in self._used])
        self._used = []

    def _evict(self) -> None:
        assert self._connection is not None
        total = self.total_bytes()
        if total <= self.max_bytes:
            return
        excess = total - int(self.max_bytes * _EVICT_TO_SHARE)
        removed = 0
        victims = []
        for path, pixels, size in self._connection.execute(
                "SELECT path, pixels, bytes FROM thumbnails ORDER BY used_ns"):
            if removed >= excess:
                break
            victims.append((path, pixels))
            removed += size
        with self._connection:
            self._connection.executemany(
                "DELETE FROM thumbnails WHERE path = ? AND pixels = ?", victims)
        logger.debug("thumbnail cache %s: evicted %d entries, %d bytes",
                     self.path, len(victims), removed)

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path)
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.executescript(_SCHEMA)
            connection.execute("SELECT count(*) FROM thumbnails").fetchone()
        except sqlite3.DatabaseError:
            connection.close()
            raise
        return connection

    def _recreate(self) -> sqlite3.Connection | None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            except OSError as error:
                _warn_disabled(self.path, "removing %s%s failed: %s", self.path, suffix,
                               error)
                return None
        try:
            return self._open()
        except (sqlite3.DatabaseError, OSError) as error:
            _warn_disabled(self.path, "creating %s failed: %s", self.path, error)
            return None

    def _on_error(self, action: str, error: sqlite3.DatabaseError) -> None:
        self.close()
        if isinstance(error, sqlite3.OperationalError):
            _warn_disabled(self.path, "%s %s failed: %s", action, self.path, error)
            return
        logger.warning("%s thumbnail cache %s failed (%s), so it is created again",
                       action.capitalize(), self.path, error)
        self._connection = self._recreate()



# Cache files found unusable in this process. The window opens the cache in every
# scan and thumbnail job, and one warning a file is enough.
_disabled_paths: set[Path] = set()


def _warn_disabled(path: Path, message: str, *arguments: object) -> None:
    """Log that the cache at `path` is disabled and why: a warning the first time, then
    at debug level.
    """
    level = logging.DEBUG if path in _disabled_paths else logging.WARNING
    _disabled_paths.add(path)
    logger.log(level, "thumbnail cache disabled: " + message, *arguments)


def open_cache(folder: Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> ThumbnailCache:
    """Open the cache file in `folder`, by default default_cache_folder(); never raises."""
    folder = default_cache_folder() if folder is None else folder
    return ThumbnailCache(folder / CACHE_FILE_NAME, max_bytes)
