"""Find where the file of a cut-short move really is, and leave it in exactly one place.

A move within one file system is a hard link followed by an unlink, so a process
killed in between leaves the file under both names. A move across file systems is a
copy, so a kill leaves a partial or complete copy beside the intact source. These
functions look at both paths of a journal entry and remove only a name that is
provably redundant. That is a second hard link to the same inode, or a copy made
since the batch started whose bytes equal the source or are the start of it.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from engine.names import fold_name

logger = logging.getLogger(__name__)

# A copy counts as made by the batch when its ctime is at most this much before the
# batch started, which covers coarse file system clocks (FAT keeps 2 s).
CLOCK_SLACK_NS = 2_000_000_000

_CHUNK_BYTES = 1 << 20

# A name that engine.quarantine numbered to avoid a collision: "stem (3).ext".
_NUMBERED_NAME = re.compile(r"(?P<stem>.*) \((?P<number>\d+)\)(?P<suffix>\.[^.]*)?")


@dataclass(frozen=True)
class Settled:
    """The place of one file after recovery settled it.

    `location` is None when the file was found nowhere. `message` describes for the
    user what recovery found or did, and is None when the file simply stayed where
    it was.
    """

    location: Path | None
    message: str | None


class FolderIndex:
    """Listings of quarantine folders, each read once, grouped by the name before numbering.

    A claimed path is the recorded place of another moved file, so it is never
    offered as the place of a cut-short move: a byte-identical duplicate moved
    earlier would pass for that move's copy.
    """

    def __init__(self, claimed: Iterable[Path] = ()) -> None:
        self._by_folder: dict[Path, dict[str, set[str]]] = {}
        self._claimed = set(claimed)

    def claim(self, path: Path) -> None:
        """Leave `path` out of later variants: recovery found a file's move there."""
        self._claimed.add(path)

    def variants(self, planned: Path) -> list[Path]:
        """Return the unclaimed paths that a move to `planned` may have used, shortest first."""
        folder = planned.parent
        if folder not in self._by_folder:
            self._by_folder[folder] = _group_names(folder)
        names = self._by_folder[folder].get(fold_name(planned.name), set())
        paths = [folder / name for name in sorted(names, key=lambda name: (len(name), name))]
        return [path for path in paths if path not in self._claimed]


def settle_move(entry: sqlite3.Row, since_ns: int, index: FolderIndex) -> Settled:
    """Settle a planned move from `entry["source"]` to `entry["planned"]` or a numbered variant.

    `since_ns` is when the batch started, as from time.time_ns(). Raises OSError
    if removing a redundant name fails.
    """
    relative_path = entry["relative_path"]
    source = Path(entry["source"])
    planned = Path(entry["planned"])
    source_stat = _lstat(source)
    candidates = index.variants(planned)
    if source_stat is None:
        for candidate in candidates:
            if _matches_entry(candidate, entry, since_ns):
                return Settled(candidate, f"{relative_path} had been moved to {candidate}.")
        return Settled(None, (
            f"{relative_path} was found neither at {source} nor in {planned.parent}, "
            "so another program moved or deleted it."
        ))

    for candidate in candidates:
        kept_path = _keep_one(source, source_stat, candidate, since_ns)
        if kept_path == candidate:
            return Settled(candidate, f"The move of {relative_path} to {candidate} was finished.")
        if kept_path == source:
            return Settled(source, (
                f"The move of {relative_path} was rolled back: the unfinished copy "
                f"{candidate} was removed, and the file stays at {source}."
            ))
    return Settled(source, None)


