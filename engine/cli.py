"""Headless command line: its parser and the train, score and evaluate commands.

The commands that move or export files, move-rejects, undo and export, are in
engine.cli_moves.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import math
import operator
import os
import shlex
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from engine import evaluation
from engine.autoencoder import MAX_LATENT_SIZE
from engine.calibration import DEFAULT_TARGET_FRR
from engine.cli_folder import (
    EXIT_BAD_MODEL,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    open_review,
    scan,
)
from engine.cli_moves import run_export, run_move_rejects, run_undo
from engine.framing import Framing
from engine.images import log_decoder_warnings
from engine.interrupts import StopSignals
from engine.invocation import COMMANDS, program_name, unknown_command_message
from engine.manifest import REVIEW_COLUMNS, file_sha256, review_row
from engine.modelcard import card_path, write_card
from engine.modelfile import ModelFileError, ReferenceModel, load_model, save_model
from engine.names import folder_problem
from engine.records import Location
from engine.resources import DEFAULT_MODEL_PATH
from engine.review import ReviewStore
from engine.signals import SIGNALS
from engine.training import (
    MAX_SEED,
    MIN_SPLIT_IMAGES,
    EpochReport,
    TrainingData,
    TrainingOptions,
    load_folder,
    load_retinamnist,
    minimum_images,
    train_model,
)

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


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog=program_name(),
        description="Find images that do not belong in a folder of retina photographs.",
    )
    common = argparse.ArgumentParser(add_help=False)
    add_log_level(common)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", parents=[common], help="train and calibrate a reference model"
    )
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--medmnist-root", type=Path,
                        help="folder that contains retinamnist.npz (nothing is downloaded)")
    source.add_argument("--folder", type=Path,
                        help="folder of known-good images of any kind, read recursively")
    train.add_argument("--out", type=Path, required=True, help="model file to write")
    defaults = TrainingOptions()
    train.add_argument("--overwrite", action="store_true",
                       help="replace an existing model file and model card")
    train.add_argument("--epochs", type=positive_int, default=defaults.epochs,
                       help="passes over the training images (default %(default)s)")
    train.add_argument("--latent", type=latent_size_value, default=defaults.latent_size,
                       help=f"width of the autoencoder bottleneck, 1 to {MAX_LATENT_SIZE} "
                            "(default %(default)s)")
    train.add_argument("--seed", type=seed_value, default=defaults.seed,
                       help=f"random seed from 0 to {MAX_SEED}; the same seed gives the "
                            "same model (default %(default)s)")
    train.add_argument("--target-frr", type=target_rate, default=DEFAULT_TARGET_FRR,
                       help="share of clean images the threshold may flag "
                            "(default %(default)s)")

    score = commands.add_parser("score", parents=[common], help="score a folder into a CSV file")
    score.add_argument("folder", type=Path, help="folder of images, read recursively")
    score.add_argument("--csv", type=Path, required=True,
                       help="CSV file to write, outside the folder")
    score.add_argument("--overwrite", action="store_true",
                       help="replace the CSV file if it exists")
    add_model_option(score)
    score.add_argument("--threshold", type=parse_threshold_choice,
                       help="flag scores above this value, or 'calibrated' for the "
                            "model's calibrated threshold, for this output only "
                            "(default: the folder's chosen threshold, else the "
                            "calibrated one)")

    evaluate = commands.add_parser(
        "evaluate", parents=[common], help="measure detection on a data folder"
    )
    evaluate.add_argument("--data-root", type=Path, required=True,
                          help="folder with medmnist/, blood/, fundus/ and other/")
    evaluate.add_argument("--json", type=Path, help="also write the results to this file")
    evaluate.add_argument("--overwrite", action="store_true",
                          help="replace the JSON file if it exists")
    evaluate.add_argument("--card", action="store_true",
                          help="also write the results into the model card (<model>.md) "
                               "and into <model>.evaluation.json beside the model file; "
                               "needs --model")
    # No default path, so that --card can tell whether the user named the model.
    evaluate.add_argument("--model", type=Path,
                          help="model file (default: the bundled retina model)")
    add_review_commands(commands, common)
    return parser


def positive_int(text: str) -> int:
    """Parse a whole number of at least 1 for argparse."""
    return whole_number(text, 1)


def latent_size_value(text: str) -> int:
    """Parse a bottleneck width that a model file can have, 1 to MAX_LATENT_SIZE, for argparse."""
    return whole_number(text, 1, MAX_LATENT_SIZE)


def seed_value(text: str) -> int:
    """Parse a random seed from 0 to MAX_SEED, the range torch and numpy both take, for argparse."""
    return whole_number(text, 0, MAX_SEED)


def whole_number(text: str, minimum: int, maximum: int | None = None) -> int:
    """Parse a whole number from `minimum` to `maximum` (None: no maximum) for argparse.

    Raises argparse.ArgumentTypeError, which argparse turns into exit code 2 before
    any work.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}: pass a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"invalid value {value}: pass {minimum} or more")
    if maximum is not None and value > maximum:
        raise argparse.ArgumentTypeError(f"invalid value {value}: pass {maximum} or less")
    return value


