"""Model cards: a Markdown description written next to every model file."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from engine.evaluation import SourceResult, format_table
from engine.invocation import CLI_ENTRY_POINT
from engine.modelfile import ReferenceModel
from engine.signals import DESCRIPTIONS, MIN_COLOUR_THRESHOLD, SIGNALS

logger = logging.getLogger(__name__)


def card_path(model_path: Path) -> Path:
    """Return the card's path: the model file's with the suffix `.md`."""
    return model_path.with_suffix(".md")


def evaluation_path(model_path: Path) -> Path:
    """Return where the card's evaluation results are kept as JSON."""
    return model_path.with_suffix(".evaluation.json")


def write_card(
    model: ReferenceModel,
    model_path: Path,
    train_command: str,
    results: list[SourceResult] | None = None,
    evaluate_command: str = "",
) -> Path:
    """Write the Markdown card of the model saved at `model_path` and return its path.

    With `results`, the card gets the evaluation table and the results are also
    written as JSON beside it, so tests can check that the model reproduces them.
    """
    training = model.training
    calibration = model.calibration
    limited = [name for name, signal in model.signals.items() if signal.limited_by_sample]
    lines = [
        f"# Model card: {model_path.name}",
        "",
        "A convolutional autoencoder that reconstructs images like its training data.",
        "An image is flagged as not belonging when its reconstruction error, its",
        "distance to the training images in the autoencoder's code space, or its",
        "colour statistics lie beyond what the held-out training images reach.",
        "",
        "| | |",
        "|---|---|",
        f"| fingerprint | `{model.fingerprint}` |",
        f"| training data | {training.get('data', 'unknown')} |",
        f"| training data SHA-256 | `{training.get('fingerprint', 'unknown')}` |",
        f"| images trained on / held out for calibration | "
        f"{training.get('n_train', '?')} / {training.get('n_calibration', '?')} |",
        f"| seed, epochs | {training.get('seed', '?')}, {training.get('epochs', '?')} |",
        f"| training time | {training.get('seconds', '?')} s |",
        f"| architecture | {_describe(model.autoencoder.config.to_dict())} |",
        f"| framing | {_describe(model.framing.to_dict())} |",
        *(f"| {name} threshold | {signal.threshold:.6g} ({DESCRIPTIONS[name]}) |"
          for name, signal in model.signals.items()),
        f"| target false-reject rate | {100 * calibration.target_frr:g} % of clean images, "
        f"{100 * calibration.target_frr / max(1, len(model.signals)):.2g} % for each signal"
        f"{_sample_note(calibration.clean_scores.size) if limited else ''} |",
        f"| created | {training.get('created', 'unknown')} |",
        "",
        "## How it was made",
        "",
        *_command_block(train_command),
    ]
    if results is not None:
        lines += [
            "",
            "## Evaluation",
            "",
            "Share of each source flagged at the calibrated thresholds, how many images",
            "each signal flags on its own, and the AUROC of the combined score against",
            "RetinaMNIST test: 1.0 is best for a non-retina source, 0.5 for a retina",
            "source, which the model should not tell apart.",
            "",
            "```sh",
            evaluate_command,
            "```",
            "",
            format_table(results),
        ]
        payload: dict[str, Any] = {
            "fingerprint": model.fingerprint,
            "threshold": calibration.threshold,
            "signal_thresholds": model.signal_thresholds,
            "sources": [result.to_dict() for result in results],
        }
        evaluation_path(model_path).write_text(
            json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    path = card_path(model_path)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    logger.info("wrote model card %s", path)
    return path


def _sample_note(size: int) -> str:
    return (
        f"; {size} held-out images are too few for that rate, so each signal's threshold "
        f"is its largest held-out value (the colour threshold at least "
        f"{MIN_COLOUR_THRESHOLD:g}), which about 1 in {size + 1} new clean images "
        f"exceed, and up to {len(SIGNALS)} in {size + 1} exceed one of the "
        f"{len(SIGNALS)} thresholds"
    )


def _command_block(command: str) -> list[str]:
    """Return a shell block for a command line, and plain text for anything else."""
    if command.startswith(("python ", f"{CLI_ENTRY_POINT} ")):
        return ["```sh", command, "```"]
    return [command]


def _describe(values: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in values.items())
