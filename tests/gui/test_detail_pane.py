"""Tests of the detail pane: file facts, the model's view and one error-map scale per model."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot
from window_helpers import open_and_wait, select_paths

from engine.calibration import Calibration
from engine.images import load_image
from engine.modelfile import ReferenceModel
from engine.scoring import reconstruct
from engine.signals import RECONSTRUCTION, SIGNALS
from gui.detail_pane import DetailPane, format_size
from gui.error_map import COLOUR_TABLE, FULL_SCALE_MULTIPLE, colourise, full_scale
from gui.gallery_items import placeholder_text, sentence_case
from gui.gallery_roles import GalleryRole
from gui.main_window import MainWindow
from gui.score_format import format_score

IMAGE_TIMEOUT_MS = 30_000


@pytest.fixture
def scored_window(qtbot: QtBot, window: MainWindow, mixed_folder: Path) -> MainWindow:
    open_and_wait(qtbot, window, mixed_folder)
    return window


def show(qtbot: QtBot, window: MainWindow, relative_path: str) -> DetailPane:
    """Make `relative_path` current and wait until the pane shows its decoded images."""
    pane = window.detail_pane
    expected = str(window.folder / relative_path)
    if pane.shown_path is not None and str(pane.shown_path) == expected \
            and not pane.is_loading:
        return pane
    with qtbot.waitSignal(pane.images_shown, timeout=IMAGE_TIMEOUT_MS,
                          check_params_cb=lambda path: path == expected):
        select_paths(window, [relative_path])
    return pane


def pixels(image: QImage) -> np.ndarray:
    """Return an (h, w, 3) uint8 array of `image`."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    array = np.frombuffer(rgb.constBits(), np.uint8).reshape(rgb.height(), rgb.bytesPerLine())
    return array[:, : rgb.width() * 3].reshape(rgb.height(), rgb.width(), 3).copy()


def blood_path(folder: Path) -> str:
    return sorted(path.relative_to(folder).as_posix()
                  for path in (folder / "incoming").glob("*.jpg"))[0]


def test_pane_without_selection(qtbot: QtBot, window: MainWindow) -> None:
    pane = window.detail_pane
    assert pane.shown_path is None
    assert pane.title_label.toPlainText() == "No image selected"
    assert pane.info_text("Score") == ""


def test_file_info_of_blood_jpeg(qtbot: QtBot, scored_window: MainWindow, mixed_folder: Path,
                                 default_model: ReferenceModel) -> None:
    relative_path = blood_path(mixed_folder)
    path = mixed_folder.resolve() / relative_path
    pane = show(qtbot, scored_window, relative_path)

    size = path.stat().st_size
    with Image.open(path) as image:
        width, height = image.size
    assert pane.title_label.toPlainText() == path.name
    assert pane.info_text("Path") == str(path)
    assert f"({size:,} bytes)" in pane.info_text("Size")
    assert pane.info_text("Dimensions") == f"{width} × {height} px"
    assert pane.info_text("Format") == "JPEG"
    row = scored_window.gallery_model.row_of(relative_path)
    score = scored_window.gallery_model.index(row).data(GalleryRole.SCORE)
    assert pane.info_text("Score").startswith(format_score(score))
    percentile = default_model.calibration.percentile(score)
    assert pane.info_text("Clean data") == (
        f"{percentile:.1f} % of clean calibration images score lower"
    )
    assert pane.info_text("Model").startswith("Flagged: above the threshold")
    assert "flagged by reconstruction" in pane.info_text("Model")
    assert pane.info_text("Decision") == "Reject (the model's decision)"
    assert pane.original_box.has_image
    assert pane.reconstruction_box.has_image


def test_signals_shown_against_thresholds(qtbot: QtBot, scored_window: MainWindow,
                                          default_model: ReferenceModel) -> None:
    pane = show(qtbot, scored_window, "retina_0005.png")
    record = scored_window.gallery_model.index(
        scored_window.gallery_model.row_of("retina_0005.png")).data(GalleryRole.RECORD)

    lines = pane.info_text("Signals").split("<br>")
    assert record.signals is not None
    assert [line.split()[0] for line in lines] == list(SIGNALS)
    for line, name in zip(lines, SIGNALS, strict=True):
        ratio = record.signals[name] / default_model.signal_thresholds[name]
        assert line == (f"{name} {format_score(record.signals[name])} "
                        f"({ratio:.2f} × its threshold)")
    assert pane.info_text("Model").startswith("Passed")


