"""The report shown on opening a folder whose last move or undo stopped before it reached
every image, as when the window was closed during it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtWidgets import QWidget

from engine.journal import StopKind, StoppedBatch
from engine.plurals import by_count, counted
from gui.dialogs import ReportDialog, show_report
from gui.review_session import ReviewSession

logger = logging.getLogger(__name__)

STOPPED_MOVE_TITLE = "Move Stopped Part-Way"
STOPPED_UNDO_TITLE = "Undo Stopped Part-Way"
# The menu path of the window's Move Rejects Out command.
_MOVE_HINT = "File › Move Rejects Out…"


def show_stop_notice(parent: QWidget, session: ReviewSession,
                     undo_hint: str) -> ReportDialog | None:
    """Show the stops of the session's folder that no report has shown yet, and record
    them as shown. Returns the report, or None when there was nothing to show.

    `undo_hint` is the menu path and shortcut of Undo Move, such as
    "Edit › Undo Move (Ctrl+Z)".
    """
    stops = session.stopped
    if not stops:
        return None
    only_undos = all(stop.kind is StopKind.UNDO for stop in stops)
    title = STOPPED_UNDO_TITLE if only_undos else STOPPED_MOVE_TITLE
    summary = "\n\n".join(describe_stop(stop, session.folder, undo_hint) for stop in stops)
    logger.info("Reporting %d stopped moves or undos of %s", len(stops), session.folder)
    dialog = show_report(parent, title, summary, [])
    for stop in stops:
        session.mark_stop_reported(stop.id)
    return dialog


def describe_stop(stop: StoppedBatch, folder: Path, undo_hint: str) -> str:
    """Return how far the stopped move or undo got, where the images are, and what
    moves them back.
    """
    if stop.kind is StopKind.UNDO:
        return _describe_stopped_undo(stop, folder, undo_hint)
    moved, stayed = stop.in_quarantine, stop.total - stop.in_quarantine
    failed = (f", {stop.failed} of them because {'it' if stop.failed == 1 else 'they'} "
              "could not be moved" if stop.failed else "")
    if not moved:
        return (f"Moving rejects out of {folder} was stopped before it moved any image. All "
                f"{counted(stop.total, 'image')} stay in the folder{failed}. {_MOVE_HINT} moves "
                "them out.")
    moved_ones = "it" if moved == 1 else f"the {moved} images"
    return (f"Moving rejects out of {folder} was stopped before it reached every image. "
            f"{counted(moved, 'image')} {by_count(moved, 'was', 'were')} moved to "
            f"{stop.destination}, and the other {stayed} stay in the folder{failed}. "
            f"{undo_hint} moves {moved_ones} back. {_MOVE_HINT} moves the others out as well.")


def _describe_stopped_undo(stop: StoppedBatch, folder: Path, undo_hint: str) -> str:
    back, still_out = stop.returned, stop.in_quarantine
    them, are_still = by_count(still_out, "it", "them"), by_count(still_out, "is", "are")
    if not back:
        return (f"Undoing the move of rejects out of {folder} was stopped before it moved "
                f"any image back. {counted(still_out, 'image')} {are_still} still in "
                f"{stop.destination}. {undo_hint} moves {them} back.")
    return (f"Undoing the move of rejects out of {folder} was stopped before it reached "
            f"every image. {counted(back, 'image')} {by_count(back, 'is', 'are')} back in the "
            f"folder, and {still_out} {are_still} still in {stop.destination}. {undo_hint} "
            f"moves {them} back.")



