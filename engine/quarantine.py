"""Move rejected files out of a reviewed folder without overwriting or losing any byte."""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from engine.names import MAX_SUFFIX, fold_name, make_folders, name_max, numbered_names
from engine.records import listed_stat
from engine.transfer import MoveError, move_to

logger = logging.getLogger(__name__)


def default_quarantine_dir(folder: Path) -> Path:
    """Return the sibling folder `<folder name>_rejected` beside `folder`.

    A relative `folder` is made absolute first. Raises ValueError for a file system
    root, which has no name to derive the sibling from.
    """
    absolute = Path(os.path.abspath(folder))
    if not absolute.name:
        raise ValueError(
            f"{folder} is a file system root, so it has no sibling folder. "
            "Choose a quarantine folder explicitly."
        )
    return absolute.with_name(f"{absolute.name}_rejected")


@dataclass(frozen=True)
class MoveOutcome:
    """Result of moving one file.

    `destination` is where the file is now, or None when `error` (a sentence for the
    user) explains why it stayed at `source`. The caller shows `error` to the user,
    so it is logged at debug level only.
    """

    relative_path: str
    source: Path
    destination: Path | None
    error: str | None


@dataclass
class _ExistingNames:
    """Case-folded names known to exist in each destination folder, listed once per batch."""

    by_folder: dict[Path, set[str]] = field(default_factory=dict)

    def names_in(self, folder: Path) -> set[str]:
        if folder not in self.by_folder:
            self.by_folder[folder] = {fold_name(name) for name in os.listdir(folder)}
        return self.by_folder[folder]


def move_files(
    folder: Path, relative_paths: list[str], destination: Path,
    reviewed: Mapping[str, tuple[int, int]] | None = None,
) -> Iterator[MoveOutcome]:
    """Move each `folder/relative_path` to `destination/relative_path`, yielding one outcome each.

    Parent folders are created under `destination`. An existing name is never
    overwritten: the file gets the first free name `name (1).ext`, `name (2).ext`, ...,
    compared case-folded so that the result is also safe on case-insensitive file
    systems, with the stem shortened where the number would make the name too long.
    Within one file system a move is a hard link plus unlink of the source.
    Across file systems the file is copied, synced and verified by size and SHA-256
    before the source is removed. A link is moved as a link and its target is never
    touched. Paths that leave `folder` (absolute, `..`, or through a linked folder)
    are rejected. `reviewed` maps relative paths to the size and mtime_ns of the
    version that was reviewed: a file that differs now stays in place, because
    the decision to move it was made on other content.

    Never raises for a problem with one file: the outcome's `error` is a message of
    the form "Moving <relative path> failed: <reason>." and the source stays in
    place. Each file is finished before its outcome is yielded, so a caller cancels
    safely by stopping the iteration.
    """
    existing = _ExistingNames()
    moved = failed = 0
    try:
        for relative_path in relative_paths:
            outcome = _move_one(folder, relative_path, destination, existing,
                                (reviewed or {}).get(relative_path))
            if outcome.error is None:
                moved += 1
            else:
                failed += 1
            yield outcome
    finally:
        remaining = len(relative_paths) - moved - failed
        logger.info(
            "Moved %d files from %s to %s: %d failed, %d not attempted",
            moved,
            folder,
            destination,
            failed,
            remaining,
        )


def move_file(source: Path, root: Path, relative_path: str) -> MoveOutcome:
    """Move the file `source` to exactly `root/relative_path`, never overwriting.

    Unlike move_files, an existing name is not replaced by a numbered variant: the
    move fails and the source stays in place. Parent folders are created under
    `root`, and a parent that is a link is rejected. The move itself works as in
    move_files (hard link plus unlink, or a verified copy across file systems).
    Never raises for a problem with the file: the outcome's `error` describes what failed.
    """
    target = root / relative_path
    try:
        parts = _checked_parts(relative_path)
        source_stat = _inspect_source(source.parent, (source.name,))
        target_folder = make_folders(root, parts[:-1])
        move_to(source, source_stat, target_folder / parts[-1])
    except FileExistsError:
        reason = f"{target} exists already, and it is never overwritten"
    except MoveError as error:
        reason = str(error)
    except OSError as error:
        reason = describe_os_error(error)
    else:
        logger.debug("Moved %s to %s", source, target)
        return MoveOutcome(relative_path, source, target, None)

    message = f"Moving {source} to {target} failed: {reason}."
    logger.debug("%s", message)
    return MoveOutcome(relative_path, source, None, message)


def _move_one(
    folder: Path, relative_path: str, destination: Path, existing: _ExistingNames,
    reviewed: tuple[int, int] | None,
) -> MoveOutcome:
    source = folder / relative_path
    target_folder: Path | None = None
    created: list[Path] = []
    try:
        parts = _checked_parts(relative_path)
        source_stat = _inspect_source(folder, parts)
        if reviewed is not None:
            _check_reviewed(source, source_stat, reviewed)
        target_folder = destination.joinpath(*parts[:-1])
        make_folders(destination, parts[:-1], created)
        target = _claim(source, source_stat, target_folder, parts[-1], existing)
    except MoveError as error:
        reason = str(error)
    except OSError as error:
        reason = describe_os_error(error)
        if error.errno == errno.ENOSPC:
            reason = (
                f"no space left in {destination}. Free some space there "
                "or choose another quarantine folder"
            )
    else:
        logger.debug("Moved %s to %s", source, target)
        return MoveOutcome(relative_path, source, target, None)

    if target_folder is not None:
        # The folders made for a file that stayed behind would contain nothing.
        # A folder that was there before stays, even empty: the move that failed
        # in it may have failed because the user cannot write to it.
        remove_empty_folders(target_folder, destination, created)
    message = f"Moving {relative_path} failed: {reason}."
    logger.debug("%s", message)
    return MoveOutcome(relative_path, source, None, message)


