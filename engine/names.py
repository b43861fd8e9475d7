"""File names for moves and exports: comparison, numbered variants, folders, export destinations."""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath

logger = logging.getLogger(__name__)

# A name with this many taken variants means something is wrong with the destination.
MAX_SUFFIX = 9999

# NAME_MAX in bytes of ext4, XFS, Btrfs, tmpfs and most other file systems, used
# where os.pathconf cannot give it, as on Windows.
DEFAULT_NAME_MAX = 255

# The stem of a name that numbered_name made: the stem it numbered, then " (number)".
_NUMBERED_STEM = re.compile(r"(.+) \(([1-9][0-9]*)\)", re.DOTALL)


def fold_name(name: str) -> str:
    """Return the form of `name` under which two names count as the same file.

    NFC first, so that composed and decomposed spellings of a name count as one
    name, as they do on macOS file systems. Then casefold(), so that names that
    differ only in case collide as they do on FAT, exFAT, NTFS and default APFS.
    """
    return unicodedata.normalize("NFC", name).casefold()


def name_difference(name: str, other: str) -> str:
    """Return how two different names that fold_name makes equal differ.

    The result is "case", "Unicode normalisation" (composed and decomposed
    spellings of the same letters) or "case and Unicode normalisation".
    """
    if unicodedata.normalize("NFC", name) == unicodedata.normalize("NFC", other):
        return "Unicode normalisation"
    if name.casefold() == other.casefold():
        return "case"
    return "case and Unicode normalisation"


def composed_first(paths: Sequence[str]) -> list[int]:
    """Return the indexes of `paths` in their order, except that of paths that
    fold_name makes equal, the one spelled in NFC comes first, where the first of
    them stood.

    The first of such paths keeps its name in a destination and the others are
    numbered, so the composed spelling, which most systems write, is kept.
    """
    first_seen: dict[str, int] = {}
    for index, path in enumerate(paths):
        first_seen.setdefault(fold_name(path), index)
    return sorted(range(len(paths)), key=lambda index: (
        first_seen[fold_name(paths[index])],
        paths[index] != unicodedata.normalize("NFC", paths[index])))


def spelling(name: str) -> str:
    """Return which Unicode spelling `name` uses, such as "composed, NFC", for a name
    that looks the same as another one in the other spelling.
    """
    if name == unicodedata.normalize("NFC", name):
        return "composed, NFC"
    if name == unicodedata.normalize("NFD", name):
        return "decomposed, NFD"
    return "partly composed"


def name_max(folder: Path) -> int:
    """Return the maximum length in bytes of a file name in `folder` (NAME_MAX).

    Falls back to DEFAULT_NAME_MAX where the system cannot tell.
    """
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):
        # AttributeError: Windows has no os.pathconf.
        return DEFAULT_NAME_MAX
    # pathconf returns -1 for a file system without a limit.
    return limit if limit > 0 else DEFAULT_NAME_MAX


def numbered_names(name: str, max_bytes: int = DEFAULT_NAME_MAX) -> Iterator[str]:
    """Yield `name`, then `stem (1).ext`, `stem (2).ext`, ... up to MAX_SUFFIX.

    A numbered name longer than `max_bytes` in the file system encoding gets a
    shorter stem, cut at a character boundary, so that it keeps its extension and
    number and fits. `name` itself is yielded as it is.
    """
    yield name
    for number in range(1, MAX_SUFFIX + 1):
        yield numbered_name(name, number, max_bytes)


def numbered_name(name: str, number: int, max_bytes: int = DEFAULT_NAME_MAX) -> str:
    """Return `stem (number).ext` for `name`, shortened as numbered_names shortens it."""
    path = PurePath(name)
    return _fitted_name(path.stem, f" ({number}){path.suffix}", max_bytes)