def settle_return(entry: sqlite3.Row, since_ns: int) -> Settled:
    """Settle an undo from `entry["moved_to"]` back to `entry["source"]`.

    `since_ns` is when the undo started. Raises OSError if removing a redundant
    name fails.
    """
    relative_path = entry["relative_path"]
    current = Path(entry["moved_to"])
    original = Path(entry["source"])
    current_stat = _lstat(current)
    if current_stat is None:
        if _matches_entry(original, entry, since_ns):
            return Settled(original, f"{relative_path} had been moved back to {original}.")
        return Settled(None, (
            f"{relative_path} was found neither at {current} nor at {original}, "
            "so another program moved or deleted it."
        ))

    kept_path = _keep_one(current, current_stat, original, since_ns)
    if kept_path == original:
        return Settled(original, f"The undo of {relative_path} was finished.")
    if kept_path == current:
        return Settled(current, (
            f"The undo of {relative_path} was rolled back: the unfinished copy {original} "
            f"was removed, and the file stays at {current}."
        ))
    return Settled(current, None)


def _keep_one(source: Path, source_stat: os.stat_result, target: Path,
              since_ns: int) -> Path | None:
    """Remove whichever of two names is redundant and return the one kept, or None if unrelated.

    A hard link to the same inode, or a byte-identical copy with the source's
    mtime, means the move reached `target`, so `source` is removed. A copy made
    since `since_ns` that contains the source's bytes only in part, or without the
    copied mtime, was cut short, so `target` is removed.
    NOTE: a file another program creates at `target` during the batch with a prefix
    of the source's bytes would be taken for an unfinished copy.
    """
    target_stat = _lstat(target)
    if target_stat is None:
        return None
    if (target_stat.st_dev, target_stat.st_ino) == (source_stat.st_dev, source_stat.st_ino):
        _unlink(source)
        return target
    if target_stat.st_ctime_ns < since_ns - CLOCK_SLACK_NS:
        return None
    if not _holds_start_of(target, target_stat, source, source_stat):
        return None
    complete = (target_stat.st_size == source_stat.st_size
                and target_stat.st_mtime_ns == source_stat.st_mtime_ns)
    if complete or stat.S_ISLNK(source_stat.st_mode):
        _unlink(source)
        return target
    _unlink(target)
    return source


def _holds_start_of(target: Path, target_stat: os.stat_result,
                    source: Path, source_stat: os.stat_result) -> bool:
    """Tell whether `target` is a copy of `source` or of its first bytes."""
    if stat.S_ISLNK(source_stat.st_mode) or stat.S_ISLNK(target_stat.st_mode):
        both_links = stat.S_ISLNK(source_stat.st_mode) and stat.S_ISLNK(target_stat.st_mode)
        return both_links and os.readlink(source) == os.readlink(target)
    if not (stat.S_ISREG(source_stat.st_mode) and stat.S_ISREG(target_stat.st_mode)):
        return False
    if target_stat.st_size > source_stat.st_size:
        return False
    with source.open("rb") as original, target.open("rb") as copy:
        while chunk := copy.read(_CHUNK_BYTES):
            if original.read(len(chunk)) != chunk:
                return False
    return True


def _matches_entry(path: Path, entry: sqlite3.Row, since_ns: int) -> bool:
    """Tell whether `path` is the journaled file: its inode, or a copy with its size and mtime."""
    found = _lstat(path)
    if found is None:
        return False
    if (found.st_dev, found.st_ino) == (entry["device"], entry["inode"]):
        return True
    return (found.st_size == entry["size"] and found.st_mtime_ns == entry["mtime_ns"]
            and found.st_ctime_ns >= since_ns - CLOCK_SLACK_NS)


def _group_names(folder: Path) -> dict[str, set[str]]:
    """Map each case-folded name, and the name without its number, to the names in `folder`."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    groups: dict[str, set[str]] = {}
    for name in names:
        groups.setdefault(fold_name(name), set()).add(name)
        match = _NUMBERED_NAME.fullmatch(name)
        if match:
            base = match["stem"] + (match["suffix"] or "")
            groups.setdefault(fold_name(base), set()).add(name)
    return groups


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _unlink(path: Path) -> None:
    os.unlink(path)
    logger.info("Removed the redundant name %s", path)
    if os.name == "nt":
        return
    descriptor = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
