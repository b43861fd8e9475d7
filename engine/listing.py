"""Listing of the image files under a folder: suffixes, hidden names, links and order."""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp", ".gif", ".webp",
     ".ppm", ".pgm", ".pbm", ".tga", ".jp2", ".j2k", ".heic", ".heif", ".avif"}
)


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
    skip_level = logging.WARNING if warn_skipped else logging.DEBUG
    root = folder.resolve()
    found: list[str] = []
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
    return found


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