def split_numbered(name: str) -> tuple[str, int] | None:
    """Return the name that numbered_name numbered into `name`, and the number, or None.

    None when `name` is not of the form `stem (number).ext`. A stem that
    numbered_name shortened stays short: `split_numbered(numbered_name(n, 2, 40))`
    gives back `n` only when `n` was not shortened.
    """
    path = PurePath(name)
    match = _NUMBERED_STEM.fullmatch(path.stem)
    if match is None:
        return None
    return match[1] + path.suffix, int(match[2])


def _fitted_name(stem: str, ending: str, max_bytes: int) -> str:
    """Return `stem + ending`, with as much of `stem` as fits in `max_bytes` bytes.

    When `ending` leaves no room for even one character of the stem, the name is
    returned whole, so that the file system reports it as too long.
    """
    room = max_bytes - len(os.fsencode(ending))
    if len(os.fsencode(stem)) <= room:
        return stem + ending
    # os.fsencode encodes a character of a name that is not valid UTF-8 (a
    # surrogate escape) as its one original byte, so the sum is the real length.
    length = 0
    for index, character in enumerate(stem):
        length += len(os.fsencode(character))
        if length > room:
            return stem[:index] + ending if index > 0 else stem + ending
    return stem + ending


def make_folders(root: Path, parts: Sequence[str], created: list[Path] | None = None) -> Path:
    """Create `root` and the folders `parts` inside it, each in the one before, and
    return the last.

    Each folder of `parts` that this call creates is appended to `created`, also
    when a later part fails. A part that exists as a file or as a link raises
    NotADirectoryError: a link could lead a write below the result out of `root`.
    Other failures raise the OSError of os.mkdir.
    """
    root.mkdir(parents=True, exist_ok=True)
    current = root
    for part in parts:
        current = current / part
        try:
            os.mkdir(current)
        except FileExistsError:
            pass
        else:
            if created is not None:
                created.append(current)
        if not stat.S_ISDIR(os.lstat(current).st_mode):
            raise NotADirectoryError(
                errno.ENOTDIR, "it is a file or a link, not a folder", str(current))
    return current


def existing_folder(root: Path, parts: Sequence[str]) -> Path | None:
    """Return the folder `parts` inside `root` if each of them is a folder, else None.

    A link is not followed, as make_folders follows none.
    """
    current = root
    for part in parts:
        current = current / part
        try:
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                return None
        except OSError:
            return None
    return current


@dataclass(frozen=True)
class FolderProblem:
    """The reason no file can be created in a folder, and the remedy for the user.

    Both are clauses without a full stop, for the caller's sentences: `reason`
    such as "/data cannot be written to (read-only, or no permission)" and
    `remedy` such as "make /data writable".
    """

    reason: str
    remedy: str


def find_folder_problem(folder: Path) -> FolderProblem | None:
    """Return why no file can be created in `folder`, or None.

    `folder` need not exist yet: the nearest of it and its parents that exists
    must be a folder that this process can write to, and the names of the
    folders to create in it must fit its file system's NAME_MAX. A read-only file
    system counts as not writable, also for root.
    """
    absolute = Path(os.path.abspath(folder))
    existing = absolute
    # lexists is also False for a path with a name too long to look up.
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if existing.is_symlink() and not existing.exists():
        return FolderProblem(f"{existing} is a broken link", f"remove the link {existing}")
    if not existing.is_dir():
        return FolderProblem(f"{existing} is a file, not a folder",
                             f"rename or move the file {existing}")
    # NOTE: os.access checks permissions only, so a file system that refuses new
    # folders to everyone, such as /proc for root, passes here and mkdir fails later.
    if not os.access(existing, os.W_OK | os.X_OK):
        return FolderProblem(f"{existing} cannot be written to (read-only, or no permission)",
                             f"make {existing} writable")
    limit = name_max(existing)
    for name in absolute.relative_to(existing).parts:
        if len(os.fsencode(name)) > limit:
            return FolderProblem(f"the folder name {name} is longer than the {limit} bytes "
                                 f"that names can have in {existing}",
                                 f"choose a folder name of at most {limit} bytes")
    return None


