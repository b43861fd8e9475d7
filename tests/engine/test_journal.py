"""Tests of the move journal's record of batches stopped before they reached every file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from review_files import backdate, inventory_by_path, write_retina_pngs

from engine.journal import (
    BatchState,
    StopKind,
    StoppedBatch,
    batches,
    mark_stop_reported,
    unreported_stops,
)
from engine.moves import move_batch
from engine.review import ReviewStore
from engine.undo import undo_last_batch

REPO = Path(__file__).resolve().parents[2]
FILE_COUNT = 8


@pytest.fixture
def folder(tmp_path: Path, data_root: Path) -> Path:
    """Eight retina PNGs, four of them in a subfolder."""
    root = tmp_path / "batch"
    write_retina_pngs(data_root, root, FILE_COUNT // 2, prefix="a")
    write_retina_pngs(data_root, root / "deep", FILE_COUNT // 2, prefix="b")
    backdate(root)
    return root


def every_file(folder: Path) -> list[str]:
    return sorted(inventory_by_path(folder))


def move_some(store: ReviewStore, quarantine: Path, count: int) -> None:
    """Start a batch of every file and stop it after `count` files, as the window's Stop does."""
    moves = move_batch(store, every_file(store.folder), quarantine)
    for _ in range(count):
        next(moves)
    moves.close()


def undo_some(store: ReviewStore, count: int) -> None:
    """Start undoing the last batch and stop after `count` files."""
    returns = undo_last_batch(store)
    for _ in range(count):
        next(returns)
    returns.close()


def test_cancelled_move_recorded_as_stop(folder: Path, tmp_path: Path) -> None:
    quarantine = tmp_path / "quarantine"
    with ReviewStore.open(folder) as store:
        move_some(store, quarantine, 3)
        stops = unreported_stops(store)
    with ReviewStore.open(folder) as reopened:
        stopped_on_open = reopened.stopped
        recovered = reopened.recovered

    expected = StoppedBatch(id=1, kind=StopKind.MOVE, destination=quarantine,
                            total=FILE_COUNT, in_quarantine=3, returned=0, failed=0)
    assert stops == [expected]
    assert stopped_on_open == [expected]
    assert recovered == []


def test_stop_counts_failed_files(folder: Path, tmp_path: Path) -> None:
    paths = every_file(folder)
    (folder / paths[0]).unlink()
    with ReviewStore.open(folder) as store:
        moves = move_batch(store, paths, tmp_path / "quarantine")
        outcomes = [next(moves) for _ in range(3)]
        moves.close()
        [stop] = unreported_stops(store)

    assert [outcome.error is None for outcome in outcomes] == [False, True, True]
    assert (stop.total, stop.in_quarantine, stop.failed) == (FILE_COUNT, 2, 1)


def test_stop_reported_only_once(folder: Path, tmp_path: Path) -> None:
    with ReviewStore.open(folder) as store:
        move_some(store, tmp_path / "quarantine", 2)
        mark_stop_reported(store, 1)
        after_report = unreported_stops(store)
    with ReviewStore.open(folder) as reopened:
        stopped_on_open = reopened.stopped
        [batch] = batches(reopened)

    assert after_report == []
    assert stopped_on_open == []
    # The batch itself is untouched: still complete, and undo moves its files back.
    assert batch.state is BatchState.COMPLETE
    assert batch.in_quarantine == 2


def test_whole_move_is_no_stop(folder: Path, tmp_path: Path) -> None:
    with ReviewStore.open(folder) as store:
        moves = move_batch(store, every_file(folder), tmp_path / "quarantine")
        # Stopped after the last file, so no file was left out.
        for _ in range(FILE_COUNT):
            next(moves)
        moves.close()
        stops = unreported_stops(store)
        [batch] = batches(store)

    assert stops == []
    assert batch.in_quarantine == FILE_COUNT


# Moves two files as one batch, then dies before the batch is closed.
_KILL_AFTER_FIRST_MOVE = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from engine.moves import move_batch
    from engine.review import ReviewStore
    store = ReviewStore.open(Path(sys.argv[1]))
    # Held, so that the batch is not closed when the generator is collected.
    batch = move_batch(store, ["a0000.png", "a0001.png"], Path(sys.argv[2]))
    next(batch)
    os._exit(9)
""")


def test_killed_move_reported_by_recovery_only(folder: Path, tmp_path: Path) -> None:
    killed = subprocess.run(
        [sys.executable, "-c", _KILL_AFTER_FIRST_MOVE, str(folder), str(tmp_path / "quarantine")],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=120,
    )
    with ReviewStore.open(folder) as store:
        recovered = store.recovered
        stopped = store.stopped

    assert killed.returncode == 9, killed.stderr
    assert "was interrupted: 1 of 2 files are in quarantine" in recovered[0]
    assert stopped == []


def test_cancelled_undo_recorded_as_stop(folder: Path, tmp_path: Path) -> None:
    quarantine = tmp_path / "quarantine"
    with ReviewStore.open(folder) as store:
        list(move_batch(store, every_file(folder), quarantine))
        undo_some(store, 3)
    with ReviewStore.open(folder) as reopened:
        stopped = reopened.stopped

    assert stopped == [StoppedBatch(id=1, kind=StopKind.UNDO, destination=quarantine,
                                    total=FILE_COUNT, in_quarantine=FILE_COUNT - 3,
                                    returned=3, failed=0)]


def test_undo_replaces_move_stop(folder: Path, tmp_path: Path) -> None:
    with ReviewStore.open(folder) as store:
        move_some(store, tmp_path / "quarantine", 5)
        undo_some(store, 2)
        stops = unreported_stops(store)

    assert [(stop.kind, stop.in_quarantine, stop.returned) for stop in stops] == [
        (StopKind.UNDO, 3, 2)]


def test_finished_undo_clears_stop(folder: Path, tmp_path: Path) -> None:
    before = inventory_by_path(folder)
    with ReviewStore.open(folder) as store:
        move_some(store, tmp_path / "quarantine", 4)
        undo_some(store, 1)
        list(undo_last_batch(store))
        stops = unreported_stops(store)
        [batch] = batches(store)

    assert stops == []
    assert batch.state is BatchState.UNDONE
    assert inventory_by_path(folder) == before


def test_blocked_return_is_no_stop(folder: Path, tmp_path: Path) -> None:
    quarantine = tmp_path / "quarantine"
    with ReviewStore.open(folder) as store:
        list(move_batch(store, ["a0000.png", "a0001.png"], quarantine))
        (folder / "a0000.png").write_bytes(b"a new file took the name")
        outcomes = list(undo_last_batch(store))
        stops = unreported_stops(store)
        [batch] = batches(store)

    # The undo reached every file, and its own report names the one left behind.
    assert [outcome.error is None for outcome in outcomes] == [True, False]
    assert stops == []
    assert batch.state is BatchState.COMPLETE
    assert batch.in_quarantine == 1
