"""Tests of journaled moves into quarantine, undo, and recovery after a killed process."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fault_files import exfat
from review_files import (
    backdate,
    copy_blood_jpgs,
    inventory,
    inventory_by_path,
    write_retina_pngs,
)

import engine.moves
import engine.undo
from engine.decisions import Decision
from engine.journal import BatchState, batches
from engine.modelfile import ReferenceModel
from engine.moves import move_batch
from engine.records import Location
from engine.review import ReviewStore
from engine.reviewdb import DB_FILE_NAME, DB_FOLDER_NAME, ReviewDatabase, ReviewStoreError
from engine.scorecache import score_with_cache
from engine.undo import UndoError, undo_batch, undo_last_batch

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path: Path, data_root: Path) -> Path:
    """Twelve retina PNGs in two folders, six blood-cell JPEGs and an empty file."""
    root = tmp_path / "batch"
    write_retina_pngs(data_root, root / "retina", 6, prefix="a")
    write_retina_pngs(data_root, root / "retina" / "deep", 6, prefix="b")
    copy_blood_jpgs(data_root, root / "blood", 6)
    (root / "empty.png").write_bytes(b"")
    backdate(root)
    return root


@pytest.fixture
def store(folder: Path, default_model: ReferenceModel) -> Iterator[ReviewStore]:
    """The folder's review, scored with the default model."""
    with ReviewStore.open(folder) as opened:
        for _ in score_with_cache(opened, default_model):
            pass
        yield opened


