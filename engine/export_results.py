"""Results of an export: one per file of the review, and the summary of the whole run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.decisions import Decision
from engine.listing import SkippedFolder


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
    file is rejected or in quarantine now. They are copies an earlier export made,
    and they stay, because nothing is ever deleted. `skipped_folders` lists the subfolders
    that the scan before the export could not list, so their images are neither
    exported nor in the manifest.
    `not_reviewed` lists, relative to the reviewed folder, its image files that are
    not in the review, such as those a cancelled scan did not reach. They are
    neither exported nor rows of the manifest, so the export is not `complete`.
    `skipped_full` lists the kept files that were not tried because an earlier copy
    found the destination's disk full. They count as failed, with one error for all.
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
    skipped_folders: list[SkippedFolder] = field(default_factory=list)
    not_reviewed: list[str] = field(default_factory=list)
    skipped_full: list[str] = field(default_factory=list)
    manifest_csv: Path | None = None
    manifest_json: Path | None = None
    cancelled: bool = False

    @property
    def added(self) -> int:
        """The number of files this export copied or linked into the destination."""
        return self.exported - self.already_present

    @property
    def complete(self) -> bool:
        """Whether the export handled every image file of the folder: it ran to its
        end, the review had every file that the folder held when it started, and
        no subfolder was left unread.
        """
        return not self.cancelled and not self.not_reviewed and not self.skipped_folders
