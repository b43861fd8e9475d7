"""Moving one file to a new name: a hard link, or a verified copy across file systems."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import stat
from pathlib import Path
from typing import BinaryIO

logger = logging.getLogger(__name__)

# Errors from os.link that mean a hard link is impossible here, so the file is copied
# instead: EXDEV across file systems, EPERM or ENOTSUP on file systems without hard
# links (FAT, exFAT, some FUSE mounts), EMLINK when the source has too many links.
_COPY_INSTEAD_ERRNOS = frozenset(
    {errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK}
)

_CHUNK_BYTES = 1 << 20

# O_NOFOLLOW makes opening a name that was swapped for a link fail. Windows has no such flag.
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class MoveError(Exception):
    """A problem with one file. The message is the reason shown to the user."""


def move_to(source: Path, source_stat: os.stat_result, target: Path) -> None:
    """Give the file the new name `target`, or raise FileExistsError if that name exists.

    os.link claims the name atomically and fails on an existing name, unlike
    os.rename, which replaces an existing file on POSIX.
    """
    try:
        os.link(source, target, follow_symlinks=False)
    except NotImplementedError:
        # Platforms that cannot hard-link a link itself get the copy path.
        _copy_then_remove(source, source_stat, target)
        return
    except OSError as error:
        if error.errno not in _COPY_INSTEAD_ERRNOS:
            raise
        logger.debug(
            "Cannot hard-link %s to %s (%s), so copying it", source, target, error.strerror
        )
        _copy_then_remove(source, source_stat, target)
        return
    _remove_source(source, target)


def _remove_source(source: Path, target: Path) -> None:
    """Unlink `source` now that `target` contains the same data, removing `target` on failure."""
    try:
        os.unlink(source)
    except FileNotFoundError:
        # Another process removed the source name meanwhile, so the data now lives
        # only under `target`, which must stay.
        logger.warning(
            "%s vanished during the move, so the file is kept only at %s", source, target
        )
    except OSError:
        # The source is still in place, so dropping the new name loses nothing and
        # avoids leaving the file in two places.
        _discard(target)
        raise


def _copy_then_remove(source: Path, source_stat: os.stat_result, target: Path) -> None:
    if stat.S_ISLNK(source_stat.st_mode):
        _copy_link(source, target)
    else:
        _copy_file(source, source_stat, target)
    try:
        _fsync_folder(target.parent)
    except OSError:
        _discard(target)
        raise
    _remove_source(source, target)
    try:
        _fsync_folder(source.parent)
    except OSError as error:
        # The file is already moved and verified. At worst a crash brings the source
        # name back as a second copy, so the move itself has not failed.
        logger.warning("Could not sync %s after removing %s: %s", source.parent, source, error)


def _copy_link(source: Path, target: Path) -> None:
    """Create `target` as a link with the same text as `source`, never reading its target."""
    link_text = os.readlink(source)
    os.symlink(link_text, target)
    try:
        shutil.copystat(source, target, follow_symlinks=False)
        if os.readlink(target) != link_text:
            raise MoveError(f"the copied link {target} does not match the original")
    except BaseException:
        _discard(target)
        raise


def _copy_file(source: Path, source_stat: os.stat_result, target: Path) -> None:
    """Copy a regular file to the new name `target`, sync it and verify it.

    The mode and times of `source` are copied too. On any error, including an
    interruption, the partial `target` is removed and the error is raised.
    """
    with open(os.open(source, os.O_RDONLY | _O_NOFOLLOW), "rb") as reader:
        opened = os.fstat(reader.fileno())
        if (opened.st_dev, opened.st_ino) != (source_stat.st_dev, source_stat.st_ino):
            raise MoveError("the file was replaced while it was being moved")
        try:
            size, digest = _write_new_file(reader, source, target)
            _check_unchanged(os.fstat(reader.fileno()), source_stat, size)
            _verify_copy(target, size, digest)
        except FileExistsError:
            # Only the exclusive creation raises this, so the name belongs to
            # another file and nothing of this move is there to remove.
            raise
        except BaseException:
            _discard(target)
            raise


def _write_new_file(reader: BinaryIO, source: Path, target: Path) -> tuple[int, str]:
    """Create `target` exclusively, fill it from `reader` and return the size and SHA-256."""
    with open(target, "xb") as writer:
        size, digest = _copy_stream(reader, writer)
        shutil.copystat(source, target)
        # One fsync after copystat makes both the bytes and the copied mode and
        # times durable.
        os.fsync(writer.fileno())
    return size, digest


def _copy_stream(reader: BinaryIO, writer: BinaryIO) -> tuple[int, str]:
    """Copy all bytes and return their count and SHA-256 as read from the source."""
    digest = hashlib.sha256()
    size = 0
    while chunk := reader.read(_CHUNK_BYTES):
        digest.update(chunk)
        writer.write(chunk)
        size += len(chunk)
    # Buffered bytes written later would reset the modification time set by copystat.
    writer.flush()
    return size, digest.hexdigest()


def _check_unchanged(after: os.stat_result, before: os.stat_result, copied: int) -> None:
    if after.st_size != copied or after.st_mtime_ns != before.st_mtime_ns:
        raise MoveError(
            "the file changed while it was being copied. Try again when nothing writes to it"
        )


def _verify_copy(target: Path, size: int, digest: str) -> None:
    """Raise unless `target` has `size` bytes with SHA-256 `digest`.

    NOTE: the read-back may be served from the page cache, so this proves what the
    file system accepted, not what the medium will return after a power loss.
    """
    written = os.stat(target).st_size
    if written != size:
        raise MoveError(f"the copy at {target} has {written} bytes instead of {size}")
    check = hashlib.sha256()
    with open(target, "rb") as copy:
        while chunk := copy.read(_CHUNK_BYTES):
            check.update(chunk)
    if check.hexdigest() != digest:
        raise MoveError(f"the copy at {target} differs from the original (SHA-256 mismatch)")


def _fsync_folder(folder: Path) -> None:
    """Make the creation or removal of a name in `folder` durable."""
    if os.name == "nt":
        # Windows cannot open a folder to fsync it.
        return
    descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _discard(target: Path) -> None:
    """Remove a name this module created, logging instead of raising if that fails."""
    try:
        os.unlink(target)
    except FileNotFoundError:
        pass
    except OSError as error:
        logger.warning("Could not remove the unfinished copy %s: %s", target, error)
