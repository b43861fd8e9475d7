"""The commands that take files out of a reviewed folder or back: move-rejects,
undo and export.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from pathlib import Path

from tqdm import tqdm

from engine.cli_folder import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    check_folder,
    open_review,
    report_skipped_folders,
    scan,
)
from engine.export import CleanedSetExport, ExportError, destination_problem
from engine.export_results import ExportSummary
from engine.interrupts import StopSignals
from engine.invocation import program_name
from engine.journal import batches, last_undoable_batch, mark_stop_reported
from engine.modelfile import ReferenceModel
from engine.moves import move_batch, quarantine_problem
from engine.plurals import by_count, counted
from engine.quarantine import MoveOutcome, default_quarantine_dir
from engine.review import ReviewStore
from engine.reviewdb import ReviewStoreError
from engine.reviewplaces import find_database
from engine.undo import UndoError, UndoOutcome, undo_last_batch, undo_store

# The outcome for the images of a subfolder that move-rejects could not list.
_NOT_MOVED = "were neither scored nor moved"


def run_move_rejects(args: argparse.Namespace, model: ReferenceModel,
                     stop_signals: StopSignals) -> int:
    store = open_review(args.folder, "Moving rejects")
    if store is None:
        return EXIT_FAILED
    with store:
        # The destination is checked before the scan, which can take minutes.
        try:
            destination = args.destination or default_quarantine_dir(store.folder)
        except ValueError as error:
            print(f"Moving rejects failed: {error}", file=sys.stderr)
            return EXIT_FAILED
        problem = quarantine_problem(store.folder, destination)
        if problem:
            print(f"Moving rejects failed: {problem}", file=sys.stderr)
            if args.destination is None:
                print(f"{destination} is the default quarantine folder. Name another one "
                      "with --to FOLDER.", file=sys.stderr)
            return EXIT_FAILED
        threshold = review_threshold(store, model, args.threshold)
        if scan(store, model, threshold, "Moving rejects") is None:
            return EXIT_FAILED
        rejects = store.relative_paths_to_reject(model.fingerprint, threshold)
        if not rejects:
            print(f"No file of {store.folder} has the final decision reject.")
            return report_skipped_folders(store.skipped_folders, _NOT_MOVED)
        previous_batches = {batch.id for batch in batches(store)}
        try:
            outcomes, interrupted = _move_with_progress(store, rejects, destination,
                                                        stop_signals)
        except (ValueError, ReviewStoreError) as error:
            print(error, file=sys.stderr)
            return EXIT_FAILED
        moved = 0
        if interrupted:
            # The journal counts a file whose move Ctrl+C cut short too, once
            # settled, so it is exact where the outcomes may miss one.
            stopped = [batch for batch in batches(store) if batch.id not in previous_batches]
            moved = sum(batch.in_quarantine for batch in stopped)
            # The report below describes the stop, so no later open prints it again.
            for batch in stopped:
                mark_stop_reported(store, batch.id)
    errors = [outcome.error for outcome in outcomes if outcome.error]
    for message in errors:
        print(message, file=sys.stderr)
    if interrupted:
        _report_interrupted_move(store.folder, destination, len(rejects), moved, errors)
        return EXIT_INTERRUPTED
    print(f"Moved {len(outcomes) - len(errors)} of {counted(len(outcomes), 'file')} with the final "
          f"decision reject to {destination}.")
    code = report_failures(errors, "could not be moved")
    if report_skipped_folders(store.skipped_folders, _NOT_MOVED) != EXIT_OK:
        return EXIT_FAILED
    return code


def _move_with_progress(store: ReviewStore, rejects: list[str], destination: Path,
                        stop_signals: StopSignals) -> tuple[list[MoveOutcome], bool]:
    """Move `rejects` as one batch with a progress bar on stderr.

    Returns the outcomes so far, and True if Ctrl+C or SIGTERM stopped the batch.
    The batch is closed before this returns, so the journal then records every
    file moved. Raises what move_batch raises.
    """
    outcomes: list[MoveOutcome] = []
    try:
        with (contextlib.closing(move_batch(store, rejects, destination)) as moves,
              tqdm(total=len(rejects), unit="file", file=sys.stderr) as bar):
            for outcome in moves:
                outcomes.append(outcome)
                bar.update(1)
            # The batch is closed and recorded: a signal from here on stops nothing.
            stop_signals.work_complete = True
    except KeyboardInterrupt:
        return outcomes, True
    return outcomes, False


def _report_interrupted_move(folder: Path, destination: Path, total: int, moved: int,
                             errors: list[str]) -> None:
    """Print how many files an interrupted move-rejects moved, how to move the others
    too, and how to move them back.
    """
    stayed = total - moved
    if errors:
        rest = (f" The other {stayed} stay in {folder}: {len(errors)} could not be moved, "
                "for the reasons listed above, and the move was interrupted before the others.")
    elif stayed:
        rest = f" The other {stayed} stay in {folder}, because the move was interrupted."
    else:
        rest = ""
    print(f"Move-rejects interrupted: moved {moved} of {counted(total, 'file')} with the final "
          f"decision reject to {destination}.{rest}", file=sys.stderr)
    if stayed:
        print(f"To move the other {stayed} as well, run the same move-rejects command again.",
              file=sys.stderr)
    if moved:
        print(f"To move the {counted(moved, 'file')} back, run: {program_name()} undo "
              f"{shlex.quote(str(folder))}", file=sys.stderr)


def run_undo(args: argparse.Namespace, stop_signals: StopSignals) -> int:
    if not check_folder(args.folder, "Undo"):
        return EXIT_FAILED
    # Opening the review would create a database in a folder that has none.
    if find_database(args.folder) is None:
        print(f"Nothing to undo: {args.folder} has no review database, so no move of its "
              "files is recorded.")
        return EXIT_OK
    store = open_review(args.folder, "Undo")
    if store is None:
        return EXIT_FAILED
    outcomes: list[UndoOutcome] = []
    with store:
        # The review that contains the batch, which may be the other database's.
        source = undo_store(store)
        batch = last_undoable_batch(source)
        try:
            # One outcome a file still in quarantine; no bar when there is nothing to undo.
            with tqdm(total=0 if batch is None else batch.in_quarantine, unit="file",
                      file=sys.stderr, disable=batch is None) as bar:
                for outcome in undo_last_batch(store, args.forget_missing):
                    outcomes.append(outcome)
                    bar.update(1)
                # Every file of the batch is handled and recorded.
                stop_signals.work_complete = True
        except (ReviewStoreError, UndoError) as error:
            print(error, file=sys.stderr)
            return EXIT_FAILED
        except KeyboardInterrupt:
            # From the journal, which also counts the file whose return was cut short.
            total = 0 if batch is None else batch.in_quarantine
            back = 0 if batch is None else total - _in_quarantine(source, batch.id)
            if batch is not None:
                # The report below describes the stop, so no later open prints it again.
                mark_stop_reported(source, batch.id)
            print(f"Undo interrupted: moved {back} of {counted(total, 'file')} back into "
                  f"{store.folder}. To move back the other {total - back}, still in quarantine, "
                  f"run: {program_name()} undo {shlex.quote(str(store.folder))}", file=sys.stderr)
            return EXIT_INTERRUPTED
    if not outcomes:
        print(f"Nothing to undo: no files of {store.folder} are in quarantine.")
        return EXIT_OK
    errors = [outcome.error for outcome in outcomes if outcome.error]
    for message in errors:
        print(message, file=sys.stderr)
    print(f"Moved {len(outcomes) - len(errors)} of {counted(len(outcomes), 'file')} back "
          f"into {store.folder}.")
    return report_failures(errors, "could not be moved back")


def _in_quarantine(store: ReviewStore, batch_id: int) -> int:
    """Return how many files of the batch the journal has in quarantine."""
    return next(batch.in_quarantine for batch in batches(store) if batch.id == batch_id)


def run_export(args: argparse.Namespace, model: ReferenceModel,
               stop_signals: StopSignals) -> int:
    store = open_review(args.folder, "Exporting")
    if store is None:
        return EXIT_FAILED
    with store:
        # The destination is checked before the scan, which can take minutes.
        problem = destination_problem(store.folder, args.destination, args.merge)
        if problem:
            print(f"Exporting failed: {problem}", file=sys.stderr)
            # Suggest --merge only where merging would be accepted.
            if not args.merge and not destination_problem(store.folder, args.destination, True):
                print(f"To merge into it, run: {args.command_line} --merge", file=sys.stderr)
            return EXIT_FAILED
        threshold = review_threshold(store, model, args.threshold)
        if scan(store, model, threshold, "Exporting") is None:
            return EXIT_FAILED
        try:
            export = CleanedSetExport(store, args.destination, model.fingerprint, threshold,
                                      model_name=model.name, merge=args.merge, link=args.link,
                                      signal_thresholds=model.signal_thresholds)
        except ValueError as error:
            print(error, file=sys.stderr)
            return EXIT_FAILED
        try:
            interrupted = _export_with_progress(export, stop_signals)
        except ExportError as error:
            _report_failed_export(export, error)
            return EXIT_FAILED
    summary = export.summary
    for message in summary.errors:
        print(message, file=sys.stderr)
    for note in summary.notes:
        print(note)
    if interrupted:
        _report_interrupted_export(export, args)
        return EXIT_INTERRUPTED
    return _report_export(summary, args.link)


def _report_export(summary: ExportSummary, link: bool) -> int:
    """Print the counts of a whole export and return the exit code.

    With `link`, the export was requested to hard-link, and the count gives how many it did.
    """
    # A file that a merge found in the destination with the same content was not
    # copied, so it counts as there already, not as exported.
    present = summary.already_present
    there_already = (f" {counted(present, 'file')} {by_count(present, 'was', 'were')} there "
                     "already with the same content." if present else "")
    linked = f" ({summary.linked} hard-linked)" if link else ""
    print(f"Exported {counted(summary.added, 'file')} to {summary.destination}{linked}."
          f"{there_already} Listed in {summary.manifest_csv} but not copied: "
          f"{counted(summary.not_copied, 'file')}.")
    # One error covers all the files skipped on a full disk, so failed files are counted.
    code = report_failures(summary.errors, "could not be exported", summary.failed)
    if report_skipped_folders(summary.skipped_folders, "were not exported") != EXIT_OK:
        return EXIT_FAILED
    if summary.not_reviewed:
        # The notes printed above name them: files that arrived after the scan.
        count = len(summary.not_reviewed)
        print(f"{counted(count, 'file')} of the folder {by_count(count, 'was', 'were')} not in "
              "the review, so the export is incomplete.", file=sys.stderr)
        return EXIT_FAILED
    return code


def _report_failed_export(export: CleanedSetExport, error: ExportError) -> None:
    """Print the files that failed, the error that stopped the export, and what it
    left in the destination.
    """
    summary = export.summary
    for message in summary.errors:
        print(message, file=sys.stderr)
    print(f"Exporting failed: {error}", file=sys.stderr)
    written = [str(path) for path in (summary.manifest_csv, summary.manifest_json)
               if path is not None]
    manifests = f"Manifests: {', '.join(written)}." if written else "No manifest was written."
    skipped = len(summary.skipped_full)
    not_tried = f", and {skipped} were not tried because it is full" if skipped else ""
    print(f"Exported {summary.added} of {counted(export.kept_count, 'file')} with the final "
          f"decision keep to {summary.destination} before it stopped; "
          f"{summary.failed - skipped} could not be exported{not_tried}. {manifests}",
          file=sys.stderr)


def _export_with_progress(export: CleanedSetExport, stop_signals: StopSignals) -> bool:
    """Run `export` with a progress bar on stderr; return True if Ctrl+C or SIGTERM
    stopped it before the export was whole.

    The run is closed before this returns, so its manifests are written then, for
    the files handled. Sets `stop_signals.work_complete` once the export is whole.
    Raises ExportError as CleanedSetExport.run does.
    """
    try:
        with (contextlib.closing(export.run()) as files,
              tqdm(total=export.total, unit="file", file=sys.stderr) as bar):
            for _ in files:
                bar.update(1)
            # Both manifests are written: a signal from here on stops nothing.
            stop_signals.work_complete = True
    except KeyboardInterrupt:
        summary = export.summary
        if summary.cancelled or summary.manifest_json is None:
            return True
        # A stop that came once every file was handled and both manifests written
        # leaves a whole export, which is reported as one.
        stop_signals.work_complete = True
    return False


def _report_interrupted_export(export: CleanedSetExport, args: argparse.Namespace) -> None:
    """Print how many files an interrupted export exported, where its manifests
    are, and how to export the others.
    """
    summary = export.summary
    kept_count, exported = export.kept_count, summary.exported
    present = summary.already_present
    there_already = (f", {present} of them {'was' if present == 1 else 'were'} there already "
                     "with the same content" if present else "")
    others = kept_count - exported

    if summary.errors:
        rest = (f" The other {others} {'was' if others == 1 else 'were'} not exported: "
                f"{len(summary.errors)} failed, for the reasons listed above")
        rest += (", and the export was interrupted before the others."
                 if others > len(summary.errors) else ".")
    elif others:
        rest = (f" The other {others} {'was' if others == 1 else 'were'} not exported, "
                "because the export was interrupted.")
    else:
        rest = ""
    print(f"Export interrupted: exported {exported} of {counted(kept_count, 'file')} with the "
          f"final decision keep to {summary.destination}{there_already}.{rest}", file=sys.stderr)

    print(_partial_manifests(summary, every_file_handled=not others and not summary.errors),
          file=sys.stderr)

    command = args.command_line if args.merge else f"{args.command_line} --merge"
    finish = f"To export the other {others} as well" if others else "To write complete manifests"
    print(f"{finish}, run the same command again with --merge, which keeps the files exported "
          f"so far and writes new manifests beside these: {command}", file=sys.stderr)


def _partial_manifests(summary: ExportSummary, every_file_handled: bool) -> str:
    """Return a sentence on the manifests that a stopped export wrote."""
    csv_path, json_path = summary.manifest_csv, summary.manifest_json
    if every_file_handled and csv_path is not None and json_path is None:
        # The stop came while the JSON manifest was written, after every file.
        return (f"Every file was handled and the CSV manifest, {csv_path}, lists them all, "
                "but the export was stopped while its JSON manifest was written.")
    if csv_path is not None and json_path is not None:
        return (f"The manifests of this partial export, {csv_path} and {json_path}, list only "
                f"the files handled before the stop; {json_path.name} says \"complete\": false.")
    if csv_path is not None:
        # A second stop came while the JSON manifest was written.
        return (f"Only the CSV manifest of this partial export, {csv_path}, was written; it "
                "lists only the files handled before the stop.")
    return "No manifest of this partial export was written."


def review_threshold(store: ReviewStore, model: ReferenceModel,
                     choice: float | str | None) -> float:
    """Store a --threshold choice for the folder and model, and return the threshold in use."""
    if choice == "calibrated":
        store.set_threshold_choice(model.fingerprint, None)
    elif isinstance(choice, float):
        store.set_threshold_choice(model.fingerprint, choice)
    return store.threshold_for(model.fingerprint, model.threshold)


def report_failures(errors: list[str], failure: str, count: int | None = None) -> int:
    """Print how many files failed, such as "could not be moved", and return the exit code.

    `count` is the number of files that failed, where it differs from that of `errors`.
    """
    if not errors:
        return EXIT_OK
    failed = len(errors) if count is None else count
    print(f"{counted(failed, 'file')} {failure}; the reasons are listed above.", file=sys.stderr)
    return EXIT_FAILED

