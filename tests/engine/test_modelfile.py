"""Tests of saving and safely loading model files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.modelfile import ModelFileError, ReferenceModel, load_model, save_model
from engine.resources import DEFAULT_MODEL_PATH
from engine.scoring import reconstruction_errors, signal_scores


def read_model_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return the tensors and the JSON description of the model file at `path`."""
    tensors = load_file(str(path))
    with path.open("rb") as stream:
        header = json.loads(stream.read(int.from_bytes(stream.read(8), "little")))
    return tensors, json.loads(header["__metadata__"]["retina_curator"])


def write_model_file(
    path: Path, tensors: dict[str, torch.Tensor], description: dict[str, Any]
) -> None:
    """Write `tensors` and `description` to `path` as a model file."""
    save_file(tensors, str(path), metadata={"retina_curator": json.dumps(description)})

def test_round_trip_keeps_weights_and_calibration(
    tmp_path: Path, tiny_model: ReferenceModel, retina_arrays: np.ndarray
) -> None:
    path = tmp_path / "model.safetensors"
    save_model(tiny_model, path)

    loaded = load_model(path)

    assert loaded.fingerprint == tiny_model.fingerprint
    assert loaded.threshold == tiny_model.threshold
    assert loaded.framing == tiny_model.framing
    assert loaded.training["fingerprint"] == tiny_model.training["fingerprint"]
    np.testing.assert_array_equal(
        loaded.calibration.clean_scores, tiny_model.calibration.clean_scores
    )
    np.testing.assert_allclose(
        reconstruction_errors(loaded, retina_arrays[:16]),
        reconstruction_errors(tiny_model, retina_arrays[:16]),
    )


def test_round_trip_keeps_signals(
    tmp_path: Path, tiny_model: ReferenceModel, retina_arrays: np.ndarray
) -> None:
    path = tmp_path / "model.safetensors"
    save_model(tiny_model, path)

    loaded = load_model(path)

    assert loaded.signal_thresholds == tiny_model.signal_thresholds
    assert loaded.reference is not None and tiny_model.reference is not None
    np.testing.assert_array_equal(loaded.reference.codes, tiny_model.reference.codes)
    for name, calibration in tiny_model.signals.items():
        np.testing.assert_array_equal(loaded.signals[name].clean_scores,
                                      calibration.clean_scores)
    before = signal_scores(tiny_model, retina_arrays[:16])
    after = signal_scores(loaded, retina_arrays[:16])
    for name, values in before.items():
        np.testing.assert_allclose(after[name], values, rtol=1e-5)


@pytest.mark.parametrize("version", [1, 2])
def test_earlier_version_rejected_with_advice(
    tmp_path: Path, tiny_model: ReferenceModel, version: int
) -> None:
    path = tmp_path / "model.safetensors"
    save_model(tiny_model, path)
    tensors, description = read_model_file(path)
    description["format_version"] = version
    write_model_file(path, tensors, description)

    with pytest.raises(ModelFileError, match="train the model again"):
        load_model(path)


