"""Reports of the file commands: why a move cannot start, and how a move, undo or export ended."""

from __future__ import annotations

import shlex
from pathlib import Path

from PySide6.QtWidgets import QMainWindow

from engine.export_results import ExportSummary
from engine.invocation import program_name
from engine.moves import quarantine_problem
from engine.names import OVERLAP_RELATIONS, find_folder_problem, overlap
from engine.plurals import by_count, counted
from gui.dialogs import ReportDialog
from gui.file_jobs import JobReport
from gui.folder_review import StoppedScan
from gui.settings import WindowSettings


def _images_were(count: int) -> str:
    """Return "1 image was" or "3 images were"."""
    return f"{counted(count, 'image')} {by_count(count, 'was', 'were')}"


class FileReports:
    """The status bar messages and report dialogs that tell how a file command ended,
    or why it could not start.

    A new report dialog replaces the previous one, so at most one is open: `last_report`.
    """

    def __init__(self, window: QMainWindow, settings: WindowSettings) -> None:
        self._window = window
        self._settings = settings
        self.last_report: ReportDialog | None = None
        # The menu path and shortcut of Undo Move for the reports, and the shortest
        # of them for the status bar.
        self.undo_hint = "Edit › Undo Move"
        self.undo_key = self.undo_hint
        # The menu path and shortcut of Reload Folder, which scores what a scan left out.
        self.reload_hint = "File › Reload Folder"

    def set_undo_shortcut(self, shortcut: str) -> None:
        """Name Undo Move's `shortcut` in the reports, as in "Edit › Undo Move (Ctrl+Z)".

        An empty `shortcut` changes nothing.
        """
        if shortcut:
            self.undo_hint = f"Edit › Undo Move ({shortcut})"
            self.undo_key = shortcut

    def set_reload_shortcut(self, shortcut: str) -> None:
        """Name Reload Folder's `shortcut`, as in "File › Reload Folder (F5)".

        An empty `shortcut` changes nothing.
        """
        if shortcut:
            self.reload_hint = f"File › Reload Folder ({shortcut})"

    def show_report(self, title: str, summary: str, lines: list[str]) -> None:
        """Show a report without blocking, replacing the previous one."""
        if self.last_report is not None:
            self.last_report.close()
            self.last_report.deleteLater()
        self.last_report = ReportDialog(title, summary, lines, self._window)
        self.last_report.open()

    def report_move(self, report: JobReport, reviewed_folder: Path | None) -> None:
        """Report how a move of files out of `reviewed_folder` ended."""
        if report.locked_out:
            self._report_locked_out("Move Rejects Out", "No file was moved", reviewed_folder)
            return
        # A cancel after the last file leaves none behind, which the usual report covers.
        if report.cancelled and len(report.done) + len(report.errors) < report.total:
            self._report_cancelled_move(report, reviewed_folder)
            return
        moved = counted(len(report.done), "image")
        self._window.statusBar().showMessage(f"Moved {moved} to {report.destination}.", 10_000)
        if report.errors:
            self.show_report(
                "Move Rejects Out",
                # A file removed since the scan cannot be moved either, and is no
                # longer in the folder: each line of the list gives the reason.
                f"{counted(len(report.errors), 'image')} could not be moved; the list gives "
                f"each reason. {_images_were(len(report.done))} moved to {report.destination}.",
                report.errors)

    def _report_cancelled_move(self, report: JobReport, reviewed_folder: Path | None) -> None:
        """Report how many files a cancelled move moved, where the rest are, and how to undo."""
        moved = len(report.done)
        stayed = report.total - moved
        folder = "the reviewed folder" if reviewed_folder is None else str(reviewed_folder)
        if moved:
            # Short, so that the status bar beside the counts shows all of it.
            status = (f"Move cancelled: {moved} of {report.total} moved, {stayed} stay. "
                      f"{self.undo_key} moves {'it' if moved == 1 else 'them'} back.")
            summary = (f"The move was cancelled after {_images_were(moved)} moved to "
                       f"{report.destination}. The other {counted(stayed, 'image')} stay in "
                       f"{folder}")
        else:
            status = f"Move cancelled: no image was moved, all {report.total} stay."
            summary = (f"The move was cancelled before any image was moved. All "
                       f"{counted(stayed, 'image')} stay in {folder}")
        if report.errors:
            summary += (f": {len(report.errors)} could not be moved, as the list shows, and "
                        "the move was cancelled before the others.")
        else:
            summary += ", because the move was cancelled before them."
        if moved:
            summary += f" {self.undo_hint} moves the {counted(moved, 'image')} back."
        self._window.statusBar().showMessage(status, 30_000)
        self.show_report("Move Rejects Out", summary, report.errors)

    def report_undo(self, report: JobReport, reviewed_folder: Path | None) -> None:
        """Report how an undo of a move out of `reviewed_folder` ended."""
        if report.locked_out:
            self._report_locked_out("Undo Move", "No file was moved back", reviewed_folder)
            return
        back = counted(len(report.done), "image")
        self._window.statusBar().showMessage(f"Moved {back} back.", 10_000)
        if report.failed:
            *errors, failure = report.errors
            self.show_report(
                "Undo Move",
                f"{failure} {_images_were(len(report.done))} moved back before it stopped."
                if report.done else failure, errors)
        elif report.errors:
            self.show_report(
                "Undo Move",
                f"{counted(len(report.errors), 'image')} could not be moved back from the "
                f"quarantine folder; the list gives each reason. "
                f"{_images_were(len(report.done))} moved back.", report.errors)

    def _report_locked_out(self, title: str, outcome: str,
                           reviewed_folder: Path | None) -> None:
        """Report a move or undo that did not start because another process owns the lock."""
        folder = "this folder" if reviewed_folder is None else str(reviewed_folder)
        self._window.statusBar().showMessage(
            f"{outcome}: another program is moving files in this folder.", 10_000)
        self.show_report(
            title,
            f"{outcome}, because another program (the command line or another Retina "
            f"Curator window) is moving files in {folder}. Try again when it has finished.",
            [])

    def report_export(self, report: JobReport) -> None:
        """Report how an export ended, and remember its destination if it finished."""
        summary = report.export_summary
        if report.failed or summary is None:
            self._report_failed_export(report)
            return
        if not summary.cancelled:
            self._settings.set_last_export_folder(summary.destination)
        self.show_report("Export Cleaned Set", describe_export(summary),
                         [*summary.notes, *summary.errors])

    def _report_failed_export(self, report: JobReport) -> None:
        """Report an export that stopped on an error of its own, such as a destination
        that cannot be created, with the title of an export rejected before it starts.
        """
        # The last error of a failed job is the job's own, and the others are the files'.
        *file_errors, failure = report.errors or ["Exporting failed."]
        summary = report.export_summary
        if summary is None:
            self.show_report("Exporting failed", failure, file_errors)
            return
        self.show_report("Exporting failed", describe_failed_export(summary, failure),
                         [*summary.notes, *summary.errors])


