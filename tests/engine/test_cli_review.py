"""End-to-end tests of the review sub-commands: score, move-rejects, undo and export."""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fault_files import fill_disk, tmpfs
from review_files import (
    backdate,
    inventory,
    inventory_by_path,
    sha256_of,
    write_retina_pngs,
)

import engine.cli_moves
import engine.placement
from engine.cli import (
    EXIT_BAD_MODEL,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    SCORE_COLUMNS,
    main,
)
from engine.cli_folder import describe_stop
from engine.cli_moves import _partial_manifests
from engine.export_results import ExportSummary
from engine.invocation import program_name
from engine.journal import StopKind, StoppedBatch
from engine.listing import list_relative_images
from engine.modelfile import ReferenceModel
from engine.moves import move_batch
from engine.names import name_max
from engine.records import FileIdentity
from engine.resources import DEMO_DIR
from engine.review import ReviewStore
from engine.reviewdb import DB_FILE_NAME, DB_FOLDER_NAME
from engine.reviewplaces import fallback_database_path
from engine.scorecache import score_with_cache
from engine.undo import undo_last_batch

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of the bundled demo folder: retina photos mixed with blood-cell images."""
    folder = tmp_path / "demo"
    shutil.copytree(DEMO_DIR, folder)
    (folder / "empty.png").write_bytes(b"")
    backdate(folder)
    return folder


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return {row["path"]: row for row in csv.DictReader(stream)}


def test_score_writes_manifest_columns(
    demo: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    out = tmp_path / "scores.csv"

    code = main(["score", str(demo), "--csv", str(out)])

    rows = read_rows(out)
    with out.open(encoding="utf-8") as stream:
        header = stream.readline().strip().split(",")
    assert code == EXIT_OK
    assert header == list(SCORE_COLUMNS)
    assert header[:7] == ["path", "status", "detail", "score", "flagged", "threshold", "model"]
    assert {"sha256", "model_decision", "final_decision", "decision_source"} <= set(header)
    for path, row in rows.items():
        assert row["sha256"] == sha256_of(demo / path)
        assert row["model_fingerprint"] == default_model.fingerprint
        assert row["decision_source"] == "model"
    flagged = [row for row in rows.values() if row["flagged"] == "true"]
    assert flagged
    assert {row["final_decision"] for row in flagged} == {"reject"}
    assert rows["empty.png"]["final_decision"] == "reject"


def scored_at(folder: Path) -> dict[str, int]:
    """Map each file with a cached score to when its size and mtime were read, in ns."""
    connection = sqlite3.connect(folder / DB_FOLDER_NAME / DB_FILE_NAME)
    try:
        return dict(connection.execute("SELECT relative_path, checked_ns FROM scores"))
    finally:
        connection.close()


def without_time(row: dict[str, str]) -> dict[str, str]:
    return {column: value for column, value in row.items() if column != "time"}


def test_score_again_reads_cache(demo: Path, tmp_path: Path) -> None:
    retina = sorted(path.relative_to(demo).as_posix() for path in (demo / "retina").iterdir())
    replaced, source, touched, removed = retina[:4]
    main(["score", str(demo), "--csv", str(tmp_path / "first.csv")])
    first = read_rows(tmp_path / "first.csv")
    checked_first = scored_at(demo)
    # The replaced file gets another size and mtime, the touched file another mtime.
    shutil.copyfile(demo / source, demo / replaced)
    two_hours_ago = time.time() - 7200
    for path in (replaced, touched):
        os.utime(demo / path, (two_hours_ago, two_hours_ago))
    (demo / removed).unlink()

    code = main(["score", str(demo), "--csv", str(tmp_path / "second.csv")])

    second = read_rows(tmp_path / "second.csv")
    checked_second = scored_at(demo)
    rescored = {path for path in checked_second if checked_second[path] != checked_first[path]}
    assert code == EXIT_OK
    assert rescored == {replaced, touched}
    assert set(second) == set(first) - {removed}
    assert second[replaced]["sha256"] == first[source]["sha256"]
    assert second[replaced]["size"] == first[source]["size"]
    # A score computed in another batch can differ in the last digits.
    assert float(second[replaced]["score"]) == pytest.approx(float(first[source]["score"]))
    assert float(second[touched]["score"]) == pytest.approx(float(first[touched]["score"]))
    for path in set(second) - {replaced, touched}:
        assert without_time(second[path]) == without_time(first[path])


class ChangeDuringScan(logging.Handler):
    """Run `change` once, when the scan logs how many listed files are cached.

    engine.scorecache logs that count after it has read the size of every listed
    file and before it scores the files without a cached score, so the change
    comes mid-scan at the same point every time.
    """

    def __init__(self, change: Callable[[], None]) -> None:
        super().__init__(logging.INFO)
        self.change: Callable[[], None] | None = change

    def emit(self, record: logging.LogRecord) -> None:
        if self.change is not None and "files cached" in record.getMessage():
            change, self.change = self.change, None
            change()


@contextlib.contextmanager
def changed_during_scan(change: Callable[[], None]) -> Iterator[ChangeDuringScan]:
    """Run `change` during the next scan in the block, as ChangeDuringScan does."""
    scan_logger = logging.getLogger("engine.scorecache")
    handler = ChangeDuringScan(change)
    level = scan_logger.level
    scan_logger.addHandler(handler)
    scan_logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        scan_logger.removeHandler(handler)
        scan_logger.setLevel(level)


# The files of half_scored that remove_during_scan removes or renames.
REMOVED_DURING_SCAN = ["new0002.png", "old0001.png", "sub/s0000.png", "sub/s0001.png",
                       "sub/s0002.png"]


@pytest.fixture
def half_scored(tmp_path: Path, data_root: Path, default_model: ReferenceModel) -> Path:
    """Four scored retina PNGs, then four new ones and three new ones in sub/."""
    folder = tmp_path / "batch"
    write_retina_pngs(data_root, folder, 4, prefix="old")
    backdate(folder)
    with ReviewStore.open(folder) as store:
        list(score_with_cache(store, default_model))
    write_retina_pngs(data_root, folder, 4, prefix="new")
    write_retina_pngs(data_root, folder / "sub", 3, prefix="s")
    return folder


def remove_during_scan(folder: Path) -> Callable[[], None]:
    """Return the change that removes a scored and a new file of half_scored and
    renames its sub/ folder.
    """

    def change() -> None:
        (folder / "old0001.png").unlink()
        (folder / "new0002.png").unlink()
        (folder / "sub").rename(folder / "sub_renamed")

    return change


def test_score_lists_files_removed_mid_scan(half_scored: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"

    with changed_during_scan(remove_during_scan(half_scored)) as handler:
        code = main(["score", str(half_scored), "--csv", str(out)])

    rows = read_rows(out)
    assert handler.change is None, "the scan never logged its count of cached files"
    assert code == EXIT_OK
    # One row per file listed when the scan started, none for the renamed folder.
    assert sorted(rows) == sorted([*(f"old{index:04d}.png" for index in range(4)),
                                   *(f"new{index:04d}.png" for index in range(4)),
                                   *(f"sub/s{index:04d}.png" for index in range(3))])
    for path in REMOVED_DURING_SCAN:
        assert rows[path]["status"] == "missing", path
        assert rows[path]["detail"] == "the file was removed or renamed", path
        assert rows[path]["location"] == "missing", path
        assert rows[path]["score"] == rows[path]["flagged"] == "", path
        assert rows[path]["size"] == rows[path]["sha256"] == "", path
        # No decision on a file that is gone, so counting rejects leaves it out.
        assert rows[path]["model_decision"] == rows[path]["final_decision"] == "", path
        assert rows[path]["decision_source"] == "", path
    for path in set(rows) - set(REMOVED_DURING_SCAN):
        assert rows[path]["status"] == "ok", path
        assert rows[path]["location"] == "folder", path


def test_export_lists_files_removed_mid_scan(half_scored: Path, tmp_path: Path) -> None:
    destination = tmp_path / "cleaned"

    with changed_during_scan(remove_during_scan(half_scored)) as handler:
        code = main(["export", str(half_scored), "--to", str(destination)])

    rows = read_rows(destination / "manifest.csv")
    document = json.loads((destination / "manifest.json").read_text())
    assert handler.change is None, "the scan never logged its count of cached files"
    # The renamed folder's files arrived under new names after the scan listed the
    # folder, so the export is incomplete.
    assert code == EXIT_FAILED
    assert document["summary"]["not_reviewed"] == [
        "sub_renamed/s0000.png", "sub_renamed/s0001.png", "sub_renamed/s0002.png"]
    assert len(rows) == 11
    missing = sorted(path for path, row in rows.items() if row["status"] == "missing")
    # The same rows as in the score CSV: a removed file that was scored before is
    # missing too, not ok with its old score.
    assert missing == REMOVED_DURING_SCAN
    for path in REMOVED_DURING_SCAN:
        assert rows[path]["detail"] == "the file was removed or renamed", path
        assert rows[path]["location"] == "missing", path
        assert rows[path]["score"] == rows[path]["size"] == "", path
        assert rows[path]["exported"] == "false", path
    assert not (destination / "old0001.png").exists()


def test_export_of_files_added_after_scan_fails(
    half_scored: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    destination = tmp_path / "cleaned"
    scan = engine.cli_moves.scan

    def scan_then_add(*arguments: Any) -> Any:
        listing = scan(*arguments)
        # A file that arrives after the scan, before the export lists the folder.
        shutil.copy(half_scored / "old0000.png", half_scored / "late.png")
        return listing

    monkeypatch.setattr(engine.cli_moves, "scan", scan_then_add)

    code = main(["export", str(half_scored), "--to", str(destination)])

    document = json.loads((destination / "manifest.json").read_text())
    assert code == EXIT_FAILED
    assert document["complete"] is False
    assert document["summary"]["not_reviewed"] == ["late.png"]
    assert not (destination / "late.png").exists()
    assert ("1 file of the folder was not in the review, so the export is incomplete."
            in capsys.readouterr().err)


def test_move_rejects_then_undo(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = inventory_by_path(demo)
    quarantine = tmp_path / "demo_rejected"
    scores = tmp_path / "scores.csv"
    main(["score", str(demo), "--csv", str(scores)])
    expected = sorted(path for path, row in read_rows(scores).items()
                      if row["final_decision"] == "reject")

    moved_code = main(["move-rejects", str(demo)])
    moved_output = capsys.readouterr().out
    moved = inventory_by_path(quarantine)
    undo_code = main(["undo", str(demo)])
    undo_output, undo_errors = capsys.readouterr()
    again_code = main(["undo", str(demo)])
    again_output, again_errors = capsys.readouterr()

    assert moved_code == EXIT_OK
    count = len(expected)
    assert f"Moved {count} of {count} files with the final decision reject" in moved_output
    assert sorted(moved) == expected
    assert undo_code == EXIT_OK
    assert f"Moved {len(expected)} of {len(expected)} files back" in undo_output
    # The progress bar counts the files moved back, and is left out when none are.
    assert f"{count}/{count} [" in undo_errors.replace("\r", "\n").splitlines()[-1]
    assert inventory_by_path(demo) == before
    assert again_code == EXIT_OK
    assert "Nothing to undo" in again_output
    assert again_errors == ""


def test_undo_of_unreviewed_folder_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"never reviewed")
    data_home = tmp_path / "data"
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))

    code = main(["undo", str(folder)])

    assert code == EXIT_OK
    assert capsys.readouterr().out == (f"Nothing to undo: {folder} has no review database, "
                                       "so no move of its files is recorded.\n")
    assert os.listdir(folder) == ["a.png"]
    assert not data_home.exists()


def copy_demo(destination: Path) -> Path:
    """Copy the bundled demo folder to `destination`, dated an hour back, and return it."""
    shutil.copytree(DEMO_DIR, destination)
    backdate(destination)
    return destination


def test_undo_finds_batch_after_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    quarantine = tmp_path / "quarantine"
    with tmpfs(tmp_path / "small_disk", "2m") as disk:
        folder = copy_demo(disk / "demo")
        before = inventory_by_path(folder)
        filler = fill_disk(disk)
        # The folder's disk is full, so the review goes to the data folder.
        moved_code = main(["move-rejects", str(folder), "--to", str(quarantine)])
        left_in_folder = sorted(os.listdir(folder))
        moved = len(inventory_by_path(quarantine))
        filler.unlink()
        capsys.readouterr()
        undo_code = main(["undo", str(folder)])
        undo_output = capsys.readouterr().out
        after = inventory_by_path(folder)

    assert moved_code == EXIT_OK
    assert moved > 0
    assert DB_FOLDER_NAME not in left_in_folder
    assert fallback_database_path(folder).is_file()
    assert undo_code == EXIT_OK
    assert undo_output == f"Moved {moved} of {moved} files back into {folder}.\n"
    assert after == before


def test_undo_finds_batch_of_split_review(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    quarantine = tmp_path / "quarantine"
    with tmpfs(tmp_path / "small_disk", "2m") as disk:
        folder = copy_demo(disk / "demo")
        before = inventory_by_path(folder)
        # A threshold that keeps every file is stored in the folder's own database.
        main(["move-rejects", str(folder), "--to", str(quarantine), "--threshold", "1e9"])
        filler = fill_disk(disk)
        # That database cannot be opened on the full disk, so the batch goes to the
        # data folder's.
        main(["move-rejects", str(folder), "--to", str(quarantine), "--threshold",
              "calibrated"])
        moved = len(inventory_by_path(quarantine))
        filler.unlink()
        capsys.readouterr()
        undo_code = main(["undo", str(folder)])
        undo_output, undo_errors = capsys.readouterr()
        again_code = main(["undo", str(folder)])
        again_output, again_errors = capsys.readouterr()
        after = inventory_by_path(folder)

    local = folder / DB_FOLDER_NAME / DB_FILE_NAME
    assert moved > 0
    assert undo_code == EXIT_OK
    assert (f"The review of {folder} is split between two databases. {local} is in use, "
            f"and {fallback_database_path(folder)} also records {moved} files in quarantine "
            "from its move batches. Undo finds the move batches of both") in undo_errors
    assert undo_output == f"Moved {moved} of {moved} files back into {folder}.\n"
    assert after == before
    assert again_code == EXIT_OK
    assert again_output.startswith("Nothing to undo")
    assert again_errors == ""


class InterruptAfterMoves(logging.Handler):
    """Send SIGINT to this process, as Ctrl+C does, once `count` files are moved.

    engine.quarantine logs "Moved SOURCE to TARGET" at debug level after each
    file, before the journal records it, so the interrupt lands in the batch.
    """

    def __init__(self, count: int) -> None:
        super().__init__(logging.DEBUG)
        self.remaining = count

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg != "Moved %s to %s":
            return
        self.remaining -= 1
        if self.remaining == 0:
            signal.raise_signal(signal.SIGINT)


def test_ctrl_c_during_move_reports_moved_files(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Run as `python main.py`, so the hint names that command.
    monkeypatch.setattr(sys, "argv", ["main.py"])
    before = inventory_by_path(demo)
    quarantine = tmp_path / "quarantine"
    engine_logger = logging.getLogger("engine.quarantine")
    interrupter = InterruptAfterMoves(3)
    engine_logger.addHandler(interrupter)
    level = engine_logger.level
    engine_logger.setLevel(logging.DEBUG)
    try:
        # Every score is above 0, so every file has the final decision reject.
        code = main(["move-rejects", str(demo), "--to", str(quarantine), "--threshold", "0"])
    finally:
        engine_logger.removeHandler(interrupter)
        engine_logger.setLevel(level)
    errors = capsys.readouterr().err.replace("\r", "\n").splitlines()

    check_stopped_move_undone(demo, quarantine, before, code, errors, capsys, "python main.py")


def check_stopped_move_undone(
    demo: Path, quarantine: Path, before: dict[str, str], code: int, errors: list[str],
    capsys: pytest.CaptureFixture[str], program: str,
) -> None:
    """Check the report of a move-rejects stopped after three files, then undo the move.

    `program` is the command that the report should name, such as "python main.py".
    """
    moved = inventory_by_path(quarantine)
    undo_code = main(["undo", str(demo)])
    undo_output, undo_errors = capsys.readouterr()

    # ATTRIBUTION.md is no image, so it is neither scored nor moved.
    total = len(before) - 1
    assert code == EXIT_INTERRUPTED, "\n".join(errors)
    assert errors[-3:] == [
        f"Move-rejects interrupted: moved 3 of {total} files with the final decision reject "
        f"to {quarantine}. The other {total - 3} stay in {demo}, because the move was "
        "interrupted.",
        f"To move the other {total - 3} as well, run the same move-rejects command again.",
        f"To move the 3 files back, run: {program} undo {demo}",
    ]
    assert "Traceback" not in "\n".join(errors)
    assert len(moved) == 3
    assert undo_code == EXIT_OK
    assert "Moved 3 of 3 files back" in undo_output
    # The interrupted command reported the stop already.
    assert "was stopped before it reached every file" not in undo_errors
    assert inventory_by_path(demo) == before


def test_ctrl_c_during_undo_reports_moved_files(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Run as `python main.py`, so the hint names that command.
    monkeypatch.setattr(sys, "argv", ["main.py"])
    before = inventory_by_path(demo)
    quarantine = tmp_path / "quarantine"
    main(["move-rejects", str(demo), "--to", str(quarantine), "--threshold", "0"])
    engine_logger = logging.getLogger("engine.quarantine")
    interrupter = InterruptAfterMoves(3)
    engine_logger.addHandler(interrupter)
    level = engine_logger.level
    engine_logger.setLevel(logging.DEBUG)
    capsys.readouterr()
    moved = len(inventory_by_path(quarantine))
    try:
        code = main(["undo", str(demo)])
    finally:
        engine_logger.removeHandler(interrupter)
        engine_logger.setLevel(level)
    errors = capsys.readouterr().err.splitlines()
    again_code = main(["undo", str(demo)])
    again_errors = capsys.readouterr().err

    assert code == EXIT_INTERRUPTED
    assert errors[-1] == (f"Undo interrupted: moved 3 of {moved} files back into {demo}. To move "
                          f"back the other {moved - 3}, still in quarantine, run: "
                          f"python main.py undo {demo}")
    assert again_code == EXIT_OK
    # The interrupted command reported the stop already.
    assert "was stopped" not in again_errors
    assert inventory_by_path(demo) == before


def stop_after_three(moves: Generator[object, None, None]) -> None:
    """Take three files of a move or an undo, then stop it, as closing the window does."""
    for _ in range(3):
        next(moves)
    moves.close()


def test_stopped_move_reported_by_next_command(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Run as `python main.py`, so the hint names that command.
    monkeypatch.setattr(sys, "argv", ["main.py"])
    quarantine = tmp_path / "quarantine"
    images = list_relative_images(demo)
    with ReviewStore.open(demo) as store:
        stop_after_three(move_batch(store, images, quarantine))

    # The same command again, which moves the others.
    code = main(["move-rejects", str(demo), "--to", str(quarantine), "--threshold", "0"])
    errors = capsys.readouterr().err.replace("\r", "\n").splitlines()
    moved = inventory_by_path(quarantine)
    undo_code = main(["undo", str(demo)])
    undo_errors = capsys.readouterr().err

    assert code == EXIT_OK
    assert errors[0] == (
        f"Move batch 1 into {quarantine} was stopped before it reached every file: 3 of "
        f"{len(images)} files were moved there, and the other {len(images) - 3} stay in "
        f"{demo}. To move the 3 files back, run: python main.py undo {demo}")
    assert sorted(moved) == sorted(images)
    assert undo_code == EXIT_OK
    assert "was stopped" not in undo_errors


def test_stopped_undo_reported_by_next_command(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "argv", ["main.py"])
    before = inventory_by_path(demo)
    quarantine = tmp_path / "quarantine"
    main(["move-rejects", str(demo), "--to", str(quarantine), "--threshold", "0"])
    total = len(inventory_by_path(quarantine))
    with ReviewStore.open(demo) as store:
        stop_after_three(undo_last_batch(store))
    capsys.readouterr()

    code = main(["undo", str(demo)])
    errors = capsys.readouterr().err.replace("\r", "\n").splitlines()

    assert code == EXIT_OK
    assert errors[0] == (
        f"The undo of move batch 1 was stopped before it reached every file: 3 of {total} "
        f"files are back in {demo}, and {total - 3} are still in {quarantine}. To move "
        f"those back, run: python main.py undo {demo}")
    assert inventory_by_path(demo) == before


@pytest.mark.parametrize(("kind", "counts", "expected"), [
    # The first file could not be moved, and the stop came before the second.
    (StopKind.MOVE, (40, 0, 0, 1),
     "Move batch 1 into /data/q was stopped before it moved any file: all 40 files stay in "
     "/data/batch 7, 1 of them because it could not be moved."),
    (StopKind.MOVE, (40, 5, 0, 2),
     "Move batch 1 into /data/q was stopped before it reached every file: 5 of 40 files "
     "were moved there, and the other 35 stay in /data/batch 7, 2 of them because they "
     "could not be moved. To move the 5 files back, run: python main.py undo '/data/batch 7'"),
    # The undo of a move that stopped too: only the files that move moved count.
    (StopKind.UNDO, (241, 93, 1, 0),
     "The undo of move batch 1 was stopped before it reached every file: 1 of 94 files is "
     "back in /data/batch 7, and 93 are still in /data/q. To move those back, run: "
     "python main.py undo '/data/batch 7'"),
    # One file each way: singular words.
    (StopKind.UNDO, (2, 1, 1, 0),
     "The undo of move batch 1 was stopped before it reached every file: 1 of 2 files is "
     "back in /data/batch 7, and 1 is still in /data/q. To move those back, run: "
     "python main.py undo '/data/batch 7'"),
])
def test_describe_stop_cases(
    kind: StopKind, counts: tuple[int, int, int, int], expected: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "argv", ["main.py"])
    stop = StoppedBatch(1, kind, Path("/data/q"), *counts)

    assert describe_stop(stop, Path("/data/batch 7")) == expected


# Runs a command of the CLI in a child process. Once the function named has moved
# its third file, the child writes a marker file and waits, so that a SIGTERM from
# the test lands after that move and before the journal records it.
_WAITING_CHILD = textwrap.dedent("""
    import importlib, sys, time
    from pathlib import Path
    module_name, function_name, marker = sys.argv[1:4]
    module = importlib.import_module(module_name)
    original = getattr(module, function_name)
    calls = 0

    def patched(*args, **kwargs):
        global calls
        outcome = original(*args, **kwargs)
        calls += 1
        if calls == 3:
            Path(marker).touch()
            # Short sleeps, so a signal that arrives just before one is handled
            # within 0.1 s. The batch goes on after 120 s without a signal.
            for _ in range(1200):
                time.sleep(0.1)
        return outcome

    setattr(module, function_name, patched)
    from engine.cli import main
    sys.exit(main(sys.argv[4:]))