def test_pickle_payload_never_runs(
    tmp_path: Path, data_root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cases = data_root.parent / "cases" / "models"
    path = Path(shutil.copy(cases / "ckpt_malicious.pt", tmp_path / "model.pt"))

    with pytest.raises(ModelFileError, match="never unpickles"):
        load_model(path)

    output = capfd.readouterr()
    assert "CASEFILES_PICKLE_PAYLOAD_EXECUTED" not in output.out + output.err


@pytest.mark.parametrize("zip_format", [
    True,  # the zip archive that torch.save writes by default
    False,  # the legacy format: a plain pickle stream
], ids=["zip", "legacy"])
def test_torch_checkpoint_called_pickle(tmp_path: Path, zip_format: bool) -> None:
    path = tmp_path / "model.pt"
    torch.save({"weight": torch.zeros(3)}, path, _use_new_zipfile_serialization=zip_format)

    with pytest.raises(ModelFileError) as raised:
        load_model(path)

    message = str(raised.value)
    assert message.startswith(f"Loading model {path} failed: it is not a safetensors model "
                              "file but a pickle or a zip archive")
    assert "never unpickles checkpoints such as .pt files" in message


@pytest.mark.parametrize(("kept", "reason"), [
    (0.5, "incomplete metadata, file not fully covered"),  # cut in the middle of the weights
    (0.001, "invalid header length"),  # cut inside the JSON header
], ids=["weights", "header"])
def test_truncated_model_called_incomplete(tmp_path: Path, kept: float, reason: str) -> None:
    content = DEFAULT_MODEL_PATH.read_bytes()
    path = tmp_path / "model.safetensors"
    path.write_bytes(content[:int(len(content) * kept)])

    with pytest.raises(ModelFileError) as raised:
        load_model(path)

    message = str(raised.value)
    assert message.startswith(f"Loading model {path} failed: the safetensors file is damaged "
                              "or incomplete (")
    assert reason in message
    assert "Copy or download the model file again" in message
    assert "unpickle" not in message
    assert "not a safetensors" not in message


def test_empty_model_file_named(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"")

    with pytest.raises(ModelFileError) as raised:
        load_model(path)

    assert str(raised.value) == (f"Loading model {path} failed: the file is empty (0 bytes). "
                                 "Copy or download the model file again.")


def test_other_file_not_called_pickle(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_text("a text file under a model file's name\n")

    with pytest.raises(ModelFileError) as raised:
        load_model(path)

    message = str(raised.value)
    assert message.startswith(f"Loading model {path} failed: it is not a safetensors model "
                              "file (")
    assert "unpickle" not in message


def test_shape_mismatch_names_layer_and_shapes(
    tmp_path: Path, tiny_model: ReferenceModel
) -> None:
    path = tmp_path / "model.safetensors"
    save_model(tiny_model, path)
    tensors, description = read_model_file(path)
    tensors["autoencoder.to_latent.bias"] = torch.zeros(5)
    write_model_file(path, tensors, description)

    with pytest.raises(ModelFileError) as raised:
        load_model(path)

    message = str(raised.value)
    assert "'to_latent.bias'" in message
    assert "(5,)" in message
    assert "(64,)" in message


def test_weights_not_finite_rejected(tmp_path: Path, tiny_model: ReferenceModel) -> None:
    path = tmp_path / "model.safetensors"
    save_model(tiny_model, path)
    tensors, description = read_model_file(path)
    tensors["autoencoder.to_latent.bias"] = torch.full((64,), float("nan"))
    write_model_file(path, tensors, description)

    with pytest.raises(ModelFileError, match=r"'to_latent\.bias' contains values that are not"):
        load_model(path)


def test_foreign_safetensors_rejected(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(3)}, str(path))

    with pytest.raises(ModelFileError, match="not a Retina Curator model"):
        load_model(path)


def test_missing_file_message(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "absent.safetensors")


def test_folder_as_model_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()

    with pytest.raises(ModelFileError) as raised:
        load_model(folder)

    message = str(raised.value)
    assert message == (f"Loading model {folder} failed: it is a folder, not a model file. "
                       "Pass the path of a .safetensors model file.")


def test_pipe_as_model_rejected_at_once(tmp_path: Path) -> None:
    pipe = tmp_path / "model.safetensors"
    os.mkfifo(pipe)

    # Reading the pipe would wait for a writer for ever, so the test would hang.
    with pytest.raises(ModelFileError, match="it is not a regular file"):
        load_model(pipe)


def rewrite_description(path: Path, change: dict[str, dict[str, object]]) -> None:
    """Rewrite the JSON description of the model file at `path` with `change` merged."""
    tensors, description = read_model_file(path)
    for section, values in change.items():
        description[section].update(values)
    write_model_file(path, tensors, description)


@pytest.mark.parametrize(
    "change",
    [
        {"framing": {"size": 32}},  # framing differs from the network input
        {"framing": {"size": "28"}},  # number written as text
        {"framing": {"size": 0}},  # nothing to resize to
        {"architecture": {"channels": [200000, 200000, 200000]}},  # terabytes of weights
        {"calibration": {"threshold": float("nan")}},  # flags nothing
        {"calibration": {"threshold": -1.0}},  # flags everything
        {"calibration": {"target_frr": 5}},  # not a rate
        {"calibration": {"signals": {}}},  # no signal thresholds
        {"calibration": {"signals": {"reconstruction": {"threshold": 1, "target_frr": 0.1},
                                     "latent": {"threshold": -1, "target_frr": 0.1},
                                     "colour": {"threshold": 1, "target_frr": 0.1}}}},
        {"calibration": {"signals": {"reconstruction": {"threshold": 0, "target_frr": 0.1},
                                     "latent": {"threshold": 1, "target_frr": 0.1},
                                     "colour": {"threshold": 1, "target_frr": 0.1}}}},
        {"reference": {"neighbours": 0}},  # no neighbour to measure a distance to
    ],
)
def test_invalid_description_rejected(
    tmp_path: Path, tiny_model: ReferenceModel, change: dict[str, dict[str, object]]
) -> None:
    path = tmp_path / "model.safetensors"
    save_model(tiny_model, path)
    rewrite_description(path, change)

    with pytest.raises(ModelFileError, match="incomplete or invalid"):
        load_model(path)


def test_half_precision_weights_load_on_cpu(tmp_path: Path, tiny_model: ReferenceModel,
                                            retina_arrays: np.ndarray) -> None:
    # safetensors stores no device, so weights saved from a GPU load like any
    # others; GPU training often saves them as float16, which must still load.
    path = tmp_path / "model.safetensors"
    save_model(tiny_model, path)
    tensors, description = read_model_file(path)
    half = {key: value.half() if key.startswith("autoencoder.") else value
            for key, value in tensors.items()}
    write_model_file(path, half, description)

    loaded = load_model(path)

    parameters = list(loaded.autoencoder.parameters())
    assert {parameter.device.type for parameter in parameters} == {"cpu"}
    assert {parameter.dtype for parameter in parameters} == {torch.float32}
    np.testing.assert_allclose(
        reconstruction_errors(loaded, retina_arrays[:16]),
        reconstruction_errors(tiny_model, retina_arrays[:16]),
        rtol=0.05,
    )
