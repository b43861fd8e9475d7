"""Headless command line: train, score and evaluate without a window."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from engine import evaluation
from engine.calibration import DEFAULT_TARGET_FRR
from engine.framing import Framing
from engine.images import list_images
from engine.modelcard import write_card
from engine.modelfile import ModelFileError, ReferenceModel, load_model, save_model
from engine.resources import DEFAULT_MODEL_PATH
from engine.scoring import score_files
from engine.training import EpochReport, TrainingOptions, load_retinamnist, train_model

logger = logging.getLogger(__name__)

COMMANDS = ("train", "score", "evaluate")
SCORE_COLUMNS = ("path", "status", "detail", "score", "flagged", "threshold", "model")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_MODEL = 2


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="retina-curator-cli",
        description="Find images that do not belong in a folder of retina photographs.",
    )
    common = argparse.ArgumentParser(add_help=False)
    add_log_level(common)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", parents=[common], help="train and calibrate a reference model"
    )
    train.add_argument("--medmnist-root", type=Path, required=True,
                       help="folder that contains retinamnist.npz (nothing is downloaded)")
    train.add_argument("--out", type=Path, required=True, help="model file to write")
    defaults = TrainingOptions()
    train.add_argument("--epochs", type=int, default=defaults.epochs,
                       help="passes over the training images (default %(default)s)")
    train.add_argument("--latent", type=int, default=defaults.latent_size,
                       help="width of the autoencoder bottleneck (default %(default)s)")
    train.add_argument("--seed", type=int, default=defaults.seed,
                       help="random seed; the same seed gives the same model")
    train.add_argument("--target-frr", type=float, default=DEFAULT_TARGET_FRR,
                       help="share of clean images the threshold may flag "
                            "(default %(default)s)")

    score = commands.add_parser("score", parents=[common], help="score a folder into a CSV file")
    score.add_argument("folder", type=Path, help="folder of images, read recursively")
    score.add_argument("--csv", type=Path, required=True, help="CSV file to write")
    add_model_option(score)
    score.add_argument("--threshold", type=float,
                       help="flag scores above this value (default: the model's calibrated one)")

    evaluate = commands.add_parser(
        "evaluate", parents=[common], help="measure detection on a data folder"
    )
    evaluate.add_argument("--data-root", type=Path, required=True,
                          help="folder with medmnist/, blood/, fundus/ and other/")
    evaluate.add_argument("--json", type=Path, help="also write the results to this file")
    evaluate.add_argument("--card", action="store_true",
                          help="also write the results into the model card beside the model")
    add_model_option(evaluate)
    return parser


def add_log_level(parser: argparse.ArgumentParser) -> None:
    """Add the --log-level option shared by the window and the command line."""
    parser.add_argument("--log-level", default="WARNING",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        help="messages shown on stderr (default %(default)s)")


def add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH,
                        help="model file (default: the bundled retina model)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command and return the process exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(arguments)
    args.command_line = "python main.py " + shlex.join(arguments)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "train":
        return run_train(args)
    try:
        model = load_model(args.model)
    except ModelFileError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_MODEL
    if args.command == "score":
        return run_score(args, model)
    return run_evaluate(args, model)


def run_train(args: argparse.Namespace) -> int:
    framing = Framing()
    options = TrainingOptions(
        epochs=args.epochs, latent_size=args.latent, seed=args.seed, target_frr=args.target_frr,
    )
    try:
        data = load_retinamnist(args.medmnist_root, framing)
    except FileNotFoundError as error:
        print(f"Training failed: {error}. Pass the folder that contains it.", file=sys.stderr)
        return EXIT_FAILED
    with tqdm(total=options.epochs, unit="epoch", file=sys.stderr) as bar:
        def report(epoch: EpochReport) -> None:
            bar.set_postfix(train=f"{epoch.train_loss:.5f}", val=f"{epoch.validation_loss:.5f}")
            bar.update(1)

        model = train_model(data, framing, options, progress=report)
    model.training["command"] = args.command_line
    save_model(model, args.out)
    write_card(model, args.out, args.command_line)
    print(f"Saved {args.out}: threshold {model.threshold:.6g}, "
          f"trained in {model.training['seconds']} s")
    return EXIT_OK


def run_score(args: argparse.Namespace, model: ReferenceModel) -> int:
    folder: Path = args.folder
    if not folder.is_dir():
        print(f"Scoring failed: {folder} is not a folder.", file=sys.stderr)
        return EXIT_FAILED
    try:
        paths = list_images(folder)
    except OSError as error:
        print(f"Scoring failed: cannot list {folder}: {error.strerror}.", file=sys.stderr)
        return EXIT_FAILED
    threshold = model.threshold if args.threshold is None else args.threshold
    model_label = f"{model.name}:{model.fingerprint}"
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(SCORE_COLUMNS)
        results = score_files(model, folder, paths, threshold)
        for item in tqdm(results, total=len(paths), unit="image", file=sys.stderr):
            writer.writerow((
                item.relative_path, item.status.value, item.detail,
                "" if item.score is None else f"{item.score:.8g}",
                "" if item.flagged is None else str(item.flagged).lower(),
                f"{threshold:.8g}", model_label,
            ))
    return EXIT_OK


def run_evaluate(args: argparse.Namespace, model: ReferenceModel) -> int:
    bar = tqdm(total=len(evaluation.SOURCES), unit="source", file=sys.stderr)
    try:
        results = list(evaluation.evaluate(
            model, args.data_root, progress=lambda name: bar.set_description(name) or bar.update(1)
        ))
    except FileNotFoundError as error:
        print(f"Evaluation failed: {error}.", file=sys.stderr)
        return EXIT_FAILED
    finally:
        bar.close()
    print(f"Model {model.name} ({model.fingerprint}), threshold {model.threshold:.6g}\n")
    print(evaluation.format_table(results))
    if args.json:
        payload = {
            "model": model.name,
            "fingerprint": model.fingerprint,
            "threshold": model.threshold,
            "sources": [result.to_dict() for result in results],
        }
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    if args.card:
        command = model.training.get("command", "unknown")
        write_card(model, args.model, command, results, args.command_line)
    return EXIT_OK
