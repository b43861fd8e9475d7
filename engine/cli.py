"""Headless command line: its entry point and the score command.

The parser is in engine.cli_parser, the train and evaluate commands are in
engine.cli_model, and the commands that move or export files, move-rejects, undo
and export, are in engine.cli_moves.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import logging
import operator
import shlex
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from engine.cli_folder import (
    EXIT_BAD_MODEL,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    open_review,
    scan,
)
from engine.cli_model import run_evaluate, run_train
from engine.cli_moves import run_export, run_move_rejects, run_undo
from engine.cli_output import (
    atomic_text_file,
    existing_output_problem,
    unwritable_folder,
    write_failure,
)
from engine.cli_parser import build_parser
from engine.images import log_decoder_warnings
from engine.interrupts import StopSignals
from engine.invocation import COMMANDS, program_name, unknown_command_message
from engine.listing import SkippedFolder
from engine.manifest import REVIEW_COLUMNS, file_sha256, review_row
from engine.modelfile import ModelFileError, ReferenceModel, load_model
from engine.records import Location
from engine.resources import DEFAULT_MODEL_PATH
from engine.review import ReviewStore
from engine.reviewdb import utc_now

logger = logging.getLogger(__name__)

# The first seven columns are the original ones; the rest are the manifest's columns.
SCORE_COLUMNS = (
    "path", "status", "detail", "score", "flagged", "threshold", "model",
    *(column for column in REVIEW_COLUMNS
      if column not in {"path", "status", "detail", "score", "threshold"}),
)

# Commands that report how many files they moved or exported when stopped. SIGTERM,
# as `kill` and service managers send it, stops them as Ctrl+C does, with that
# report and code.
_STOPPED_LIKE_CTRL_C = frozenset({"move-rejects", "undo", "export"})


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command and return the process exit code.

    Without `argv`, main runs the process's own command line, as `python main.py`
    and retina-curator-cli do, and the process is expected to exit when it returns:
    the signals that the command handled stay ignored until then (see StopSignals).
    With `argv`, the caller's signal handlers are back when main returns.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if arguments and not arguments[0].startswith("-") and arguments[0] not in COMMANDS:
        parser.error(unknown_command_message(arguments[0]))
    args = parser.parse_args(arguments)
    args.command_line = f"{program_name()} {shlex.join(arguments)}"
    if args.command == "evaluate" and args.card and args.model is None:
        # The bundled model's card is part of the installation, so it is never rewritten.
        print("Evaluation failed: --card needs --model FILE, because it writes the results "
              "beside the model file you name and never into the bundled model's card.",
              file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    log_decoder_warnings()
    stop_signals = StopSignals(sigterm=args.command in _STOPPED_LIKE_CTRL_C,
                               until_exit=argv is None)
    try:
        # Log lines go above the progress bar instead of being glued to its end.
        with logging_redirect_tqdm(), stop_signals:
            return run_command(args, stop_signals)
    except KeyboardInterrupt:
        # The user asked for the stop, so one line replaces the traceback.
        print(f"{args.command.capitalize()} interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED


def run_command(args: argparse.Namespace, stop_signals: StopSignals) -> int:
    """Run the sub-command that `args` names and return the process exit code.

    move-rejects, undo and export set `stop_signals.work_complete` once their work is done.
    """
    if args.command == "train":
        return run_train(args)
    if args.command == "undo":
        return run_undo(args, stop_signals)
    try:
        model = load_model(args.model or DEFAULT_MODEL_PATH)
    except ModelFileError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_MODEL
    if args.command == "move-rejects":
        return run_move_rejects(args, model, stop_signals)
    if args.command == "export":
        return run_export(args, model, stop_signals)
    runners = {"score": run_score, "evaluate": run_evaluate}
    return runners[args.command](args, model)


def run_score(args: argparse.Namespace, model: ReferenceModel) -> int:
    problem = _csv_output_problem(args.csv, args.folder, args.overwrite)
    if problem:
        print(f"Scoring failed: {problem}", file=sys.stderr)
        return EXIT_FAILED
    store = open_review(args.folder, "Scoring")
    if store is None:
        return EXIT_FAILED
    with store:
        fingerprint = model.fingerprint
        if args.threshold is None:
            threshold = store.threshold_for(fingerprint, model.threshold)
        elif args.threshold == "calibrated":
            threshold = model.threshold
        else:
            threshold = float(args.threshold)
        listing = scan(store, model, threshold, "Scoring")
        if listing is None:
            return EXIT_FAILED
        try:
            flagged = _write_scores(store, model, threshold, args.csv, set(listing.files))
        except OSError as error:
            print(f"Scoring failed: {write_failure(args.csv, error)}.", file=sys.stderr)
            return EXIT_FAILED
    print(_score_summary(flagged, args.csv))
    return EXIT_OK


def _score_summary(flagged: Counter[str], csv_path: Path) -> str:
    """Return the line that `score` prints once the CSV is written."""
    total = flagged.total()
    counts = [f"{flagged['true']} flagged", f"{flagged['false']} kept"]
    if flagged[""]:
        counts.append(f"{flagged['']} without a score (the CSV's status column says why)")
    return (f"{total} file{'' if total == 1 else 's'}: {', '.join(counts)}. "
            f"Scores written to {csv_path}.")


def _csv_output_problem(csv_path: Path, folder: Path, overwrite: bool) -> str:
    """Return why the score CSV cannot be written to `csv_path`, or an empty string."""
    if csv_path.resolve().is_relative_to(folder.resolve()):
        return f"{csv_path} is inside the scored folder. Write the CSV elsewhere."
    return existing_output_problem(csv_path, overwrite) or unwritable_folder(csv_path)


def _write_scores(store: ReviewStore, model: ReferenceModel, threshold: float,
                  csv_path: Path, listed: set[str]) -> Counter[str]:
    """Write the score CSV of the store's folder and count its files by `flagged` value.

    The CSV has a row for each file in the folder and for each file of `listed`,
    the scan's listing, that was removed or renamed during the scan. Each
    subfolder that the scan could not list gets a row too, its path ending in "/",
    which is not counted. Raises OSError on failure.
    """
    fingerprint = model.fingerprint
    model_label = f"{model.name}:{fingerprint}"
    folder_rows = sorted((_skipped_folder_row(folder, threshold, fingerprint, model_label)
                          for folder in store.skipped_folders),
                         key=operator.itemgetter("path"))
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    # File names that are not valid UTF-8 are written with backslash escapes.
    with atomic_text_file(csv_path, errors="backslashreplace") as stream:
        # csv.DictWriter checks the keys of every row, so writing 8000 rows of 20
        # columns took 28 ms with it and 17 ms with csv.writer and a list.
        writer = csv.writer(stream)
        writer.writerow(SCORE_COLUMNS)
        in_order = operator.itemgetter(*SCORE_COLUMNS)
        rows: Iterator[dict[str, str]] = _file_rows(store, model, fingerprint, threshold,
                                                    listed)
        if folder_rows:
            # The records come sorted by path, so the folders' rows fall in place among them.
            rows = heapq.merge(rows, folder_rows, key=operator.itemgetter("path"))
        flagged: Counter[str] = Counter()
        for row in rows:
            writer.writerow(in_order(row))
            flagged[row["flagged"]] += 1
    flagged[""] -= len(folder_rows)
    return flagged


def _file_rows(store: ReviewStore, model: ReferenceModel, fingerprint: str, threshold: float,
               listed: set[str]) -> Iterator[dict[str, str]]:
    """Yield the score CSV's row of each file that _write_scores writes, sorted by path.

    `fingerprint` is that of `model`, which takes 2 ms to compute.
    """
    model_label = f"{model.name}:{fingerprint}"
    signal_thresholds = model.signal_thresholds
    for record in store.iter_records(fingerprint):
        if record.location is Location.QUARANTINE or (
                record.location is Location.MISSING and record.relative_path not in listed):
            continue
        row = review_row(record, threshold, fingerprint, file_sha256(store, record),
                         signal_thresholds)
        # A missing file's row has no score, whatever the review kept.
        if row["score"] == "" or record.score is None:
            row["flagged"] = ""
        else:
            row["flagged"] = "true" if record.score > threshold else "false"
        row["model"] = model_label
        yield row


def _skipped_folder_row(folder: SkippedFolder, threshold: float, fingerprint: str,
                        model_label: str) -> dict[str, str]:
    """Return the score CSV's row of a subfolder that could not be listed."""
    row = dict.fromkeys(SCORE_COLUMNS, "")
    row.update(path=f"{folder.path}/", status=folder.status,
               detail=f"{folder.detail}: the folder could not be listed, so its images "
                      "are not scored and have no rows",
               threshold=f"{threshold:.8g}", model=model_label, model_fingerprint=fingerprint,
               location=Location.FOLDER, time=utc_now())
    return row
