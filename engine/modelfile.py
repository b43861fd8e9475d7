"""Reference model files: weights, framing and calibration in one safetensors file."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from engine.autoencoder import AutoencoderConfig, ConvAutoencoder
from engine.calibration import Calibration
from engine.framing import Framing
from engine.signals import COLOUR_FEATURES, SIGNALS, SignalReference

logger = logging.getLogger(__name__)

FORMAT_NAME = "retina-curator-model"
FORMAT_VERSION = 3
_METADATA_KEY = "retina_curator"
_WEIGHTS_PREFIX = "autoencoder."
_CLEAN_SCORES_KEY = "calibration.clean_scores"
_SIGNAL_SCORES_KEY = "calibration.{}.clean_scores"
_REFERENCE_KEYS = ("codes", "code_scale", "colour_low", "colour_high")
# torch.save writes a zip archive. Its legacy format, and plain pickles of protocol
# 2 or later, start with the PROTO opcode (0x80).
_PICKLE_STARTS = (b"PK\x03\x04", b"\x80")
# The largest header in bytes that safetensors 0.8 reads. Longer ones fail with
# "header too large".
_MAX_HEADER_BYTES = 100_000_000


class ModelFileError(Exception):
    """A model file that cannot be used. The message states why and what to do next."""


@dataclass
class ReferenceModel:
    """A trained autoencoder with everything needed to score images as it was trained.

    `calibration` is that of the combined score (engine.signals), whose calibrated
    threshold is 1; `signals` contains the calibration of each signal and `reference`
    what the latent and colour signals compare with. `training` describes the data
    (`data`, `fingerprint`, counts, `seed`, `epochs`, `created`); `metrics` contains
    evaluation results; `fingerprint` identifies the weights and calibration and keys
    cached scores.
    """

    autoencoder: ConvAutoencoder
    framing: Framing
    calibration: Calibration
    signals: dict[str, Calibration] = field(default_factory=dict)
    reference: SignalReference | None = None
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    name: str = "unsaved model"
    path: Path | None = None

    @property
    def fingerprint(self) -> str:
        """Return a 16-hex-digit digest of the weights, references and thresholds."""
        digest = hashlib.sha256()
        for key, tensor in sorted(self.autoencoder.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().numpy().tobytes())
        digest.update(repr(self.calibration.threshold).encode())
        digest.update(repr(self.signal_thresholds).encode())
        if self.reference is not None:
            for name in _REFERENCE_KEYS:
                digest.update(np.ascontiguousarray(getattr(self.reference, name)).tobytes())
        digest.update(json.dumps(self.framing.to_dict(), sort_keys=True).encode())
        return digest.hexdigest()[:16]

    @property
    def threshold(self) -> float:
        return self.calibration.threshold

    @property
    def signal_thresholds(self) -> dict[str, float]:
        """Return the calibrated threshold of each signal, by name."""
        return {name: calibration.threshold for name, calibration in self.signals.items()}


def save_model(model: ReferenceModel, path: Path) -> None:
    """Write `model` to `path` atomically: a crash never leaves half a file there."""
    tensors = {
        _WEIGHTS_PREFIX + key: value.detach().cpu().contiguous()
        for key, value in model.autoencoder.state_dict().items()
    }
    tensors[_CLEAN_SCORES_KEY] = torch.from_numpy(model.calibration.clean_scores.copy())
    for name, calibration in model.signals.items():
        tensors[_SIGNAL_SCORES_KEY.format(name)] = torch.from_numpy(
            calibration.clean_scores.copy())
    if model.reference is not None:
        for name in _REFERENCE_KEYS:
            tensors[f"reference.{name}"] = torch.from_numpy(
                np.ascontiguousarray(getattr(model.reference, name)))
    header = _description(model)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        save_file(tensors, temporary, metadata={_METADATA_KEY: json.dumps(header)})
        # mkstemp makes the file private to its owner, but a model is meant to be shared.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    model.path = path
    model.name = path.stem
    logger.info("saved model %s (%s)", path, model.fingerprint)


def _description(model: ReferenceModel) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "architecture": model.autoencoder.config.to_dict(),
        "framing": model.framing.to_dict(),
        "calibration": {
            "signal": "combined",
            "target_frr": model.calibration.target_frr,
            "threshold": model.calibration.threshold,
            "n_clean": int(model.calibration.clean_scores.size),
            "signals": {
                name: {"target_frr": calibration.target_frr, "threshold": calibration.threshold}
                for name, calibration in model.signals.items()
            },
        },
        "reference": {
            "neighbours": None if model.reference is None else model.reference.neighbours,
            "colour_features": list(COLOUR_FEATURES),
        },
        "training": model.training,
        "metrics": model.metrics,
    }


def load_model(path: Path) -> ReferenceModel:
    """Read a model file written by `save_model`, on the CPU.

    Only safetensors files are read, so opening a file never runs code from it.
    Raises ModelFileError naming the file, the problem and what to do next.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"Loading model {path} failed: it is a folder, not a model file. "
                             "Pass the path of a .safetensors model file.")
    if path.exists() and not path.is_file():
        # Reading a pipe would wait for a writer for ever.
        raise ModelFileError(f"Loading model {path} failed: it is not a regular file (a "
                             "device, a pipe or a socket). Pass the path of a .safetensors "
                             "model file.")
    header, tensors = _read_safetensors(path)
    try:
        config = AutoencoderConfig.from_dict(header["architecture"])
        framing = Framing.from_dict(header["framing"])
        threshold = float(header["calibration"]["threshold"])
        target_frr = float(header["calibration"]["target_frr"])
        clean_scores = tensors.pop(_CLEAN_SCORES_KEY).numpy().astype(np.float64)
        _check_calibration(config, framing, threshold, target_frr)
        signals = _signal_calibrations(header["calibration"]["signals"], tensors)
        arrays = {name: tensors.pop(f"reference.{name}").numpy() for name in _REFERENCE_KEYS}
        reference = SignalReference(
            arrays["codes"], arrays["code_scale"], arrays["colour_low"],
            arrays["colour_high"], neighbours=int(header["reference"]["neighbours"]),
        )
        _check_reference(config, reference)
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(
            f"Loading model {path} failed: its description is incomplete or invalid ({error}). "
            "Retrain the model or choose another file."
        ) from error

    autoencoder = ConvAutoencoder(config)
    weights = {
        key.removeprefix(_WEIGHTS_PREFIX): value
        for key, value in tensors.items() if key.startswith(_WEIGHTS_PREFIX)
    }
    _check_weights(path, autoencoder, weights)
    autoencoder.load_state_dict(weights)
    autoencoder.eval()
    model = ReferenceModel(
        autoencoder, framing, Calibration(target_frr, threshold, np.sort(clean_scores)),
        signals=signals, reference=reference, training=header.get("training", {}),
        metrics=header.get("metrics", {}), name=path.stem, path=path,
    )
    logger.info("loaded model %s (%s), threshold %.6g", path, model.fingerprint, threshold)
    return model


