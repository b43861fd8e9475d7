"""Move files into quarantine as one journaled batch, and undo batches, latest first.

Before a batch moves its first file, the batch and every planned (source,
destination) pair are committed and synced to the review database (see
engine.journal). Each finished move is recorded as it happens, and the batch is
marked complete at the end, so undo works across restarts. Undo moves the files of
a batch back to their original paths and never overwrites a file that has taken an
original name.
"""

from __future__ import annotations

import logging
import os
import shlex
import sqlite3
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.invocation import program_name
from engine.journal import (
    NOT_REACHED,
    BatchState,
    EntryState,
    StopKind,
    batch_row,
    close_batch,
    count_entries,
    finish_undo,
    last_undoable_batch,
    moved_index,
    set_entry,
    set_location,
    settle_moved_entry,
    settle_planned_entry,
)
from engine.names import folder_problem, overlap
from engine.quarantine import (
    MoveOutcome,
    default_quarantine_dir,
    move_file,
    move_files,
    remove_empty_folders,
)
from engine.records import Location
from engine.review import ReviewStore
from engine.reviewdb import utc_now

logger = logging.getLogger(__name__)


class UndoError(Exception):
    """An undo cannot start. The message gives the reason and the remedy."""


@dataclass(frozen=True)
class UndoOutcome:
    """Result of moving one file back from quarantine.

    `destination` is the original path when the file is back there, or None when
    `error` (a sentence for the user) explains why it stayed at `source`. The caller
    shows `error` to the user, so it is logged at debug level only.
    """

    relative_path: str
    source: Path
    destination: Path | None
    error: str | None


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
    if position == "inside":
        return (f"the quarantine folder {destination} is inside the reviewed folder "
                f"{folder}. Choose a folder outside it.")
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


def undo_last_batch(
    store: ReviewStore, forget_missing: bool = False
) -> Generator[UndoOutcome, None, None]:
    """Move the files of `last_undoable_batch` back; yields nothing if there is none.

    See undo_batch for `forget_missing`.
    """
    batch = last_undoable_batch(store)
    if batch is None:
        return _nothing_to_undo(store)
    return undo_batch(store, batch.id, forget_missing)


def _nothing_to_undo(store: ReviewStore) -> Generator[UndoOutcome, None, None]:
    """Yield nothing, or raise BatchLockedError if another process is moving files.

    A batch that another process is running is not undoable yet, though its files
    may be in quarantine already.
    """
    with store.database.batch_lock():
        yield from ()


def undo_batch(
    store: ReviewStore, batch_id: int, forget_missing: bool = False
) -> Generator[UndoOutcome, None, None]:
    """Move every file of the batch that is still in quarantine back to its original path.

    Yields one UndoOutcome per file. A file whose original path is taken stays in
    quarantine with an error. A file found in neither place is recorded as gone.
    The batch is undone when no file of it remains in quarantine; otherwise it
    stays complete, so the next undo retries it. Stop iterating to cancel between
    files. Raises ReviewStoreError on the first iteration if another process is
    moving files of the same folder, and ValueError at once if there is no batch
    `batch_id`. Raises UndoError on the first iteration, changing nothing, if the
    quarantine folder is missing or contains none of the batch's files, as when its
    disk is not mounted, unless `forget_missing` is set.
    """
    if not store.database.query("SELECT id FROM batches WHERE id = ?", (batch_id,)):
        raise ValueError(f"Undo failed: there is no move batch {batch_id} in the review "
                         f"of {store.folder}.")
    return _run_undo(store, batch_id, forget_missing)


def _run_undo(
    store: ReviewStore, batch_id: int, forget_missing: bool
) -> Generator[UndoOutcome, None, None]:
    with store.database.batch_lock():
        destination = Path(batch_row(store, batch_id)["destination"])
        if not forget_missing:
            _check_quarantine_reachable(store, batch_id, destination)
        with store.database.transaction(durable=True) as connection:
            # This undo's own end decides whether a stop is left to report.
            connection.execute(
                "UPDATE batches SET state = 'undoing', undo_started_ns = ?, "
                "unreported_stop = NULL WHERE id = ?",
                (time.time_ns(), batch_id),
            )
            connection.execute(
                "UPDATE batch_files SET error = ? WHERE batch_id = ? AND state = 'moved'",
                (NOT_REACHED, batch_id),
            )
        entries = store.database.query(
            "SELECT * FROM batch_files WHERE batch_id = ? AND state = 'moved' "
            "ORDER BY position DESC", (batch_id,),
        )
        logger.info("Undoing move batch %d: %d files", batch_id, len(entries))
        # The entry whose file is being moved back, while an exception could cut
        # that move short.
        in_flight: sqlite3.Row | None = None
        try:
            for entry in entries:
                outcome = _blocked_return(store, entry)
                if outcome is None:
                    _note_entry_error(store, entry, None)
                    in_flight = entry
                    outcome = _return_one(store, entry)
                    in_flight = None
                if outcome.error is None:
                    # Moving the file out made the folders of its path there.
                    remove_empty_folders(outcome.source.parent, destination)
                yield outcome
        finally:
            for message in finish_undo(store, batch_id, in_flight, record_stop=True):
                logger.warning("%s", message)


