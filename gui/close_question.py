"""The question asked when the window closes during a file job, kept in step with the job."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QDialog, QWidget

from engine.plurals import counted
from gui.dialogs import ConfirmDialog
from gui.file_jobs import FileJobs, JobKind, JobReport

logger = logging.getLogger(__name__)

CLOSE_TITLE = "Close Retina Curator"


def _progress(done: int, total: int, kind: str = "") -> str:
    """Return "3 of 7 images" once the total is known (above 0), else "3 images".

    `kind` comes before the noun if given: "3 of 7 kept images".
    """
    noun = f"{kind} image" if kind else "image"
    return f"{done} of {counted(total, noun)}" if total else counted(done, noun)


def ask_to_close(parent: QWidget, jobs: FileJobs, folder: Path | None, undo_hint: str) -> bool:
    """Ask whether to stop the running move, undo or export of `folder` so that the
    window can close, and return True to close.

    Returns True at once when no such job runs. While the question is open, its
    count of files follows the job. A job that ends meanwhile closes the question:
    the window then closes as asked, unless the job ended with something to read
    (see JobReport.ended_cleanly), whose report the window stays open to show.
    The job itself is left running: the caller stops it after the current file.
    """
    report = jobs.running_report
    if report is None:
        return True
    logger.info("asking whether to stop %s to close the window", report.kind.value.lower())
    return _CloseQuestion(parent, jobs, report, folder, undo_hint).ask()


class _CloseQuestion(QObject):
    """A ConfirmDialog whose text follows a running job and that closes when it ends."""

    def __init__(self, parent: QWidget, jobs: FileJobs, report: JobReport,
                 folder: Path | None, undo_hint: str) -> None:
        super().__init__(parent)
        self._jobs = jobs
        self._report = report
        self._folder = "the reviewed folder" if folder is None else str(folder)
        self._undo_hint = undo_hint
        self._dialog = ConfirmDialog(CLOSE_TITLE, self._text(), parent,
                                     yes_text="Stop and Close", cancel_text="Keep Working")

    def ask(self) -> bool:
        """Show the question until the user answers or the job ends, and return True
        to close the window.
        """
        self._jobs.progressed.connect(self._on_jobs_progressed)
        self._jobs.job_ended.connect(self._on_jobs_job_ended)
        try:
            return self._dialog.exec() == QDialog.DialogCode.Accepted
        finally:
            self._jobs.progressed.disconnect(self._on_jobs_progressed)
            self._jobs.job_ended.disconnect(self._on_jobs_job_ended)
            self._dialog.deleteLater()
            self.deleteLater()

    @Slot(str, int, int)
    def _on_jobs_progressed(self, _verb: str, _done: int, _total: int) -> None:
        # FileJobs adds the files done to the report before it signals progress.
        self._dialog.set_text(self._text())

    @Slot(object)
    def _on_jobs_job_ended(self, report: JobReport) -> None:
        if report.ended_cleanly():
            logger.info("%s ended while the window asked to close it, so the window closes",
                        report.kind.value)
            self._dialog.accept()
        else:
            logger.info("%s ended while the window asked to close it, so the window stays "
                        "open to show its report", report.kind.value)
            self._dialog.reject()

    def _text(self) -> str:
        report, folder, undo_hint = self._report, self._folder, self._undo_hint
        done = len(report.done)
        if report.kind is JobKind.MOVE:
            return (f"Rejected images are being moved out of\n{folder}\ninto\n"
                    f"{report.destination}\n{_progress(done, report.total)} moved so far.\n\n"
                    "Closing stops the move after the current file. The images moved by then "
                    f"stay in the quarantine folder, and {undo_hint} moves them back "
                    "once you open the folder again. The others stay in the folder.")
        if report.kind is JobKind.UNDO:
            return (f"Images are being moved back from the quarantine folder into\n{folder}\n"
                    f"{_progress(done, report.total)} moved back so far.\n\n"
                    "Closing stops the undo after the current file. The images not moved back "
                    f"by then stay in the quarantine folder, and {undo_hint} moves them "
                    "back once you open the folder again.")
        return (f"The kept images of\n{folder}\nare being exported to\n{report.destination}\n"
                f"{_progress(done, report.total, 'kept')} exported so far.\n\n"
                "Closing stops the export after the current file, so the destination holds "
                "only part of the kept images and manifest.json marks the export as "
                "incomplete. To add the rest, export again to the same folder with the merge "
                "option.")
