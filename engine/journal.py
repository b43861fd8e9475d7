"""The move journal in the review database, and recovery of batches a killed process left.

A batch row and one row per planned (source, destination) pair are written before
the first move of a batch (see engine.moves). When a folder is opened, every batch
still marked running or undoing is settled file by file from what is really on
disk (see engine.recovery), so that each file exists in exactly one place.

A move or an undo that stops before it reaches every file, as when the window is
closed during it, leaves its batch complete and marked with an unreported stop.
unreported_stops lists those stops for the next open of the folder, until
mark_stop_reported records that a report has shown them.
"""

from __future__ import annotations

import enum
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from engine.records import Location
from engine.recovery import FolderIndex, settle_move, settle_return
from engine.review import ReviewStore
from engine.reviewdb import ReviewStoreError, utc_now

logger = logging.getLogger(__name__)


class BatchState(enum.StrEnum):
    """Stage of a move batch in the journal."""

    RUNNING = "running"
    COMPLETE = "complete"
    UNDOING = "undoing"
    UNDONE = "undone"


class EntryState(enum.StrEnum):
    """Stage of one file of a move batch."""

    PLANNED = "planned"
    MOVED = "moved"
    FAILED = "failed"
    # Never attempted, because the batch was cancelled or interrupted first.
    SKIPPED = "skipped"
    RETURNED = "returned"


class StopKind(enum.StrEnum):
    """The run over a batch's files that stopped before it reached every file."""

    MOVE = "move"
    UNDO = "undo"


# The error of every entry that an undo has not reached yet. The entry whose return
# is under way has none, so recovery after a kill can tell it from the others (see
# interrupted_return), and an undo that stops early leaves this behind.
NOT_REACHED = "the undo stopped before it reached this file"


@dataclass(frozen=True)
class Batch:
    """One journaled batch; `in_quarantine` counts its files still moved out."""

    id: int
    created: str
    destination: Path
    state: BatchState
    total: int
    in_quarantine: int
    note: str


@dataclass(frozen=True)
class StoppedBatch:
    """A batch whose move or undo stopped before it reached every file.

    `kind` is the run that stopped. Of the batch's `total` files,
    `in_quarantine` are in `destination`, `returned` were moved back by an undo,
    and `failed` could not be moved or were found in neither place. The others
    were never moved.
    """

    id: int
    kind: StopKind
    destination: Path
    total: int
    in_quarantine: int
    returned: int
    failed: int


def settle_planned_entry(connection: sqlite3.Connection, entry: sqlite3.Row,
                         since_ns: int, index: FolderIndex) -> str | None:
    """Record where the file of a planned entry is, and return what recovery found or did.

    Removes a duplicate hard link or an unfinished copy left by a cut-short move.
    Raises OSError if that removal fails.
    """
    result = settle_move(entry, since_ns, index)
    if result.location is None:
        set_entry(connection, entry["batch_id"], entry["position"], EntryState.FAILED, None,
                  result.message)
        set_location(connection, entry["relative_path"], Location.MISSING, None)
    elif result.location == Path(entry["source"]):
        set_entry(connection, entry["batch_id"], entry["position"], EntryState.SKIPPED,
                  None, result.message)
    else:
        index.claim(result.location)
        set_entry(connection, entry["batch_id"], entry["position"], EntryState.MOVED,
                  result.location, None)
        set_location(connection, entry["relative_path"], Location.QUARANTINE,
                     result.location)
    return result.message


def moved_index(connection: sqlite3.Connection) -> FolderIndex:
    """Return a FolderIndex that leaves out the places of every file the journal has moved."""
    rows = connection.execute(
        "SELECT moved_to FROM batch_files WHERE state = 'moved' AND moved_to IS NOT NULL"
    ).fetchall()
    return FolderIndex(Path(row[0]) for row in rows)


def batches(store: ReviewStore) -> list[Batch]:
    """Return every journaled batch of the folder, newest first."""
    rows = store.database.query(
        "SELECT b.*, COUNT(f.position) AS total, "
        "SUM(CASE WHEN f.state = 'moved' THEN 1 ELSE 0 END) AS in_quarantine "
        "FROM batches AS b LEFT JOIN batch_files AS f ON f.batch_id = b.id "
        "GROUP BY b.id ORDER BY b.id DESC"
    )
    return [
        Batch(row["id"], row["created"], Path(row["destination"]), BatchState(row["state"]),
              row["total"], row["in_quarantine"] or 0, row["note"])
        for row in rows
    ]


def last_undoable_batch(store: ReviewStore) -> Batch | None:
    """Return the newest complete batch with files still in quarantine, or None."""
    for batch in batches(store):
        if batch.state is BatchState.COMPLETE and batch.in_quarantine:
            return batch
    return None


