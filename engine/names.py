"""File name comparison, numbered name variants and folder creation for moves and exports."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePath

logger = logging.getLogger(__name__)

# A name with this many taken variants means something is wrong with the destination.
MAX_SUFFIX = 9999


def fold_name(name: str) -> str:
    """Return the form of `name` under which two names count as the same file.

    NFC first, so that composed and decomposed spellings of a name count as one
    name, as they do on macOS file systems. Then casefold(), so that names that
    differ only in case collide as they do on FAT, exFAT, NTFS and default APFS.
    """
    return unicodedata.normalize("NFC", name).casefold()


def numbered_names(name: str) -> Iterator[str]:
    """Yield `name`, then `stem (1).ext`, `stem (2).ext`, ... up to MAX_SUFFIX."""
    yield name
    path = PurePath(name)
    for number in range(1, MAX_SUFFIX + 1):
        yield f"{path.stem} ({number}){path.suffix}"


def make_folders(root: Path, parts: Sequence[str]) -> Path:
    """Create `root` and the folders `parts` inside it, each in the one before, and
    return the last.

    A part that exists as a file or as a link raises NotADirectoryError: a link
    could lead a write below the result out of `root`. Other failures raise the
    OSError of os.mkdir.
    """
    root.mkdir(parents=True, exist_ok=True)
    current = root
    for part in parts:
        current = current / part
        with contextlib.suppress(FileExistsError):
            os.mkdir(current)
        if not stat.S_ISDIR(os.lstat(current).st_mode):
            raise NotADirectoryError(
                errno.ENOTDIR, "it is a file or a link, not a folder", str(current))
    return current


def folder_problem(folder: Path) -> str:
    """Return why no file can be created in `folder`, or an empty string.

    The reason is a clause without a full stop, for the caller's sentence.

    `folder` need not exist yet: the nearest of it and its parents that exists
    must be a folder that this process can write to. A read-only file system
    counts as not writable, also for root.
    """
    existing = Path(os.path.abspath(folder))
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if existing.is_symlink() and not existing.exists():
        return f"{existing} is a broken link"
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} cannot be written to (read-only, or no permission)"
    return ""


def overlap(folder: Path, destination: Path) -> str:
    """Return "inside" when `destination` is `folder` or inside it, "contains" when it
    contains `folder`, and "" otherwise, once links are resolved.

    Moves and exports keep relative paths, so a destination that overlaps the
    reviewed folder could lead a path back into it.
    """
    resolved = Path(os.path.abspath(destination)).resolve()
    folder = folder.resolve()
    if resolved == folder or resolved.is_relative_to(folder):
        return "inside"
    if folder.is_relative_to(resolved):
        return "contains"
    return ""
