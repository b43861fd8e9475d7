"""Training a reference model from a folder of known-good images of any kind."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import EXIT_FAILED, EXIT_OK, main
from engine.framing import Framing
from engine.modelfile import load_model
from engine.scoring import score_folder
from engine.training import TrainingOptions, load_folder, minimum_images


@pytest.fixture(scope="module")
def blood_model(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """A model trained by the command line on 400 real PBC blood-cell images."""
    folder = tmp_path_factory.mktemp("good_blood")
    for source in sorted((data_root / "blood" / "pbc").glob("*/*.jpg"))[::2]:
        shutil.copy(source, folder / source.name)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path_factory.mktemp("model") / "blood.safetensors"

    code = main(["train", "--folder", str(folder), "--out", str(out)])

    assert code == EXIT_OK
    return out


def test_blood_model_flags_retina(
    blood_model: Path, tmp_path: Path, data_root: Path
) -> None:
    mixed = tmp_path / "mixed"
    (mixed / "retina").mkdir(parents=True)
    (mixed / "blood").mkdir()
    with np.load(data_root / "medmnist" / "retinamnist.npz") as arrays:
        for index, image in enumerate(arrays["test_images"][:100]):
            Image.fromarray(image).save(mixed / "retina" / f"r{index:03d}.png")
    unseen = sorted((data_root / "blood" / "pbc").glob("*/*.jpg"))[1::2][::4]
    for source in unseen:
        shutil.copy(source, mixed / "blood" / source.name)

    results = list(score_folder(load_model(blood_model), mixed))

    retina = [item.flagged for item in results if item.relative_path.startswith("retina/")]
    blood = [item.flagged for item in results if item.relative_path.startswith("blood/")]
    assert len(retina) == 100
    assert len(blood) == 100
    assert sum(retina) >= 95
    assert blood.count(False) >= 95


def test_model_card_written_beside(blood_model: Path) -> None:
    card = blood_model.with_suffix(".md").read_text(encoding="utf-8")

    assert "400 images from the folder" in card
    assert "--folder" in card


def test_unreadable_files_skipped(tmp_path: Path, data_root: Path) -> None:
    folder = tmp_path / "good"
    folder.mkdir()
    for source in sorted((data_root / "blood" / "pbc" / "platelet").glob("*.jpg"))[:3]:
        shutil.copy(source, folder / source.name)
    (folder / "empty.png").write_bytes(b"")

    data, skipped = load_folder(folder, Framing())

    assert data.images.shape == (3, 28, 28, 3)
    assert [item.path.name for item in skipped] == ["empty.png"]


def test_too_few_images_refused(
    tmp_path: Path, data_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "good"
    folder.mkdir()
    for source in sorted((data_root / "blood" / "pbc" / "platelet").glob("*.jpg"))[:10]:
        shutil.copy(source, folder / source.name)

    code = main(["train", "--folder", str(folder), "--out", str(tmp_path / "m.safetensors")])

    message = capsys.readouterr().err
    assert code == EXIT_FAILED
    minimum = minimum_images(TrainingOptions().calibration_fraction)
    assert f"at least {minimum} usable images" in message
    assert "held out to set the threshold" in message