def test_zero_threshold_shows_no_ratios(qtbot: QtBot, scored_window: MainWindow) -> None:
    # The spin box's lowest value: every image with a score above 0 is flagged.
    scored_window.threshold_panel.spin_box.setValue(0.0)
    pane = show(qtbot, scored_window, "retina_0005.png")
    record = scored_window.gallery_model.index(
        scored_window.gallery_model.row_of("retina_0005.png")).data(GalleryRole.RECORD)

    assert scored_window.gallery_model.threshold == 0.0
    assert "×" not in pane.info_text("Score")
    assert record.signals is not None
    assert pane.info_text("Signals").split("<br>") == [
        f"{name} {format_score(record.signals[name])}" for name in SIGNALS]
    assert pane.info_text("Model").startswith("Flagged: above the threshold 0")


def test_decision_text_follows_override(qtbot: QtBot, scored_window: MainWindow,
                                        mixed_folder: Path) -> None:
    relative_path = blood_path(mixed_folder)
    pane = show(qtbot, scored_window, relative_path)
    scored_window.window_actions.advance.setChecked(False)
    scored_window.window_actions.keep.trigger()
    assert pane.info_text("Decision") == "Keep (your decision)"
    assert pane.info_text("Model").startswith("Flagged")


def test_same_error_scale_for_two_images(qtbot: QtBot, scored_window: MainWindow,
                                         mixed_folder: Path,
                                         default_model: ReferenceModel) -> None:
    scale = full_scale(default_model)
    assert scale == FULL_SCALE_MULTIPLE * default_model.signals[RECONSTRUCTION].threshold
    shown = {}
    for relative_path in (blood_path(mixed_folder), "retina_0005.png"):
        pane = show(qtbot, scored_window, relative_path)
        assert pane.error_map_scale == scale
        loaded = load_image(mixed_folder / relative_path, default_model.framing, None)
        assert loaded.model_input is not None
        error_map = reconstruct(default_model, loaded.model_input).error_map
        shown[relative_path] = pixels(pane.error_box.pixmap().toImage())
        # The colours come from the model's fixed scale, not from this image's maximum.
        assert np.array_equal(shown[relative_path], colourise(error_map, scale))
    top = COLOUR_TABLE[-1]
    blood_top = np.all(shown[blood_path(mixed_folder)] == top, axis=2).mean()
    retina_top = np.all(shown["retina_0005.png"] == top, axis=2).mean()
    # A retina image is mostly dark on the shared scale; per-image scaling would not show that.
    assert retina_top < 0.05 < blood_top


def test_new_model_redraws_shown_image(qtbot: QtBot, scored_window: MainWindow,
                                       mixed_folder: Path,
                                       default_model: ReferenceModel) -> None:
    pane = show(qtbot, scored_window, "retina_0005.png")
    calibration = default_model.signals[RECONSTRUCTION]
    stricter = with_reconstruction_calibration(default_model, Calibration(
        calibration.target_frr, calibration.threshold / 4, calibration.clean_scores))

    # The same file stays current, so only the change of model can redraw it.
    with qtbot.waitSignal(pane.images_shown, timeout=IMAGE_TIMEOUT_MS):
        pane.set_reference_model(stricter)

    loaded = load_image(mixed_folder / "retina_0005.png", stricter.framing, None)
    assert loaded.model_input is not None
    error_map = reconstruct(stricter, loaded.model_input).error_map
    assert pane.error_map_scale == full_scale(stricter)
    assert np.array_equal(pixels(pane.error_box.pixmap().toImage()),
                          colourise(error_map, full_scale(stricter)))


def test_unreadable_file_shows_status(qtbot: QtBot, scored_window: MainWindow) -> None:
    pane = show(qtbot, scored_window, "empty.png")
    assert pane.info_text("Score") == "none"
    assert pane.info_text("Model").startswith("Not scored: empty file")
    assert pane.info_text("Decision") == "Reject (the model's decision)"
    assert not pane.error_box.has_image
    assert pane.original_box.text == "Empty file (0 bytes)"
    # Never read, so not "now".
    assert pane.input_box.text == "Cannot read the file: empty file (0 bytes)"
    assert pane.error_box.text == ""


