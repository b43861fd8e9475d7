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
import errno
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Generator, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePath
from typing import TextIO

from engine.decisions import Decision
from engine.manifest import (
    MANIFEST_COLUMNS,
    file_sha256,
    free_manifest_paths,
    json_row,
    review_row,
)
from engine.names import (
    MAX_SUFFIX,
    fold_name,
    folder_problem,
    make_folders,
    name_difference,
    name_max,
    numbered_names,
    overlap,
)
from engine.quarantine import describe_os_error
from engine.review import FileRecord, Location, ReviewStore, hash_file, read_identity
from engine.reviewdb import utc_now

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 20

# os.link errors after which the file is copied instead: EXDEV across file systems,
# EPERM or ENOTSUP where the file system has no hard links, EMLINK at the link limit.
_COPY_INSTEAD_ERRNOS = frozenset(
    {errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK}
)

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
    """

    destination: Path
    exported: int = 0
    linked: int = 0
    already_present: int = 0
    not_copied: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
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
    copies them elsewhere, with a note in the summary. `merge` allows a non-empty
    destination, in which an existing name is never overwritten: a byte-identical
    file there counts as already present, and any other file is an error for that
    file. A file whose name differs only in case or Unicode normalisation
    (compared with names.fold_name) from a name in the destination or exported
    before it gets the first free variant `name (1).ext`, `name (2).ext`, ...,
    with a note in the summary, so that no two files share a name on a file
    system that ignores case or normalisation. A variant too long for the
    destination's file system gets a shorter stem.
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
        self.records = store.records(model_fingerprint)
        self.summary = ExportSummary(self.destination)
        self._rows: list[dict[str, str]] = []
        self._names = _DestinationNames()
        self._check_scored()
        self._check_destination()

    @property
    def total(self) -> int:
        """The number of files `run()` yields, one per record of the review."""
        return len(self.records)

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
        handled = 0
        try:
            for record in self.records:
                yield self._export_one(record)
                handled += 1
        finally:
            self.summary.cancelled = handled < len(self.records)
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
        self._count(target, linked, error)
        row = review_row(record, self.threshold, self.model_fingerprint, sha256,
                         self.signal_thresholds)
        exported_as = "" if target is None else target.relative_to(self.destination).as_posix()
        row.update(exported=str(target is not None).lower(), exported_as=exported_as,
                   error=error or "")
        self._rows.append(row)
        return ExportedFile(record.relative_path, decision, target, linked, error)

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
        if self.link and self._try_link(source, target):
            return target, True, hash_file(target)
        return target, False, _copy_new(source, target, size)

    def _note_renamed(self, relative_path: str, target: Path, names: _FolderNames) -> None:
        """Add to the summary a note with the reason `relative_path` got another name."""
        exported_as = target.relative_to(self.destination).as_posix()
        requested = PurePath(relative_path).name
        folded = fold_name(requested)
        if folded in names.claimed:
            other, where = names.claimed[folded], "was exported before it"
        elif folded in names.existing_folded:
            other, where = names.existing_folded[folded], "was in the destination already"
        else:
            other, where = "", ""
        if other:
            difference = name_difference(requested, other)
            other_path = (target.parent / other).relative_to(self.destination).as_posix()
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
                           "never overwritten")

    def _try_link(self, source: Path, target: Path) -> bool:
        try:
            os.link(source, target)
        except OSError as error:
            if error.errno not in _COPY_INSTEAD_ERRNOS:
                raise
            note = (f"Hard links from {self.store.folder} to {self.destination} failed "
                    f"({error.strerror}), so files were copied instead.")
            if note not in self.summary.notes:
                logger.info("%s", note)
                self.summary.notes.append(note)
            if error.errno == errno.EXDEV:
                self.link = False
            return False
        return True

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


@dataclass
class _FolderNames:
    """Names in one destination folder: listed before the export, and taken by it.

    `existing_folded` and `claimed` map each name folded with names.fold_name to
    the name itself, so two files whose names differ only in case or Unicode
    normalisation never get one name, on any file system. `occupied` contains the
    folded names that were free when listed but could not be created.
    """

    existing: set[str]
    existing_folded: dict[str, str]
    claimed: dict[str, str] = field(default_factory=dict)
    occupied: set[str] = field(default_factory=set)

    def is_taken(self, name: str) -> bool:
        folded = fold_name(name)
        return (folded in self.claimed or folded in self.existing_folded
                or folded in self.occupied)


@dataclass
class _DestinationNames:
    """The _FolderNames of each destination folder, listed once per export."""

    by_folder: dict[Path, _FolderNames] = field(default_factory=dict)

    def names_in(self, folder: Path) -> _FolderNames:
        # NOTE: folders are distinguished by their exact names, so on a case-insensitive
        # file system "Sub/a.png" and "sub/a.png" meet in one folder, where the
        # second fails as a name that exists with other content.
        if folder not in self.by_folder:
            names = set(os.listdir(folder))
            self.by_folder[folder] = _FolderNames(
                names, {fold_name(name): name for name in sorted(names)})
        return self.by_folder[folder]


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