def remove_empty_folders(
    folder: Path, destination: Path, created: Collection[Path] | None = None
) -> None:
    """Remove `folder` and its parents up to `destination`, which stays, while empty.

    With `created`, only the folders in it are removed, and the first folder from
    `folder` upwards that is not in it stays with all its parents. os.rmdir
    removes only an empty folder, so a folder that contains anything stays, even
    a file that another program put there meanwhile. Nothing at or below a link
    is removed: os.rmdir would follow the link out of `destination`.
    """
    if not folder.is_relative_to(destination):
        return
    # The folders from `destination` down to `folder`, up to the first link or gap.
    folders: list[Path] = []
    current = destination
    for part in folder.relative_to(destination).parts:
        current = current / part
        try:
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                break
        except FileNotFoundError:
            break  # never made, when making the folders failed at this one
        folders.append(current)
    for path in reversed(folders):
        if created is not None and path not in created:
            return
        try:
            os.rmdir(path)
        except OSError:
            return


def _checked_parts(relative_path: str) -> tuple[str, ...]:
    path = PurePath(relative_path)
    if path.is_absolute() or path.drive or path.root:
        raise MoveError("the path is absolute, but it must be relative to the reviewed folder")
    if ".." in path.parts:
        raise MoveError("the path leaves the reviewed folder through '..'")
    if not path.parts:
        raise MoveError("the path is empty")
    if "\x00" in relative_path:
        # The operating system ends a path at a NUL byte, so os functions raise
        # ValueError for one.
        raise MoveError("the path contains a NUL character")
    return path.parts


def _inspect_source(folder: Path, parts: tuple[str, ...]) -> os.stat_result:
    """Return the lstat of the source after checking that no parent folder is a link.

    NOTE: this check and the move look the path up separately, so a folder that
    another process swaps for a link in between is not detected.
    """
    current = folder
    try:
        for part in parts[:-1]:
            current = current / part
            if stat.S_ISLNK(os.lstat(current).st_mode):
                raise MoveError(f"{part} is a link to a folder, and such links are not followed")
        source_stat = os.lstat(current / parts[-1])
    except FileNotFoundError:
        raise MoveError(
            "the file was not found (moved or deleted since the folder was read)"
        ) from None

    mode = source_stat.st_mode
    if stat.S_ISDIR(mode):
        raise MoveError("it is a folder, and only files are moved")
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise MoveError("it is neither a regular file nor a link")
    return source_stat


def _check_reviewed(source: Path, source_stat: os.stat_result,
                    reviewed: tuple[int, int]) -> None:
    """Raise MoveError when the file's size or mtime_ns differ from the reviewed version's."""
    # The review identifies a link by its target, or by the link itself when the
    # target cannot be reached, as the listing does.
    current = listed_stat(source) if stat.S_ISLNK(source_stat.st_mode) else source_stat
    if (current.st_size, current.st_mtime_ns) != reviewed:
        raise MoveError("it changed since it was scored. Score the folder again to review "
                         "its new content")


def _claim(
    source: Path,
    source_stat: os.stat_result,
    target_folder: Path,
    name: str,
    existing: _ExistingNames,
) -> Path:
    """Move `source` into `target_folder` under the first free variant of `name`."""
    names = existing.names_in(target_folder)
    for candidate in numbered_names(name, name_max(target_folder)):
        folded = fold_name(candidate)
        if folded in names:
            continue
        target = target_folder / candidate
        try:
            move_to(source, source_stat, target)
        except FileExistsError:
            # Another process created the name since the listing, or the file
            # system folds names differently than casefold(). The next variant is tried.
            names.add(folded)
            continue
        names.add(folded)
        return target
    raise MoveError(
        f"{name} and its numbered variants up to ({MAX_SUFFIX}) all exist in {target_folder}"
    )


# Next steps for the user after errors that permissions and mounts cause.
_ADVICE = {
    errno.EACCES: "Check the permissions of the folders named, or choose another folder",
    errno.EPERM: "Check the permissions of the folders named, or choose another folder",
    # The same advice fits the folder moved from and the one moved to.
    errno.EROFS: "That file system is read-only. Remount it read-write first",
    errno.ENOSPC: "Free some space on that disk, or choose a folder on another disk",
}


def describe_os_error(error: OSError) -> str:
    """Return `error` as a lower-case reason with its path and, where known, what to do next."""
    reason = error.strerror or str(error)
    reason = reason[:1].lower() + reason[1:]
    if error.filename and error.filename2:
        # A rename or link names both ends; either folder may be the one refused.
        reason = f"{reason} ({error.filename} → {error.filename2})"
    elif error.filename:
        reason = f"{reason} ({error.filename})"
    advice = _ADVICE.get(error.errno or 0)
    return f"{reason}. {advice}" if advice else reason