def unreported_stops(store: ReviewStore) -> list[StoppedBatch]:
    """Return the complete batches whose last move or undo stopped before it reached
    every file and whose stop no report has shown yet, oldest first.

    A batch that recovery settled after a kill is not listed, because recovery
    returns its own messages about it.
    """
    rows = store.database.query(
        "SELECT b.id, b.unreported_stop, b.destination, COUNT(f.position) AS total, "
        "SUM(f.state = 'moved') AS in_quarantine, SUM(f.state = 'returned') AS returned, "
        "SUM(f.state = 'failed') AS failed "
        "FROM batches AS b JOIN batch_files AS f ON f.batch_id = b.id "
        "WHERE b.unreported_stop IS NOT NULL AND b.state = 'complete' "
        "GROUP BY b.id ORDER BY b.id"
    )
    return [
        StoppedBatch(row["id"], StopKind(row["unreported_stop"]), Path(row["destination"]),
                     row["total"], row["in_quarantine"], row["returned"], row["failed"])
        for row in rows
    ]


def mark_stop_reported(store: ReviewStore, batch_id: int) -> None:
    """Record that a report has shown the stop of the batch, so it is not listed again.

    A failure to record it is logged, not raised: it only means that the next open
    of the folder reports the stop once more.
    """
    try:
        with store.database.transaction() as connection:
            connection.execute("UPDATE batches SET unreported_stop = NULL WHERE id = ?",
                               (batch_id,))
    except (ReviewStoreError, sqlite3.Error) as error:
        logger.error("Recording the stop of move batch %d of %s as reported failed: %s",
                     batch_id, store.folder, error)


def finish_undo(store: ReviewStore, batch_id: int, in_flight: sqlite3.Row | None,
                record_stop: bool = False) -> list[str]:
    """Settle the return that may have been cut short, then mark the batch undone or complete.

    `in_flight` is the entry whose return an exception or a kill interrupted, if
    any. Only that file can be under two names: any other file at an original path
    is not the undo's to remove, even one that an undo made a moment earlier.
    With `record_stop`, an undo that left files it never reached is recorded as an
    unreported stop. Recovery leaves it False, because its own messages report the
    undo it finishes. Returns what settling found or did. If settling fails, the
    batch stays undoing and is recovered on the next open.
    """
    undo_started_ns = batch_row(store, batch_id)["undo_started_ns"]
    messages: list[str] = []
    try:
        with store.database.transaction() as connection:
            if in_flight is not None:
                message = settle_moved_entry(connection, in_flight, undo_started_ns)
                if message:
                    messages.append(message)
            remaining = count_entries(connection, batch_id, EntryState.MOVED)
            if remaining:
                unreached = connection.execute(
                    "SELECT COUNT(*) FROM batch_files WHERE batch_id = ? AND state = 'moved' "
                    "AND error = ?", (batch_id, NOT_REACHED),
                ).fetchone()[0]
                stop = StopKind.UNDO if record_stop and unreached else None
                close_batch(connection, batch_id, BatchState.COMPLETE,
                            f"undo left {remaining} files in quarantine", stop)
            else:
                close_batch(connection, batch_id, BatchState.UNDONE, "")
    except OSError as error:
        logger.error("Finishing the undo of batch %d failed: %s. It is recovered when the "
                     "folder is opened again.", batch_id, error)
        return [f"Finishing the undo of batch {batch_id} failed: {error}."]
    logger.info("Undo of batch %d ended: %d files still in quarantine", batch_id, remaining)
    return messages


def interrupted_return(store: ReviewStore, batch_id: int) -> sqlite3.Row | None:
    """Return the entry of a batch whose return a kill may have cut short, if any.

    When an undo starts, it gives every entry still in quarantine an error saying
    that it has not reached it. It clears that error just before it moves an
    entry's file back, and records the result or a new error after. So the
    entry still moved and without an error is the one whose move was under way.
    """
    rows = store.database.query(
        "SELECT * FROM batch_files WHERE batch_id = ? AND state = 'moved' AND error IS NULL",
        (batch_id,),
    )
    return rows[0] if rows else None


def recover_batches(store: ReviewStore) -> list[str]:
    """Settle every batch that a killed process left running or undoing.

    Returns messages for the user: one summary per batch, then one line per file
    that recovery found moved, moved back or lost. Does nothing while another
    process holds the folder's batch lock, because its batch is still going.
    """
    query = "SELECT * FROM batches WHERE state IN ('running', 'undoing') ORDER BY id"
    if not store.database.query(query):
        return []
    try:
        with store.database.batch_lock():
            messages: list[str] = []
            for batch in store.database.query(query):
                messages += _recover_batch(store, batch)
            return messages
    except ReviewStoreError as error:
        logger.info("Recovery of %s postponed: %s", store.folder, error)
        return []
    except OSError as error:
        logger.error("Recovering the move batches of %s failed: %s", store.folder, error)
        return [f"Recovering the interrupted move batches of {store.folder} failed: {error}. "
                "They are tried again the next time the folder is opened."]


