"""Tests of folder scoring with the shipped model on real images."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.images import Status
from engine.modelfile import ReferenceModel
from engine.scoring import reconstruct, score_files, score_folder


@pytest.fixture
def mixed_folder(tmp_path: Path, data_root: Path) -> Path:
    """Ten retina test PNGs, ten PBC blood-cell JPEGs and two broken files."""
    folder = tmp_path / "batch"
    (folder / "retina").mkdir(parents=True)
    (folder / "blood").mkdir()
    with np.load(data_root / "medmnist" / "retinamnist.npz") as arrays:
        for index, image in enumerate(arrays["test_images"][:10]):
            Image.fromarray(image).save(folder / "retina" / f"r{index:02d}.png")
    for source in sorted((data_root / "blood" / "pbc").glob("*/*.jpg"))[::80]:
        shutil.copy(source, folder / "blood" / source.name)
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("not an image")
    return folder


def test_blood_flagged_retina_kept(mixed_folder: Path, default_model: ReferenceModel) -> None:
    results = list(score_folder(default_model, mixed_folder))

    by_group: dict[str, list[bool | None]] = {}
    for item in results:
        by_group.setdefault(item.relative_path.split("/")[0], []).append(item.flagged)
    assert len(results) == 22
    assert by_group["blood"] == [True] * 10
    assert by_group["retina"].count(False) >= 9


def test_bad_files_get_status_and_no_score(
    mixed_folder: Path, default_model: ReferenceModel
) -> None:
    results = {item.relative_path: item for item in score_folder(default_model, mixed_folder)}

    assert results["empty.png"].status is Status.EMPTY
    assert results["notes.jpg"].status is Status.NOT_IMAGE
    assert results["empty.png"].score is None
    assert results["notes.jpg"].flagged is None


def test_results_carry_file_identity(
    mixed_folder: Path, default_model: ReferenceModel
) -> None:
    results = {item.relative_path: item for item in score_folder(default_model, mixed_folder)}

    for relative_path in ("retina/r00.png", "blood/" + sorted(
            path.name for path in (mixed_folder / "blood").iterdir())[0]):
        identity = (mixed_folder / relative_path).stat()
        assert results[relative_path].size == identity.st_size
        assert results[relative_path].mtime_ns == identity.st_mtime_ns
    assert results["empty.png"].size is None


def test_threshold_override(mixed_folder: Path, default_model: ReferenceModel) -> None:
    results = list(score_folder(default_model, mixed_folder, threshold=1e9))

    assert not any(item.flagged for item in results)


def test_closing_generator_stops_early(
    mixed_folder: Path, default_model: ReferenceModel
) -> None:
    results = score_folder(default_model, mixed_folder)

    first = next(results)
    results.close()

    assert first.relative_path == "blood/" + first.path.name
    with pytest.raises(StopIteration):
        next(results)


def test_reconstruction_matches_score(default_model: ReferenceModel, data_root: Path) -> None:
    with np.load(data_root / "medmnist" / "retinamnist.npz") as arrays:
        image = arrays["test_images"][0]

    view = reconstruct(default_model, image)

    assert view.reconstruction.shape == (28, 28, 3)
    assert view.error_map.shape == (28, 28)
    assert view.score == pytest.approx(float(view.error_map.mean()), rel=1e-5)


def test_files_vanishing_mid_scan(tmp_path: Path, default_model: ReferenceModel,
                                  data_root: Path) -> None:
    folder = tmp_path / "vanishing"
    folder.mkdir()
    with np.load(data_root / "medmnist" / "retinamnist.npz") as arrays:
        for index, image in enumerate(arrays["test_images"][:300]):
            Image.fromarray(image).save(folder / f"r{index:03d}.png")
    paths = sorted(folder.iterdir())
    results = score_files(default_model, folder, paths)

    # The first batch is decoded by now; later files go while scoring runs.
    first = next(results)
    (folder / "r250.png").unlink()
    (folder / "r260.png").rename(folder / "renamed.png")
    rest = {item.relative_path: item for item in results}

    assert first.status is Status.OK
    assert len(rest) == 299
    for name in ("r250.png", "r260.png"):
        assert rest[name].status is Status.MISSING
        assert rest[name].detail == "the file was removed or renamed"
        assert rest[name].score is None
    assert all(item.status is Status.OK for name, item in rest.items()
               if name not in ("r250.png", "r260.png"))