def window_quarantine_problem(folder: Path, destination: Path) -> str:
    """Return why Move Rejects Out cannot move files of `folder` to `destination`, or "".

    The window always moves to the default quarantine folder, so unlike the
    engine's message the advice fixes that folder or points to the command line,
    which takes another folder with --to.
    """
    problem = quarantine_problem(folder, destination)
    if not problem:
        return ""
    # main.py runs both the window and the command line, and an installed window has
    # retina-curator-cli beside it.
    command = f"{program_name()} move-rejects {shlex.quote(str(folder))} --to DEST"
    other_folder = (f"Move Rejects Out always moves to {destination}. To move the rejects "
                    f"to another folder, run: {command}")
    position = overlap(folder, destination)
    if position:
        return (f"Moving files failed: the quarantine folder {destination} "
                f"{OVERLAP_RELATIONS[position]} the reviewed folder {folder}, once links are "
                f"followed. {other_folder}")
    found = find_folder_problem(destination)
    if found is None:
        # The folder changed since quarantine_problem looked at it.
        return f"Moving files failed: {problem}"
    remedy = found.remedy[:1].upper() + found.remedy[1:]
    return (f"Moving files failed: {found.reason}. {remedy}, then move the rejects out "
            f"again. {other_folder}")


def describe_stopped_scan(stop: StoppedScan, folder: Path | None = None) -> str:
    """Return a sentence on how many files of `folder` a stopped scan did not score.

    Without `folder`, the sentence names none, for a text that names it already.
    """
    subject = "Scoring stopped" if folder is None else f"Scoring of\n{folder}\nstopped"
    unscored = stop.unscored
    if unscored is None:
        return f"{subject} before the folder was listed, so its files were not scored."
    has = "has" if unscored == 1 else "have"
    return (f"{subject} after {stop.scored} of {stop.total} files, so the other {unscored} "
            f"{has} not been scored yet.")


def describe_export(summary: ExportSummary) -> str:
    """Return a paragraph with the counts and manifest paths of a finished or cancelled export.

    Files that a merge found in the destination with the same content count as
    there already, not as exported, because nothing was copied for them.
    """
    state = "was cancelled" if summary.cancelled else "finished"
    linked = f", {summary.linked} of them hard-linked" if summary.linked else ""
    present = (f" {_images_were(summary.already_present)} there already with the same "
               "content." if summary.already_present else "")
    not_reviewed = len(summary.not_reviewed)
    unscored = (f" {_images_were(not_reviewed)} not in the review, because no scan has "
                "scored them, so they were not exported and manifest.json marks the export "
                "as incomplete." if not_reviewed else "")
    return (f"The export to {summary.destination} {state}: {counted(summary.added, 'image')} "
            f"exported{linked}.{present} Not copied, as rejected or not in the folder: "
            f"{counted(summary.not_copied, 'image')}. Failed: {summary.failed}.{unscored}\n\n"
            f"Manifests: {_manifests(summary)}")


def describe_failed_export(summary: ExportSummary, failure: str) -> str:
    """Return a paragraph that opens with `failure`, the error that stopped an export,
    and counts the images exported before it.
    """
    if not failure.endswith("."):
        failure += "."
    if summary.added:
        done = (f"{_images_were(summary.added)} exported to {summary.destination} before "
                "it stopped.")
    else:
        done = "No image was exported."
    return f"{failure} {done}\n\nManifests: {_manifests(summary)}"


def _manifests(summary: ExportSummary) -> str:
    written = [str(path) for path in (summary.manifest_csv, summary.manifest_json)
               if path is not None]
    return ", ".join(written) or "not written"
