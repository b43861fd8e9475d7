"""The train and evaluate commands, which make a reference model and measure it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from engine import evaluation
from engine.cli_folder import EXIT_FAILED, EXIT_OK
from engine.cli_output import existing_output_problem, unwritable_folder, write_failure
from engine.framing import Framing
from engine.modelcard import card_path, write_card
from engine.modelfile import ReferenceModel, save_model
from engine.training import (
    MIN_SPLIT_IMAGES,
    EpochReport,
    TrainingData,
    TrainingOptions,
    load_folder,
    load_retinamnist,
    minimum_images,
    train_model,
)


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
        print(f"Training failed: {write_failure(args.out, error)}.", file=sys.stderr)
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
        problem = existing_output_problem(path, overwrite)
        if problem:
            return problem
    return unwritable_folder(out)


def run_evaluate(args: argparse.Namespace, model: ReferenceModel) -> int:
    problem = (existing_output_problem(args.json, args.overwrite)
               or unwritable_folder(args.json)) if args.json else ""
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
        print(f"Evaluation failed: {write_failure(path, error)}.", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
