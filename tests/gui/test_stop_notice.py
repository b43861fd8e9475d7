"""Tests of the report text, shown on opening a folder, on how far a stopped move or undo got."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.journal import StopKind, StoppedBatch
from gui.stop_notice import describe_stop

FOLDER = Path("/data/batch7")
QUARANTINE = Path("/data/batch7_rejected")
UNDO_HINT = "Edit › Undo Move (Ctrl+Z)"


def stopped(kind: StopKind, total: int, in_quarantine: int, returned: int = 0,
            failed: int = 0) -> StoppedBatch:
    return StoppedBatch(1, kind, QUARANTINE, total, in_quarantine, returned, failed)


@pytest.mark.parametrize(("stop", "expected"), [
    # Stopped after the first file, as closing the window during the move leaves it.
    (stopped(StopKind.MOVE, 40, 1),
     "Moving rejects out of /data/batch7 was stopped before it reached every image. "
     "1 image was moved to /data/batch7_rejected, and the other 39 stay in the folder. "
     "Edit › Undo Move (Ctrl+Z) moves it back. File › Move Rejects Out… moves the others "
     "out as well."),
    # Some files could not be moved before the stop.
    (stopped(StopKind.MOVE, 40, 5, failed=2),
     "Moving rejects out of /data/batch7 was stopped before it reached every image. "
     "5 images were moved to /data/batch7_rejected, and the other 35 stay in the folder, "
     "2 of them because they could not be moved. Edit › Undo Move (Ctrl+Z) moves the 5 "
     "images back. File › Move Rejects Out… moves the others out as well."),
    # The first file could not be moved, and the stop came before the second.
    (stopped(StopKind.MOVE, 40, 0, failed=1),
     "Moving rejects out of /data/batch7 was stopped before it moved any image. All 40 "
     "images stay in the folder, 1 of them because it could not be moved. File › Move "
     "Rejects Out… moves them out."),
    (stopped(StopKind.UNDO, 40, 37, returned=3),
     "Undoing the move of rejects out of /data/batch7 was stopped before it reached every "
     "image. 3 images are back in the folder, and 37 are still in /data/batch7_rejected. "
     "Edit › Undo Move (Ctrl+Z) moves them back."),
    # One file left: singular words.
    (stopped(StopKind.UNDO, 2, 1, returned=1),
     "Undoing the move of rejects out of /data/batch7 was stopped before it reached every "
     "image. 1 image is back in the folder, and 1 is still in /data/batch7_rejected. "
     "Edit › Undo Move (Ctrl+Z) moves it back."),
    # The first file's original name was taken, and the stop came before the second.
    (stopped(StopKind.UNDO, 40, 40),
     "Undoing the move of rejects out of /data/batch7 was stopped before it moved any "
     "image back. 40 images are still in /data/batch7_rejected. Edit › Undo Move "
     "(Ctrl+Z) moves them back."),
])
def test_describe_stop_cases(stop: StoppedBatch, expected: str) -> None:
    assert describe_stop(stop, FOLDER, UNDO_HINT) == expected