@pytest.fixture
def other_device() -> Iterator[Path]:
    """A folder on another file system than the temporary folder, under /dev/shm."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == Path(tempfile.gettempdir()).stat().st_dev:
        pytest.skip("needs /dev/shm on another file system than the temporary folder")
    folder = Path(tempfile.mkdtemp(dir=shm))
    yield folder
    shutil.rmtree(folder)


def rejects(store: ReviewStore, model: ReferenceModel) -> list[str]:
    return store.relative_paths_to_reject(model.fingerprint, model.threshold)


# --- moves and undo --------------------------------------------------------------


def test_move_rejects_keeps_every_byte(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    quarantine = tmp_path / "quarantine"
    before = inventory(folder)
    planned = rejects(store, default_model)

    outcomes = list(move_batch(store, planned, quarantine))

    records = {record.relative_path: record for record in store.records()}
    assert len(planned) >= 7
    assert "empty.png" in planned
    assert [outcome.error for outcome in outcomes] == [None] * len(planned)
    assert inventory(folder, quarantine) == before
    assert sorted(inventory_by_path(quarantine)) == planned
    for relative_path in planned:
        assert records[relative_path].location is Location.QUARANTINE
        assert records[relative_path].moved_to == quarantine / relative_path
    [batch] = batches(store)
    assert batch.state is BatchState.COMPLETE
    assert batch.in_quarantine == len(planned)


def test_move_skips_file_changed_since_scored(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel,
    data_root: Path,
) -> None:
    quarantine = tmp_path / "quarantine"
    planned = rejects(store, default_model)
    changed = next(path for path in planned if path.startswith("blood/"))
    # A retina photo now has the name of a blood cell that the review rejected.
    write_retina_pngs(data_root, tmp_path / "new", 1, prefix="c")
    [retina] = (tmp_path / "new").iterdir()
    shutil.copyfile(retina, folder / changed)
    content = (folder / changed).read_bytes()

    outcomes = {outcome.relative_path: outcome for outcome in move_batch(store, planned,
                                                                          quarantine)}

    assert outcomes[changed].destination is None
    assert outcomes[changed].error is not None
    assert "changed since it was scored" in outcomes[changed].error
    assert (folder / changed).read_bytes() == content
    assert not (quarantine / changed).exists()
    moved = [path for path, outcome in outcomes.items() if outcome.error is None]
    assert sorted(moved) == sorted(path for path in planned if path != changed)


def test_undo_restores_original_paths(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    before = inventory_by_path(folder)
    list(move_batch(store, rejects(store, default_model), tmp_path / "quarantine"))

    outcomes = list(undo_last_batch(store))

    assert outcomes
    assert [outcome.error for outcome in outcomes] == [None] * len(outcomes)
    assert inventory_by_path(folder) == before
    assert inventory_by_path(tmp_path / "quarantine") == {}
    assert all(record.location is Location.FOLDER for record in store.records())
    assert batches(store)[0].state is BatchState.UNDONE
    assert list(undo_last_batch(store)) == []


def test_undo_leaves_no_empty_folders(store: ReviewStore, folder: Path, tmp_path: Path) -> None:
    quarantine = tmp_path / "quarantine"
    moved = ["blood/" + path.name for path in sorted((folder / "blood").iterdir())]
    moved.append("retina/deep/" + sorted((folder / "retina" / "deep").iterdir())[0].name)
    list(move_batch(store, moved, quarantine))
    # A file another program put there keeps its folder.
    (quarantine / "blood" / "notes.txt").write_text("mine")

    list(undo_last_batch(store))

    remaining = sorted(path.relative_to(quarantine).as_posix()
                       for path in quarantine.rglob("*"))
    assert quarantine.is_dir()
    assert remaining == ["blood", "blood/notes.txt"]


def test_undo_after_restart(
    folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    before = inventory_by_path(folder)
    with ReviewStore.open(folder) as first:
        for _ in score_with_cache(first, default_model):
            pass
        list(move_batch(first, rejects(first, default_model), tmp_path / "quarantine"))

    with ReviewStore.open(folder) as second:
        outcomes = list(undo_last_batch(second))

    assert outcomes
    assert inventory_by_path(folder) == before


def test_undo_latest_batch_first(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    quarantine = tmp_path / "quarantine"
    first, second = ["retina/a0000.png", "retina/a0001.png"], ["retina/deep/b0000.png"]
    list(move_batch(store, first, quarantine))
    list(move_batch(store, second, quarantine))

    undone_second = [outcome.relative_path for outcome in undo_last_batch(store)]
    undone_first = sorted(outcome.relative_path for outcome in undo_last_batch(store))

    assert undone_second == second
    assert undone_first == first
    assert [batch.state for batch in batches(store)] == [BatchState.UNDONE] * 2


def test_undo_never_overwrites(
    store: ReviewStore, folder: Path, tmp_path: Path
) -> None:
    quarantine = tmp_path / "quarantine"
    moved = ["retina/a0000.png", "retina/a0001.png"]
    list(move_batch(store, moved, quarantine))
    (folder / "retina" / "a0000.png").write_bytes(b"a new file took the name")
    original = (quarantine / "retina" / "a0000.png").read_bytes()

    outcomes = {outcome.relative_path: outcome for outcome in undo_last_batch(store)}
    stuck_batch = batches(store)[0]
    (folder / "retina" / "a0000.png").rename(tmp_path / "newcomer.png")
    retried = list(undo_last_batch(store))

    error = outcomes["retina/a0000.png"].error
    assert error is not None and "exists now" in error
    assert outcomes["retina/a0001.png"].error is None
    assert stuck_batch.state is BatchState.COMPLETE
    assert stuck_batch.in_quarantine == 1
    assert (tmp_path / "newcomer.png").read_bytes() == b"a new file took the name"
    assert [outcome.error for outcome in retried] == [None]
    assert (folder / "retina" / "a0000.png").read_bytes() == original


def move_out_twice(store: ReviewStore, model: ReferenceModel, folder: Path, quarantine: Path,
                   name: str) -> None:
    """Move `name` out, put a copy of it back under its name and move that out too.

    The copy has the same bytes and a new mtime, and goes to "name (1)" in quarantine.
    It is scored before it moves, because a move skips a file that changed since.
    """
    list(move_batch(store, [name], quarantine))
    shutil.copy(quarantine / name, folder / name)
    for _ in score_with_cache(store, model):
        pass
    list(move_batch(store, [name], quarantine))


def test_quick_second_undo_keeps_returned_file(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    # The first undo returns a copy of the file to its name within the 2 s that
    # recovery allows for coarse clocks. The second undo finds the name taken and
    # must not take that file for an unfinished copy of its own.
    quarantine = tmp_path / "quarantine"
    name = "retina/a0001.png"
    move_out_twice(store, default_model, folder, quarantine, name)
    before = inventory(folder, quarantine)

    returned = list(undo_last_batch(store))
    blocked = list(undo_last_batch(store))

    assert returned[0].error is None
    assert blocked[0].error is not None
    assert "exists now" in blocked[0].error
    assert (folder / name).is_file()
    assert inventory(folder, quarantine) == before


_KILL_WHILE_NOTING_ERROR = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    import engine.undo
    from engine.review import ReviewStore
    engine.undo._note_entry_error = lambda *arguments: os._exit(9)
    store = ReviewStore.open(Path(sys.argv[1]))
    list(engine.undo.undo_last_batch(store))
""")


