"""Move Rejects Out, Undo and Export for the open folder: confirm, run in a worker, report."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDialog, QMainWindow

from engine.decisions import Decision
from engine.export import CleanedSetExport
from engine.journal import Batch
from engine.moves import unmovable_problem
from engine.plurals import counted
from engine.quarantine import default_quarantine_dir
from engine.records import Location
from engine.reviewdb import ReviewStoreError
from gui.actions import WindowActions
from gui.close_question import ask_to_close
from gui.dialogs import ReportDialog, confirm
from gui.export_dialog import ExportDialog, ExportOptions
from gui.file_jobs import FileJobs, JobKind, JobReport
from gui.file_reports import FileReports, describe_stopped_scan, window_quarantine_problem
from gui.folder_review import StoppedScan
from gui.gallery_model import GalleryModel
from gui.review_session import ReviewSession
from gui.settings import WindowSettings

logger = logging.getLogger(__name__)



class FileCommands(QObject):
    """The window's file commands on the open review, with their dialogs.

    Signals:
        move_finished(int, int): a move ended with this many files moved and failed.
        undo_finished(int, int): an undo ended with this many files moved back and failed.
        export_finished(object): an export ended with this engine.export_results.ExportSummary.
        rescan_requested(): the open folder must be scored again, because files came
            back that the gallery has no items for, or the user chose to score the
            files that a stopped scan did not reach.
        undo_available(str): the text of the undo command, "" when nothing can be undone.
        folder_missing(object): a command found that the open folder (a Path) is
            no longer a folder, and did nothing.
    """

    move_finished = Signal(int, int)
    undo_finished = Signal(int, int)
    export_finished = Signal(object)
    rescan_requested = Signal()
    undo_available = Signal(str)
    folder_missing = Signal(object)

    def __init__(self, window: QMainWindow, gallery_model: GalleryModel, jobs: FileJobs,
                 settings: WindowSettings,
                 stopped_scan: Callable[[], StoppedScan | None] = lambda: None) -> None:
        """`stopped_scan` returns the last scan of the open folder if it stopped before
        it reached every file (FolderReview.stopped_scan), else None.
        """
        super().__init__(window)
        self._window = window
        self._gallery_model = gallery_model
        self._jobs = jobs
        self._settings = settings
        self._stopped_scan = stopped_scan
        self._session: ReviewSession | None = None
        self._undo_batch: Batch | None = None
        # The options last accepted in the export dialog for the open folder, also
        # when the export was rejected, so the dialog opens with them again.
        self._export_options: ExportOptions | None = None
        self._reports = FileReports(window, settings)
        jobs.job_ended.connect(self._on_jobs_job_ended)

    def connect_actions(self, actions: WindowActions) -> None:
        """Run Move Rejects Out, Export and Undo of the window here."""
        actions.move_rejects.triggered.connect(self.move_rejects_out)
        actions.export.triggered.connect(self.ask_and_export)
        actions.undo.triggered.connect(self.undo_last_move)
        native = QKeySequence.SequenceFormat.NativeText
        self._reports.set_undo_shortcut(actions.undo.shortcut().toString(native))
        self._reports.set_reload_shortcut(actions.reload_folder.shortcut().toString(native))

    def set_session(self, session: ReviewSession | None) -> None:
        previous = self._session
        if session is None or previous is None or session.folder != previous.folder:
            self._export_options = None
        self._session = session
        self.refresh_undo()

    @property
    def undo_hint(self) -> str:
        """The menu path and shortcut of Undo Move, as reports name it."""
        return self._reports.undo_hint

    @property
    def last_report(self) -> ReportDialog | None:
        """The report dialog shown last, or None before the first."""
        return self._reports.last_report

    @property
    def undo_batch(self) -> Batch | None:
        """The batch that undo would move back, as of the last refresh."""
        return self._undo_batch

    def refresh_undo(self) -> None:
        """Read the newest undoable batch from the journal and announce the undo text."""
        batch = None if self._session is None else self._session.undoable_batch()
        self._undo_batch = batch
        text = "" if batch is None else f"Undo Move of {counted(batch.in_quarantine, 'image')}"
        self.undo_available.emit(text)

    def _usable_session(self) -> ReviewSession | None:
        """Return the open review, or None while a job runs or once its folder is gone."""
        session = self._session
        if session is None or self._jobs.is_running():
            return None
        if not session.folder.is_dir():
            self.folder_missing.emit(session.folder)
            return None
        return session

    # Move rejects out

    def move_rejects_out(self) -> bool:
        """Ask for confirmation, then move every file with the final decision reject.

        Returns True if the move started.
        """
        session = self._usable_session()
        if session is None:
            return False
        paths = self._gallery_model.rejected_paths()
        if not paths:
            self._window.statusBar().showMessage("No images to reject.", 5000)
            return False
        try:
            destination = default_quarantine_dir(session.folder)
        except ValueError as error:
            self._reports.show_report("Moving rejects out failed", str(error), [])
            return False
        problem = window_quarantine_problem(session.folder, destination)
        if not problem:
            unmovable = unmovable_problem(session.folder, paths)
            problem = f"Moving files failed: {unmovable}" if unmovable else ""
        if problem:
            self._reports.show_report("Moving rejects out failed", problem, [])
            return False
        if not self._confirm_move(session.folder, destination, len(paths)):
            return False
        self._flush_decisions(session)
        self._jobs.start_move(session.store, paths, destination)
        return True

    def _confirm_move(self, folder: Path, destination: Path, count: int) -> bool:
        reasons = self._gallery_model.rejection_reasons()
        # Moving only what was scored is safe, but files left unscored may be rejects too.
        stopped_scan = self._stopped_scan()
        unscored = "" if stopped_scan is None else (
            f"\n\n{describe_stopped_scan(stopped_scan)} They are not moved, even those that "
            f"would be rejected. {self._reports.reload_hint} scores them.")
        return confirm(
            self._window, "Move Rejects Out",
            f"Move {counted(count, 'image')} out of\n{folder}\ninto\n{destination}?\n\n"
            f"{reasons.flagged} flagged by the model, {reasons.not_scored} not scored, "
            f"{reasons.curator} rejected by you.\n"
            "Subfolders are kept, no file is overwritten or deleted, and "
            f"{self._reports.undo_hint} moves {'it' if count == 1 else 'them'} back.{unscored}",
        )

    # Undo

    def undo_last_move(self) -> bool:
        """Move the files of the newest undoable batch back. Returns True if the undo started."""
        self.refresh_undo()
        if self._undo_batch is None:
            return False
        session = self._usable_session()
        if session is None:
            return False
        self._jobs.start_undo(session.store)
        return True

    # Export

    @Slot()
    def ask_and_export(self) -> None:
        """Ask for the export options, confirm, then export the kept images."""
        self.export_cleaned_set()

    def export_cleaned_set(self, options: ExportOptions | None = None) -> bool:
        """Export the kept files with manifests, asking for `options` when None is given.

        A confirmation with the counts and the destination comes first. After a
        scan that stopped before it reached every file, nothing is exported: a
        question offers to score the rest first. Returns True if the export started.
        """
        session = self._usable_session()
        if session is None or not self._scan_covers_folder(session):
            return False
        self._flush_decisions(session)
        if options is None:
            options = self._ask_export_options(session)
            if options is None:
                return False
        try:
            export = CleanedSetExport(
                session.store, options.destination, session.model.fingerprint,
                self._gallery_model.threshold, model_name=session.model.name,
                merge=options.merge, link=options.link,
                signal_thresholds=session.model.signal_thresholds)
        except (ValueError, OSError, ReviewStoreError, sqlite3.Error) as error:
            self._reports.show_report("Exporting failed", str(error), [])
            return False
        if not self._confirm_export(export, options):
            return False
        self._jobs.start_export(export)
        return True

    def _scan_covers_folder(self, session: ReviewSession) -> bool:
        """Return True if the last scan reached every file of the folder. Else offer
        to score the rest, and return False.

        An export covers only the files in the review, and would leave out those
        that a cancelled scan did not reach, also those the model would keep.
        """
        stopped_scan = self._stopped_scan()
        if stopped_scan is None:
            return True
        logger.info("export of %s not started: scoring stopped after %d of %d files",
                    session.folder, stopped_scan.scored, stopped_scan.total)
        question = (
            f"{describe_stopped_scan(stopped_scan, session.folder)} An export now would "
            "leave them out: they would be neither exported nor listed in the manifests, "
            "even those that would be kept.\n\n"
            f"Score the Rest scores them, as {self._reports.reload_hint} does. Choose Export "
            "again once scoring has finished.")
        if confirm(self._window, "Export Cleaned Set", question, yes_text="Score the Rest"):
            self.rescan_requested.emit()
        return False

    def _ask_export_options(self, session: ReviewSession) -> ExportOptions | None:
        counts = self._gallery_model.counts()
        summary = (f"Kept, to be exported: {counted(counts.kept, 'image')} of {session.folder}. "
                   f"Rejected, left behind: {counted(counts.rejected, 'image')}. "
                   "manifest.csv and manifest.json record every file and decision.")
        dialog = ExportDialog(session.folder.parent, summary, self._window,
                              initial=self._initial_export_options())
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        self._export_options = dialog.options()
        return self._export_options

    def _initial_export_options(self) -> ExportOptions | None:
        """Return the options typed last for this folder, else the last export folder."""
        if self._export_options is not None:
            return self._export_options
        last_folder = self._settings.last_export_folder()
        return None if last_folder is None else ExportOptions(Path(last_folder))

    def _confirm_export(self, export: CleanedSetExport, options: ExportOptions) -> bool:
        in_folder = [record for record in export.records if record.location is Location.FOLDER]
        kept = sum(record.final_decision(export.threshold) is Decision.KEEP
                   for record in in_folder)
        method = "hard-link" if options.link else "copy"
        merge = " It is not empty: files are added, and none is overwritten." if (
            options.merge and options.destination.is_dir()
            and any(options.destination.iterdir())) else ""
        return confirm(
            self._window, "Export Cleaned Set",
            f"{method.capitalize()} the {counted(kept, 'kept image')} of the {len(in_folder)} "
            "in\n"
            f"{export.store.folder}\nto\n{export.destination}?{merge}\n\n"
            f"Rejected, not exported: {counted(len(in_folder) - kept, 'image')}. "
            f"The manifests list all {len(export.records)} files of the review with their "
            "decisions.",
        )

    # Closing the window

    def confirm_close(self) -> bool:
        """Ask whether to stop the running move, undo or export so that the window can close.

        Returns True when no such job runs, when the user chose to stop it, or when
        it ended cleanly while the question was open (see close_question.ask_to_close).
        The job itself is left running: closing the window cancels it after the
        current file.
        """
        folder = None if self._session is None else self._session.folder
        return ask_to_close(self._window, self._jobs, folder, self._reports.undo_hint)

    # Reports

    @Slot(object)
    def _on_jobs_job_ended(self, report: JobReport) -> None:
        folder = None if self._session is None else self._session.folder
        if report.kind is JobKind.MOVE:
            self._reports.report_move(report, folder)
            self.move_finished.emit(len(report.done), len(report.errors))
        elif report.kind is JobKind.UNDO:
            self._reports.report_undo(report, folder)
            # The last error of a failed job is the job's own, not a file's.
            file_errors = len(report.errors) - (1 if report.failed else 0)
            self.undo_finished.emit(len(report.done), file_errors)
            if report.unknown_returns:
                self.rescan_requested.emit()
        else:
            self._reports.report_export(report)
            self.export_finished.emit(report.export_summary)
        if report.batch_id is not None and self._session is not None:
            # The window has just reported how the job ended, so the next open of
            # the folder need not report a stop of it again.
            self._session.mark_stop_reported(report.batch_id)
        self.refresh_undo()

    def _flush_decisions(self, session: ReviewSession) -> None:
        try:
            session.flush_pending()
        except (ReviewStoreError, sqlite3.Error) as error:
            logger.error("Saving held-back decisions of %s failed: %s", session.folder, error)