def _recover_batch(store: ReviewStore, batch: sqlite3.Row) -> list[str]:
    batch_id = batch["id"]
    if batch["state"] == BatchState.UNDOING.value:
        logger.warning("Recovering the interrupted undo of batch %d", batch_id)
        details = finish_undo(store, batch_id, interrupted_return(store, batch_id))
        return [f"The undo of move batch {batch_id} was interrupted. Undo again to move "
                "back the files still in quarantine.", *details]

    logger.warning("Recovering the interrupted move batch %d", batch_id)
    entries = store.database.query(
        "SELECT * FROM batch_files WHERE batch_id = ? AND state = 'planned' ORDER BY position",
        (batch_id,),
    )
    details = []
    try:
        with store.database.transaction() as connection:
            index = moved_index(connection)
            for number, entry in enumerate(entries):
                if number > 0 and os.path.lexists(entry["source"]):
                    # Files move one at a time, so only the first planned entry can
                    # have been in flight. The others still in place were never tried.
                    set_entry(connection, batch_id, entry["position"], EntryState.SKIPPED,
                              None, None)
                    continue
                message = settle_planned_entry(connection, entry, batch["started_ns"], index)
                if message:
                    details.append(message)
            moved = count_entries(connection, batch_id, EntryState.MOVED)
            total = connection.execute(
                "SELECT COUNT(*) FROM batch_files WHERE batch_id = ?", (batch_id,)
            ).fetchone()[0]
            close_batch(connection, batch_id, BatchState.COMPLETE,
                        f"interrupted, recovered at {utc_now()}")
    except OSError as error:
        logger.error("Recovering move batch %d failed: %s", batch_id, error)
        return [f"Recovering the interrupted move batch {batch_id} failed: {error}. "
                "It is tried again the next time the folder is opened."]
    summary = (
        f"Move batch {batch_id} into {batch['destination']} was interrupted: {moved} of "
        f"{total} files are in quarantine and the others stayed in the folder. Undo moves "
        "the quarantined files back."
    )
    return [summary, *details]


def settle_moved_entry(connection: sqlite3.Connection, entry: sqlite3.Row,
                       since_ns: int) -> str | None:
    """Record where the file of a moved entry is after an undo that may have been cut short.

    Returns what recovery found or did, if anything. Raises OSError if removing a
    redundant name fails.
    """
    result = settle_return(entry, since_ns)
    if result.location is None:
        set_entry(connection, entry["batch_id"], entry["position"], EntryState.FAILED, None,
                  result.message)
        set_location(connection, entry["relative_path"], Location.MISSING, None)
    elif result.location == Path(entry["source"]):
        set_entry(connection, entry["batch_id"], entry["position"], EntryState.RETURNED,
                  None, None)
        set_location(connection, entry["relative_path"], Location.FOLDER, None)
    return result.message


def count_entries(connection: sqlite3.Connection, batch_id: int, state: EntryState) -> int:
    row = connection.execute(
        "SELECT COUNT(*) FROM batch_files WHERE batch_id = ? AND state = ?",
        (batch_id, state.value),
    ).fetchone()
    return int(row[0])


def batch_row(store: ReviewStore, batch_id: int) -> sqlite3.Row:
    return store.database.query("SELECT * FROM batches WHERE id = ?", (batch_id,))[0]


def set_entry(connection: sqlite3.Connection, batch_id: int, position: int,
              state: EntryState, moved_to: Path | None, error: str | None) -> None:
    connection.execute(
        "UPDATE batch_files SET state = ?, moved_to = ?, error = ? "
        "WHERE batch_id = ? AND position = ?",
        (state.value, None if moved_to is None else str(moved_to), error, batch_id, position),
    )


def set_location(connection: sqlite3.Connection, relative_path: str, location: Location,
                 moved_to: Path | None) -> None:
    connection.execute(
        "UPDATE files SET location = ?, moved_to = ? WHERE relative_path = ?",
        (location.value, None if moved_to is None else str(moved_to), relative_path),
    )


def close_batch(connection: sqlite3.Connection, batch_id: int, state: BatchState,
                note: str, stop: StopKind | None = None) -> None:
    """Set the batch's end state and note, and its unreported stop, which None clears."""
    connection.execute(
        "UPDATE batches SET state = ?, finished = ?, note = ?, unreported_stop = ? "
        "WHERE id = ?",
        (state.value, utc_now(), note, None if stop is None else stop.value, batch_id),
    )
