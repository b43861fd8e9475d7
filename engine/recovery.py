"""Find where the file of a cut-short move really is, and leave it in exactly one place.

A move within one file system is a hard link followed by an unlink, so a process
killed in between leaves the file under both names. A move across file systems is a
copy, so a kill leaves a partial or complete copy beside the intact source. These
functions look at both paths of a journal entry and remove only a name that is
provably redundant. That is a second hard link to the same inode, or a copy made
since the batch started whose bytes equal the source or are the start of it. On a
file system whose ctime does not show when a copy was made, such as exFAT, only a
copy that contains all of the source's bytes counts (see _is_untimed_copy).
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

from engine.names import fold_name, name_max, numbered_name

logger = logging.getLogger(__name__)

# A copy counts as made by the batch when its ctime is at most this much before the
# batch started, which covers coarse file system clocks (FAT keeps 2 s). A copy's
# mtime may differ this much from its source's, because such a clock rounds it.
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
        self._by_folder: dict[Path, _Listing] = {}
        self._claimed = set(claimed)

    def claim(self, path: Path) -> None:
        """Leave `path` out of later variants: recovery found a file's move there."""
        self._claimed.add(path)

    def variants(self, planned: Path) -> list[Path]:
        """Return the unclaimed paths that a move to `planned` may have used, shortest first."""
        folder = planned.parent
        if folder not in self._by_folder:
            self._by_folder[folder] = _list_names(folder)
        listing = self._by_folder[folder]
        names = set(listing.groups.get(fold_name(planned.name), set()))
        # A numbered name that would be too long has a shortened stem, so its
        # group is not that of the planned name.
        limit = name_max(folder)
        for name, number in listing.numbered:
            if fold_name(numbered_name(planned.name, number, limit)) == fold_name(name):
                names.add(name)
        paths = [folder / name for name in sorted(names, key=lambda name: (len(name), name))]
        return [path for path in paths if path not in self._claimed]


@dataclass(frozen=True)
class _Listing:
    """The names of one folder: by case-folded name and name before numbering, and
    each numbered name with its number.
    """

    groups: dict[str, set[str]]
    numbered: list[tuple[str, int]]


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
        found = _moved_files(candidates, entry, since_ns)
        if len(found) == 1:
            return Settled(found[0], f"{relative_path} had been moved to {found[0]}.")
        if found:
            return Settled(None, (
                f"{relative_path} was not found at {source}, and {_join(found)} each have its "
                "size and modification time, so it is unknown which one it is. It is "
                "recorded as missing. Check those files and move the right one back by hand."
            ))
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
    copies = [path for path in candidates if _is_untimed_copy(source, source_stat, path)]
    if len(copies) == 1:
        _unlink(source)
        return Settled(copies[0], f"The move of {relative_path} to {copies[0]} was finished.")
    if copies:
        # Removing the source would lose nothing, but the journal would then point at
        # a file that may be another program's.
        return Settled(source, (
            f"The move of {relative_path} was cut short, and {_join(copies)} each have its "
            f"bytes, so it is unknown which one the move made. The file stays at {source}, "
            "and so do those files. Check them and remove the extra copy by hand."
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
        if _moved_files([original], entry, since_ns):
            return Settled(original, f"{relative_path} had been moved back to {original}.")
        return Settled(None, (
            f"{relative_path} was found neither at {current} nor at {original}, "
            "so another program moved or deleted it. It is recorded as missing, and "
            "undo no longer looks for it."
        ))

    kept_path = _keep_one(current, current_stat, original, since_ns)
    if kept_path is None and _is_untimed_copy(current, current_stat, original):
        _unlink(current)
        kept_path = original
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

    A hard link to the same inode, or a byte-identical copy made since `since_ns`
    with the source's mtime, means the move reached `target`, so `source` is
    removed. A copy made since `since_ns` that contains the source's bytes only in
    part, or without the copied mtime, was cut short, so `target` is removed.
    A copy with an older ctime is left to _is_untimed_copy.
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


def _is_untimed_copy(source: Path, source_stat: os.stat_result, target: Path) -> bool:
    """Tell whether `target` has all the bytes of `source` and may be its untimed copy.

    See _may_be_untimed_copy. Removing `source` then loses nothing, even if
    `target` is another program's file.
    NOTE: an identical file with the source's mtime that another program put at a
    numbered variant before the move made its copy passes for that copy too.
    """
    target_stat = _lstat(target)
    if target_stat is None or not _may_be_untimed_copy(target_stat, source_stat.st_mtime_ns):
        return False
    if target_stat.st_size != source_stat.st_size:
        return False
    return _holds_start_of(target, target_stat, source, source_stat)


def _moved_files(candidates: list[Path], entry: sqlite3.Row, since_ns: int) -> list[Path]:
    """Return the candidates that may be the journaled file, whose name before the move is gone.

    The first one that _matches_entry accepts is the only one returned. Otherwise
    every copy with the entry's size and mtime and an untrusted ctime is returned.
    Recording such a file as moved removes nothing, so it loses nothing.
    """
    for candidate in candidates:
        if _matches_entry(candidate, entry, since_ns):
            return [candidate]
    found = []
    for candidate in candidates:
        candidate_stat = _lstat(candidate)
        if (candidate_stat is not None and candidate_stat.st_size == entry["size"]
                and _may_be_untimed_copy(candidate_stat, entry["mtime_ns"])):
            found.append(candidate)
    return found


def _matches_entry(path: Path, entry: sqlite3.Row, since_ns: int) -> bool:
    """Tell whether `path` is the journaled file: its inode, or a copy with its size and mtime."""
    found = _lstat(path)
    if found is None:
        return False
    if (found.st_dev, found.st_ino) == (entry["device"], entry["inode"]):
        return True
    return (found.st_size == entry["size"] and found.st_mtime_ns == entry["mtime_ns"]
            and found.st_ctime_ns >= since_ns - CLOCK_SLACK_NS)


def _may_be_untimed_copy(found: os.stat_result, source_mtime_ns: int) -> bool:
    """Tell whether `found` may be a copy, with an untrusted ctime, of a file with that mtime.

    copystat gives a copy its source's mtime. Most file systems then set the copy's
    ctime to the time of the copy, which _keep_one and _matches_entry compare with
    the batch start. exfat-fuse 1.3 reports every ctime as the mtime, so a copy
    there has a ctime no later than its mtime. The check looks at the file itself
    rather than at a probe file, so it needs no write and still works after a
    remount. On a file system that keeps ctime, a file passes only if its last
    change was a write within 2 s of the source's mtime, and the caller then still
    compares its size or bytes.
    """
    return (found.st_ctime_ns <= found.st_mtime_ns
            and abs(found.st_mtime_ns - source_mtime_ns) <= CLOCK_SLACK_NS)


def _join(paths: list[Path]) -> str:
    return ", ".join(str(path) for path in paths[:-1]) + f" and {paths[-1]}"


def _list_names(folder: Path) -> _Listing:
    """List `folder` and group its names for FolderIndex."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return _Listing({}, [])
    groups: dict[str, set[str]] = {}
    numbered = []
    for name in names:
        groups.setdefault(fold_name(name), set()).add(name)
        match = _NUMBERED_NAME.fullmatch(name)
        if match:
            base = match["stem"] + (match["suffix"] or "")
            groups.setdefault(fold_name(base), set()).add(name)
            numbered.append((name, int(match["number"])))
    return _Listing(groups, numbered)


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