""")


def terminate_after_three_moves(
    function: str, command: list[str], tmp_path: Path
) -> tuple[int, list[str]]:
    """Run `command` in a child, stop it with SIGTERM, and return its exit code and stderr lines.

    The signal is sent once `function` ("module.name") has moved three files.
    """
    module, name = function.rsplit(".", 1)
    marker = tmp_path / "three_moved"
    stderr_path = tmp_path / "child_stderr.txt"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", _WAITING_CHILD, module, name, str(marker), *command],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        deadline = time.monotonic() + 300
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=120)
    errors = stderr_path.read_text().replace("\r", "\n").splitlines()
    assert marker.exists(), "\n".join(errors)
    return code, errors


def test_sigterm_during_move_reports_moved_files(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = inventory_by_path(demo)
    quarantine = tmp_path / "quarantine"

    # Every score is above 0, so every file has the final decision reject.
    code, errors = terminate_after_three_moves(
        "engine.quarantine._move_one",
        ["move-rejects", str(demo), "--to", str(quarantine), "--threshold", "0"], tmp_path)

    # The child runs with `python -c`, which is no main.py, so the hint names the
    # installed command line.
    check_stopped_move_undone(demo, quarantine, before, code, errors, capsys,
                              "retina-curator-cli")


def test_sigterm_during_undo_reports_moved_files(demo: Path, tmp_path: Path) -> None:
    before = inventory_by_path(demo)
    quarantine = tmp_path / "quarantine"
    main(["move-rejects", str(demo), "--to", str(quarantine), "--threshold", "0"])
    moved = len(inventory_by_path(quarantine))

    code, errors = terminate_after_three_moves("engine.undo.move_file", ["undo", str(demo)],
                                               tmp_path)
    again_code = main(["undo", str(demo)])

    assert code == EXIT_INTERRUPTED, "\n".join(errors)
    # The child runs with `python -c`, so the hint names the installed command line.
    assert errors[-1] == (f"Undo interrupted: moved 3 of {moved} files back into {demo}. To move "
                          f"back the other {moved - 3}, still in quarantine, run: "
                          f"retina-curator-cli undo {demo}")
    assert "Traceback" not in "\n".join(errors)
    assert again_code == EXIT_OK
    assert inventory_by_path(demo) == before


def check_stopped_export_finished(
    demo: Path, destination: Path, code: int, errors: list[str], program: str
) -> None:
    """Check the report of an export stopped before its third kept file, then finish it
    with the command that the report gives.

    `program` is the command that the report should name, such as "python main.py".
    """
    partial = inventory_by_path(destination)
    with (destination / "manifest.json").open(encoding="utf-8") as stream:
        document = json.load(stream)
    finished_code = main(["export", str(demo), "--to", str(destination), "--merge"])
    rows = read_rows(destination / "manifest (1).csv")
    kept_paths = sorted(path for path, row in rows.items() if row["final_decision"] == "keep")

    assert code == EXIT_INTERRUPTED, "\n".join(errors)
    assert errors[-3:] == [
        f"Export interrupted: exported 2 of {len(kept_paths)} files with the final decision keep "
        f"to {destination}. The other {len(kept_paths) - 2} were not exported, because the "
        "export was interrupted.",
        f"The manifests of this partial export, {destination / 'manifest.csv'} and "
        f"{destination / 'manifest.json'}, list only the files handled before the stop; "
        'manifest.json says "complete": false.',
        f"To export the other {len(kept_paths) - 2} as well, run the same command again with "
        "--merge, which keeps the files exported so far and writes new manifests beside "
        f"these: {program} export {demo} --to {destination} --merge",
    ]
    assert "Traceback" not in "\n".join(errors)
    assert sorted(partial) == sorted([*kept_paths[:2], "manifest.csv", "manifest.json"])
    assert document["complete"] is False
    assert [row["path"] for row in document["files"] if row["exported"]] == kept_paths[:2]
    assert finished_code == EXIT_OK
    assert all(rows[path]["exported"] == "true" for path in kept_paths)
    assert {path: digest for path, digest in inventory_by_path(destination).items()
            if not path.startswith("manifest")} == {path: sha256_of(demo / path)
                                                    for path in kept_paths}


def test_ctrl_c_during_export_reports_exported_files(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    destination = tmp_path / "clean"
    original = engine.placement.read_identity
    calls = 0

    def interrupt_third(path: Path) -> FileIdentity:
        # Read once for each kept file, just before it is copied.
        nonlocal calls
        calls += 1
        if calls == 3:
            signal.raise_signal(signal.SIGINT)
        return original(path)

    monkeypatch.setattr(engine.placement, "read_identity", interrupt_third)
    # Run as `python main.py`, so the hint names that command.
    monkeypatch.setattr(sys, "argv", ["main.py"])
    code = main(["export", str(demo), "--to", str(destination)])
    monkeypatch.undo()
    errors = capsys.readouterr().err.replace("\r", "\n").splitlines()

    check_stopped_export_finished(demo, destination, code, errors, "python main.py")


def test_sigterm_during_export_reports_exported_files(demo: Path, tmp_path: Path) -> None:
    destination = tmp_path / "clean"

    # engine.placement reads the size and mtime of each kept file just before it is
    # copied, so the signal lands before the third copy.
    code, errors = terminate_after_three_moves(
        "engine.placement.read_identity", ["export", str(demo), "--to", str(destination)],
        tmp_path)

    # The child runs with `python -c`, so the hint names the installed command line.
    check_stopped_export_finished(demo, destination, code, errors, "retina-curator-cli")


def test_sigterm_handler_restored_after_command(tmp_path: Path) -> None:
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        main(["undo", str(tmp_path)])
        handler = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)

    assert handler == signal.SIG_IGN


def test_move_rejects_entry_point(demo: Path, tmp_path: Path) -> None:
    before = inventory(demo)

    result = subprocess.run(
        [sys.executable, "main.py", "move-rejects", str(demo), "--to", str(tmp_path / "out")],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=300,
    )

    assert result.returncode == EXIT_OK, result.stderr
    assert "with the final decision reject to" in result.stdout
    assert inventory(demo, tmp_path / "out") == before


def test_move_failure_exits_one(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quarantine = tmp_path / "quarantine"
    quarantine.mkdir()
    # A file where the new_batch folder would go makes each move into it fail.
    blocker = quarantine / "new_batch"
    blocker.write_bytes(b"not a folder")
    before = inventory(demo) + Counter({sha256_of(blocker): 1})

    code = main(["move-rejects", str(demo), "--to", str(quarantine)])

    errors = capsys.readouterr().err
    assert code == EXIT_FAILED
    assert "it is a file or a link, not a folder" in errors
    assert "files could not be moved; the reasons are listed above." in errors
    assert inventory(demo, quarantine) == before


@pytest.mark.parametrize("command", [
    ["move-rejects", "{folder}", "--to", "{parent}"],
    ["export", "{folder}", "--to", "{parent}"],
], ids=["move-rejects", "export"])
def test_bad_destination_fails_before_scan(
    demo: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    before = inventory_by_path(demo.parent)

    code = main([part.format(folder=demo, parent=demo.parent) for part in command])
    errors = capsys.readouterr().err
    with sqlite3.connect(demo / DB_FOLDER_NAME / DB_FILE_NAME) as connection:
        scored = connection.execute("SELECT COUNT(*) FROM scores").fetchone()[0]

    assert code == EXIT_FAILED
    assert f"contains the reviewed folder {demo}" in errors
    assert scored == 0
    assert inventory_by_path(demo.parent) == before


@pytest.mark.parametrize("command", ["move-rejects", "export"])
def test_destination_under_file_fails_before_scan(
    demo: Path, tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"a file where a folder is needed")

    code = main([command, str(demo), "--to", str(blocker / "out")])
    errors = capsys.readouterr().err
    with sqlite3.connect(demo / DB_FOLDER_NAME / DB_FILE_NAME) as connection:
        scored = connection.execute("SELECT COUNT(*) FROM scores").fetchone()[0]

    assert code == EXIT_FAILED
    assert f"{blocker} is a file, not a folder. Choose another" in errors
    assert "Traceback" not in errors
    assert scored == 0
    assert blocker.read_bytes() == b"a file where a folder is needed"


@pytest.mark.parametrize("command", ["move-rejects", "export"])
def test_destination_name_too_long_fails_before_scan(
    demo: Path, tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    limit = name_max(tmp_path)
    long_name = "x" * (limit + 1)

    code = main([command, str(demo), "--to", str(tmp_path / long_name / "out")])
    errors = capsys.readouterr().err
    with sqlite3.connect(demo / DB_FOLDER_NAME / DB_FILE_NAME) as connection:
        scored = connection.execute("SELECT COUNT(*) FROM scores").fetchone()[0]

    assert code == EXIT_FAILED
    assert (f"the folder name {long_name} is longer than the {limit} bytes that names can "
            f"have in {tmp_path}. Choose another") in errors
    assert "Traceback" not in errors
    assert scored == 0


@pytest.mark.parametrize("command", ["move-rejects", "export"])
def test_broken_link_destination_fails_before_scan(
    demo: Path, tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "broken"
    link.symlink_to(tmp_path / "nowhere")

    code = main([command, str(demo), "--to", str(link)])
    errors = capsys.readouterr().err

    assert code == EXIT_FAILED
    assert f"{link} is a broken link. Choose another" in errors
    assert link.is_symlink()
    assert not (tmp_path / "nowhere").exists()


def test_threshold_choice_shared_by_commands(demo: Path, tmp_path: Path) -> None:
    # Nothing scores above 1e9, so only the empty file is rejected and moved.
    code = main(["move-rejects", str(demo), "--to", str(tmp_path / "q"), "--threshold", "1e9"])
    main(["export", str(demo), "--to", str(tmp_path / "clean")])

    rows = read_rows(tmp_path / "clean" / "manifest.csv")
    assert code == EXIT_OK
    assert sorted(inventory_by_path(tmp_path / "q")) == ["empty.png"]
    assert {row["threshold"] for row in rows.values()} == {"1e+09"}
    assert rows["empty.png"]["location"] == "quarantine"


def test_export_into_folder_gives_no_merge_hint(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["export", str(demo), "--to", str(demo / "clean")])
    errors = capsys.readouterr().err

    assert code == EXIT_FAILED
    assert "is inside the reviewed folder" in errors
    # Merging would not help, so the message does not suggest it.
    assert "--merge" not in errors


def test_export_into_folder_itself_says_so(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["export", str(demo), "--to", str(demo)])

    assert code == EXIT_FAILED
    assert f"the destination {demo} is the reviewed folder {demo.resolve()}." in (
        " ".join(capsys.readouterr().err.split()))


def test_blocked_default_quarantine_names_to_option(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    default = demo.with_name(f"{demo.name}_rejected")
    default.write_text("a file where the quarantine folder would go", encoding="utf-8")
    before = inventory_by_path(demo)

    code = main(["move-rejects", str(demo)])
    errors = capsys.readouterr().err

    assert code == EXIT_FAILED
    assert (f"{default} is the default quarantine folder. Name another one with --to FOLDER."
            in errors)
    assert inventory_by_path(demo) == before


def test_threshold_option_rejects_text(demo: Path) -> None:
    with pytest.raises(SystemExit):
        main(["move-rejects", str(demo), "--threshold", "high"])


def test_export_end_to_end(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    destination = tmp_path / "clean"
    source_before = inventory_by_path(demo)

    code = main(["export", str(demo), "--to", str(destination), "--link"])
    output = capsys.readouterr().out
    rows = read_rows(destination / "manifest.csv")
    non_empty_code = main(["export", str(demo), "--to", str(destination)])
    non_empty_errors = capsys.readouterr().err
    merged = main(["export", str(demo), "--to", str(destination), "--merge"])
    merged_output = capsys.readouterr().out

    kept = [path for path, row in rows.items() if row["final_decision"] == "keep"]
    assert code == EXIT_OK
    assert f"Exported {len(kept)} files" in output
    assert f"({len(kept)} hard-linked" in output
    assert inventory_by_path(demo) == source_before
    for path in kept:
        assert (destination / path).stat().st_ino == (demo / path).stat().st_ino
        assert rows[path]["sha256"] == sha256_of(destination / path)
    assert non_empty_code == EXIT_FAILED
    assert "is not empty" in non_empty_errors
    assert (f"To merge into it, run: {program_name()} export {demo} --to {destination} --merge"
            in non_empty_errors)
    assert merged == EXIT_OK
    # Nothing was copied, as every kept file was there with the same content.
    # The merge did not ask to hard-link, so no count of links is given.
    assert f"Exported 0 files to {destination}." in merged_output
    assert f"{len(kept)} files were there already with the same content." in merged_output
    assert (destination / "manifest (1).csv").is_file()


def test_bad_model_exits_two(demo: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"not a model")

    move = main(["move-rejects", str(demo), "--model", str(model)])
    export = main(["export", str(demo), "--to", str(tmp_path / "clean"), "--model", str(model)])

    assert move == EXIT_BAD_MODEL
    assert export == EXIT_BAD_MODEL


def test_missing_folder_exits_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["undo", str(tmp_path / "absent")])

    assert code == EXIT_FAILED
    assert "absent not found" in capsys.readouterr().err


def run_main(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run main.py in a new process, where log lines reach stderr as they do for a user."""
    return subprocess.run(
        [sys.executable, "main.py", *arguments],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=300,
    )