def target_rate(text: str) -> float:
    """Parse a target false-reject rate for argparse.

    The rate must be strictly between 0 and 1, and its share for each signal
    (rate / len(SIGNALS), as training calibrates them) must not round to 0.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid rate {text!r}: pass a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"invalid rate {value}: pass a value between 0 and 1")
    if value / len(SIGNALS) == 0.0:
        raise argparse.ArgumentTypeError(
            f"invalid rate {value}: its share for each of the {len(SIGNALS)} signals rounds "
            "to 0. Pass a larger rate")
    return value


def add_review_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add move-rejects, undo and export, which work on a folder's review state."""
    move = commands.add_parser(
        "move-rejects", parents=[common],
        help="move every file whose final decision is reject into a quarantine folder",
    )
    move.add_argument("folder", type=Path, help="reviewed folder")
    move.add_argument("--to", type=Path, dest="destination",
                      help="quarantine folder (default: <folder>_rejected beside the folder)")
    add_model_option(move)
    add_threshold_choice(move)

    undo = commands.add_parser(
        "undo", parents=[common], help="move the files of the last move batch back"
    )
    undo.add_argument("folder", type=Path, help="reviewed folder")
    undo.add_argument("--forget-missing", action="store_true",
                      help="record the batch's files that are in neither place as gone, "
                           "also when none of them is in the quarantine folder")

    export = commands.add_parser(
        "export", parents=[common],
        help="copy the kept files to a folder, with manifest.csv and manifest.json",
    )
    export.add_argument("folder", type=Path, help="reviewed folder")
    export.add_argument("--to", type=Path, dest="destination", required=True,
                        help="destination folder; it must be empty unless --merge is given")
    export.add_argument("--merge", action="store_true",
                        help="export into a non-empty folder; existing files are never "
                             "overwritten")
    export.add_argument("--link", action="store_true",
                        help="hard-link instead of copying where the destination is on the "
                             "same file system")
    add_model_option(export)
    add_threshold_choice(export)


def add_threshold_choice(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threshold", type=parse_threshold_choice,
        help="flag scores above this value and keep it as the folder's threshold for the "
             "model, or 'calibrated' for the model's calibrated threshold (default: the "
             "folder's chosen threshold, else the calibrated one)",
    )


def parse_threshold_choice(text: str) -> float | str:
    """Return a threshold value, or the word "calibrated"."""
    if text == "calibrated":
        return text
    return threshold_value(text)


def threshold_value(text: str) -> float:
    """Parse a finite threshold of at least 0 for argparse."""
    try:
        # Adding 0.0 turns -0 into 0, which the CSV would otherwise print as "-0".
        value = float(text) + 0.0
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid threshold {text!r}: pass a number or 'calibrated'"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(
            f"invalid threshold {text!r}: pass a finite number of at least 0"
        )
    return value


def add_log_level(parser: argparse.ArgumentParser) -> None:
    """Add the --log-level option shared by the window and the command line."""
    parser.add_argument("--log-level", default="WARNING",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        help="messages shown on stderr (default %(default)s)")


def add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH,
                        help="model file (default: the bundled retina model)")


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