def _read_safetensors(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    try:
        tensors = load_file(str(path), device="cpu")
        with path.open("rb") as stream:
            header_size = int.from_bytes(stream.read(8), "little")
            raw_header = json.loads(stream.read(header_size))
    except FileNotFoundError as error:
        raise ModelFileError(f"Loading model {path} failed: the file does not exist.") from error
    except PermissionError as error:
        raise ModelFileError(f"Loading model {path} failed: permission denied.") from error
    except OSError as error:
        raise ModelFileError(f"Loading model {path} failed: {error.strerror or error}. "
                             "Check the disk, or copy the file again.") from error
    except (SafetensorError, ValueError, MemoryError) as error:
        raise _unreadable_model_error(path, error) from error
    try:
        header = json.loads(raw_header["__metadata__"][_METADATA_KEY])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(
            f"Loading model {path} failed: it is a safetensors file but not a Retina "
            "Curator model (no model description). Train one with the 'train' command."
        ) from error
    if header.get("format") != FORMAT_NAME or header.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"Loading model {path} failed: format {header.get('format')!r} version "
            f"{header.get('format_version')!r} is not supported; expected {FORMAT_NAME!r} "
            f"version {FORMAT_VERSION}. Models of earlier versions lack signals or colour "
            "features of this release: train the model again from its images with the "
            "'train' command."
        )
    return header, tensors