def stderr_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    # The progress bar redraws itself after a carriage return.
    return result.stderr.replace("\r", "\n").splitlines()


def lines_containing(lines: list[str], text: str) -> list[str]:
    return [line for line in lines if text in line]


def test_move_failure_listed_once(demo: Path, tmp_path: Path) -> None:
    quarantine = tmp_path / "quarantine"
    quarantine.mkdir()
    # A file where the new_batch folder would go makes each move into it fail.
    (quarantine / "new_batch").write_bytes(b"not a folder")
    scores = tmp_path / "scores.csv"
    main(["score", str(demo), "--csv", str(scores)])
    failing = [path for path, row in read_rows(scores).items()
               if row["final_decision"] == "reject" and path.startswith("new_batch/")]

    result = run_main("move-rejects", str(demo), "--to", str(quarantine))
    lines = stderr_lines(result)

    assert result.returncode == EXIT_FAILED
    assert failing
    for path in failing:
        assert len(lines_containing(lines, f"Moving {path} failed:")) == 1, result.stderr
    assert lines[-1] == f"{len(failing)} files could not be moved; the reasons are listed above."


def test_undo_keeps_batch_while_quarantine_missing(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quarantine = tmp_path / "quarantine"
    before = inventory_by_path(demo)
    main(["move-rejects", str(demo), "--to", str(quarantine)])
    quarantine.rename(tmp_path / "unplugged")
    capsys.readouterr()

    missing_code = main(["undo", str(demo)])
    missing_error = capsys.readouterr().err
    (tmp_path / "unplugged").rename(quarantine)
    undo_code = main(["undo", str(demo)])

    assert missing_code == EXIT_FAILED
    assert f"the quarantine folder {quarantine} is not there" in missing_error
    assert undo_code == EXIT_OK
    assert inventory_by_path(demo) == before


def test_undo_forgets_missing_files_when_asked(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Run through the installed entry point, so the advice names that command.
    monkeypatch.setattr(sys, "argv", [str(Path(sys.executable).parent / "retina-curator-cli")])
    quarantine = tmp_path / "quarantine"
    main(["move-rejects", str(demo), "--to", str(quarantine)])
    moved = sorted(inventory_by_path(quarantine))
    # The curator deletes every quarantined file by hand.
    for relative_path in moved:
        (quarantine / relative_path).unlink()
    capsys.readouterr()

    rejected_code = main(["undo", str(demo)])
    rejected_error = capsys.readouterr().err
    forgot_code = main(["undo", str(demo), "--forget-missing"])
    capsys.readouterr()
    again_code = main(["undo", str(demo)])
    again_output = capsys.readouterr().out

    assert rejected_code == EXIT_FAILED
    assert f"none of the {len(moved)} files that the move put in" in rejected_error
    assert f"run retina-curator-cli undo {demo} --forget-missing to record" in rejected_error
    assert forgot_code == EXIT_FAILED
    assert again_code == EXIT_OK
    assert again_output.startswith("Nothing to undo")


def test_undo_waits_for_file_moved_away(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quarantine = tmp_path / "quarantine"
    before = inventory_by_path(demo)
    main(["move-rejects", str(demo), "--to", str(quarantine)])
    moved = sorted(inventory_by_path(quarantine))
    # A file in a subfolder, whose folder in quarantine the undo must keep.
    away = quarantine / next(path for path in moved if "/" in path)
    away.rename(tmp_path / "elsewhere")
    capsys.readouterr()

    missing_code = main(["undo", str(demo)])
    missing_output, missing_errors = capsys.readouterr()
    (tmp_path / "elsewhere").rename(away)
    back_code = main(["undo", str(demo)])
    back_output = capsys.readouterr().out

    assert missing_code == EXIT_FAILED
    assert f"nor at {away}, where the move put it. It stays in the batch." in missing_errors
    assert f"undo {demo} --forget-missing to record it as gone." in missing_errors
    assert f"Moved {len(moved) - 1} of {len(moved)} files back" in missing_output
    assert back_code == EXIT_OK
    assert back_output == f"Moved 1 of 1 file back into {demo}.\n"
    assert inventory_by_path(demo) == before


def test_undo_failure_listed_once(demo: Path, tmp_path: Path) -> None:
    quarantine = tmp_path / "quarantine"
    main(["move-rejects", str(demo), "--to", str(quarantine)])
    moved = sorted(inventory_by_path(quarantine))
    # Another file takes the name of the empty file, so that file cannot go back.
    (demo / "empty.png").write_bytes(b"a new file")
    # The files of new_batch cannot go back through a link, which move_file rejects.
    (demo / "new_batch").rename(demo / "new_batch_real")
    (demo / "new_batch").symlink_to(demo / "new_batch_real")
    removed, *linked = [path for path in moved if path.startswith("new_batch/")]
    # A file deleted from quarantine by hand cannot go back either.
    (quarantine / removed).unlink()

    result = run_main("undo", str(demo))
    lines = stderr_lines(result)

    assert result.returncode == EXIT_FAILED
    assert "empty.png" in moved
    assert linked
    assert len(lines_containing(lines, "Undoing the move of empty.png failed:")) == 1, result.stderr
    gone_lines = lines_containing(lines, f"Undoing the move of {removed} failed: it was found "
                                         "neither at")
    assert len(gone_lines) == 1, result.stderr
    assert gone_lines[0].endswith("--forget-missing to record it as gone.")
    for path in linked:
        assert len(lines_containing(lines, f"{quarantine / path} to ")) == 1, result.stderr
    count = len(linked) + 2
    assert lines[-1] == f"{count} files could not be moved back; the reasons are listed above."


def test_export_failure_listed_once(demo: Path, tmp_path: Path) -> None:
    destination = tmp_path / "clean"
    scores = tmp_path / "scores.csv"
    main(["score", str(demo), "--csv", str(scores)])
    kept_paths = [path for path, row in read_rows(scores).items()
                  if row["final_decision"] == "keep"][:2]
    # Files with other content at the names of two kept files, which merge never overwrites.
    for path in kept_paths:
        (destination / path).parent.mkdir(parents=True, exist_ok=True)
        (destination / path).write_bytes(b"other content")

    result = run_main("export", str(demo), "--to", str(destination), "--merge")
    lines = stderr_lines(result)

    assert result.returncode == EXIT_FAILED
    assert len(kept_paths) == 2
    for path in kept_paths:
        assert len(lines_containing(lines, f"Exporting {path} failed:")) == 1, result.stderr
    assert lines[-1] == "2 files could not be exported; the reasons are listed above."


def test_full_disk_export_reports_what_it_left(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with tmpfs(tmp_path / "small_disk", "512k") as disk:
        destination = disk / "clean"
        code = main(["export", str(demo), "--to", str(destination)])
        errors = capsys.readouterr().err.replace("\r", "\n").splitlines()
        copied = [path for path in destination.rglob("*") if path.is_file()]

    failed = [line for line in lines_containing(errors, "failed: no space left on device")
              if not line.startswith("Exporting failed:")]
    skipped = lines_containing(errors, f"were not exported, because {destination} is full: ")
    assert code == EXIT_FAILED
    # The first copy that does not fit fails, and the kept files after it are skipped.
    assert len(failed) == 1
    assert len(skipped) == 1
    skipped_count = int(skipped[0].split()[0])
    assert errors[-2].startswith(
        f"Exporting failed: writing the manifests to {destination} failed: no space left")
    assert errors[-2].endswith("export again with the merge option, which writes the manifests.")
    # The last line counts what the stopped export left in the destination.
    assert errors[-1].startswith(f"Exported {len(copied)} of ")
    assert errors[-1].endswith(f"with the final decision keep to {destination} before it "
                               f"stopped; 1 could not be exported, and {skipped_count} were "
                               "not tried because it is full. No manifest was written.")


@pytest.mark.parametrize(("written", "every_file_handled", "expected"), [
    (("manifest.csv", "manifest.json"), False,
     "The manifests of this partial export, /out/manifest.csv and /out/manifest.json, list "
     'only the files handled before the stop; manifest.json says "complete": false.'),
    (("manifest.csv",), False,
     "Only the CSV manifest of this partial export, /out/manifest.csv, was written; it lists "
     "only the files handled before the stop."),
    # The stop came while the JSON manifest was written, after every file.
    (("manifest.csv",), True,
     "Every file was handled and the CSV manifest, /out/manifest.csv, lists them all, but "
     "the export was stopped while its JSON manifest was written."),
    ((), False, "No manifest of this partial export was written."),
])
def test_stopped_export_manifest_sentences(
    written: tuple[str, ...], every_file_handled: bool, expected: str
) -> None:
    paths = [Path("/out") / name for name in written]
    summary = ExportSummary(Path("/out"), manifest_csv=next(iter(paths), None),
                            manifest_json=paths[1] if len(paths) > 1 else None)

    assert _partial_manifests(summary, every_file_handled) == expected
