"""Listing of the image files under a folder: suffixes, hidden names, links and order."""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from engine.images import Status

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp", ".gif", ".webp",
     ".ppm", ".pgm", ".pbm", ".tga", ".jp2", ".j2k", ".heic", ".heif", ".avif"}
)


@dataclass(frozen=True)
class SkippedFolder:
    """A subfolder that a listing could not read, so none of its files are listed.

    `path` is relative to the listed folder, with forward slashes. `status` is
    missing for a folder removed or renamed while it was listed, else unreadable,
    and `detail` gives the reason, such as "permission denied".
    """

    path: str
    status: Status
    detail: str


def relative_posix(path: Path | str, root: Path | str) -> str:
    """Return `path` relative to `root`, with forward slashes, as Path.relative_to does.

    Both are taken as written, without resolving links or "..". Raises ValueError
    for a path outside `root`.
    """
    text, prefix = os.fspath(path), os.path.join(root, "")
    # Scans make a relative path for every file. Slicing the string gives what
    # Path.relative_to gives for a path that starts with the root's, in 1.5 µs, not 6.4.
    if text.startswith(prefix) and len(text) > len(prefix):
        return text[len(prefix):].replace(os.sep, "/")
    return Path(path).relative_to(root).as_posix()


class FolderListing(NamedTuple):
    """The image files under a folder, as list_relative_images lists them, and the
    subfolders that could not be read.
    """

    files: list[str]
    skipped_folders: list[SkippedFolder]


def list_images(folder: Path) -> list[Path]:
    """List the files with an image suffix under `folder`, recursively and sorted.

    Hidden files and folders are left out, and so are names that are not valid
    UTF-8, each with a warning. Links to folders are not followed, and
    a link to a file inside `folder` is left out because its target is listed
    already, so a scan never leaves the folder or visits a file twice. Raises
    OSError when `folder` itself cannot be listed; a subfolder that cannot be
    listed is skipped with a warning.
    """
    return [folder / relative_path for relative_path in list_relative_images(folder)]


def list_relative_images(folder: Path, warn_skipped: bool = True) -> list[str]:
    """List what list_images lists, as paths relative to `folder` with forward slashes.

    The order is that of list_images. Strings cost less: building a Path for each
    of 8000 files took about 25 ms on Python 3.11, and the `score` command needs a
    Path only for each file it scores. With `warn_skipped` False, the names and
    subfolders left out are logged at debug level instead of as warnings, for a
    listing that repeats one whose warnings were shown already.
    """
    return list_folder(folder, warn_skipped).files


def list_folder(folder: Path, warn_skipped: bool = True) -> FolderListing:
    """List the files that list_relative_images lists, and the subfolders it could not read.

    Raises OSError when `folder` itself cannot be listed. `warn_skipped` is as
    for list_relative_images.
    NOTE: a subfolder whose name is not valid UTF-8 is left out with a warning
    only, as a file with such a name is. It is not among the skipped folders, so
    the score CSV, the export and the window do not name it.
    """
    skip_level = logging.WARNING if warn_skipped else logging.DEBUG
    root = folder.resolve()
    found: list[str] = []
    skipped: list[SkippedFolder] = []
    # os.scandir, unlike os.walk, keeps each entry's type from the listing, so a
    # file costs no lstat to tell a link: listing 8000 files took 0.22 s with
    # os.walk and Path.is_symlink, most of a re-run on a folder already scored.
    pending = [(os.fspath(folder), "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            with os.scandir(directory) as listing:
                entries = list(listing)
        except OSError as error:
            if not prefix:
                # The folder itself: PermissionError, FileNotFoundError and the like.
                raise
            logger.log(skip_level, "skipped folder %s: %s", error.filename,
                       error.strerror or error)
            skipped.append(_skipped_folder(prefix[:-1], error))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if _is_folder(entry):
                if entry.is_symlink():
                    continue
                if not _is_utf8(entry.name):
                    # Its files could not be stored in the review, as with a file name.
                    logger.log(skip_level, "skipped folder %s: the folder name is not valid "
                               "UTF-8, so rename the folder to score its files", entry.path)
                    continue
                pending.append((entry.path, f"{prefix}{entry.name}/"))
                continue
            if _is_listed_image(entry, root, skip_level):
                found.append(prefix + entry.name)
    found.sort(key=_path_order)
    skipped.sort(key=lambda folder_skipped: _path_order(folder_skipped.path))
    return FolderListing(found, skipped)


def describe_skipped_folders(skipped: list[SkippedFolder], consequence: str,
                             folder: Path | None = None, shown: int = 3) -> str:
    """Return a sentence that names the first `shown` skipped subfolders with their
    reasons, and counts the others.

    `consequence` is what happened to their images, such as "are not shown", and
    `folder` the listed folder, named when given: "1 folder of /data could not be
    read, so its images are not shown: locked (permission denied)."
    """
    named = [f"{skipped_folder.path} ({skipped_folder.detail})"
             for skipped_folder in skipped[:shown]]
    others = len(skipped) - len(named)
    if others:
        named.append(f"{others} other{'s' if others > 1 else ''}")
    names = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"
    folders, images = ("1 folder", "its") if len(skipped) == 1 else (
        f"{len(skipped)} folders", "their")
    of_folder = "" if folder is None else f" of {folder}"
    return (f"{folders}{of_folder} could not be read, so {images} images {consequence}: "
            f"{names}.")


def _skipped_folder(relative_path: str, error: OSError) -> SkippedFolder:
    """Return the record of a subfolder whose listing raised `error`."""
    if error.errno == errno.ENOENT:
        return SkippedFolder(relative_path, Status.MISSING,
                             "the folder was removed or renamed while it was listed")
    if error.errno in (errno.EACCES, errno.EPERM):
        return SkippedFolder(relative_path, Status.UNREADABLE, "permission denied")
    return SkippedFolder(relative_path, Status.UNREADABLE, error.strerror or str(error))


def _path_order(relative_path: str) -> str:
    """Return a sort key that orders relative paths as their Path objects compare.

    Path compares part by part, so "a/b" sorts before "a-b". The key turns each
    separator into NUL, which sorts before every character a name can contain.
    Windows paths compare without case.
    """
    key = relative_path.replace("/", "\0")
    return key.lower() if os.name == "nt" else key


def _is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_listed_image(entry: os.DirEntry[str], root: Path, skip_level: int) -> bool:
    """Return whether the scan takes a listed file, logging a bad name at `skip_level`."""
    name = entry.name
    dot = name.rfind(".")
    if dot <= 0 or name[dot:].lower() not in IMAGE_SUFFIXES:
        return False
    if not _is_utf8(name):
        # NOTE: the review database stores names as UTF-8 text, so such a
        # file is left out of the scan with a warning rather than listed.
        logger.log(skip_level, "skipped %s: the file name is not valid UTF-8, so rename "
                   "the file to score it", entry.path)
        return False
    if entry.is_symlink() and _points_inside(Path(entry.path), root):
        logger.debug("left out %s: it links to a file inside the folder", entry.path)
        return False
    return True


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _points_inside(link: Path, root: Path) -> bool:
    try:
        target = link.resolve()
    except (RuntimeError, OSError):
        # Path.resolve raises RuntimeError for a link loop on Python 3.11, and
        # OSError for a target it cannot read. load_image gives the link its status.
        return False
    return target.exists() and target.is_relative_to(root)