def run_train(args: argparse.Namespace) -> int:
    problem = _train_output_problem(args.out, args.overwrite)
    if problem:
        print(f"Training failed: {problem}", file=sys.stderr)
        return EXIT_FAILED
    framing = Framing()
    options = TrainingOptions(
        epochs=args.epochs, latent_size=args.latent, seed=args.seed, target_frr=args.target_frr,
    )
    data = _training_data(args, framing)
    if data is None:
        return EXIT_FAILED
    minimum = minimum_images(options.calibration_fraction)
    if len(data.images) < minimum:
        source = args.folder if args.folder is not None else args.medmnist_root
        print(f"Training failed: {source} holds {len(data.images)} usable images, and a model "
              f"needs at least {minimum} usable images, because "
              f"{100 * options.calibration_fraction:g} % are held out to set the threshold "
              f"and both parts need {MIN_SPLIT_IMAGES} or more.",
              file=sys.stderr)
        return EXIT_FAILED
    with tqdm(total=options.epochs, unit="epoch", file=sys.stderr) as bar:
        def report(epoch: EpochReport) -> None:
            bar.set_postfix(train=f"{epoch.train_loss:.5f}", val=f"{epoch.validation_loss:.5f}")
            bar.update(1)

        try:
            model = train_model(data, framing, options, progress=report)
        except ValueError as error:
            failure = f"Training failed: {error}."
        else:
            failure = ""
    # Printed once the progress bar is closed, so the message has a line of its own.
    if failure:
        print(failure, file=sys.stderr)
        return EXIT_FAILED
    model.training["command"] = args.command_line
    try:
        save_model(model, args.out)
        write_card(model, args.out, args.command_line)
    except OSError as error:
        print(f"Training failed: {_write_failure(args.out, error)}.", file=sys.stderr)
        return EXIT_FAILED
    thresholds = ", ".join(f"{name} {value:.4g}"
                           for name, value in model.signal_thresholds.items())
    print(f"Saved {args.out}: thresholds {thresholds}; "
          f"trained in {model.training['seconds']} s")
    return EXIT_OK


def _training_data(args: argparse.Namespace, framing: Framing) -> TrainingData | None:
    """Read the training images the options name, or print why that failed."""
    if args.medmnist_root is not None:
        try:
            return load_retinamnist(args.medmnist_root, framing)
        except FileNotFoundError as error:
            print(f"Training failed: {error}. Pass the folder that contains it.",
                  file=sys.stderr)
            return None
    if args.folder.exists() and not args.folder.is_dir():
        print(f"Training failed: {args.folder} is not a folder. Pass a folder of images.",
              file=sys.stderr)
        return None
    try:
        # load_folder logs each skipped file with its status as a warning.
        data, _ = load_folder(args.folder, framing)
    except OSError as error:
        print(f"Training failed: cannot list {args.folder}: {error.strerror or error}.",
              file=sys.stderr)
        return None
    return data


def _train_output_problem(out: Path, overwrite: bool) -> str:
    """Return why `out` cannot take a new model and its card, or an empty string."""
    if out.suffix != ".safetensors":
        return f"{out} must end in .safetensors, the model file format."
    for path in (out, card_path(out)):
        problem = _existing_output_problem(path, overwrite)
        if problem:
            return problem
    return _unwritable_folder(out)


def _csv_output_problem(csv_path: Path, folder: Path, overwrite: bool) -> str:
    """Return why the score CSV cannot be written to `csv_path`, or an empty string."""
    if csv_path.resolve().is_relative_to(folder.resolve()):
        return f"{csv_path} is inside the scored folder. Write the CSV elsewhere."
    return _existing_output_problem(csv_path, overwrite) or _unwritable_folder(csv_path)


def _existing_output_problem(path: Path, overwrite: bool) -> str:
    """Return why what is at the output `path` now cannot be replaced, or an empty string.

    Outputs are written beside and moved into place, which would put a regular
    file where a device or a pipe was: `--csv /dev/null` run as root would
    replace the device.
    """
    if path.is_dir():
        return f"{path} is a folder. Pass a file path."
    if path.exists() and not path.is_file():
        return f"{path} is not a regular file (a device, a pipe or a socket). Pass a file path."
    # lexists: a broken link is there too, and writing would replace it.
    if os.path.lexists(path) and not overwrite:
        return f"{path} exists. Pass --overwrite to replace it, or another path."
    return ""


