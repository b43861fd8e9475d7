"""Tests of the threshold panel: slider and gallery in sync both ways, counts and reset."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from pytestqt.qtbot import QtBot
from window_helpers import open_and_wait, select_paths

from engine.cli import main as cli_main
from engine.modelfile import ReferenceModel
from gui.gallery_model import GalleryModel
from gui.gallery_proxy import FilterMode
from gui.main_window import MainWindow
from gui.score_format import format_threshold
from gui.threshold_panel import (
    SLIDER_STEPS,
    ThresholdPanel,
    ThresholdSpinBox,
    describe_clean_rate,
)


@pytest.fixture
def scored_window(qtbot: QtBot, window: MainWindow, mixed_folder: Path) -> MainWindow:
    open_and_wait(qtbot, window, mixed_folder)
    return window


@pytest.fixture
def panel(scored_window: MainWindow) -> ThresholdPanel:
    return scored_window.threshold_panel


def test_panel_initial_state(panel: ThresholdPanel, default_model: ReferenceModel) -> None:
    assert panel.isEnabled()
    assert panel.threshold == default_model.threshold
    assert panel.spin_box.value() == pytest.approx(default_model.threshold, abs=1e-6)
    assert not panel.reset_button.isEnabled()
    calibration = default_model.calibration
    above = round(calibration.clean_rejected_fraction(default_model.threshold)
                  * calibration.clean_scores.size)
    assert panel.clean_rate_label.text() == (
        f"Above it: {above} of {calibration.clean_scores.size} held-out clean images "
        f"({100 * above / calibration.clean_scores.size:.1f}\u00a0%). Target for new clean "
        "images: 1\u00a0% at the calibrated threshold.")
    assert panel.flagged_label.text() == "Flagged: <b>6</b> of 18 scored"
    # Every scored file is in a histogram bar.
    assert panel.histogram.bin_counts.sum() == 18


def test_clean_rate_counts_held_out_images_above(default_model: ReferenceModel) -> None:
    count = default_model.calibration.clean_scores.size
    assert describe_clean_rate(default_model, 0.0).startswith(
        f"Above it: {count} of {count} held-out clean images (100.0\u00a0%).")
    assert describe_clean_rate(default_model, 1e9).startswith(
        f"Above it: 0 of {count} held-out clean images (0.0\u00a0%).")


def test_panel_without_model_disabled(qtbot: QtBot) -> None:
    panel = ThresholdPanel(GalleryModel())
    qtbot.addWidget(panel)
    assert not panel.isEnabled()
    assert panel.clean_rate_label.text() == "no model: clean reject rate unknown"


def test_slider_sets_gallery_threshold(scored_window: MainWindow, panel: ThresholdPanel) -> None:
    position = panel.slider.value() + 50
    panel.slider.setValue(position)
    expected = panel.scale.value(position / SLIDER_STEPS)
    assert scored_window.gallery_model.threshold == pytest.approx(expected)
    assert panel.spin_box.value() == pytest.approx(expected, abs=1e-6)
    assert panel.reset_button.isEnabled()


def test_slider_at_end_keeps_every_file(scored_window: MainWindow, panel: ThresholdPanel) -> None:
    panel.slider.setValue(SLIDER_STEPS)
    counts = scored_window.gallery_model.counts()
    assert counts.flagged == 0
    assert counts.kept == 18
    scored_window.filter_combo.setCurrentText(FilterMode.FLAGGED.value)
    assert scored_window.proxy_model.rowCount() == 0
    assert panel.flagged_label.text() == "Flagged: <b>0</b> of 18 scored"


def test_gallery_threshold_moves_slider(
    scored_window: MainWindow, panel: ThresholdPanel, default_model: ReferenceModel
) -> None:
    threshold = 0.0123456
    scored_window.gallery_model.set_threshold(threshold)
    assert panel.slider.value() == round(panel.scale.position(threshold) * SLIDER_STEPS)
    assert panel.spin_box.value() == pytest.approx(threshold, abs=1e-6)
    # Moving the slider to show the value must not round the model's threshold.
    assert scored_window.gallery_model.threshold == threshold
    assert panel.clean_rate_label.text() == describe_clean_rate(default_model, threshold)


def test_spin_box_sets_gallery_threshold(scored_window: MainWindow,
                                         panel: ThresholdPanel) -> None:
    panel.spin_box.setValue(0.02)
    assert scored_window.gallery_model.threshold == pytest.approx(0.02)
    assert panel.slider.value() == round(panel.scale.position(0.02) * SLIDER_STEPS)


def test_reset_returns_to_calibrated(
    qtbot: QtBot, scored_window: MainWindow, panel: ThresholdPanel, default_model: ReferenceModel
) -> None:
    scored_window.gallery_model.set_threshold(1e6)
    assert scored_window.gallery_model.counts().flagged == 0
    qtbot.mouseClick(panel.reset_button, Qt.MouseButton.LeftButton)
    assert scored_window.gallery_model.threshold == default_model.threshold
    assert scored_window.gallery_model.counts().flagged == 6
    assert not panel.reset_button.isEnabled()
    assert not scored_window.window_actions.reset_threshold.isEnabled()


def test_reset_action_returns_to_calibrated(
    scored_window: MainWindow, default_model: ReferenceModel
) -> None:
    scored_window.gallery_model.set_threshold(0.05)
    assert scored_window.window_actions.reset_threshold.isEnabled()
    scored_window.window_actions.reset_threshold.trigger()
    assert scored_window.gallery_model.threshold == default_model.threshold


def test_histogram_click_sets_threshold(qtbot: QtBot, scored_window: MainWindow,
                                        panel: ThresholdPanel) -> None:
    histogram = panel.histogram
    qtbot.mouseClick(histogram, Qt.MouseButton.LeftButton, pos=QPoint(histogram.width() - 3, 30))
    # A click at the right end requests a threshold near the top of the axis.
    assert scored_window.gallery_model.threshold > panel.scale.value(0.95)
    assert scored_window.gallery_model.counts().flagged == 0


def test_counts_follow_decisions(scored_window: MainWindow, panel: ThresholdPanel) -> None:
    assert panel.decisions_label.text() == (
        "Keep <b>12</b> · reject <b>7</b> · 0 by you"
    )


def test_threshold_from_command_line_shown_whole(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, tmp_path: Path
) -> None:
    # `export --threshold` stores the folder's threshold, here far above the calibrated 1.
    assert cli_main(["export", str(mixed_folder), "--to", str(tmp_path / "out"),
                     "--threshold", "100"]) == 0
    open_and_wait(qtbot, window, mixed_folder)
    panel = window.threshold_panel
    assert window.gallery_model.threshold == 100.0
    assert panel.spin_box.value() == 100.0
    assert panel.spin_box.text() == "100.00"
    select_paths(window, ["retina_0000.png"])
    assert window.detail_pane.info_text("Model") == "Passed: at or below the threshold 100.00"

    qtbot.keyClick(panel.spin_box, Qt.Key.Key_Return)
    assert window.gallery_model.threshold == 100.0


@pytest.mark.parametrize(
    "threshold",
    [
        1.23456789,  # a slider position, with more digits than the box shows
        12345.678,  # far above the calibrated threshold
        0.0000123,  # small enough to be shown with an exponent
    ],
)
def test_spin_box_keeps_threshold_exact(qtbot: QtBot, scored_window: MainWindow,
                                        panel: ThresholdPanel, threshold: float) -> None:
    scored_window.gallery_model.set_threshold(threshold)
    assert panel.spin_box.value() == threshold
    assert panel.spin_box.text() == format_threshold(threshold)

    # Enter, and leaving the box, read its rounded text back without changing the value.
    qtbot.keyClick(panel.spin_box, Qt.Key.Key_Return)
    assert scored_window.gallery_model.threshold == threshold
    panel.spin_box.setFocus()
    scored_window.gallery_view.setFocus()
    assert scored_window.gallery_model.threshold == threshold


def test_spin_box_takes_extra_digits(qtbot: QtBot, scored_window: MainWindow,
                                               panel: ThresholdPanel) -> None:
    assert panel.spin_box.text() == "1.000"
    panel.spin_box.lineEdit().selectAll()
    qtbot.keyClicks(panel.spin_box, "1.0035")
    qtbot.keyClick(panel.spin_box, Qt.Key.Key_Return)
    assert scored_window.gallery_model.threshold == 1.0035
    assert panel.spin_box.text() == "1.004"

    panel.spin_box.lineEdit().selectAll()
    qtbot.keyClicks(panel.spin_box, "2e-5")
    qtbot.keyClick(panel.spin_box, Qt.Key.Key_Return)
    assert scored_window.gallery_model.threshold == 2e-5
    assert panel.spin_box.text() == "2.000e-05"


def test_spin_box_steps_up_from_zero(qtbot: QtBot) -> None:
    spin_box = ThresholdSpinBox()
    qtbot.addWidget(spin_box)
    spin_box.setValue(0.0)
    spin_box.stepBy(1)
    assert spin_box.value() == 0.01
    spin_box.stepBy(-1)
    assert 0.0 < spin_box.value() < 0.01
