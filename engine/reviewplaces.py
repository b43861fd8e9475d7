"""The two places of a folder's review database, which one to open, and what the other contains.

engine.reviewdb opens the database in the folder, or the fallback in the data
folder when the folder's one cannot be used (see its docstring for both paths). A
review that is split between the two, because the one that exists could not be
opened for a while, keeps its move journal in both, so the one not opened is read
here to find what it holds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

DB_FOLDER_NAME = ".retina-curator"
DB_FILE_NAME = "review.sqlite"

# The files that SQLite keeps beside a database while a connection uses it.
_COMPANION_SUFFIXES = ("-wal", "-shm", "-journal")


def fallback_database_path(folder: Path) -> Path:
    """Return the database path outside `folder`, used when the folder is not writable."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    key = hashlib.sha256(str(folder).encode("utf-8", "surrogateescape")).hexdigest()
    return Path(data_home) / "retina-curator" / "reviews" / f"{key}.sqlite"


def find_database(folder: Path) -> Path | None:
    """Return the review database of `folder` if one exists, else None.

    Looks in both places that ReviewDatabase.open uses, and creates nothing.
    """
    try:
        resolved = folder.resolve(strict=True)
    except OSError:
        return None
    for path in (resolved / DB_FOLDER_NAME / DB_FILE_NAME, fallback_database_path(resolved)):
        if path.is_file():
            return path
    return None


@dataclass(frozen=True)
class ReviewContent:
    """The counts of what the curator made in the review database at `path`.

    `in_quarantine` counts the files that its move journal has in quarantine,
    and `unfinished` the batches that a killed process left running or undoing.
    """

    path: Path
    batches: int
    unfinished: int
    in_quarantine: int
    decisions: int
    thresholds: int

    @property
    def is_empty(self) -> bool:
        """True if it contains no move batch, no decision and no threshold choice."""
        return not (self.batches or self.decisions or self.thresholds)

    @property
    def needs_undo_or_review(self) -> bool:
        """True if its journal has files in quarantine or an unfinished batch, or it
        contains decisions.
        """
        return bool(self.in_quarantine or self.unfinished or self.decisions)


def read_content(path: Path) -> ReviewContent | None:
    """Read what the review database at `path` contains, without writing to it.

    A file without the review's tables, such as an empty one, contains nothing.
    Returns None, after logging why, if the file cannot be read as a database.
    """
    uri = f"file:{urllib.parse.quote(os.fsencode(path))}?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True, timeout=5.0)
    except sqlite3.Error as error:
        # The caller then treats it as a database that may hold a review.
        logger.info("Reading the review database %s failed: %s", path, error)
        return None
    try:
        tables = {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "schema_version" not in tables:
            return ReviewContent(path, 0, 0, 0, 0, 0)
        counts = connection.execute(
            "SELECT (SELECT COUNT(*) FROM batches), "
            "(SELECT COUNT(*) FROM batches WHERE state IN ('running', 'undoing')), "
            "(SELECT COUNT(*) FROM batch_files WHERE state = 'moved'), "
            "(SELECT COUNT(*) FROM files WHERE override IS NOT NULL), "
            "(SELECT COUNT(*) FROM thresholds)"
        ).fetchone()
    except sqlite3.Error as error:
        logger.info("Reading the review database %s failed: %s", path, error)
        return None
    finally:
        connection.close()
    return ReviewContent(path, *counts)


def database_order(local: Path, fallback: Path) -> list[Path]:
    """Return the review databases of a folder to try, in order, given its two places.

    A database that exists is tried before a new one is created, the folder's own
    first. When both exist and the folder's own one contains nothing the curator
    made while the fallback does, the fallback comes first. That happens when
    creating the folder's database failed part-way, as on a full disk, and the
    review went on in the fallback.
    """
    if not fallback.exists():
        return [local, fallback]
    if not local.exists():
        return [fallback]
    own = read_content(local)
    if own is not None and own.is_empty:
        other = read_content(fallback)
        if other is not None and not other.is_empty:
            logger.info("Using the review database %s, because %s contains no review",
                        fallback, local)
            return [fallback, local]
    return [local, fallback]


def other_review(path: Path) -> ReviewContent | None:
    """Return what the database at `path` contains, if it exists and has files in
    quarantine, an unfinished batch or decisions, else None.
    """
    if not path.exists():
        return None
    content = read_content(path)
    return content if content is not None and content.needs_undo_or_review else None


def describe_split(folder: Path, used: Path, other: ReviewContent) -> str:
    """Return the sentences that tell which two databases hold the review of `folder`,
    what the one not in use records, and what to do about it.
    """
    recorded = []
    if other.in_quarantine:
        recorded.append(f"{_count(other.in_quarantine, 'file')} in quarantine from its "
                        "move batches")
    if other.unfinished:
        recorded.append(f"{_count(other.unfinished, 'move batch', 'move batches')} "
                        "that a stopped process left unfinished")
    if other.decisions:
        recorded.append(f"{_count(other.decisions, 'decision')} of the curator")
    text = (f"The review of {folder} is split between two databases. {used} is in use, "
            f"and {other.path} also records {' and '.join(recorded)}.")
    moved_out = other.in_quarantine or other.unfinished
    if moved_out:
        text += " Undo finds the move batches of both and moves the newest one back first."
    if not other.decisions:
        return f"{text} This message no longer appears once undo has moved those files back."
    text += (f" The decisions stored only there are not used. Move {other.path} aside to "
             "stop this message")
    return f"{text}, once undo has moved its files back." if moved_out else f"{text}."


def _count(number: int, singular: str, plural: str = "") -> str:
    return f"1 {singular}" if number == 1 else f"{number} {plural or singular + 's'}"


def make_folders(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents; return those created, outermost first.

    Raises OSError as Path.mkdir does.
    """
    missing = []
    current = folder
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    folder.mkdir(parents=True, exist_ok=True)
    return list(reversed(missing))


def remove_new_database(path: Path, new_folders: list[Path]) -> None:
    """Remove a database file that this process created but could not set up, and
    the folders in `new_folders` that are then empty.

    The file goes only while it is still empty and no SQLite file beside it shows
    that another connection has started to use it.
    NOTE: another process that opened the empty file a moment earlier, and has not
    written to it yet, would then write to a removed file.
    """
    companions = [Path(f"{path}{suffix}") for suffix in _COMPANION_SUFFIXES]
    try:
        if os.path.lexists(path):
            if path.stat().st_size or any(companion.exists() for companion in companions):
                return
            path.unlink()
            logger.info("Removed the unfinished review database %s", path)
    except OSError as error:
        logger.warning("Removing the unfinished review database %s failed: %s", path, error)
        return
    for folder in reversed(new_folders):
        try:
            folder.rmdir()
        except OSError:
            return