def _unwritable_folder(path: Path) -> str:
    """Return why no file can be written beside `path`, or an empty string.

    Creates the missing parent folders of `path`, as writing it would. Checked
    before the work, so that a read-only destination fails at once rather than
    after scoring a whole folder or training a model.
    """
    problem = folder_problem(path.parent)
    if problem:
        return f"{problem}. Choose another path."
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as error:
        return f"cannot write to {path.parent}: {error.strerror or error}. Choose another path."
    return ""


def _write_failure(path: Path, error: OSError) -> str:
    return f"cannot write {path}: {error.strerror or error}"


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
        if not scan(store, model, threshold, "Scoring"):
            return EXIT_FAILED
        try:
            _write_scores(store, model, threshold, args.csv)
        except OSError as error:
            print(f"Scoring failed: {_write_failure(args.csv, error)}.", file=sys.stderr)
            return EXIT_FAILED
    return EXIT_OK


def _write_scores(store: ReviewStore, model: ReferenceModel, threshold: float,
                  csv_path: Path) -> None:
    """Write the score CSV of the files in the store's folder. Raises OSError on failure."""
    fingerprint = model.fingerprint
    model_label = f"{model.name}:{fingerprint}"
    signal_thresholds = model.signal_thresholds
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    # File names that are not valid UTF-8 are written with backslash escapes.
    with atomic_text_file(csv_path, errors="backslashreplace") as stream:
        # csv.DictWriter checks the keys of every row, so writing 8000 rows of 20
        # columns took 28 ms with it and 17 ms with csv.writer and a list.
        writer = csv.writer(stream)
        writer.writerow(SCORE_COLUMNS)
        in_order = operator.itemgetter(*SCORE_COLUMNS)
        for record in store.iter_records(fingerprint):
            if record.location is not Location.FOLDER:
                continue
            row = review_row(record, threshold, fingerprint, file_sha256(store, record),
                             signal_thresholds)
            row["flagged"] = ("" if record.score is None
                              else "true" if record.score > threshold else "false")
            row["model"] = model_label
            writer.writerow(in_order(row))


@contextlib.contextmanager
def atomic_text_file(path: Path, errors: str = "strict") -> Iterator[TextIO]:
    """Write a UTF-8 text file beside `path` and move it into place only when complete."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8", errors=errors) as stream:
            yield stream
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def run_evaluate(args: argparse.Namespace, model: ReferenceModel) -> int:
    problem = (_existing_output_problem(args.json, args.overwrite)
               or _unwritable_folder(args.json)) if args.json else ""
    if problem:
        print(f"Evaluation failed: {problem}", file=sys.stderr)
        return EXIT_FAILED
    try:
        # Checked before the progress bar appears, so that a wrong path gives one line.
        evaluation.check_data_root(args.data_root)
    except OSError as error:
        print(f"Evaluation failed: {error}.", file=sys.stderr)
        return EXIT_FAILED
    with tqdm(total=len(evaluation.ALL_SOURCES), unit="source", file=sys.stderr) as bar:
        try:
            results = list(evaluation.evaluate(
                model, args.data_root,
                progress=lambda name: bar.set_description(name) or bar.update(1)
            ))
        except (FileNotFoundError, NotADirectoryError) as error:
            failure = f"Evaluation failed: {error}."
        else:
            failure = ""
    # Printed once the progress bar is closed, so the message has a line of its own.
    if failure:
        print(failure, file=sys.stderr)
        return EXIT_FAILED
    print(f"Model {model.name} ({model.fingerprint}), threshold {model.threshold:.6g}\n")
    print(evaluation.format_table(results))
    measured = {result.source.name for result in results}
    missing = [source.name for source in evaluation.ALL_SOURCES if source.name not in measured]
    if missing:
        print(f"Left out {len(missing)} sources not found under {args.data_root}: "
              f"{', '.join(missing)}.", file=sys.stderr)
    try:
        if args.json:
            payload = {
                "model": model.name,
                "fingerprint": model.fingerprint,
                "threshold": model.threshold,
                "signal_thresholds": model.signal_thresholds,
                "sources": [result.to_dict() for result in results],
            }
            args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        if args.card:
            command = model.training.get("command", "unknown")
            write_card(model, args.model, command, results, args.command_line)
    except OSError as error:
        path = args.json if args.json else card_path(args.model)
        print(f"Evaluation failed: {_write_failure(path, error)}.", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