def _check_quarantine_reachable(store: ReviewStore, batch_id: int, destination: Path) -> None:
    """Raise UndoError if the batch's quarantine folder is missing or contains none of
    the files the batch left there.

    Files not found would be recorded as gone for good, so a disk that is not
    mounted, which often leaves an empty folder behind, or a renamed folder would
    make the undo forget them.
    """
    remedy = (
        "Connect or mount the disk it is on, or give the folder its name again, then "
        f"undo again. If the files were deleted, run {program_name()} undo "
        f"{shlex.quote(str(store.folder))} --forget-missing to record them as gone."
    )
    if not destination.is_dir():
        raise UndoError(f"Undo failed: the quarantine folder {destination} is not there, so "
                        f"no file was moved back. {remedy}")
    places = [Path(row["moved_to"]) for row in store.database.query(
        "SELECT moved_to FROM batch_files WHERE batch_id = ? AND state = 'moved'",
        (batch_id,))]
    if places and not any(os.path.lexists(place) for place in places):
        files = "the file" if len(places) == 1 else f"none of the {len(places)} files"
        raise UndoError(
            f"Undo failed: {files} that the move put in {destination} "
            f"{'is not' if len(places) == 1 else 'is'} there, so no file was moved back. "
            f"{remedy}"
        )


def _blocked_return(store: ReviewStore, entry: sqlite3.Row) -> UndoOutcome | None:
    """Return the outcome of an entry whose file cannot be moved back, or None.

    The file may have left quarantine by hand, or its original name may be taken.
    """
    relative_path = entry["relative_path"]
    current = Path(entry["moved_to"])
    original = Path(entry["source"])
    if not os.path.lexists(current):
        return _settle_gone(store, entry)
    if not os.path.lexists(original):
        return None
    message = (
        f"Undoing the move of {relative_path} failed: {original} exists now, and it is "
        f"never overwritten, so the file stays at {current}. Rename or move the file "
        "that took the name, then undo again."
    )
    logger.debug("%s", message)
    _note_entry_error(store, entry, message)
    return UndoOutcome(relative_path, current, None, message)


def _return_one(store: ReviewStore, entry: sqlite3.Row) -> UndoOutcome:
    relative_path = entry["relative_path"]
    current = Path(entry["moved_to"])
    outcome = move_file(current, store.folder, relative_path)
    if outcome.error is not None:
        _note_entry_error(store, entry, outcome.error)
        return UndoOutcome(relative_path, current, None, outcome.error)
    with store.database.transaction() as connection:
        set_entry(connection, entry["batch_id"], entry["position"], EntryState.RETURNED,
                  None, None)
        set_location(connection, relative_path, Location.FOLDER, None)
    return UndoOutcome(relative_path, current, Path(entry["source"]), None)


def _settle_gone(store: ReviewStore, entry: sqlite3.Row) -> UndoOutcome:
    """Record where a file is that was moved back or removed by hand since its move.

    Retrying such an entry could never succeed, and the batch, with every older
    one, could then never be undone.
    """
    relative_path = entry["relative_path"]
    current = Path(entry["moved_to"])
    original = Path(entry["source"])
    started_ns = batch_row(store, entry["batch_id"])["started_ns"]
    with store.database.transaction() as connection:
        message = settle_moved_entry(connection, entry, started_ns)
        state = connection.execute(
            "SELECT state FROM batch_files WHERE batch_id = ? AND position = ?",
            (entry["batch_id"], entry["position"])).fetchone()[0]
    if state == EntryState.RETURNED:
        logger.info("%s", message)
        return UndoOutcome(relative_path, current, original, None)
    logger.debug("%s", message)
    return UndoOutcome(relative_path, current, None, message)


def _note_entry_error(store: ReviewStore, entry: sqlite3.Row, message: str | None) -> None:
    with store.database.transaction() as connection:
        connection.execute(
            "UPDATE batch_files SET error = ? WHERE batch_id = ? AND position = ?",
            (message, entry["batch_id"], entry["position"]),
        )
