"""Undo move batches, latest first: move their files back from quarantine.

Undo moves the files of a batch (see engine.moves) back to their original paths
and never overwrites a file that has taken an original name.
"""

from __future__ import annotations

import logging
import os
import shlex
import sqlite3
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from engine.invocation import program_name
from engine.journal import (
    NOT_REACHED,
    EntryState,
    batch_row,
    finish_undo,
    last_undoable_batch,
    set_entry,
    set_location,
    settle_moved_entry,
)
from engine.quarantine import move_file, remove_empty_folders
from engine.records import Location
from engine.recovery import settle_return
from engine.review import ReviewStore

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


def undo_store(store: ReviewStore) -> ReviewStore:
    """Return the review whose newest undoable batch is the newest of the folder.

    That is `store`, unless the review is split between two databases and
    `store.other` contains a newer one, or the only one.
    """
    other = store.other
    theirs = None if other is None else last_undoable_batch(other)
    if other is None or theirs is None:
        return store
    own = last_undoable_batch(store)
    return other if own is None or theirs.created > own.created else store


def undo_last_batch(
    store: ReviewStore, forget_missing: bool = False
) -> Generator[UndoOutcome, None, None]:
    """Move the files of the folder's newest undoable batch back; yields nothing if
    there is none.

    The batch is `last_undoable_batch` of `undo_store(store)`. See undo_batch for
    `forget_missing`.
    """
    source = undo_store(store)
    batch = last_undoable_batch(source)
    if batch is None:
        return _nothing_to_undo(store)
    return undo_batch(source, batch.id, forget_missing)


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
    quarantine with an error. A file found in neither place stays in the batch with
    an error, or with `forget_missing` is recorded as gone. The batch is undone
    when no file of it remains in quarantine; otherwise it stays complete, so the
    next undo retries it. Stop iterating to cancel between files. Raises
    ReviewStoreError on the first iteration if another process is moving files of
    the same folder, and ValueError at once if there is no batch `batch_id`.
    Raises UndoError on the first iteration, changing nothing, if the
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
        entries = _start_undo(store, batch_id)
        # The entry whose file is being moved back, while an exception could cut
        # that move short.
        in_flight: sqlite3.Row | None = None
        # The quarantine folders of the files moved back, which moving them out made.
        emptied: list[Path] = []
        # The places of the files that stay in the batch though they were not found.
        awaited: list[Path] = []
        try:
            for entry in entries:
                outcome = _blocked_return(store, entry, forget_missing)
                if outcome is None:
                    _note_entry_error(store, entry, None)
                    in_flight = entry
                    outcome = _return_one(store, entry)
                    in_flight = None
                if outcome.error is None:
                    emptied.append(outcome.source.parent)
                elif not forget_missing and not os.path.lexists(outcome.source):
                    awaited.append(outcome.source)
                yield outcome
        finally:
            for message in finish_undo(store, batch_id, in_flight, record_stop=True):
                logger.warning("%s", message)
            _remove_emptied_folders(emptied, awaited, destination)


def _start_undo(store: ReviewStore, batch_id: int) -> list[sqlite3.Row]:
    """Mark the batch undoing and return its entries still in quarantine, last moved first."""
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
    return entries


def _remove_emptied_folders(folders: list[Path], awaited: list[Path],
                            destination: Path) -> None:
    """Remove each of `folders` and its parents up to `destination` while empty.

    The folder of each place in `awaited` stays, so that its file can be put back there.
    """
    for folder in dict.fromkeys(folders):
        awaited_folders = [place.parent for place in awaited
                           if folder.is_relative_to(place.parent)]
        remove_empty_folders(folder, max(awaited_folders, key=lambda path: len(path.parts),
                                         default=destination))


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


def _blocked_return(store: ReviewStore, entry: sqlite3.Row,
                    forget_missing: bool) -> UndoOutcome | None:
    """Return the outcome of an entry whose file cannot be moved back, or None.

    The file may have left quarantine by hand, or its original name may be taken.
    """
    relative_path = entry["relative_path"]
    current = Path(entry["moved_to"])
    original = Path(entry["source"])
    if not os.path.lexists(current):
        return _settle_gone(store, entry, forget_missing)
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


def _settle_gone(store: ReviewStore, entry: sqlite3.Row, forget_missing: bool) -> UndoOutcome:
    """Record where a file is that has left its place in quarantine since its move.

    A file moved back by hand is recorded as returned. A file found in neither
    place is recorded as gone with `forget_missing`. Otherwise it stays in the
    batch, because it may be on a disk that is not connected or in another
    folder for a while, and an undo after it is put back moves it back.
    """
    relative_path = entry["relative_path"]
    current = Path(entry["moved_to"])
    original = Path(entry["source"])
    started_ns = batch_row(store, entry["batch_id"])["started_ns"]
    # With its place in quarantine gone, settle_return only looks at the original path.
    if not forget_missing and settle_return(entry, started_ns).location is None:
        return _keep_missing(store, entry)
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


def _keep_missing(store: ReviewStore, entry: sqlite3.Row) -> UndoOutcome:
    """Leave a file found in neither place in the batch, with an error that gives the next steps."""
    relative_path = entry["relative_path"]
    current = Path(entry["moved_to"])
    message = (
        f"Undoing the move of {relative_path} failed: it was found neither at "
        f"{entry['source']} nor at {current}, where the move put it. It stays in the "
        "batch. Put it back there and undo again, or, if it was deleted, run "
        f"{program_name()} undo {shlex.quote(str(store.folder))} --forget-missing "
        "to record it as gone."
    )
    logger.debug("%s", message)
    _note_entry_error(store, entry, message)
    return UndoOutcome(relative_path, current, None, message)


def _note_entry_error(store: ReviewStore, entry: sqlite3.Row, message: str | None) -> None:
    with store.database.transaction() as connection:
        connection.execute(
            "UPDATE batch_files SET error = ? WHERE batch_id = ? AND position = ?",
            (message, entry["batch_id"], entry["position"]),
        )
