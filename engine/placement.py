"""Placement of the kept files of an export: names in the destination, copies, hard links."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engine.export_notes import left_behind_note, renamed_note
from engine.export_results import ExportSummary
from engine.hardlinks import CopyReason, HardLinks
from engine.interrupts import stops_held
from engine.names import (
    MAX_SUFFIX,
    DestinationNames,
    FolderNames,
    existing_folder,
    fold_name,
    make_folders,
    name_max,
    numbered_names,
)
from engine.quarantine import remove_empty_folders
from engine.records import FileRecord, hash_file, read_identity

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 20


class PlacementError(Exception):
    """A problem with one file; the message is the reason shown to the user."""


@dataclass(frozen=True)
class PlacedFile:
    """A kept file at `path` in the destination, whose content has the SHA-256 `sha256`.

    `linked`: hard-linked to the file in the folder. `copy_reason`: why it was
    copied where a hard link was requested. `present`: an earlier export left it
    there with this content, so this export neither copied nor linked it. `note`
    is the reason it has another name than in the folder, or "".
    """

    path: Path
    sha256: str
    linked: bool = False
    copy_reason: CopyReason | None = None
    present: bool = False
    note: str = ""


@dataclass
class _Creation:
    """The new name in the destination that `place` is copying or linking one file to.

    `created`: this export made the file of that name, which is then its own to
    list or remove, never another program's.
    """

    relative_path: str
    path: Path
    note: str
    copy_reason: CopyReason | None = None
    created: bool = False

    def placed(self, sha256: str, linked: bool) -> PlacedFile:
        return PlacedFile(self.path, sha256, linked, self.copy_reason, note=self.note)


class Placement:
    """The names, copies and hard links of the kept files of one export in `destination`.

    `place` copies or links one kept file of `folder` to its relative path in the
    destination, or to a numbered variant of its name, unless an earlier export
    left it there with the same content. `stopped_file` finds a file that a stop
    left there before the caller could list it. `find_left_behind` remembers the
    copies that an earlier export made of a file that this export does not
    export. `add_final_notes`, called once every file is seen, lists those copies
    in `summary` and adds the notes on them and on the files copied instead of
    hard-linked. With `link`, files are hard-linked where HardLinks can link them
    and copied elsewhere.
    """

    def __init__(self, folder: Path, destination: Path, record_paths: set[str],
                 summary: ExportSummary, *, link: bool) -> None:
        self.folder = folder
        self.destination = destination
        self.summary = summary
        self._names = DestinationNames()
        # A destination path that is the relative path of a file of the review
        # belongs to that file, so it is never taken for another file's earlier copy.
        self._record_paths = record_paths
        # Copies that an earlier export left in the destination of files not exported
        # now, as the folder's names, the name and the relative path. The end of the
        # run drops those that this export took for a kept file with that content.
        self._left_behind: list[tuple[FolderNames, str, str]] = []
        self._links = HardLinks(folder, destination) if link else None
        # The folders this export made, the only ones it removes again when empty.
        self._created_folders: list[Path] = []
        # Set just before `place` creates a name and kept after it returns, for
        # `stopped_file`.
        self._creation: _Creation | None = None

    def _relative(self, path: Path) -> str:
        """Return `path` relative to the destination, with forward slashes."""
        return path.relative_to(self.destination).as_posix()

    def place(self, record: FileRecord) -> PlacedFile:
        """Copy or link one kept file, or find it in the destination, and return where it is.

        Raises PlacementError with the reason for the user, or OSError.
        """
        source = self.folder / record.relative_path
        identity = read_identity(source)
        if (identity.size, identity.mtime_ns) != (record.size, record.mtime_ns):
            raise PlacementError("it changed since it was scored. Score the folder again")
        *folders, name = record.relative_path.split("/")
        try:
            requested = make_folders(self.destination, folders, self._created_folders) / name
            return self._place_in_folder(source, requested, record, identity.size)
        except BaseException:
            # A file not placed leaves no folder that this export made for it.
            remove_empty_folders(self.destination.joinpath(*folders), self.destination,
                                 self._created_folders)
            raise

    def _place_in_folder(self, source: Path, requested: Path, record: FileRecord,
                         size: int) -> PlacedFile:
        names = self._names.names_in(requested.parent)
        if requested.name in names.existing and fold_name(requested.name) not in names.claimed:
            # The same name from an earlier export: merge checks that it is this file.
            return PlacedFile(requested, self._check_present(source, requested), present=True)
        earlier = self._earlier_copy(source, requested, names, size)
        if earlier is not None:
            target, digest = earlier
            note = self._renamed_note(record.relative_path, target, names, present=True)
            return PlacedFile(target, digest, present=True, note=note)
        for candidate in numbered_names(requested.name, name_max(requested.parent)):
            if names.is_taken(candidate):
                continue
            target = requested.with_name(candidate)
            note = ("" if target == requested
                    else self._renamed_note(record.relative_path, target, names))
            creation = _Creation(record.relative_path, target, note)
            self._creation = creation
            try:
                placed = self._claim(source, creation, size)
            except FileExistsError:
                # Another program took the name, or the file system folds names
                # differently than casefold(): the next variant is tried.
                self._creation = None
                names.occupied.add(fold_name(candidate))
                continue
            names.claimed[fold_name(candidate)] = candidate
            return placed
        raise PlacementError(f"{requested.name} and its numbered variants up to ({MAX_SUFFIX}) "
                             f"all exist in {requested.parent}")

    def _claim(self, source: Path, creation: _Creation, size: int) -> PlacedFile:
        """Link or copy `source` to the new name `creation.path`.

        Raises FileExistsError if that name is taken.
        """
        if self._links is not None:
            # A stop during the link is held back until `created` records whether it was made.
            with stops_held():
                creation.copy_reason = self._links.link(source, creation.path)
                creation.created = creation.copy_reason is None
            if creation.created:
                return creation.placed(hash_file(creation.path), linked=True)
        return creation.placed(_copy_new(source, creation, size), linked=False)

    def stopped_file(self, record: FileRecord) -> PlacedFile | None:
        """Return the file that `place` made for `record` if it is whole, or None.

        The caller lists that file after a stop (KeyboardInterrupt), which can come
        once the copy or link is whole but before `place` has returned it. The
        file is the export's own if `place` created it, or if it is a hard link to
        the file in the folder. _copy_new removes a copy that it did not finish,
        so unless that removal failed, a copy of the record's size is whole.
        """
        creation = self._creation
        if creation is None or creation.relative_path != record.relative_path:
            return None
        try:
            linked = os.path.samefile(self.folder / record.relative_path, creation.path)
        except OSError:
            linked = False
        if not (creation.created or linked) or not _has_size(creation.path, record.size):
            return None
        digest = _digest_or_none(creation.path)
        return None if digest is None else creation.placed(digest, linked)

    def _earlier_copy(self, source: Path, requested: Path, names: FolderNames,
                      size: int) -> tuple[Path, str] | None:
        """Return a numbered variant of `requested` with the content of `source`, and
        that content's SHA-256, or None.

        Such a variant is the copy that an earlier export made of the file when
        the name was taken, so a merge counts the file as there already instead
        of adding another variant. It is taken for this file only, and never when
        it is the path of another file of the review, which it belongs to.
        """
        digest = ""
        for name in names.earlier_variants(requested.name, requested.parent):
            variant = requested.with_name(name)
            if self._relative(variant) in self._record_paths or not _has_size(variant, size):
                continue
            digest = digest or hash_file(source)
            if _digest_or_none(variant) == digest:
                names.claimed[fold_name(name)] = name
                return variant, digest
        return None

    def find_left_behind(self, record: FileRecord, sha256: str) -> None:
        """Remember the files in the destination with the content `sha256` of a file that
        this export does not export, at its path or at a numbered variant of its name.

        Such a file is a copy that an earlier export made, when the file was kept.
        Only names that exist are read, and only files of the record's size hashed.
        """
        *folders, name = record.relative_path.split("/")
        folder = existing_folder(self.destination, folders)
        if folder is None:
            return
        try:
            names = self._names.names_in(folder)
        except OSError as error:
            logger.debug("Cannot list %s: %s", folder, error)
            return
        candidates = [name] if name in names.existing else []
        candidates += [variant for variant in names.earlier_variants(name, folder)
                       if self._relative(folder / variant) not in self._record_paths]
        for candidate in candidates:
            path = folder / candidate
            if _has_size(path, record.size) and _digest_or_none(path) == sha256:
                self._left_behind.append((names, candidate, self._relative(path)))

    def _renamed_note(self, relative_path: str, target: Path, names: FolderNames, *,
                      present: bool = False) -> str:
        """Return the note with the reason `relative_path` has another name, `target`.

        `present`: the file was found under that name from an earlier export.
        """
        return renamed_note(relative_path, target, self.destination, names, present=present)

    def _check_present(self, source: Path, target: Path) -> str:
        digest = hash_file(source)
        if target.is_file() and not target.is_symlink() and hash_file(target) == digest:
            return digest
        raise PlacementError(f"{target} exists already with other content, and it is "
                             "never overwritten. To export this version, move that file out "
                             "of the destination, or export to a new folder")

    def add_final_notes(self, placed: Iterable[PlacedFile]) -> None:
        """Add the notes on the files copied instead of linked and on the files that an
        earlier export left in the destination, once the run has seen every file.

        `placed` are the files that the export listed, of those that `place` and
        `stopped_file` returned.
        """
        notes = []
        if self._links is not None:
            for file in placed:
                if file.copy_reason is not None:
                    self._links.copied(file.copy_reason)
            notes = self._links.notes()
        # A variant that this export took for a kept file with the same content is
        # that file's copy.
        self.summary.left_in_destination = [
            path for names, name, path in self._left_behind if fold_name(name) not in names.claimed
        ]
        if self.summary.left_in_destination:
            notes.append(left_behind_note(self.summary.left_in_destination, self.destination))
        for note in notes:
            logger.info("%s", note)
            self.summary.notes.append(note)


def _has_size(path: Path, size: int) -> bool:
    """Return True if `path` is a regular file, not a link, of `size` bytes."""
    try:
        status = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(status.st_mode) and status.st_size == size


def _digest_or_none(path: Path) -> str | None:
    """Return the SHA-256 of the file `path`, or None if it cannot be read."""
    try:
        return hash_file(path)
    except OSError as error:
        logger.debug("Cannot read %s: %s", path, error)
        return None


def _copy_new(source: Path, creation: _Creation, expected_size: int) -> str:
    """Copy `source` to the new file `creation.path` with its times and mode, and return
    the SHA-256.

    The target is created exclusively, synced, and removed again on any failure,
    also on a stop right after it was created. Raises FileExistsError if it exists.
    """
    target = creation.path
    writer: BinaryIO | None = None
    with source.open("rb") as reader:
        try:
            # A stop during the creation is held back until `created` records that the
            # file is this copy's, so that no other program's file is removed.
            with stops_held():
                writer = target.open("xb")
                creation.created = True
            with writer:
                return _fill(reader, writer, source, target, expected_size)
        except BaseException:
            if writer is not None:
                with contextlib.suppress(OSError):
                    writer.close()
                target.unlink(missing_ok=True)
                creation.created = False
            raise


def _fill(reader: BinaryIO, writer: BinaryIO, source: Path, target: Path,
          expected_size: int) -> str:
    """Copy the bytes of `reader` to `writer`, then the times and mode of `source` to
    `target`, sync it and return the SHA-256. The caller removes `target` on failure.
    """
    digest = hashlib.sha256()
    size = 0
    try:
        while chunk := reader.read(_CHUNK_BYTES):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
        writer.flush()
        if size != expected_size:
            raise PlacementError("it changed while it was copied. Score the folder again")
        shutil.copystat(source, target)
        os.fsync(writer.fileno())
    except BaseException:
        # Closing flushes the buffer again, which fails again on a full disk. The
        # file is closed all the same, so that the caller can remove it.
        with contextlib.suppress(OSError):
            writer.close()
        raise
    return digest.hexdigest()
