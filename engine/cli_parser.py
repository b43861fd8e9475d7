"""The command line's argument parser, with the checks of its option values."""

from __future__ import annotations

import argparse
import math
import textwrap
from pathlib import Path

from engine.autoencoder import MAX_LATENT_SIZE
from engine.calibration import DEFAULT_TARGET_FRR
from engine.invocation import program_name
from engine.resources import DEFAULT_MODEL_PATH
from engine.signals import SIGNALS
from engine.training import MAX_SEED, TrainingOptions


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help layout, with lines broken at spaces only.

    argparse's own breaks a word at its hyphen, such as move-rejects at the end
    of a line, and a command split in two can no longer be copied.
    """

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return textwrap.fill(" ".join(text.split()), width, initial_indent=indent,
                             subsequent_indent=indent, break_on_hyphens=False)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog=program_name(), formatter_class=HelpFormatter,
        description="Find images that do not belong in a folder of retina photographs.",
    )
    common = argparse.ArgumentParser(add_help=False)
    add_log_level(common)
    commands = parser.add_subparsers(dest="command", required=True)

    train = _add_command(
        commands, common, "train",
        help="train and calibrate a reference model",
        description="Train the autoencoder on known-good images and calibrate each signal's "
                    "threshold on a held-out share of them. Writes the model file and a "
                    "model card (the same name ending in .md) beside it.",
    )
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--medmnist-root", type=Path, metavar="FOLDER",
                        help="folder that contains retinamnist.npz (nothing is downloaded)")
    source.add_argument("--folder", type=Path, metavar="FOLDER",
                        help="folder of known-good images of any kind, read recursively")
    train.add_argument("--out", type=Path, required=True, metavar="FILE",
                       help="model file to write")
    defaults = TrainingOptions()
    train.add_argument("--overwrite", action="store_true",
                       help="replace an existing model file and model card")
    train.add_argument("--epochs", type=positive_int, default=defaults.epochs, metavar="N",
                       help="passes over the training images (default %(default)s)")
    train.add_argument("--latent", type=latent_size_value, default=defaults.latent_size,
                       metavar="N",
                       help=f"width of the autoencoder bottleneck, 1 to {MAX_LATENT_SIZE} "
                            "(default %(default)s)")
    train.add_argument("--seed", type=seed_value, default=defaults.seed, metavar="N",
                       help=f"random seed from 0 to {MAX_SEED}; the same seed gives the "
                            "same model (default %(default)s)")
    train.add_argument("--target-frr", type=target_rate, default=DEFAULT_TARGET_FRR,
                       metavar="SHARE",
                       help="share of clean images the threshold may flag "
                            "(default %(default)s)")

    score = _add_command(
        commands, common, "score",
        help="score a folder into a CSV file",
        description="Score every image under FOLDER and write a CSV row for each file, "
                    "with its status, score, signals and decisions, and for each subfolder "
                    "that could not be read. Scores are kept in the folder's review "
                    "database, so a second run scores only new or changed files.",
    )
    score.add_argument("folder", type=Path, metavar="FOLDER",
                       help="folder of images, read recursively")
    score.add_argument("--csv", type=Path, required=True, metavar="FILE",
                       help="CSV file to write, outside the folder")
    score.add_argument("--overwrite", action="store_true",
                       help="replace the CSV file if it exists")
    add_model_option(score)
    score.add_argument("--threshold", type=parse_threshold_choice, metavar="VALUE",
                       help="flag scores above this value, or 'calibrated' for the "
                            "model's calibrated threshold, for this output only "
                            "(default: the folder's chosen threshold, else the "
                            "calibrated one)")

    evaluate = _add_command(
        commands, common, "evaluate",
        help="measure detection on a data folder",
        description="Score each source of a data folder (retina photos, blood cells, other "
                    "modalities) and generated hard cases. For each, print the share of "
                    "images flagged and the AUROC against the RetinaMNIST test images.",
    )
    evaluate.add_argument("--data-root", type=Path, required=True, metavar="FOLDER",
                          help="folder with medmnist/, blood/, fundus/ and other/")
    evaluate.add_argument("--json", type=Path, metavar="FILE",
                          help="also write the results to this file")
    evaluate.add_argument("--overwrite", action="store_true",
                          help="replace the JSON file if it exists")
    evaluate.add_argument("--card", action="store_true",
                          help="also write the results into the model card (<model>.md) "
                               "and into <model>.evaluation.json beside the model file; "
                               "needs --model")
    # No default path, so that --card can tell whether the user named the model.
    evaluate.add_argument("--model", type=Path, metavar="FILE",
                          help="model file (default: the bundled retina model)")
    add_review_commands(commands, common)
    return parser


def _add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser],
                 common: argparse.ArgumentParser, name: str, *, help: str,
                 description: str) -> argparse.ArgumentParser:
    """Add the sub-command `name` with the options of `common` and HelpFormatter's layout."""
    return commands.add_parser(name, parents=[common], formatter_class=HelpFormatter,
                               help=help, description=description)


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
    move = _add_command(
        commands, common, "move-rejects",
        help="move every file whose final decision is reject into a quarantine folder",
        description="Score FOLDER through its cache, then move every file whose final "
                    "decision is reject into a quarantine folder under the same relative "
                    "path, as one batch. Nothing is deleted or overwritten, and `undo` "
                    "moves the batch back.",
    )
    move.add_argument("folder", type=Path, metavar="FOLDER", help="reviewed folder")
    move.add_argument("--to", type=Path, dest="destination", metavar="DEST",
                      help="quarantine folder (default: <folder>_rejected beside the folder)")
    add_model_option(move)
    add_threshold_choice(move)

    undo = _add_command(
        commands, common, "undo",
        help="move the files of the last move batch back",
        description="Move the files of the newest move-rejects batch of FOLDER back from "
                    "the quarantine folder to their original paths. Run it again to undo "
                    "the batch before.",
    )
    undo.add_argument("folder", type=Path, metavar="FOLDER", help="reviewed folder")
    undo.add_argument("--forget-missing", action="store_true",
                      help="record the batch's files that are in neither place as gone, "
                           "also when none of them is in the quarantine folder")

    export = _add_command(
        commands, common, "export",
        help="copy the kept files to a folder, with manifest.csv and manifest.json",
        description="Score FOLDER through its cache, then copy every file whose final "
                    "decision is keep into the destination under the same relative path. "
                    "manifest.csv and manifest.json list every reviewed file with its "
                    "checksum, score, signals and decisions, and whether it was exported.",
    )
    export.add_argument("folder", type=Path, metavar="FOLDER", help="reviewed folder")
    export.add_argument("--to", type=Path, dest="destination", required=True, metavar="DEST",
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
        "--threshold", type=parse_threshold_choice, metavar="VALUE",
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
                        help="lowest level of log messages written to stderr "
                             "(default: %(default)s)")


def add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH, metavar="FILE",
                        help="model file (default: the bundled retina model)")
