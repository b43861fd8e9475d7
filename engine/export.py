"""Export of the cleaned set: kept files copied or hard-linked, with a CSV and JSON manifest.

Files whose final decision is keep and that are in the folder are copied to the
destination under their relative paths. Rejected files, and files moved to
quarantine, are not copied but are listed in the manifest too, with their
decision, so the manifest records every decision of the review. The export covers
the files of the last scan of the folder, so score it first (score_with_cache):
image files of the folder that are not in the review mark the export incomplete.
"""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
from collections.abc import Generator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.decisions import Decision
from engine.export_notes import copied_without_manifest, destination_full_error, not_reviewed_note
from engine.export_results import ExportedFile, ExportSummary
from engine.interrupts import stops_held
from engine.listing import describe_skipped_folders, list_relative_images
from engine.manifest import (
    MANIFEST_COLUMNS,
    file_sha256,
    free_manifest_paths,
    json_row,
    new_text_file,
    review_row,
)
from engine.names import OVERLAP_RELATIONS, composed_first, folder_problem, overlap
from engine.placement import PlacedFile, Placement, PlacementError
from engine.quarantine import describe_os_error
from engine.records import FileRecord, Location
from engine.review import ReviewStore
from engine.reviewdb import utc_now

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _ListedFile:
    """One file's row of the manifest with its outcome, which the summary counts.

    `placed` is the kept file in the destination, or None. `skipped_full`: the file
    was not tried, because an earlier copy found the destination's disk full.
    """

    row: dict[str, str]
    result: ExportedFile
    placed: PlacedFile | None
    skipped_full: bool = False


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
    signals that flagged each file in the manifest. The subfolders that the last
    scan through `store` could not list get a note. The constructor raises
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
        # One entry per record handled, in the order of the records, added in one
        # step. The summary is counted from these when the run ends, so that a stop
        # at any point leaves it in agreement with the manifests.
        self._listed: list[_ListedFile] = []
        # Set by the first copy that fails with ENOSPC or EDQUOT, after which no file is tried.
        self._disk_full = False
        self._placement = Placement(
            store.folder, self.destination, {record.relative_path for record in self.records},
            self.summary, link=link)
        self._check_scored()
        self._check_destination()
        self._note_skipped_folders()

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

        Stop iterating to cancel between files. The summary is counted and the
        manifests are written when the run ends or is cancelled; a cancelled
        run's JSON manifest has "complete": false and lists only the files
        handled. So has the manifest of a run that found image files in the
        folder that are not in the review, which it lists in
        `summary.not_reviewed`. A KeyboardInterrupt can also stop the run inside
        a file: a copy cut short is removed, and a whole copy or link is listed
        as exported. Once a copy fails with ENOSPC or
        EDQUOT, the later kept files are not tried but listed in
        `summary.skipped_full`, with one error for all of them. Raises ExportError if the
        folder cannot be listed, the destination folder cannot be created or the
        manifests cannot be written there.
        """
        self._find_files_not_reviewed()
        try:
            self.destination.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ExportError(f"creating {self.destination} failed: "
                              f"{describe_os_error(error)}.") from error
        try:
            for record in self.records:
                yield self._export_one(record)
        finally:
            # A stop now would leave files that no manifest lists.
            with stops_held():
                self._finish()
                logger.info("Exported %d files of %s to %s: %d there already, %d not "
                            "copied, %d failed", self.summary.added, self.store.folder,
                            self.destination, self.summary.already_present,
                            self.summary.not_copied, self.summary.failed)

    def _finish(self) -> None:
        """Count the listed files, add the final notes and write the manifests."""
        self._list_stopped_file()
        self._count_listed()
        # One row per file handled, also for the last one when the run is
        # stopped at its yield.
        self.summary.cancelled = len(self._listed) < len(self.records)
        if self.summary.skipped_full:
            self.summary.errors.append(
                destination_full_error(self.summary.skipped_full, self.destination))
        self._placement.add_final_notes(
            listed.placed for listed in self._listed if listed.placed is not None)
        self._write_manifests()

    def _find_files_not_reviewed(self) -> None:
        """List the folder's image files that the review lacks, with a note.

        A window can export after a scan that was cancelled part-way, and the
        files it did not reach are in no record. Listing a folder of 20 000 empty
        files took 25–30 ms on 2 CPU cores with a warm cache, little beside
        copying them.
        """
        try:
            listed = list_relative_images(self.store.folder, warn_skipped=False)
        except OSError as error:
            raise ExportError(f"listing {self.store.folder} failed: "
                              f"{describe_os_error(error)}.") from error
        reviewed = {record.relative_path for record in self.records}
        self.summary.not_reviewed = [path for path in listed if path not in reviewed]
        if self.summary.not_reviewed:
            note = not_reviewed_note(self.summary.not_reviewed, self.store.folder)
            logger.warning("%s", note)
            self.summary.notes.append(note)

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

    def _note_skipped_folders(self) -> None:
        skipped = list(self.store.skipped_folders)
        if not skipped:
            return
        self.summary.skipped_folders = skipped
        consequence = "were not exported and are not in the manifest"
        self.summary.notes.append(
            f"{describe_skipped_folders(skipped, consequence, self.store.folder)} Once that "
            f"is fixed, export again, merging into {self.destination}.")

    def _check_destination(self) -> None:
        problem = destination_problem(self.store.folder, self.destination, self.merge)
        if problem:
            raise ValueError(f"Exporting failed: {problem}")

    def _export_one(self, record: FileRecord) -> ExportedFile:
        decision = record.final_decision(self.threshold)
        kept = record.location is Location.FOLDER and decision is Decision.KEEP
        if kept and self._disk_full:
            # Once the disk is full, a kept file is not tried but listed as not exported.
            error = f"{record.relative_path} was not exported, because {self.destination} is full."
            listed = self._listing(record, decision, sha256=file_sha256(self.store, record),
                                   error=error, skipped_full=True)
        elif kept:
            listed = self._place(record, decision)
        else:
            sha256 = file_sha256(self.store, record)
            if self.merge and sha256 is not None:
                self._placement.find_left_behind(record, sha256)
            listed = self._listing(record, decision, sha256=sha256)
        self._listed.append(listed)
        return listed.result

    def _place(self, record: FileRecord, decision: Decision | None) -> _ListedFile:
        """Copy or link a kept file, or find it in the destination, and return its listing."""
        try:
            placed = self._placement.place(record)
        except PlacementError as problem:
            error = f"Exporting {record.relative_path} failed: {problem}."
        except OSError as problem:
            error = f"Exporting {record.relative_path} failed: {describe_os_error(problem)}."
            self._disk_full = problem.errno in (errno.ENOSPC, errno.EDQUOT)
        else:
            return self._listing(record, decision, placed=placed)
        # The caller shows the summary's errors to the user.
        logger.debug("%s", error)
        return self._listing(record, decision, error=error)

    def _listing(self, record: FileRecord, decision: Decision | None, *,
                 placed: PlacedFile | None = None, sha256: str | None = None,
                 error: str | None = None, skipped_full: bool = False) -> _ListedFile:
        """Return the row of `record` in the manifest with its outcome.

        `sha256` is that of a file not placed in the destination, as file_sha256 returns it.
        """
        if placed is not None:
            sha256 = placed.sha256
        row = review_row(record, self.threshold, self.model_fingerprint, sha256,
                         self.signal_thresholds)
        exported_as = "" if placed is None else self._relative(placed.path)
        row.update(exported=str(placed is not None).lower(), exported_as=exported_as,
                   error=error or "")
        target = None if placed is None else placed.path
        linked = placed is not None and placed.linked
        result = ExportedFile(record.relative_path, decision, target, linked, error)
        return _ListedFile(row, result, placed, skipped_full)

    def _list_stopped_file(self) -> None:
        """List the kept file that a stop left whole in the destination without its row.

        A stop (KeyboardInterrupt) can come after a copy or link is whole and before
        _export_one has listed it. The records are handled in order, so the record
        it was for is the first one that is not listed.
        """
        if len(self._listed) == len(self.records):
            return
        record = self.records[len(self._listed)]
        placed = self._placement.stopped_file(record)
        if placed is not None:
            self._listed.append(self._listing(record, Decision.KEEP, placed=placed))

    def _count_listed(self) -> None:
        """Count the listed files in the summary, with their errors and notes."""
        summary = self.summary
        for listed in self._listed:
            placed, error = listed.placed, listed.result.error
            if listed.skipped_full:
                summary.failed += 1
                summary.skipped_full.append(listed.result.relative_path)
            elif error is not None:
                summary.failed += 1
                summary.errors.append(error)
            elif placed is None:
                summary.not_copied += 1
            else:
                summary.exported += 1
                summary.linked += int(placed.linked)
                summary.already_present += int(placed.present)
            if placed is not None and placed.note:
                logger.info("%s", placed.note)
                summary.notes.append(placed.note)

    def _relative(self, path: Path) -> str:
        """Return `path` relative to the destination, with forward slashes."""
        return path.relative_to(self.destination).as_posix()

    def _write_manifests(self) -> None:
        """Write the CSV manifest, then the JSON one, each whole or not at all.

        Raises ExportError naming the manifest that could not be written, and the
        CSV manifest if it was written before the JSON one failed.
        """
        try:
            csv_path, json_path = free_manifest_paths(self.destination)
            with new_text_file(csv_path) as stream:
                writer = csv.DictWriter(stream, MANIFEST_COLUMNS)
                writer.writeheader()
                writer.writerows(listed.row for listed in self._listed)
            self.summary.manifest_csv = csv_path
            with new_text_file(json_path) as stream:
                json.dump(self._json_manifest(), stream, indent=2, ensure_ascii=False)
                stream.write("\n")
            self.summary.manifest_json = json_path
        except OSError as error:
            reason = describe_os_error(error)
            written = self.summary.manifest_csv
            if written is None:
                added = [listed.row["exported_as"] for listed in self._listed
                         if listed.placed is not None and not listed.placed.present]
                raise ExportError(f"writing the manifests to {self.destination} failed: "
                                  f"{reason}.{copied_without_manifest(added)}") from error
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
            "complete": self.summary.complete,
            "summary": {key: value for key, value in asdict(self.summary).items()
                        if isinstance(value, int | list)},
            "files": [json_row(listed.row) for listed in self._listed],
        }


class ExportError(Exception):
    """An error that stops a whole export. The message is the reason, lower-case."""


def destination_problem(folder: Path, destination: Path, merge: bool) -> str:
    """Return why the kept files of `folder` cannot be exported to `destination`, or "".

    The destination can be neither inside the folder nor contain it, and must be
    an empty folder or a new one unless `merge` is set.
    """
    folder = folder.resolve()
    position = overlap(folder, destination)
    if position:
        return (f"the destination {destination} {OVERLAP_RELATIONS[position]} the reviewed "
                f"folder {folder}. Choose a folder outside it.")
    # os.path, unlike Path.exists, returns False for a name too long to look up,
    # which folder_problem then names.
    if os.path.exists(destination) and not os.path.isdir(destination):
        return f"{destination} is a file, not a folder. Choose a folder."
    # Writability comes before the contents, so an unwritable folder is never
    # offered for a merge.
    problem = folder_problem(destination)
    if problem:
        return f"{problem}. Choose another destination."
    if os.path.isdir(destination) and any(destination.iterdir()) and not merge:
        return (f"{destination} is not empty. Choose an empty folder, or merge into it "
                "(existing files are never overwritten).")
    return ""


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