def test_changed_file_shows_no_new_content(qtbot: QtBot, scored_window: MainWindow,
                                           data_root: Path) -> None:
    # A fundus JPEG copied over a flagged blood-cell file after scoring, with a new
    # size and mtime, must not be shown beside the blood-cell file's score.
    relative_path = blood_path(scored_window.folder)
    model = scored_window.gallery_model
    row = model.row_of(relative_path)
    assert row is not None
    record = model.item(row).record
    assert model.item(row).thumbnail is not None
    fundus = data_root / "fundus" / "hrf_resized" / "01_h.jpg"
    shutil.copyfile(fundus, scored_window.folder / relative_path)

    pane = show(qtbot, scored_window, relative_path)

    assert pane.original_box.text == "The file changed since it was scored"
    assert not pane.original_box.has_image
    assert not pane.input_box.has_image
    assert not pane.reconstruction_box.has_image
    assert not pane.error_box.has_image
    assert pane.info_text("Score").startswith(format_score(record.score))
    assert pane.info_text("Size") == format_size(record.size)
    item = model.item(row)
    assert item.thumbnail is None
    assert placeholder_text(item) == "The file changed since it was scored"


def test_long_name_keeps_pane_width(qtbot: QtBot, window: MainWindow, mixed_folder: Path) -> None:
    # A name of 244 characters without a space, in a folder whose name has one.
    name = "L" * 240 + ".png"
    (mixed_folder / "odd names").mkdir()
    shutil.copy2(mixed_folder / "retina_0001.png", mixed_folder / "odd names" / name)
    window.resize(1400, 860)
    open_and_wait(qtbot, window, mixed_folder)
    dock = window.ui.detail_dock
    dock_width = dock.width()
    pane = show(qtbot, window, f"odd names/{name}")

    title = pane.title_label
    path = pane.info_labels["Path"]
    # The whole name shows: each widget is as tall as its text wrapped at its width.
    qtbot.waitUntil(lambda: title.height() >= title.heightForWidth(title.width())
                    and path.height() >= path.heightForWidth(path.width()))
    assert dock.width() == dock_width
    assert pane.width() <= dock.widget().viewport().width()
    assert title.toPlainText() == name
    assert pane.info_text("Path") == str(mixed_folder.resolve() / "odd names" / name)
    for box in (pane.original_box, pane.input_box, pane.reconstruction_box, pane.error_box):
        assert pane.rect().contains(box.geometry())


def test_sentence_case_keeps_units() -> None:
    assert sentence_case("too large (2500 Mpx); the limit is 89 Mpx") == (
        "Too large (2500 Mpx); the limit is 89 Mpx")
    assert sentence_case("") == ""


def test_colourise_clips_to_scale() -> None:
    error_map = np.array([[0.0, 0.5], [1.0, 9.0]], np.float32)
    colours = colourise(error_map, scale=1.0)
    assert colours.shape == (2, 2, 3)
    assert colours.dtype == np.uint8
    assert tuple(colours[0, 0]) == (0, 0, 0)
    assert np.array_equal(colours[1, 0], COLOUR_TABLE[-1])
    assert np.array_equal(colours[1, 1], COLOUR_TABLE[-1])


def test_colour_table_rises_in_lightness() -> None:
    lightness = COLOUR_TABLE.astype(float) @ np.array([0.299, 0.587, 0.114])
    assert np.all(np.diff(lightness) > -0.5)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (None, "unknown"),
        (0, "0 bytes"),
        (999, "999 bytes"),
        (21_397, "21.4 KB (21,397 bytes)"),
        (3_500_000, "3.5 MB (3,500,000 bytes)"),  # decimal units, as file managers show
    ],
)
def test_format_size(size: int | None, text: str) -> None:
    assert format_size(size) == text


def with_reconstruction_calibration(
    model: ReferenceModel, calibration: Calibration
) -> ReferenceModel:
    """The same model with another calibration of its reconstruction signal."""
    return replace(model, signals={**model.signals, RECONSTRUCTION: calibration})


def test_zero_threshold_scale_uses_clean_scores(default_model: ReferenceModel) -> None:
    calibration = default_model.signals[RECONSTRUCTION]
    zero = with_reconstruction_calibration(default_model, Calibration(
        calibration.target_frr, 0.0, calibration.clean_scores))
    assert full_scale(zero) == FULL_SCALE_MULTIPLE * calibration.clean_scores.max()
    nothing = with_reconstruction_calibration(default_model, Calibration(
        calibration.target_frr, 0.0, np.zeros(3)))
    assert full_scale(nothing) > 0


def test_colourise_rejects_zero_scale() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        colourise(np.zeros((2, 2), np.float32), 0.0)
