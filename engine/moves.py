"""Move files into quarantine as one journaled batch.

Before a batch moves its first file, the batch and every planned (source,
destination) pair are committed and synced to the review database (see
engine.journal). Each finished move is recorded as it happens, and the batch is
marked complete at the end, so undo (see engine.undo) works across restarts.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Generator, Sequence
from pathlib import Path

from engine.journal import (
    BatchState,
    EntryState,
    StopKind,
    batch_row,
    close_batch,
    count_entries,
    moved_index,
    set_entry,
    set_location,
    settle_planned_entry,
)
from engine.names import OVERLAP_RELATIONS, folder_problem, overlap
from engine.quarantine import MoveOutcome, default_quarantine_dir, move_files
from engine.records import Location
from engine.review import ReviewStore
from engine.reviewdb import utc_now

logger = logging.getLogger(__name__)


def move_batch(
    store: ReviewStore, relative_paths: Sequence[str], destination: Path
) -> Generator[MoveOutcome, None, None]:
    """Move files of the store's folder into `destination` as one journaled batch.

    Yields one MoveOutcome per file, like engine.quarantine.move_files. Stop
    iterating to cancel between files: the batch is then complete with the rest
    skipped. Raises ValueError at once for a destination that quarantine_problem
    rejects or files that unmovable_problem finds unmovable, and ReviewStoreError
    on the first iteration if another process is moving files of the same folder.
    """
    problem = (quarantine_problem(store.folder, destination)
               or unmovable_problem(store.folder, relative_paths))
    if problem:
        raise ValueError(f"Moving files failed: {problem}")
    return _run_batch(store, list(relative_paths), Path(os.path.abspath(destination)))


def quarantine_problem(folder: Path, destination: Path) -> str:
    """Return why `destination` cannot take the files of the reviewed `folder`, or "".

    The destination can be neither the folder, nor inside it, nor contain it (see
    names.overlap). It must also be a folder that can be created and written to
    (see names.folder_problem).
    """
    folder = folder.resolve()
    position = overlap(folder, destination)
    if position in ("same", "inside"):
        return (f"the quarantine folder {destination} {OVERLAP_RELATIONS[position]} the "
                f"reviewed folder {folder}. Choose a folder outside it.")
    if position == "contains":
        return (f"the quarantine folder {destination} contains the reviewed folder {folder}. "
                f"Choose a folder beside it, such as {default_quarantine_dir(folder)}.")
    problem = folder_problem(destination)
    return f"{problem}. Choose another quarantine folder." if problem else ""


def unmovable_problem(folder: Path, relative_paths: Sequence[str]) -> str:
    """Return why none of `relative_paths` can be moved out of `folder`, or "" if any can.

    Moving a file out of a folder, by renaming or by copying and removing it, takes
    write access to that folder, so a read-only mount or read-only subfolders are
    found here, before a batch or a quarantine folder is made. Only the folders
    that hold the files are checked, and the check is the one the process's own
    rights pass: root passes read-only permissions, not a read-only mount.
    """
    holders = sorted({os.path.dirname(os.path.join(folder, path)) for path in relative_paths})
    if not holders or any(os.access(holder, os.W_OK | os.X_OK) for holder in holders):
        return ""
    count = f"{len(relative_paths)} file{'' if len(relative_paths) == 1 else 's'}"
    try:
        read_only_mount = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        read_only_mount = False
    if read_only_mount:
        return (f"{folder} is on a read-only file system, so none of the {count} can be "
                "moved out of it. Remount it read-write, or review a copy of the folder "
                "on a writable disk.")
    named = ", ".join(holders[:3]) + (f" and {len(holders) - 3} more" if len(holders) > 3 else "")
    return (f"the folders that hold the {count} are read-only for this user ({named}), "
            "so none of them can be moved out. Make those folders writable, then move "
            "the rejects out again.")


def _run_batch(
    store: ReviewStore, relative_paths: list[str], destination: Path
) -> Generator[MoveOutcome, None, None]:
    if not relative_paths:
        return
    with store.database.batch_lock():
        batch_id = _plan(store, relative_paths, destination)
        done = 0
        try:
            moves = move_files(store.folder, relative_paths, destination,
                               _reviewed_identities(store))
            for outcome in moves:
                _record_move(store, batch_id, done, outcome)
                done += 1
                yield outcome
        finally:
            _finish_batch(store, batch_id)


def _reviewed_identities(store: ReviewStore) -> dict[str, tuple[int, int]]:
    """Return the size and mtime_ns of each file as the review last listed it."""
    rows = store.database.query_tuples("SELECT relative_path, size, mtime_ns FROM files")
    return {relative_path: (size, mtime_ns) for relative_path, size, mtime_ns in rows}


def _plan(store: ReviewStore, relative_paths: list[str], destination: Path) -> int:
    """Write the batch and every planned pair to the journal and sync it to disk."""
    rows = []
    for position, relative_path in enumerate(relative_paths):
        source = store.folder / relative_path
        try:
            stat = os.lstat(source)
            identity = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        except OSError:
            # move_files reports the problem; the entry is planned all the same.
            identity = (0, 0, -1, 0)
        rows.append((position, relative_path, str(source),
                     str(destination / relative_path), *identity))
    with store.database.transaction(durable=True) as connection:
        cursor = connection.execute(
            "INSERT INTO batches (created, destination, state, started_ns) VALUES (?, ?, ?, ?)",
            (utc_now(), str(destination), BatchState.RUNNING.value, time.time_ns()),
        )
        batch_id = cursor.lastrowid
        assert batch_id is not None
        connection.executemany(
            "INSERT INTO batch_files (batch_id, position, relative_path, source, planned, "
            "device, inode, size, mtime_ns, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'planned')",
            [(batch_id, *row) for row in rows],
        )
    logger.info("Journaled move batch %d: %d files from %s to %s",
                batch_id, len(rows), store.folder, destination)
    return batch_id


def _record_move(store: ReviewStore, batch_id: int, position: int, outcome: MoveOutcome) -> None:
    with store.database.transaction() as connection:
        if outcome.destination is None:
            set_entry(connection, batch_id, position, EntryState.FAILED, None, outcome.error)
            return
        set_entry(connection, batch_id, position, EntryState.MOVED, outcome.destination, None)
        set_location(connection, outcome.relative_path, Location.QUARANTINE,
                     outcome.destination)


def _finish_batch(store: ReviewStore, batch_id: int) -> None:
    """Settle the entry that may have been in flight, skip the rest and mark the batch complete.

    Runs when the batch ends, is cancelled or is left by an exception, so a move
    cut short between its link and its unlink still leaves the file in one place.
    The entry in flight is the first one still planned in the journal. A count of
    the outcomes seen would point one entry too early after an interrupt that
    landed between recording a move and counting it. A batch with skipped files
    is recorded as an unreported stop (see journal.unreported_stops).
    If settling fails, the batch stays running and is recovered on the next open.
    """
    entries = store.database.query(
        "SELECT * FROM batch_files WHERE batch_id = ? AND state = 'planned' ORDER BY position",
        (batch_id,),
    )
    started_ns = batch_row(store, batch_id)["started_ns"]
    try:
        with store.database.transaction() as connection:
            if entries:
                settle_planned_entry(connection, entries[0], started_ns, moved_index(connection))
            connection.execute(
                "UPDATE batch_files SET state = 'skipped' "
                "WHERE batch_id = ? AND state = 'planned'",
                (batch_id,),
            )
            skipped = count_entries(connection, batch_id, EntryState.SKIPPED)
            close_batch(connection, batch_id, BatchState.COMPLETE,
                        "cancelled before every file was moved" if entries else "",
                        StopKind.MOVE if skipped else None)
    except OSError as error:
        logger.error("Finishing move batch %d failed: %s. It is recovered when the folder "
                     "is opened again.", batch_id, error)
        return
    logger.info("Move batch %d ended with %d files not moved yet", batch_id, len(entries))