def _unreadable_model_error(path: Path, error: Exception) -> ModelFileError:
    """Return the error for a file that the safetensors library cannot read.

    The file's first bytes tell a pickled checkpoint from a damaged or cut-short
    safetensors file and from any other file, and each gets its own advice.
    """
    try:
        with path.open("rb") as stream:
            start = stream.read(9)
    except OSError:
        start = b""
    if start.startswith(_PICKLE_STARTS):
        return ModelFileError(
            f"Loading model {path} failed: it is not a safetensors model file but a pickle "
            "or a zip archive, such as a PyTorch checkpoint. Retina Curator reads only its "
            "own safetensors format and never unpickles checkpoints such as .pt files, "
            "which can run code when opened."
        )
    if not start:
        return ModelFileError(f"Loading model {path} failed: the file is empty (0 bytes). "
                              "Copy or download the model file again.")
    if len(start) < 9 or _starts_safetensors_header(start):
        return ModelFileError(
            f"Loading model {path} failed: the safetensors file is damaged or incomplete "
            f"({error}), for example because a copy or download was cut short. Copy or "
            "download the model file again, or choose another file."
        )
    return ModelFileError(
        f"Loading model {path} failed: it is not a safetensors model file ({error}). Pass "
        "a .safetensors model file written by Retina Curator."
    )


def _starts_safetensors_header(start: bytes) -> bool:
    """Return True if `start`, a file's first 9 bytes, begins a safetensors file.

    Such a file starts with the header's length, a little-endian 64-bit integer, and
    the header is a JSON object.
    """
    header_size = int.from_bytes(start[:8], "little")
    return 2 <= header_size <= _MAX_HEADER_BYTES and start[8:9] == b"{"


def _check_calibration(
    config: AutoencoderConfig, framing: Framing, threshold: float, target_frr: float
) -> None:
    if framing.size != config.input_size:
        raise ValueError(
            f"framing size {framing.size} differs from input size {config.input_size}"
        )
    if not math.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold {threshold} is not a finite number of at least 0")
    if not 0.0 < target_frr < 1.0:
        raise ValueError(f"target false-reject rate {target_frr} is outside (0, 1)")


def _signal_calibrations(
    described: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> dict[str, Calibration]:
    if sorted(described) != sorted(SIGNALS):
        raise ValueError(f"signals {sorted(described)} differ from {sorted(SIGNALS)}")
    signals = {}
    for name in SIGNALS:
        threshold = float(described[name]["threshold"])
        target_frr = float(described[name]["target_frr"])
        # A signal's score is divided by its threshold, so 0 would make every
        # score unbounded.
        if not math.isfinite(threshold) or threshold <= 0 or not 0.0 < target_frr < 1.0:
            raise ValueError(f"signal {name} has threshold {threshold}, rate {target_frr}")
        scores = tensors.pop(_SIGNAL_SCORES_KEY.format(name)).numpy().astype(np.float64)
        signals[name] = Calibration(target_frr, threshold, np.sort(scores))
    return signals


def _check_reference(config: AutoencoderConfig, reference: SignalReference) -> None:
    codes = reference.codes
    if codes.ndim != 2 or codes.shape[0] == 0 or codes.shape[1] != config.latent_size:
        raise ValueError(f"reference codes of shape {tuple(codes.shape)} do not match "
                         f"latent size {config.latent_size}")
    if reference.code_scale.shape != (config.latent_size,):
        raise ValueError(f"code scale of shape {tuple(reference.code_scale.shape)}")
    shape = (len(COLOUR_FEATURES),)
    if reference.colour_low.shape != shape or reference.colour_high.shape != shape:
        raise ValueError("colour range does not have one bound per colour feature")
    arrays = (codes, reference.code_scale, reference.colour_low, reference.colour_high)
    if not all(np.isfinite(array).all() for array in arrays):
        raise ValueError("the signal reference contains values that are not finite numbers")
    if reference.neighbours < 1:
        raise ValueError(f"neighbour count {reference.neighbours} is below 1")


def _check_weights(
    path: Path, autoencoder: ConvAutoencoder, weights: dict[str, torch.Tensor]
) -> None:
    expected = autoencoder.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise ModelFileError(
            f"Loading model {path} failed: layers missing {missing or 'none'}, "
            f"unexpected {unexpected or 'none'}. The file does not match its architecture."
        )
    for key, tensor in expected.items():
        if weights[key].is_floating_point() and not bool(torch.isfinite(weights[key]).all()):
            raise ModelFileError(
                f"Loading model {path} failed: layer {key!r} contains values that are not "
                "finite numbers (NaN or infinity), so the model cannot score. Train the "
                "model again or choose another file."
            )
        if weights[key].shape != tensor.shape:
            raise ModelFileError(
                f"Loading model {path} failed: layer {key!r} has shape "
                f"{tuple(weights[key].shape)} in the file but the architecture expects "
                f"{tuple(tensor.shape)}."
            )