def test_kill_at_taken_name_removes_nothing(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    # The second undo is killed while it notes that the name is taken. Recovery
    # must not take that entry for a return cut short and remove the file there.
    quarantine = tmp_path / "quarantine"
    name = "retina/a0001.png"
    move_out_twice(store, default_model, folder, quarantine, name)
    list(undo_last_batch(store))
    store.close()
    before = inventory(folder, quarantine)

    killed = subprocess.run(
        [sys.executable, "-c", _KILL_WHILE_NOTING_ERROR, str(folder)],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=120,
    )
    with ReviewStore.open(folder) as reopened:
        recovered = reopened.recovered

    assert killed.returncode == 9, killed.stderr
    assert "was interrupted" in recovered[0]
    assert inventory(folder, quarantine) == before
    assert (folder / name).is_file()
    assert (quarantine / name).is_file()


def test_interrupt_at_taken_name_removes_nothing(
    store: ReviewStore, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    default_model: ReferenceModel,
) -> None:
    quarantine = tmp_path / "quarantine"
    name = "retina/a0001.png"
    move_out_twice(store, default_model, folder, quarantine, name)
    list(undo_last_batch(store))
    before = inventory(folder, quarantine)

    def interrupt(*arguments: object) -> None:
        raise KeyboardInterrupt

    # Ctrl+C while the undo notes that the name is taken.
    monkeypatch.setattr("engine.undo._note_entry_error", interrupt)
    with pytest.raises(KeyboardInterrupt):
        list(undo_last_batch(store))

    assert inventory(folder, quarantine) == before
    assert (folder / name).is_file()


def test_interrupt_after_recorded_move_keeps_file(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quarantine = tmp_path / "quarantine"
    before = inventory(folder)
    planned = rejects(store, default_model)
    recorded: list[str] = []
    record_move = engine.moves._record_move

    def record_then_interrupt(*arguments: Any) -> None:
        record_move(*arguments)
        recorded.append(arguments[3].relative_path)
        if len(recorded) == 3:
            # Ctrl+C after the journal has the move and before the batch counts it.
            raise KeyboardInterrupt

    monkeypatch.setattr("engine.moves._record_move", record_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        list(move_batch(store, planned, quarantine))
    monkeypatch.undo()
    third = store.record(recorded[2])
    returned = list(undo_last_batch(store))

    assert third is not None
    assert third.location is Location.QUARANTINE
    assert sorted(outcome.relative_path for outcome in returned) == sorted(recorded)
    assert all(outcome.error is None for outcome in returned)
    assert inventory(folder) == before


@pytest.mark.parametrize("departure", ["not connected", "unmounted"])
def test_undo_waits_for_missing_quarantine(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel,
    departure: str,
) -> None:
    quarantine = tmp_path / "quarantine"
    before = inventory(folder)
    moved = list(move_batch(store, rejects(store, default_model), quarantine))
    # The disk that contains the quarantine is gone. When it is unmounted, an
    # empty folder stays at the mount point.
    quarantine.rename(tmp_path / "disk")
    if departure == "unmounted":
        quarantine.mkdir()
    expected = "is not there" if departure == "not connected" else f"none of the {len(moved)} files"

    with pytest.raises(UndoError, match=expected):
        list(undo_last_batch(store))
    if departure == "unmounted":
        quarantine.rmdir()
    (tmp_path / "disk").rename(quarantine)
    returned = list(undo_last_batch(store))

    assert len(returned) == len(moved)
    assert all(outcome.error is None for outcome in returned)
    assert inventory(folder) == before


def test_undo_accepts_file_moved_back_by_hand(
    store: ReviewStore, folder: Path, tmp_path: Path
) -> None:
    quarantine = tmp_path / "quarantine"
    list(move_batch(store, ["retina/a0000.png"], quarantine))
    list(move_batch(store, ["retina/a0001.png", "retina/a0002.png"], quarantine))
    os.rename(quarantine / "retina" / "a0001.png", folder / "retina" / "a0001.png")

    newer = list(undo_last_batch(store))
    older = list(undo_last_batch(store))

    assert [outcome.error for outcome in newer] == [None, None]
    assert [outcome.relative_path for outcome in older] == ["retina/a0000.png"]
    assert [batch.state for batch in batches(store)] == [BatchState.UNDONE] * 2
    assert (folder / "retina" / "a0000.png").is_file()


def test_undo_reports_file_gone_from_quarantine(
    store: ReviewStore, folder: Path, tmp_path: Path
) -> None:
    quarantine = tmp_path / "quarantine"
    list(move_batch(store, ["retina/a0000.png"], quarantine))
    list(move_batch(store, ["retina/a0001.png"], quarantine))
    (quarantine / "retina" / "a0001.png").unlink()

    # With none of its files in quarantine, the batch looks like a disk not mounted.
    with pytest.raises(UndoError, match=r"the file that the move put in .* is not there"):
        list(undo_last_batch(store))
    [gone] = list(undo_last_batch(store, forget_missing=True))
    [older] = list(undo_last_batch(store))

    assert gone.error is not None
    assert "another program moved or deleted it" in gone.error
    assert older.relative_path == "retina/a0000.png"
    assert older.error is None
    assert batches(store)[0].in_quarantine == 0


def test_undo_keeps_briefly_missing_file(
    store: ReviewStore, folder: Path, tmp_path: Path
) -> None:
    quarantine = tmp_path / "quarantine"
    moved = ["retina/a0000.png", "retina/a0001.png", "retina/a0002.png"]
    list(move_batch(store, moved, quarantine))
    away = quarantine / "retina" / "a0001.png"
    away.rename(tmp_path / "elsewhere.png")

    first = {outcome.relative_path: outcome for outcome in undo_last_batch(store)}
    waiting = batches(store)[0]
    record = store.record("retina/a0001.png")
    (tmp_path / "elsewhere.png").rename(away)
    [second] = list(undo_last_batch(store))

    error = first["retina/a0001.png"].error
    assert error is not None
    assert f"nor at {away}, where the move put it. It stays in the batch." in error
    assert "Put it back there and undo again" in error
    assert f"undo {folder} --forget-missing to record it as gone" in error
    assert first["retina/a0000.png"].error is None
    assert first["retina/a0002.png"].error is None
    assert waiting.state is BatchState.COMPLETE
    assert waiting.in_quarantine == 1
    assert record is not None
    assert record.location is Location.QUARANTINE
    assert second.relative_path == "retina/a0001.png"
    assert second.error is None
    assert (folder / "retina" / "a0001.png").is_file()
    assert batches(store)[0].state is BatchState.UNDONE


def test_undo_forgets_one_missing_file(
    store: ReviewStore, folder: Path, tmp_path: Path
) -> None:
    quarantine = tmp_path / "quarantine"
    list(move_batch(store, ["retina/a0000.png"], quarantine))
    list(move_batch(store, ["retina/a0001.png", "retina/a0002.png"], quarantine))
    (quarantine / "retina" / "a0001.png").unlink()

    newer = {outcome.relative_path: outcome
             for outcome in undo_last_batch(store, forget_missing=True)}
    [older] = list(undo_last_batch(store))

    error = newer["retina/a0001.png"].error
    assert error is not None
    assert error.endswith("It is recorded as missing, and undo no longer looks for it.")
    assert newer["retina/a0002.png"].error is None
    assert older.relative_path == "retina/a0000.png"
    record = store.record("retina/a0001.png")
    assert record is not None
    assert record.location is Location.MISSING


def test_numbered_name_undone_to_original(
    store: ReviewStore, folder: Path, tmp_path: Path
) -> None:
    quarantine = tmp_path / "quarantine"
    (quarantine / "retina").mkdir(parents=True)
    (quarantine / "retina" / "a0002.png").write_bytes(b"rejected in an earlier review")
    content = (folder / "retina" / "a0002.png").read_bytes()

    [moved] = list(move_batch(store, ["retina/a0002.png"], quarantine))
    list(undo_last_batch(store))

    assert moved.destination == quarantine / "retina" / "a0002 (1).png"
    assert (folder / "retina" / "a0002.png").read_bytes() == content
    assert (quarantine / "retina" / "a0002.png").read_bytes() == b"rejected in an earlier review"


def test_shortened_name_undone_to_original(
    store: ReviewStore, folder: Path, tmp_path: Path
) -> None:
    # A name of 255 bytes, the NAME_MAX of the file systems the tests run on.
    name = "\u00e9" * 125 + "a.png"
    os.rename(folder / "retina" / "a0003.png", folder / "retina" / name)
    content = (folder / "retina" / name).read_bytes()
    quarantine = tmp_path / "quarantine"
    (quarantine / "retina").mkdir(parents=True)
    (quarantine / "retina" / name).write_bytes(b"rejected in an earlier review")

    [moved] = list(move_batch(store, [f"retina/{name}"], quarantine))
    journaled = store.database.query("SELECT moved_to FROM batch_files")
    list(undo_last_batch(store))

    assert moved.error is None
    assert moved.destination == quarantine / "retina" / ("\u00e9" * 123 + " (1).png")
    assert [Path(row["moved_to"]) for row in journaled] == [moved.destination]
    assert (folder / "retina" / name).read_bytes() == content
    assert not moved.destination.exists()
    assert (quarantine / "retina" / name).read_bytes() == b"rejected in an earlier review"


def test_cancelled_batch_skips_the_rest(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    before = inventory_by_path(folder)
    planned = rejects(store, default_model)
    outcomes = move_batch(store, planned, tmp_path / "quarantine")
    done = [next(outcomes) for _ in range(3)]
    outcomes.close()

    [batch] = batches(store)
    undone = list(undo_last_batch(store))

    assert batch.state is BatchState.COMPLETE
    assert batch.in_quarantine == 3
    assert sorted(outcome.relative_path for outcome in undone) == sorted(
        outcome.relative_path for outcome in done)
    assert inventory_by_path(folder) == before


def write_duplicates(folder: Path, data_root: Path, same_mtime: bool = False) -> Path:
    """Write a photo as "a.png" and again as its download copy "a (1).png"."""
    folder.mkdir(parents=True)
    write_retina_pngs(data_root, folder, 1, prefix="a")
    (folder / "a0000.png").rename(folder / "a.png")
    shutil.copy(folder / "a.png", folder / "a (1).png")
    os.utime(folder / "a.png", ns=(1_600_000_000_000_000_000,) * 2)
    copy_mtime = 1_600_000_000_000_000_000 if same_mtime else 1_700_000_000_000_000_000
    os.utime(folder / "a (1).png", ns=(copy_mtime, copy_mtime))
    return folder


def entry_states(store: ReviewStore) -> list[str]:
    rows = store.database.query("SELECT state FROM batch_files ORDER BY position")
    return [row["state"] for row in rows]


def test_cancel_keeps_moved_duplicate(tmp_path: Path, data_root: Path) -> None:
    # The copy in quarantine has the bytes of "a.png", which was never tried, and a
    # name that "a.png" may be numbered to, so it must not pass for its unfinished copy.
    folder = write_duplicates(tmp_path / "photos", data_root)
    quarantine = tmp_path / "rejected"
    before = inventory(folder)

    with ReviewStore.open(folder) as opened:
        outcomes = move_batch(opened, ["a (1).png", "a.png"], quarantine)
        next(outcomes)
        outcomes.close()
        states = entry_states(opened)

    assert inventory(folder, quarantine) == before
    assert (folder / "a.png").is_file()
    assert (quarantine / "a (1).png").is_file()
    assert states == ["moved", "skipped"]


_KILL_AFTER_FIRST_MOVE = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from engine.moves import move_batch
    from engine.review import ReviewStore
    store = ReviewStore.open(Path(sys.argv[1]))
    # Held, so that the batch is not closed when the generator is collected.
    batch = move_batch(store, ["a (1).png", "a.png"], Path(sys.argv[2]))
    next(batch)
    os._exit(9)
""")


@pytest.mark.parametrize("same_mtime", [False, True], ids=["other mtime", "same mtime"])
def test_recovery_keeps_moved_duplicate(
    tmp_path: Path, data_root: Path, same_mtime: bool
) -> None:
    folder = write_duplicates(tmp_path / "photos", data_root, same_mtime)
    quarantine = tmp_path / "rejected"
    before = inventory(folder)

    killed = subprocess.run(
        [sys.executable, "-c", _KILL_AFTER_FIRST_MOVE, str(folder), str(quarantine)],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=120,
    )
    with ReviewStore.open(folder) as opened:
        states = entry_states(opened)
        recovered = opened.recovered

    assert killed.returncode == 9, killed.stderr
    assert inventory(folder, quarantine) == before
    assert (folder / "a.png").is_file()
    assert (quarantine / "a (1).png").is_file()
    assert states == ["moved", "skipped"]
    assert "1 of 2 files are in quarantine" in recovered[0]


def test_destination_inside_folder_rejected(store: ReviewStore, folder: Path) -> None:
    with pytest.raises(ValueError, match="inside the reviewed folder"):
        move_batch(store, ["empty.png"], folder / "rejected")


def test_folder_itself_as_destination_rejected(store: ReviewStore, folder: Path) -> None:
    with pytest.raises(ValueError) as raised:
        move_batch(store, ["empty.png"], folder)

    assert f"the quarantine folder {folder} is the reviewed folder {folder}." in str(raised.value)
    assert (folder / "empty.png").is_file()


def test_destination_containing_folder_rejected(store: ReviewStore, folder: Path) -> None:
    with pytest.raises(ValueError, match="contains the reviewed folder") as raised:
        move_batch(store, ["empty.png"], folder.parent)

    assert f"such as {folder.parent / 'batch_rejected'}." in str(raised.value)
    assert (folder / "empty.png").is_file()


def test_undo_unknown_batch_rejected(store: ReviewStore) -> None:
    with pytest.raises(ValueError, match="no move batch 42"):
        undo_batch(store, 42)


def test_second_process_cannot_move(
    store: ReviewStore, folder: Path, tmp_path: Path
) -> None:
    # flock locks belong to an open file, so a second open conflicts like a second process.
    other = ReviewDatabase.open(folder)
    with other.batch_lock(), pytest.raises(ReviewStoreError, match="Another Retina Curator"):
        list(move_batch(store, ["empty.png"], tmp_path / "quarantine"))
    other.close()


def test_undo_reports_lock_with_nothing_undoable(store: ReviewStore, folder: Path) -> None:
    # Another process running the folder's first batch, with files in quarantine.
    other = ReviewDatabase.open(folder)
    with other.batch_lock(), pytest.raises(ReviewStoreError, match="Another Retina Curator"):
        list(undo_last_batch(store))
    other.close()


def test_running_batch_left_alone_while_locked(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    outcomes = move_batch(store, rejects(store, default_model), tmp_path / "quarantine")
    next(outcomes)

    with ReviewStore.open(folder) as second:
        running = batches(second)[0].state
        recovered = second.recovered
    outcomes.close()

    assert running is BatchState.RUNNING
    assert recovered == []
    assert batches(store)[0].state is BatchState.COMPLETE


def test_override_kept_after_move_and_undo(
    store: ReviewStore, tmp_path: Path, default_model: ReferenceModel
) -> None:
    store.set_override(["retina/a0003.png"], Decision.REJECT)
    list(move_batch(store, rejects(store, default_model), tmp_path / "quarantine"))
    list(undo_last_batch(store))

    record = store.record("retina/a0003.png", default_model.fingerprint)

    assert record is not None
    assert record.override is Decision.REJECT
    assert record.location is Location.FOLDER
    assert record.score is not None


@pytest.mark.parametrize("departure", ["moved out", "removed"])
def test_new_file_at_name_has_no_override(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel,
    departure: str,
) -> None:
    store.set_override(["retina/a0003.png"], Decision.REJECT)
    if departure == "moved out":
        list(move_batch(store, rejects(store, default_model), tmp_path / "quarantine"))
    else:
        # Removed by another program, so the scan marks it missing.
        os.rename(folder / "retina" / "a0003.png", tmp_path / "a0003.png")
        list(score_with_cache(store, default_model))
    # Another image arrives under the name of the one the curator rejected.
    shutil.copy(folder / "retina" / "a0004.png", folder / "retina" / "a0003.png")
    list(score_with_cache(store, default_model))

    record = store.record("retina/a0003.png", default_model.fingerprint)

    assert record is not None
    assert record.location is Location.FOLDER
    assert record.override is None
    assert record.override_time is None


def test_file_overwritten_in_place_loses_override(
    store: ReviewStore, folder: Path, default_model: ReferenceModel
) -> None:
    store.set_override(["retina/a0003.png"], Decision.REJECT)
    # Another program writes another image over the one the curator rejected.
    shutil.copy(folder / "retina" / "a0004.png", folder / "retina" / "a0003.png")
    list(score_with_cache(store, default_model))

    record = store.record("retina/a0003.png", default_model.fingerprint)

    assert record is not None
    assert record.override is None
    assert record.override_time is None
    assert "retina/a0003.png" not in store.relative_paths_to_reject(
        default_model.fingerprint, 1e9)


@pytest.mark.parametrize("departure", ["stays", "moved out", "removed"])
def test_same_content_with_new_times_keeps_override(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel,
    departure: str,
) -> None:
    decided = folder / "retina" / "a0003.png"
    content = decided.read_bytes()
    store.set_override(["retina/a0003.png"], Decision.REJECT)
    if departure == "moved out":
        list(move_batch(store, rejects(store, default_model), tmp_path / "quarantine"))
    elif departure == "removed":
        decided.unlink()
        list(score_with_cache(store, default_model))
    # The same bytes come back with a new modification time, as a copy without
    # its times would leave them.
    decided.write_bytes(content)
    os.utime(decided, (1_000_000_000, 1_000_000_000))
    list(score_with_cache(store, default_model))

    record = store.record("retina/a0003.png", default_model.fingerprint)

    assert record is not None
    assert record.location is Location.FOLDER
    assert record.override is Decision.REJECT


def test_missing_file_back_keeps_override(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    store.set_override(["retina/a0003.png"], Decision.REJECT)
    os.rename(folder / "retina" / "a0003.png", tmp_path / "a0003.png")
    list(score_with_cache(store, default_model))
    os.rename(tmp_path / "a0003.png", folder / "retina" / "a0003.png")
    list(score_with_cache(store, default_model))

    record = store.record("retina/a0003.png", default_model.fingerprint)

    assert record is not None
    assert record.override is Decision.REJECT


def test_file_moved_back_by_hand_keeps_override(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    quarantine = tmp_path / "quarantine"
    store.set_override(["retina/a0003.png"], Decision.REJECT)
    list(move_batch(store, rejects(store, default_model), quarantine))
    os.rename(quarantine / "retina" / "a0003.png", folder / "retina" / "a0003.png")
    list(score_with_cache(store, default_model))

    record = store.record("retina/a0003.png", default_model.fingerprint)

    assert record is not None
    assert record.location is Location.FOLDER
    assert record.override is Decision.REJECT


# --- recovery after SIGKILL ------------------------------------------------------

# Each program runs a real command in a child process and patches one function of
# the engine so that the child kills itself with SIGKILL at an exact point of the
# third move. The test hook lives only here, in the child's own code.
_KILL_PROGRAMS = {
    # Between the hard link and the unlink: the file has both names.
    "after link": ("engine.transfer", "_remove_source", "kill"),
    # After the move, before the journal records it.
    "before record": ("engine.moves", "_record_move", "kill"),
    # In the middle of a cross-device copy: a partial file at the destination.
    "mid copy": ("engine.transfer", "_copy_stream", "partial"),
    # After a verified cross-device copy, before the source is removed.
    "after copy": ("engine.transfer", "_remove_source", "kill"),
    # After an undo moved the file back, before the journal records it.
    "after return": ("engine.undo", "move_file", "after"),
}
_CROSS_DEVICE = {"mid copy", "after copy"}

_CHILD = textwrap.dedent("""
    import importlib, os, signal, sys
    module_name, function_name, mode, kill_at = sys.argv[1:5]
    module = importlib.import_module(module_name)
    original = getattr(module, function_name)
    calls = 0

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def patched(*args, **kwargs):
        global calls
        calls += 1
        if calls != int(kill_at):
            return original(*args, **kwargs)
        if mode == "partial":
            reader, writer = args
            writer.write(reader.read(1000))
            writer.flush()
        elif mode == "after":
            original(*args, **kwargs)
        die()

    setattr(module, function_name, patched)
    from engine.cli import main
    sys.exit(main(sys.argv[5:]))
""")


def run_killed(point: str, command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a command of the CLI in a child that kills itself at the third call at `point`."""
    module, function, mode = _KILL_PROGRAMS[point]
    return subprocess.run(
        [sys.executable, "-c", _CHILD, module, function, mode, "3", *command],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


# What recovery reports for the third file, which was in flight at the kill, and how
# many files of a move batch killed there are in quarantine afterwards.
_SETTLED = {
    "after link": ("was finished", 3),
    "before record": ("had been moved", 3),
    "mid copy": ("was rolled back", 2),
    "after copy": ("was finished", 3),
    "after return": ("had been moved back", None),
}


def check_crash_state(point: str, before: dict[str, str], *roots: Path) -> None:
    """Assert that the kill left the state it was meant to, and lost no file."""
    expected = Counter(before.values())
    found = inventory(*roots)
    extra = found - expected
    assert not expected - found
    if point in ("after link", "after copy"):
        # One file under two names: hard links of one inode, or a complete copy.
        assert sum(extra.values()) == 1
        assert set(extra) <= set(expected)
    elif point == "mid copy":
        # A partial copy whose bytes match no input file.
        assert sum(extra.values()) == 1
        assert not set(extra) & set(expected)
    else:
        assert not extra


def journal_states(folder: Path) -> list[str]:
    """The entry states of the first batch, read without opening (and recovering) the review."""
    # Closed at once: an open database keeps an exFAT test mount busy.
    with contextlib.closing(sqlite3.connect(folder / DB_FOLDER_NAME / DB_FILE_NAME)) as connection:
        rows = connection.execute(
            "SELECT state FROM batch_files WHERE batch_id = 1 ORDER BY position"
        ).fetchall()
    return [row[0] for row in rows]


@pytest.mark.parametrize("point", ["after link", "before record", "mid copy", "after copy"])
def test_killed_move_recovered(
    point: str, folder: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if point in _CROSS_DEVICE:
        quarantine = request.getfixturevalue("other_device") / "quarantine"
    else:
        quarantine = tmp_path / "quarantine"
    check_killed_move(point, folder, quarantine)


# exFAT has no hard links, so every move there is a copy, and exfat-fuse reports a
# file's ctime as its mtime, which the copy takes from its source.
@pytest.mark.parametrize("point", ["before record", "mid copy", "after copy"])
def test_killed_move_recovered_on_exfat(point: str, folder: Path, tmp_path: Path) -> None:
    with exfat(tmp_path / "exfat", tmp_path / "exfat.img") as mount:
        on_exfat = shutil.copytree(folder, mount / "batch")
        check_killed_move(point, on_exfat, mount / "quarantine")


def test_killed_move_of_shortened_name_recovered(folder: Path, tmp_path: Path) -> None:
    # Three files, the last with a 255-byte name whose place in quarantine is
    # taken, so the move gives it a numbered name with a shortened stem.
    small = tmp_path / "small"
    small.mkdir()
    long_name = "c" + "\u00e9" * 124 + "a.png"
    for name, source in zip(["a.png", "b.png", long_name], sorted(folder.glob("retina/*.png")),
                            strict=False):
        shutil.copy2(source, small / name)
    quarantine = tmp_path / "quarantine"
    quarantine.mkdir()
    (quarantine / long_name).write_bytes(b"rejected in an earlier review")
    before = inventory_by_path(small)

    killed = run_killed("after link", ["move-rejects", str(small), "--to", str(quarantine),
                                       "--threshold", "0"])
    with ReviewStore.open(small) as store:
        recovered = store.recovered
        undone = list(undo_last_batch(store))

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert recovered[-1].endswith(" (1).png was finished.")
    assert [outcome.error for outcome in undone] == [None] * 3
    assert inventory_by_path(small) == before
    assert sorted(os.listdir(quarantine)) == [long_name]


def check_killed_move(point: str, folder: Path, quarantine: Path) -> None:
    """Kill move-rejects of every file at `point`, then check recovery and undo."""
    before = inventory_by_path(folder)

    # A threshold of 0 rejects every readable file, so the batch has 19 files.
    killed = run_killed(point, ["move-rejects", str(folder), "--to", str(quarantine),
                                "--threshold", "0"])
    check_crash_state(point, before, folder, quarantine)
    states_at_kill = journal_states(folder)
    with ReviewStore.open(folder) as store:
        recovered = store.recovered
        [batch] = batches(store)
        records = {record.relative_path: record for record in store.records()}
        in_quarantine = inventory_by_path(quarantine)
        files_after = inventory(folder, quarantine)
        undone = list(undo_last_batch(store))

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert states_at_kill == ["moved", "moved"] + ["planned"] * 17
    message, moved = _SETTLED[point]
    assert f"was interrupted: {moved} of 19 files are in quarantine" in recovered[0]
    assert message in recovered[1]
    assert batch.state is BatchState.COMPLETE
    # Every input file exists exactly once, byte-identical.
    assert files_after == Counter(before.values())
    assert batch.in_quarantine == len(in_quarantine)
    for relative_path in in_quarantine:
        assert records[relative_path].location is Location.QUARANTINE
    assert [outcome.error for outcome in undone] == [None] * len(undone)
    assert inventory_by_path(folder) == before
    assert inventory_by_path(quarantine) == {}


@pytest.mark.parametrize("point", ["after copy", "before record"])
@pytest.mark.parametrize("older", ["other bytes", "same bytes"])
def test_killed_move_beside_older_files_on_exfat(
    older: str, point: str, folder: Path, tmp_path: Path
) -> None:
    # Every planned name in the quarantine is taken by an older file already, as
    # another folder's moves would leave it, so each move makes "name (1).ext".
    with exfat(tmp_path / "exfat", tmp_path / "exfat.img") as mount:
        on_exfat = shutil.copytree(folder, mount / "batch")
        quarantine = mount / "quarantine"
        before = inventory_by_path(on_exfat)
        for relative_path in before:
            (quarantine / relative_path).parent.mkdir(parents=True, exist_ok=True)
            if older == "same bytes":
                # With the mtime too, as `cp -p` or a move of a copy would keep it.
                shutil.copy2(on_exfat / relative_path, quarantine / relative_path)
            else:
                (quarantine / relative_path).write_bytes(b"older file " * 100)
        older_files = inventory_by_path(quarantine)

        killed = run_killed(point, ["move-rejects", str(on_exfat), "--to", str(quarantine),
                                    "--threshold", "0"])
        with ReviewStore.open(on_exfat) as store:
            recovered = store.recovered
            [third] = store.database.query("SELECT * FROM batch_files WHERE position = 2")
            record = store.record(third["relative_path"])
            undone = list(undo_last_batch(store))
        in_folder = inventory_by_path(on_exfat)
        in_quarantine = inventory_by_path(quarantine)

    planned = Path(third["relative_path"])
    copy = planned.with_name(f"{planned.stem} (1){planned.suffix}").as_posix()
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [outcome.error for outcome in undone] == [None] * len(undone)
    # The older files are never removed, changed or moved into the folder.
    assert {name: in_quarantine.get(name) for name in older_files} == older_files
    if older == "other bytes":
        assert "3 of 19 files are in quarantine" in recovered[0]
        assert _SETTLED[point][0] in recovered[1]
        assert third["state"] == "moved"
        assert third["moved_to"] == str(quarantine / copy)
        assert in_folder == before
        assert in_quarantine == older_files
        return
    # Two files have the bytes and mtime of the third one, so it is unknown which
    # one the move made, and neither is taken.
    assert "2 of 19 files are in quarantine" in recovered[0]
    assert "unknown which one" in recovered[1]
    assert copy in recovered[1]
    assert in_quarantine[copy] == before[third["relative_path"]]
    assert set(in_quarantine) == {*older_files, copy}
    if point == "after copy":
        assert third["state"] == "skipped"
        assert in_folder == before
    else:
        assert third["state"] == "failed"
        assert record is not None
        assert record.location is Location.MISSING
        assert in_folder == {name: digest for name, digest in before.items()
                             if name != third["relative_path"]}


@pytest.mark.parametrize("point", ["after link", "mid copy", "after copy"])
def test_killed_undo_recovered(
    point: str, folder: Path, tmp_path: Path, default_model: ReferenceModel,
    request: pytest.FixtureRequest,
) -> None:
    if point in _CROSS_DEVICE:
        quarantine = request.getfixturevalue("other_device") / "quarantine"
    else:
        quarantine = tmp_path / "quarantine"
    check_killed_undo(point, folder, quarantine, default_model)


@pytest.mark.parametrize("point", ["mid copy", "after copy", "after return"])
def test_killed_undo_recovered_on_exfat(
    point: str, folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    with exfat(tmp_path / "exfat", tmp_path / "exfat.img") as mount:
        on_exfat = shutil.copytree(folder, mount / "batch")
        check_killed_undo(point, on_exfat, mount / "quarantine", default_model)


def check_killed_undo(
    point: str, folder: Path, quarantine: Path, default_model: ReferenceModel
) -> None:
    """Move every file out, kill the undo at `point`, then check recovery and a second undo."""
    before = inventory_by_path(folder)
    with ReviewStore.open(folder) as store:
        store.set_threshold_choice(default_model.fingerprint, 0.0)
        for _ in score_with_cache(store, default_model):
            pass
        everything = store.relative_paths_to_reject(default_model.fingerprint, 0.0)
        list(move_batch(store, everything, quarantine))

    killed = run_killed(point, ["undo", str(folder)])
    check_crash_state(point, before, folder, quarantine)
    with ReviewStore.open(folder) as store:
        recovered = store.recovered
        files_after = inventory(folder, quarantine)
        undone = list(undo_last_batch(store))
        final_state = batches(store)[0].state

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert "undo of move batch 1 was interrupted" in recovered[0]
    assert _SETTLED[point][0] in recovered[1]
    if point != "after return":
        assert recovered[1].startswith("The undo of")
    assert files_after == Counter(before.values())
    assert [outcome.error for outcome in undone] == [None] * len(undone)
    assert final_state is BatchState.UNDONE
    assert inventory_by_path(folder) == before