def folder_problem(folder: Path) -> str:
    """Return the reason of find_folder_problem(`folder`), or an empty string.

    The reason is a clause without a full stop, for the caller's sentence.
    """
    problem = find_folder_problem(folder)
    return "" if problem is None else problem.reason


# How a destination that overlap finds in the way relates to the reviewed folder,
# as the messages put it: "the destination D <relation> the reviewed folder F".
OVERLAP_RELATIONS = {"same": "is", "inside": "is inside", "contains": "contains"}


def overlap(folder: Path, destination: Path) -> str:
    """Return "same" when `destination` is `folder`, "inside" when it is inside it,
    "contains" when it contains `folder`, and "" otherwise, once links are resolved.

    Moves and exports keep relative paths, so a destination that overlaps the
    reviewed folder could lead a path back into it.
    """
    resolved = Path(os.path.abspath(destination)).resolve()
    folder = folder.resolve()
    if resolved == folder:
        return "same"
    if resolved.is_relative_to(folder):
        return "inside"
    if folder.is_relative_to(resolved):
        return "contains"
    return ""


@dataclass
class FolderNames:
    """Names in one destination folder: listed before the export, and taken by it.

    `existing_folded` and `claimed` map each name folded with fold_name to
    the name itself, so two files whose names differ only in case or Unicode
    normalisation never get one name, on any file system. `occupied` contains the
    folded names that were free when listed but could not be created. `numbered`
    maps the folded name that each listed `stem (number).ext` numbers to those
    names and their numbers.
    """

    existing: set[str]
    existing_folded: dict[str, str]
    numbered: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    claimed: dict[str, str] = field(default_factory=dict)
    occupied: set[str] = field(default_factory=set)

    def is_taken(self, name: str) -> bool:
        folded = fold_name(name)
        return (folded in self.claimed or folded in self.existing_folded
                or folded in self.occupied)

    def earlier_variants(self, name: str, folder: Path) -> list[str]:
        """Return the listed names that are numbered variants of `name` in `folder`,
        such as `name (2).ext`, lowest number first, leaving out those the export took.

        A variant is compared as fold_name folds it, and with the stem shortened
        as numbered_name shortens it for `folder`.
        """
        if not self.numbered:
            return []
        limit = name_max(folder)
        # A stem is shortened by as much as the number needs, so one key per
        # number of digits finds the shortened variants too.
        keys = {fold_name(split[0]) for digits in range(len(str(MAX_SUFFIX)))
                if (split := split_numbered(numbered_name(name, 10 ** digits, limit)))}
        found = sorted((number, listed) for key in keys
                       for listed, number in self.numbered.get(key, [])
                       if fold_name(listed) not in self.claimed
                       and fold_name(numbered_name(name, number, limit)) == fold_name(listed))
        return [listed for _number, listed in found]


@dataclass
class DestinationNames:
    """The FolderNames of each destination folder, listed once per export."""

    by_folder: dict[Path, FolderNames] = field(default_factory=dict)

    def names_in(self, folder: Path) -> FolderNames:
        """Return the names of `folder`, listing it on the first call. Raises OSError."""
        # NOTE: folders are distinguished by their exact names, so on a case-insensitive
        # file system "Sub/a.png" and "sub/a.png" meet in one folder, where the
        # second fails as a name that exists with other content.
        if folder not in self.by_folder:
            names = set(os.listdir(folder))
            numbered: dict[str, list[tuple[str, int]]] = {}
            for name in sorted(names):
                split = split_numbered(name)
                if split is not None:
                    numbered.setdefault(fold_name(split[0]), []).append((name, split[1]))
            self.by_folder[folder] = FolderNames(
                names, {fold_name(name): name for name in sorted(names)}, numbered)
        return self.by_folder[folder]
