"""Manifest rows that record one file's review: checksum, score, threshold and decisions."""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO

from engine.images import MISSING_DETAIL, Status
from engine.records import FileRecord, Location, hash_file, read_identity
from engine.review import ReviewStore
from engine.reviewdb import utc_now
from engine.signals import COLOUR, LATENT, RECONSTRUCTION

logger = logging.getLogger(__name__)

# The column of each signal of engine.signals.
SIGNAL_COLUMNS = {
    RECONSTRUCTION: "reconstruction_error",
    LATENT: "latent_distance",
    COLOUR: "colour_distance",
}

# Columns shared by the export manifest and the CSV of the `score` command. The
# score is the combined score, 1 at the model's calibrated threshold; times are
# ISO 8601 UTC.
REVIEW_COLUMNS = (
    "path",  # relative to the reviewed folder, with forward slashes
    "status",  # intake status, "ok" for a readable image
    "detail",  # why a file is not "ok"
    "sha256",  # of the file's content, empty if it cannot be read
    "size",  # in bytes
    "score",  # empty when the file could not be read
    "threshold",
    *SIGNAL_COLUMNS.values(),  # each signal in its own unit; empty like score
    "flagged_by",  # the signals above their threshold, joined by "+"
    "model_fingerprint",
    "model_decision",  # keep or reject; a file that cannot be read is rejected
    "final_decision",  # the curator's override when there is one, else the model's
    "decision_source",  # model or curator, empty for a missing file without an override
    "override_time",  # when the curator decided, empty for the model
    "location",  # folder, quarantine or missing
    "time",  # when the row was written
)

# The export manifest adds whether the file was copied, its path in the destination
# (which differs from `path` only when a name differing in case was exported
# first) and, if the copy failed, why.
MANIFEST_COLUMNS = (*REVIEW_COLUMNS, "exported", "exported_as", "error")

# A destination with this many manifests means something is wrong with it.
_MAX_MANIFESTS = 9999


def review_row(record: FileRecord, threshold: float, model_fingerprint: str,
               sha256: str | None, signal_thresholds: Mapping[str, float]) -> dict[str, str]:
    """Return the REVIEW_COLUMNS of one file as text, with `sha256` from file_sha256.

    `signal_thresholds` are the model's calibrated threshold of each signal. A
    file that is no longer in the folder (location missing) is described as
    missing, without the size, score and signals it had when it was last read.
    """
    if record.location is Location.MISSING:
        record = _as_missing(record)
    # The enums are StrEnums, so each member is its own text. Reading `.value`
    # goes through the enum's descriptor, four calls a row: 8000 rows of the
    # `score` command took 40 000 of them.
    # A file that is gone has no decision of the model's, only the curator's, if any.
    missing = record.status is Status.MISSING
    model_decision = None if missing else record.model_decision(threshold)
    row = {
        "path": record.relative_path,
        "status": record.status,
        "detail": record.detail,
        "sha256": sha256 or "",
        "size": "" if missing else str(record.size),
        "score": "" if record.score is None else f"{record.score:.8g}",
        "threshold": f"{threshold:.8g}",
    }
    # The signal cells and flagged_by in one pass, as flagging_signals decides:
    # 8000 rows took 45 ms with it and a merged dict, 30 ms this way.
    signals = record.signals or {}
    flagged_by = []
    for name, column in SIGNAL_COLUMNS.items():
        value = signals.get(name)
        row[column] = "" if value is None else f"{value:.8g}"
        if value is not None and value > threshold * signal_thresholds.get(name, math.inf):
            flagged_by.append(name)
    row.update(
        flagged_by="+".join(flagged_by),
        model_fingerprint=model_fingerprint,
        model_decision=model_decision or "",
        final_decision=record.override or model_decision or "",
        decision_source="" if missing and record.override is None else record.decision_source,
        override_time=record.override_time or "",
        location=record.location,
        time=utc_now(),
    )
    return row


def _as_missing(record: FileRecord) -> FileRecord:
    """Return `record` with the status missing and its detail, and without a score."""
    if record.status is Status.MISSING:
        return record._replace(score=None, signals=None)
    return record._replace(status=Status.MISSING, detail=MISSING_DETAIL, score=None,
                           signals=None)


def file_sha256(store: ReviewStore, record: FileRecord) -> str | None:
    """Return the SHA-256 of the file where it is now, or None if it cannot be read.

    The digest of a file in the folder is cached in the review while the file's
    size and mtime_ns stay the same.
    """
    if record.location is Location.QUARANTINE and record.moved_to is not None:
        try:
            return hash_file(record.moved_to)
        except OSError as error:
            logger.warning("Cannot read %s: %s", record.moved_to, error)
            return None
    if record.location is not Location.FOLDER:
        return None
    if record.sha256:
        return record.sha256
    path = store.folder / record.relative_path
    try:
        before = read_identity(path)
        digest = hash_file(path)
        after = read_identity(path)
    except OSError as error:
        # A file that intake could not read has that reason in its status already.
        level = logging.WARNING if record.status is Status.OK else logging.DEBUG
        logger.log(level, "Cannot read %s: %s", path, error)
        return None
    if (before.size, before.mtime_ns) == (after.size, after.mtime_ns) == (
            record.size, record.mtime_ns):
        store.save_sha256(record.relative_path, before, digest)
    return digest


def free_manifest_paths(destination: Path) -> tuple[Path, Path]:
    """Return the first pair `manifest.csv`/`.json`, `manifest (1).csv`/`.json`, ... not taken."""
    for number in range(_MAX_MANIFESTS + 1):
        stem = "manifest" if number == 0 else f"manifest ({number})"
        pair = (destination / f"{stem}.csv", destination / f"{stem}.json")
        if not any(os.path.lexists(path) for path in pair):
            return pair
    raise FileExistsError(f"{destination} has {_MAX_MANIFESTS} manifests already")


def json_row(row: dict[str, str]) -> dict[str, object]:
    """Return a text row of MANIFEST_COLUMNS with JSON types: numbers, booleans and null.

    Empty text becomes null; `size` an integer; `score`, `threshold` and the signal
    columns numbers; `exported` a boolean. The other columns stay text.
    """
    typed: dict[str, object] = {}
    for key, value in row.items():
        if value == "":
            typed[key] = None
        elif key == "size":
            typed[key] = int(value)
        elif key in ("score", "threshold", *SIGNAL_COLUMNS.values()):
            typed[key] = float(value)
        elif key == "exported":
            typed[key] = value == "true"
        else:
            typed[key] = value
    return typed


@contextlib.contextmanager
def new_text_file(path: Path) -> Iterator[TextIO]:
    """Create the UTF-8 text file `path`, which must not exist, and remove it again
    if writing it fails, so that no manifest is left cut short.

    File names that are not valid UTF-8 are written with backslash escapes.
    """
    stream = path.open("x", newline="", encoding="utf-8", errors="backslashreplace")
    try:
        with stream:
            yield stream
    except BaseException:
        path.unlink(missing_ok=True)
        raise
