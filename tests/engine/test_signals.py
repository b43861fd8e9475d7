"""Tests of the latent and colour signals and of the decision that combines them."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.evaluation import HARD_CASES, wilson_interval
from engine.framing import Framing
from engine.modelfile import ReferenceModel
from engine.scoring import score_folder
from engine.signals import (
    COLOUR,
    LATENT,
    RECONSTRUCTION,
    SIGNALS,
    SignalReference,
    colour_features,
    combined_scores,
    flagging_signals,
)


def test_colour_features_of_flat_and_grey_images(retina_arrays: np.ndarray) -> None:
    black = np.zeros((1, 28, 28, 3), dtype=np.uint8)
    grey = np.repeat(retina_arrays[:5].mean(axis=3, keepdims=True), 3, axis=3).astype(np.uint8)

    brightness, contrast, saturation, blue_balance = colour_features(black)[0]
    retina = colour_features(retina_arrays[:5])

    assert brightness == pytest.approx(np.log(0.01))
    assert contrast == 0.0
    assert saturation == 0.0
    assert blue_balance == 0.0
    assert np.all(colour_features(grey)[:, 2] < 0.02)
    assert np.all(retina[:, 2] > 0.2)
    assert np.all(retina[:, 1] > 0.02)


def test_blue_balance_of_bluish_images(retina_arrays: np.ndarray) -> None:
    bluish = retina_arrays[:5][..., ::-1].copy()

    retina = colour_features(retina_arrays[:5])[:, 3]
    swapped = colour_features(bluish)[:, 3]

    # Fundus photos reflect less blue than green. Swapping red and blue reverses that.
    assert np.all(retina < 0.0)
    assert np.all(swapped > 0.0)


def test_flat_colour_padded_has_no_contrast() -> None:
    # A flat 3:2 frame framed to a square gets black bands: no detail all the same.
    frame = np.zeros((1, 28, 28, 3), dtype=np.uint8)
    frame[0, 5:23] = (200, 90, 40)

    assert colour_features(frame)[0, 1] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("size", [(300, 200), (1051, 701), (200, 300)])
def test_flat_colour_resized_edge_has_no_contrast(size: tuple[int, int]) -> None:
    # Resizing blurs the edge between the flat colour and its padding into
    # intermediate levels, and only the interior of the lit area counts. The bicubic
    # overshoot beside the edge leaves a trace far below any retina photo's 0.02.
    framed = Framing().apply(Image.new("RGB", size, (209, 84, 115)))

    assert colour_features(framed[np.newaxis])[0, 1] < 0.01


def test_latent_distance_to_nearest_codes() -> None:
    codes = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [1.0, 2.0]])
    images = np.zeros((4, 28, 28, 3), dtype=np.uint8)
    reference = SignalReference.fit(codes, images, neighbours=1)

    distances = reference.latent_distances(np.array([[0.0, 0.0], [3.0, 0.0]]))

    # Each dimension is scaled to unit spread: x by 0.5, y by 1.
    assert distances[0] == pytest.approx(0.0, abs=1e-3)
    assert distances[1] == pytest.approx(4.0, rel=1e-3)


@pytest.mark.parametrize("count", [3, 64, 1000, 4200])
def test_latent_distance_matches_every_pair(count: int) -> None:
    # Reference counts below, at and above the block sizes of the search, with
    # queries both near the references and far from them.
    generator = np.random.default_rng(count)
    codes = generator.standard_normal((count, 16)).astype(np.float32)
    images = np.zeros((count, 28, 28, 3), dtype=np.uint8)
    reference = SignalReference.fit(codes, images, neighbours=5)
    queries = np.concatenate([codes[:10] + 0.05, 3.0 * generator.standard_normal((30, 16))])

    distances = reference.latent_distances(queries)

    scaled = (queries / reference.code_scale).astype(np.float64)
    every_pair = np.linalg.norm(scaled[:, None, :] - reference.codes[None], axis=2)
    nearest = np.sort(every_pair, axis=1)[:, : min(5, count)]
    np.testing.assert_allclose(distances, nearest.mean(axis=1), rtol=1e-5)


def test_copied_code_at_distance_zero() -> None:
    # Codes far from the origin and close together, where |a|² - 2ab + |b|² in
    # float32 loses their distances to rounding.
    generator = np.random.default_rng(3)
    codes = (40.0 + 0.01 * generator.standard_normal((300, 64))).astype(np.float32)
    images = np.zeros((300, 28, 28, 3), dtype=np.uint8)
    reference = SignalReference.fit(codes, images, neighbours=1)

    distances = reference.latent_distances(codes[:20])

    assert np.all(distances == 0.0)


def test_colour_distance_in_range_widths() -> None:
    images = np.zeros((2, 28, 28, 3), dtype=np.uint8)
    reference = SignalReference(np.zeros((1, 2), np.float32), np.ones(2, np.float32),
                                colour_low=np.zeros(4), colour_high=np.ones(4))
    features = colour_features(images)

    distances = reference.colour_distances(images)

    # Black frames: the log brightness lies far below 0, the other features at 0.
    assert distances[0] == pytest.approx(-features[0, 0])
    assert distances[1] == distances[0]


def test_combined_score_is_largest_ratio() -> None:
    signals = {RECONSTRUCTION: np.array([0.01, 0.04]), LATENT: np.array([1.0, 1.0]),
               COLOUR: np.array([0.0, 0.3])}
    thresholds = {RECONSTRUCTION: 0.02, LATENT: 4.0, COLOUR: 0.1}

    combined = combined_scores(signals, thresholds)

    np.testing.assert_allclose(combined, [0.5, 3.0])


def test_flagging_signals_scale_with_threshold() -> None:
    signals = {RECONSTRUCTION: 0.04, LATENT: 1.0, COLOUR: 0.3}
    thresholds = {RECONSTRUCTION: 0.02, LATENT: 4.0, COLOUR: 0.1}

    assert flagging_signals(signals, thresholds, 1.0) == [RECONSTRUCTION, COLOUR]
    assert flagging_signals(signals, thresholds, 2.5) == [COLOUR]
    assert flagging_signals(signals, thresholds, 3.0) == []


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(17, 20)

    assert low == pytest.approx(0.640, abs=1e-3)
    assert high == pytest.approx(0.948, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(400, 400)[1] == 1.0


def test_hard_cases_come_in_every_size(data_root: Path) -> None:
    with np.load(data_root / "medmnist" / "retinamnist.npz") as arrays:
        retina = arrays["test_images"]

    generated = {case.name: case.make(retina) for case in HARD_CASES if case.make is not None}

    assert len(generated) == len(HARD_CASES)
    assert {image.shape for image in generated["Black frames"]} == {
        (28, 28, 3), (64, 64, 3), (300, 200, 3), (512, 512, 3), (701, 1051, 3)}
    assert len(generated["Grey copies of RetinaMNIST test"]) == len(retina)
    assert all(image.dtype == np.uint8 for images in generated.values() for image in images)


@pytest.fixture
def hard_folder(tmp_path: Path, data_root: Path) -> Path:
    """Real files that the reconstruction error alone lets through, and retina photos."""
    folder = tmp_path / "batch"
    folder.mkdir()
    with np.load(data_root / "medmnist" / "retinamnist.npz") as arrays:
        retina = arrays["test_images"][:3]
    for index, image in enumerate(retina):
        Image.fromarray(image).save(folder / f"retina_{index}.png")
        grey = Image.fromarray(image).convert("L").convert("RGB")
        grey.save(folder / f"grey_{index}.png")
    Image.new("RGB", (1051, 701), (0, 0, 0)).save(folder / "black.png")
    Image.new("RGB", (640, 480), (128, 128, 128)).save(folder / "mid_grey.png")
    hrf = sorted((data_root / "fundus" / "hrf_resized").iterdir())[0]
    (folder / hrf.name).write_bytes(hrf.read_bytes())
    return folder


def test_default_model_flags_hard_cases(hard_folder: Path, default_model: ReferenceModel) -> None:
    results = {item.relative_path: item for item in score_folder(default_model, hard_folder)}

    for name in ("grey_0.png", "grey_1.png", "grey_2.png", "black.png", "mid_grey.png"):
        assert results[name].flagged, name
        assert results[name].signals is not None
        assert results[name].signals[COLOUR] > default_model.signal_thresholds[COLOUR]
    passed = [name for name, item in results.items() if not item.flagged]
    assert sorted(passed) == sorted(["retina_0.png", "retina_1.png", "retina_2.png",
                                   next(name for name in results if name.endswith(".jpg"))])


def test_score_csv_has_signal_columns(
    hard_folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    csv_path = tmp_path / "scores.csv"

    code = main(["score", str(hard_folder), "--csv", str(csv_path)])

    with csv_path.open(newline="", encoding="utf-8") as stream:
        rows = {row["path"]: row for row in csv.DictReader(stream)}
    assert code == 0
    grey = rows["grey_0.png"]
    assert "colour" in grey["flagged_by"].split("+")
    assert float(grey["colour_distance"]) > default_model.signal_thresholds[COLOUR]
    retina = rows["retina_0.png"]
    assert retina["flagged_by"] == ""
    for column in ("reconstruction_error", "latent_distance", "colour_distance"):
        assert float(retina[column]) >= 0.0
    combined = max(float(retina[column]) / default_model.signal_thresholds[name]
                   for name, column in zip(SIGNALS, ("reconstruction_error", "latent_distance",
                                                     "colour_distance"), strict=True))
    assert float(retina["score"]) == pytest.approx(combined, rel=1e-6)


def test_score_csv_flagged_by_at_threshold(
    hard_folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    csv_path = tmp_path / "scores.csv"
    threshold = 1.5

    code = main(["score", str(hard_folder), "--csv", str(csv_path),
                 "--threshold", str(threshold)])

    with csv_path.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert code == 0
    columns = dict(zip(SIGNALS, ("reconstruction_error", "latent_distance", "colour_distance"),
                       strict=True))
    named = set()
    for row in rows:
        signals = {name: float(row[column]) for name, column in columns.items()}
        expected = flagging_signals(signals, default_model.signal_thresholds, threshold)
        assert row["flagged_by"] == "+".join(expected), row["path"]
        named.update(expected)
    # The folder's grey copies and blank frames exceed the colour threshold even
    # at 1.5 times it, so the check above saw at least one named signal.
    assert COLOUR in named


def test_signals_calibrated_on_held_out(tiny_model: ReferenceModel) -> None:
    target = tiny_model.calibration.target_frr

    assert tiny_model.threshold == 1.0
    assert set(tiny_model.signals) == set(SIGNALS)
    for calibration in tiny_model.signals.values():
        assert calibration.target_frr == pytest.approx(target / len(SIGNALS))
        assert calibration.clean_scores.size == tiny_model.training["n_calibration"]
    # The combined clean scores are the held-out images' own, so none is above 1.
    assert tiny_model.calibration.clean_scores.max() <= 1.0
