"""Export of the cleaned set: kept files copied or hard-linked, with a CSV and JSON manifest.

Files whose final decision is keep and that are in the folder are copied to the
destination under their relative paths. Rejected files, and files moved to
quarantine, are not copied but are listed in the manifest too, with their
decision, so the manifest records every decision of the review. The export covers
the files of the last scan of the folder, so score it first (score_with_cache).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import os
import shutil
import stat
from collections.abc import Generator, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePath
from typing import TextIO

from engine.decisions import Decision
from engine.hardlinks import HardLinks
from engine.manifest import (
    MANIFEST_COLUMNS,
    file_sha256,
    free_manifest_paths,
    json_row,
    review_row,
)
from engine.names import (
    MAX_SUFFIX,
    DestinationNames,
    FolderNames,
    composed_first,
    existing_folder,
    fold_name,
    folder_problem,
    make_folders,
    name_difference,
    name_max,
    numbered_names,
    overlap,
    spelling,
)
from engine.quarantine import describe_os_error
from engine.review import FileRecord, Location, ReviewStore, hash_file, read_identity
from engine.reviewdb import utc_now

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 20

# How many of the files that an earlier export left in the destination a note names.
_SHOWN_PATHS = 3

# The file systems on which two names that differ only in this way (a result of
# names.name_difference) are one name.
_ONE_NAME_ON = {
    "case": "case-insensitive file systems such as exFAT, NTFS and the default APFS",
    "Unicode normalisation": "file systems that ignore normalisation, such as APFS and "
    "HFS+ on macOS",
    "case and Unicode normalisation": "file systems that ignore both, such as the default "
    "APFS on macOS",
}


@dataclass(frozen=True)
class ExportedFile:
    """Result for one file of the review.

    `destination` is the exported file, or None when the file was not copied:
    because its final decision is reject, because it is not in the folder, or
    because of `error` (a sentence for the user).
    """

    relative_path: str
    final_decision: Decision | None
    destination: Path | None
    linked: bool
    error: str | None


@dataclass
class ExportSummary:
    """Counts and messages of one export; `manifest_csv` and `manifest_json` once written.

    `exported` counts the kept files that are in the destination after the export,
    as the manifest's `exported` column does. It includes the `already_present`
    files, which a merge found there with the same content and left as they were,
    and `added` counts the others. `linked` counts the added files that were hard-linked.
    `left_in_destination` lists, relative to the destination, the files that a merge
    found there with the same content as a file it did not export, because that
    file is rejected or in quarantine now: copies an earlier export made, which
    stay, because nothing is ever deleted.
    """

    destination: Path
    exported: int = 0
    linked: int = 0
    already_present: int = 0
    not_copied: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    left_in_destination: list[str] = field(default_factory=list)
    manifest_csv: Path | None = None
    manifest_json: Path | None = None
    cancelled: bool = False

    @property
    def added(self) -> int:
        """The number of files this export copied or linked into the destination."""
        return self.exported - self.already_present


class CleanedSetExport:
    """One export of the store's folder to `destination`; `run()` does the work.

    `link` hard-links files where the destination is on the same file system and
    copies them elsewhere, with a note in the summary. Whether links work is
    decided per file system of the source files, so the files of a subfolder
    that is another mount are copied and the others still linked. `merge` allows
    a non-empty destination, in which an existing name is never overwritten: a
    byte-identical file there counts as already present, and any other file is
    an error for that file. A file whose name differs only in case or Unicode
    normalisation (compared with names.fold_name) from a name in the destination
    or exported before it gets the first free variant `name (1).ext`,
    `name (2).ext`, ..., with a note in the summary, so that no two files share a
    name on a file system that ignores case or normalisation. A variant too long
    for the destination's file system gets a shorter stem. A merge that finds a
    numbered variant with the file's content, which an earlier export made, counts
    the file as already present there instead of adding another variant. A merge
    also lists in the summary the files it does not export (rejected, or in
    quarantine) whose content an earlier export left in the destination, with a
    note, and leaves them there.
    `signal_thresholds`, the model's calibrated threshold of each signal, name the
    signals that flagged each file in the manifest. The constructor raises
    ValueError for an unusable destination and for files in the folder that are
    not scored under `model_fingerprint`.
    """

    def __init__(self, store: ReviewStore, destination: Path, model_fingerprint: str,
                 threshold: float, *, model_name: str = "", merge: bool = False,
                 link: bool = False, signal_thresholds: Mapping[str, float] | None = None,
                 ) -> None:
        self.store = store
        self.signal_thresholds = dict(signal_thresholds or {})
        self.destination = Path(os.path.abspath(destination))
        self.model_fingerprint = model_fingerprint
        self.model_name = model_name
        self.threshold = threshold
        self.merge = merge
        self.link = link
        records = store.records(model_fingerprint)
        order = composed_first([record.relative_path for record in records])
        self.records = [records[index] for index in order]
        self.summary = ExportSummary(self.destination)
        self._rows: list[dict[str, str]] = []
        self._names = DestinationNames()
        # A destination path that is the relative path of a file of the review
        # belongs to that file, so it is never taken for another file's earlier copy.
        self._record_paths = {record.relative_path for record in self.records}
        # Copies that an earlier export left in the destination of files not exported
        # now, as the folder's names, the name and the relative path. The end of the
        # run drops those that this export took for a kept file with that content.
        self._left_behind: list[tuple[FolderNames, str, str]] = []
        self._links = HardLinks(store.folder, self.destination) if link else None
        self._check_scored()
        self._check_destination()

    @property
    def total(self) -> int:
        """The number of files `run()` yields, one per record of the review."""
        return len(self.records)

    @property
    def kept_count(self) -> int:
        """The number of files to export: those in the folder whose final decision is keep."""
        return sum(1 for record in self.records if record.location is Location.FOLDER
                   and record.final_decision(self.threshold) is Decision.KEEP)

    def run(self) -> Generator[ExportedFile, None, None]:
        """Export file by file, yielding one ExportedFile per record.

        Stop iterating to cancel between files. The manifests are written when
        the run ends or is cancelled; a cancelled run's JSON manifest has
        "complete": false and lists only the files handled. Raises ExportError
        if the destination folder cannot be created or the manifests cannot be
        written there.
        """
        try:
            self.destination.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ExportError(f"creating {self.destination} failed: "
                              f"{describe_os_error(error)}.") from error
        try:
            for record in self.records:
                yield self._export_one(record)
        finally:
            # One row per file handled, also for the last one when the run is
            # stopped at its yield.
            self.summary.cancelled = len(self._rows) < len(self.records)
            self._add_final_notes()
            self._write_manifests()
            logger.info("Exported %d files of %s to %s: %d there already, %d not copied, "
                        "%d failed", self.summary.added, self.store.folder, self.destination,
                        self.summary.already_present, self.summary.not_copied,
                        self.summary.failed)

    def _check_scored(self) -> None:
        unscored = [record.relative_path for record in self.records
                    if record.location is Location.FOLDER
                    and record.final_decision(self.threshold) is None]
        if unscored:
            raise ValueError(
                f"Exporting failed: {len(unscored)} files of {self.store.folder} are not "
                f"scored with model {self.model_fingerprint} (first: {unscored[0]}). "
                "Score the folder with that model first."
            )

    def _check_destination(self) -> None:
        problem = destination_problem(self.store.folder, self.destination, self.merge)
        if problem:
            raise ValueError(f"Exporting failed: {problem}")

    def _export_one(self, record: FileRecord) -> ExportedFile:
        decision = record.final_decision(self.threshold)
        target: Path | None = None
        linked = False
        error: str | None = None
        sha256: str | None = None
        if record.location is Location.FOLDER and decision is Decision.KEEP:
            try:
                target, linked, sha256 = self._place(record)
            except _ExportError as problem:
                error = f"Exporting {record.relative_path} failed: {problem}."
            except OSError as problem:
                error = f"Exporting {record.relative_path} failed: {describe_os_error(problem)}."
        else:
            sha256 = file_sha256(self.store, record)
            if self.merge and sha256 is not None:
                self._find_left_behind(record, sha256)
        row = review_row(record, self.threshold, self.model_fingerprint, sha256,
                         self.signal_thresholds)
        exported_as = "" if target is None else self._relative(target)
        row.update(exported=str(target is not None).lower(), exported_as=exported_as,
                   error=error or "")
        # Counted and listed together, so that a stop between files leaves the
        # summary and the manifest in agreement.
        self._count(target, linked, error)
        self._rows.append(row)
        return ExportedFile(record.relative_path, decision, target, linked, error)

    def _relative(self, path: Path) -> str:
        """Return `path` relative to the destination, with forward slashes."""
        return path.relative_to(self.destination).as_posix()

    def _count(self, target: Path | None, linked: bool, error: str | None) -> None:
        if error is not None:
            # The caller shows the summary's errors to the user.
            logger.debug("%s", error)
            self.summary.failed += 1
            self.summary.errors.append(error)
        elif target is None:
            self.summary.not_copied += 1
        else:
            self.summary.exported += 1
            self.summary.linked += int(linked)

    def _place(self, record: FileRecord) -> tuple[Path, bool, str]:
        """Copy or link one kept file and return its path, whether linked, and its SHA-256."""
        source = self.store.folder / record.relative_path
        identity = read_identity(source)
        if (identity.size, identity.mtime_ns) != (record.size, record.mtime_ns):
            raise _ExportError("it changed since it was scored. Score the folder again")
        *folders, name = record.relative_path.split("/")
        requested = make_folders(self.destination, folders) / name
        names = self._names.names_in(requested.parent)
        if requested.name in names.existing and fold_name(requested.name) not in names.claimed:
            # The same name from an earlier export: merge checks that it is this file.
            return requested, False, self._check_present(source, requested)
        earlier = self._earlier_copy(source, requested, names, identity.size)
        if earlier is not None:
            target, digest = earlier
            self.summary.already_present += 1
            self._note_renamed(record.relative_path, target, names, present=True)
            return target, False, digest
        for candidate in numbered_names(requested.name, name_max(requested.parent)):
            if names.is_taken(candidate):
                continue
            target = requested.with_name(candidate)
            try:
                placed = self._claim(source, target, identity.size)
            except FileExistsError:
                # Another program took the name, or the file system folds names
                # differently than casefold(): the next variant is tried.
                names.occupied.add(fold_name(candidate))
                continue
            names.claimed[fold_name(candidate)] = candidate
            if target != requested:
                self._note_renamed(record.relative_path, target, names)
            return placed
        raise _ExportError(f"{requested.name} and its numbered variants up to ({MAX_SUFFIX}) "
                           f"all exist in {requested.parent}")

    def _claim(self, source: Path, target: Path, size: int) -> tuple[Path, bool, str]:
        """Link or copy `source` to the new name `target`. Raises FileExistsError if it is taken."""
        if self._links is None:
            return target, False, _copy_new(source, target, size)
        reason = self._links.link(source, target)
        if reason is None:
            return target, True, hash_file(target)
        digest = _copy_new(source, target, size)
        self._links.copied(reason)
        return target, False, digest

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

    def _find_left_behind(self, record: FileRecord, sha256: str) -> None:
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

    def _note_renamed(self, relative_path: str, target: Path, names: FolderNames, *,
                      present: bool = False) -> None:
        """Add to the summary a note with the reason `relative_path` got another name.

        `present`: the file was found under that name from an earlier export.
        """
        exported_as = self._relative(target)
        requested = PurePath(relative_path).name
        folded = fold_name(requested)
        if folded in names.claimed:
            other, where = names.claimed[folded], "was exported before it"
        elif folded in names.existing_folded:
            other, where = names.existing_folded[folded], "was in the destination already"
        else:
            other, where = "", ""
        difference = name_difference(requested, other) if other else ""
        other_path = self._relative(target.parent / other) if other else ""
        if "normalisation" in difference:
            # The two names look alike, so the note gives the spelling of each.
            relative_path = f"{relative_path} ({spelling(requested)})"
            other_path = f"{other_path} ({spelling(other)})"
        if present:
            note = (f"{relative_path} was there already as {exported_as}, with the same "
                    "content, so it was not copied again.")
            if other:
                note += (f" Its name differs only in {difference} from {other_path}, which "
                         f"{where}. The two names would be one on {_ONE_NAME_ON[difference]}.")
        elif other:
            note = (f"{relative_path} was exported as {exported_as}, because its name differs "
                    f"only in {difference} from {other_path}, which {where}. The two names "
                    f"would be one on {_ONE_NAME_ON[difference]}.")
        else:
            # The name was free when the folder was listed, but creating it failed.
            note = (f"{relative_path} was exported as {exported_as}, because another program "
                    "created a file of that name during the export, or the file system "
                    "counts another name there as the same.")
        if not target.name.startswith(f"{PurePath(requested).stem} ("):
            note += (f" The numbered name was shortened to fit the limit of "
                     f"{name_max(target.parent)} bytes of file names there.")
        logger.info("%s", note)
        self.summary.notes.append(note)

    def _check_present(self, source: Path, target: Path) -> str:
        digest = hash_file(source)
        if target.is_file() and not target.is_symlink() and hash_file(target) == digest:
            self.summary.already_present += 1
            return digest
        raise _ExportError(f"{target} exists already with other content, and it is "
                           "never overwritten. To export this version, move that file out "
                           "of the destination, or export to a new folder")

    def _add_final_notes(self) -> None:
        """Add the notes on the files copied instead of linked and on the files that an
        earlier export left in the destination, once the run has seen every file.
        """
        notes = [] if self._links is None else self._links.notes()
        # A variant that this export took for a kept file with the same content is
        # that file's copy.
        self.summary.left_in_destination = [
            path for names, name, path in self._left_behind if fold_name(name) not in names.claimed
        ]
        if self.summary.left_in_destination:
            notes.append(self._left_behind_note(self.summary.left_in_destination))
        for note in notes:
            logger.info("%s", note)
            self.summary.notes.append(note)

    def _left_behind_note(self, paths: list[str]) -> str:
        count = len(paths)
        if count > _SHOWN_PATHS:
            named = f"{', '.join(paths[:_SHOWN_PATHS])} and {count - _SHOWN_PATHS} more"
        elif count > 1:
            named = f"{', '.join(paths[:-1])} and {paths[-1]}"
        else:
            named = paths[0]
        single = count == 1
        are, subject, pronoun = ("is", "It", "it") if single else ("are", "They", "them")
        return (f"{_files(count)} that {are} rejected or in quarantine now, and so "
                f"{_were(count)} not exported, {are} still in {self.destination} from an "
                f"earlier export, with the same content: {named}. {subject} {_were(count)} "
                "left there, because nothing is ever deleted; remove "
                f"{pronoun} by hand if the cleaned set should not have {pronoun}. The JSON "
                f"manifest lists {'it' if single else 'all of them'} in \"left_in_destination\" "
                "of its summary.")

    def _write_manifests(self) -> None:
        """Write the CSV manifest, then the JSON one, each whole or not at all.

        Raises ExportError naming the manifest that could not be written, and the
        CSV manifest if it was written before the JSON one failed.
        """
        try:
            csv_path, json_path = free_manifest_paths(self.destination)
            with _new_text_file(csv_path) as stream:
                writer = csv.DictWriter(stream, MANIFEST_COLUMNS)
                writer.writeheader()
                writer.writerows(self._rows)
            self.summary.manifest_csv = csv_path
            with _new_text_file(json_path) as stream:
                json.dump(self._json_manifest(), stream, indent=2, ensure_ascii=False)
                stream.write("\n")
            self.summary.manifest_json = json_path
        except OSError as error:
            reason = describe_os_error(error)
            written = self.summary.manifest_csv
            if written is None:
                raise ExportError(f"writing the manifests to {self.destination} failed: "
                                  f"{reason}.") from error
            raise ExportError(f"writing the JSON manifest to {self.destination} failed: "
                              f"{reason}. Only {written.name} was written.") from error

    def _json_manifest(self) -> dict[str, object]:
        return {
            "format": "retina-curator-export-manifest",
            "version": 1,
            "created": utc_now(),
            "folder": str(self.store.folder),
            "destination": str(self.destination),
            "model": {"name": self.model_name, "fingerprint": self.model_fingerprint},
            "threshold": self.threshold,
            "complete": not self.summary.cancelled,
            "summary": {key: value for key, value in asdict(self.summary).items()
                        if isinstance(value, int | list)},
            "files": [json_row(row) for row in self._rows],
        }


@contextlib.contextmanager
def _new_text_file(path: Path) -> Iterator[TextIO]:
    """Create the UTF-8 text file `path`, which must not exist, and remove it again
    if writing it fails, so that no manifest is left cut short.

    File names that are not valid UTF-8 are written with backslash escapes.
    """
    stream = path.open("x", newline="", encoding="utf-8", errors="backslashreplace")
    try:
        with stream:
            yield stream
    except BaseException:
        path.unlink(missing_ok=True)
        raise


class ExportError(Exception):
    """An error that stops a whole export. The message is the reason, lower-case."""


class _ExportError(Exception):
    """A problem with one file; the message is the reason shown to the user."""


def destination_problem(folder: Path, destination: Path, merge: bool) -> str:
    """Return why the kept files of `folder` cannot be exported to `destination`, or "".

    The destination can be neither inside the folder nor contain it, and must be
    an empty folder or a new one unless `merge` is set.
    """
    folder = folder.resolve()
    position = overlap(folder, destination)
    if position:
        relation = "is inside" if position == "inside" else "contains"
        return (f"the destination {destination} {relation} the reviewed folder {folder}. "
                "Choose a folder outside it.")
    # os.path, unlike Path.exists, returns False for a name too long to look up,
    # which folder_problem then names.
    if os.path.exists(destination) and not os.path.isdir(destination):
        return f"{destination} is a file, not a folder. Choose a folder."
    if os.path.isdir(destination) and any(destination.iterdir()) and not merge:
        return (f"{destination} is not empty. Choose an empty folder, or merge into it "
                "(existing files are never overwritten).")
    problem = folder_problem(destination)
    return f"{problem}. Choose another destination." if problem else ""


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


def _files(count: int) -> str:
    return "1 file" if count == 1 else f"{count} files"


def _were(count: int) -> str:
    return "was" if count == 1 else "were"


def _copy_new(source: Path, target: Path, expected_size: int) -> str:
    """Copy `source` to the new file `target` with its times and mode, and return the SHA-256.

    The target is created exclusively, synced, and removed again on any failure.
    """
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as reader, target.open("xb") as writer:
        try:
            while chunk := reader.read(_CHUNK_BYTES):
                digest.update(chunk)
                writer.write(chunk)
                size += len(chunk)
            writer.flush()
            if size != expected_size:
                raise _ExportError("it changed while it was copied. Score the folder again")
            shutil.copystat(source, target)
            os.fsync(writer.fileno())
        except BaseException:
            # Closing flushes the buffer again, which fails again on a full disk. The
            # file is closed all the same, and the part written is removed.
            with contextlib.suppress(OSError):
                writer.close()
            target.unlink(missing_ok=True)
            raise
    return digest.hexdigest()


def export_cleaned_set(store: ReviewStore, destination: Path, model_fingerprint: str,
                       threshold: float, *, model_name: str = "", merge: bool = False,
                       link: bool = False,
                       signal_thresholds: Mapping[str, float] | None = None) -> ExportSummary:
    """Run a whole CleanedSetExport without progress and return its summary."""
    export = CleanedSetExport(store, destination, model_fingerprint, threshold,
                              model_name=model_name, merge=merge, link=link,
                              signal_thresholds=signal_thresholds)
    for _ in export.run():
        pass
    return export.summary
