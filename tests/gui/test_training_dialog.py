"""Tests of the training dialog: options, a real training run, cancel, too few images, save."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import write_retina_pngs
from PySide6.QtCore import QSettings, QThreadPool
from PySide6.QtWidgets import QDialog, QFileDialog, QLabel, QMessageBox
from pytestqt.qtbot import QtBot
from window_helpers import read_only_bind

import gui.training_worker
from engine.calibration import Calibration
from engine.modelcard import card_path
from engine.modelfile import ReferenceModel, load_model
from engine.training import EpochReport, TrainingOptions, minimum_images
from gui.calibration_histogram import CalibrationHistogram
from gui.loss_plot import LossPlot, epoch_ticks, loss_scale
from gui.score_format import format_score
from gui.training_dialog import TrainingDialog
from gui.training_options import unique_model_path
from gui.training_pages import Step
from gui.training_summary import calibration_images_needed, format_duration

TIMEOUT_MS = 60_000
LAYOUT_TIMEOUT_MS = 2_000
BLOOD_CLASSES = ("basophil", "eosinophil", "erythroblast", "ig", "lymphocyte", "monocyte",
                 "neutrophil", "platelet")
EPOCHS = 3
# Enough epochs that a run is still going when the test cancels it or closes the dialog.
LONG_EPOCHS = 2000


def copy_blood_jpegs(data_root: Path, folder: Path, per_class: int) -> list[Path]:
    """Copy the first `per_class` PBC blood-cell JPEGs of each class into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for cell_class in BLOOD_CLASSES:
        for source in sorted((data_root / "blood" / "pbc" / cell_class).glob("*.jpg"))[:per_class]:
            copies.append(Path(shutil.copy2(source, folder / source.name)))
    return copies


@pytest.fixture
def good_folder(tmp_path: Path, data_root: Path) -> Path:
    """80 blood-cell JPEGs and one empty file, which training must skip."""
    folder = tmp_path / "cells"
    copy_blood_jpegs(data_root, folder, 10)
    (folder / "empty.jpg").write_bytes(b"")
    return folder


@pytest.fixture
def models_folder(tmp_path: Path) -> Path:
    return tmp_path / "models"


@pytest.fixture
def dialog(qtbot: QtBot, models_folder: Path) -> TrainingDialog:
    training_dialog = TrainingDialog(None, None, models_folder)
    qtbot.addWidget(training_dialog)
    training_dialog.show()
    qtbot.waitExposed(training_dialog)
    return training_dialog


def start_run(dialog: TrainingDialog, folder: Path, epochs: int = EPOCHS) -> None:
    dialog.options_form.set_folder(folder)
    dialog.options_form.epochs_spin.setValue(epochs)
    assert dialog.train_button.isEnabled(), dialog.problem_label.text()
    dialog.train_button.click()


def run_to_summary(qtbot: QtBot, dialog: TrainingDialog, folder: Path) -> ReferenceModel:
    start_run(dialog, folder)
    qtbot.waitUntil(lambda: dialog.step in (Step.SUMMARY, Step.STOPPED), timeout=TIMEOUT_MS)
    assert dialog.step is Step.SUMMARY, dialog.progress.status
    assert dialog.model is not None
    return dialog.model


def wait_for_first_epoch(qtbot: QtBot, dialog: TrainingDialog) -> None:
    qtbot.waitUntil(lambda: len(dialog.loss_plot.reports) >= 1, timeout=TIMEOUT_MS)
    assert dialog.is_running()


def files_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*")) if folder.exists() else []


def wait_shown_whole(qtbot: QtBot, label: QLabel) -> None:
    """Wait until `label` is tall enough for all of its wrapped text at its width."""

    def check() -> None:
        assert label.heightForWidth(label.width()) <= label.height()

    # The nested layouts of a dialog settle over a few passes of the event loop.
    qtbot.waitUntil(check, timeout=LAYOUT_TIMEOUT_MS)


# Options step


def test_dialog_initial_state(dialog: TrainingDialog) -> None:
    defaults = TrainingOptions()
    form = dialog.options_form
    assert dialog.step is Step.OPTIONS
    assert form.epochs_spin.value() == defaults.epochs
    assert form.latent_spin.value() == defaults.latent_size
    assert form.frr_spin.value() == pytest.approx(1.0)
    assert not dialog.train_button.isEnabled()
    assert dialog.problem_label.text() == "Choose a folder of known-good images."
    assert not dialog.is_running()


def test_output_follows_folder_name(dialog: TrainingDialog, good_folder: Path,
                                    models_folder: Path) -> None:
    dialog.options_form.set_folder(good_folder)
    assert dialog.options_form.request().output == models_folder / "cells.safetensors"
    assert dialog.train_button.isEnabled()


def test_output_never_names_existing_model(dialog: TrainingDialog, good_folder: Path,
                                           models_folder: Path) -> None:
    models_folder.mkdir()
    (models_folder / "cells.safetensors").write_bytes(b"an older model")
    (models_folder / "cells-2.md").write_text("the card of another model")
    dialog.options_form.set_folder(good_folder)
    assert dialog.options_form.request().output == models_folder / "cells-3.safetensors"


def test_request_converts_rate_from_percent(dialog: TrainingDialog, good_folder: Path) -> None:
    form = dialog.options_form
    form.set_folder(good_folder)
    form.frr_spin.setValue(2.5)
    form.latent_spin.setValue(16)
    options = form.request().options
    assert options.target_frr == pytest.approx(0.025)
    assert options.latent_size == 16


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("", "Choose the model file to write."),
        ("model.pt", "The model file must end in .safetensors: model.pt"),  # pickled format
    ],
)
def test_invalid_output_disables_train(dialog: TrainingDialog, good_folder: Path,
                                       output: str, expected: str) -> None:
    dialog.options_form.set_folder(good_folder)
    dialog.options_form.output_edit.setText(output)
    assert dialog.problem_label.text() == expected
    assert not dialog.train_button.isEnabled()


def test_missing_folder_disables_train(dialog: TrainingDialog, tmp_path: Path) -> None:
    folder = tmp_path / "absent"
    dialog.options_form.set_folder(folder)
    assert dialog.problem_label.text() == (
        f"{folder} does not exist. Choose a folder of known-good images.")
    assert not dialog.train_button.isEnabled()


def test_file_as_folder_disables_train(dialog: TrainingDialog, tmp_path: Path) -> None:
    image = tmp_path / "eye.png"
    image.write_bytes(b"a file, not a folder")
    dialog.options_form.set_folder(image)
    assert dialog.problem_label.text() == (
        f"{image} is not a folder. Choose a folder of known-good images.")
    assert not dialog.train_button.isEnabled()


def test_output_below_file_disables_train(dialog: TrainingDialog, good_folder: Path,
                                          tmp_path: Path) -> None:
    # A file where the model's folder would go stops root too, unlike permissions.
    blocker = tmp_path / "models.txt"
    blocker.write_bytes(b"a file where a folder is needed")
    dialog.options_form.set_folder(good_folder)
    dialog.options_form.set_output(blocker / "trained" / "cells.safetensors")
    assert dialog.problem_label.text() == (
        f"The model file cannot be written: {blocker} is a file, not a folder. Rename or "
        f"move the file {blocker}, or choose another model file.")
    assert not dialog.train_button.isEnabled()


def test_read_only_model_folder_disables_train(dialog: TrainingDialog, good_folder: Path,
                                               tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    dialog.options_form.set_folder(good_folder)
    with read_only_bind(locked):
        # The check runs as the user types, so a new output path is checked at once.
        dialog.options_form.set_output(locked / "cells.safetensors")
        problem = dialog.problem_label.text()
        train_enabled = dialog.train_button.isEnabled()
        dialog.train_button.click()
        step = dialog.step
        running = dialog.is_running()
    assert problem == (
        f"The model file cannot be written: {locked} cannot be written to (read-only, or "
        f"no permission). Make {locked} writable, or choose another model file.")
    assert not train_enabled
    assert step is Step.OPTIONS
    assert not running


def test_existing_output_declined_keeps_options(
    dialog: TrainingDialog, good_folder: Path, models_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    models_folder.mkdir()
    existing = models_folder / "kept.safetensors"
    existing.write_bytes(b"an older model")
    questions: list[str] = []

    def answer_no(_parent: object, _title: str, text: str) -> QMessageBox.StandardButton:
        questions.append(text)
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", answer_no)
    dialog.options_form.set_folder(good_folder)
    dialog.options_form.set_output(existing)
    dialog.train_button.click()
    assert len(questions) == 1
    assert "kept.safetensors" in questions[0]
    assert dialog.step is Step.OPTIONS
    assert not dialog.is_running()
    assert existing.read_bytes() == b"an older model"


# Training and summary


def test_full_run_shows_summary(qtbot: QtBot, dialog: TrainingDialog, good_folder: Path) -> None:
    model = run_to_summary(qtbot, dialog, good_folder)
    summary = dialog.summary
    assert not summary.isHidden()
    assert format_score(model.threshold) in summary.threshold_label.text()
    assert summary.images_label.text() == "56 trained on, 24 held out to set the threshold"
    assert summary.histogram.threshold == model.threshold
    assert summary.histogram.bin_counts.sum() == 24
    assert dialog.skipped_box.rows() == [("empty.jpg", "empty file (0 bytes)")]
    assert not dialog.skipped_box.isHidden()
    assert "Training finished" in dialog.progress.status
    assert dialog.save_button.isVisible()
    assert dialog.discard_button.isVisible()
    # The loss curve stays in view next to the summary.
    assert dialog.loss_plot.isVisible()


def test_grown_dialog_stays_on_screen(qtbot: QtBot, dialog: TrainingDialog,
                                      good_folder: Path) -> None:
    area = dialog.screen().availableGeometry()
    # Placed low, as a dialog opened over a low main window is.
    dialog.move(area.left() + 40, area.bottom() - 300)

    run_to_summary(qtbot, dialog, good_folder)
    frame = dialog.frameGeometry()

    assert frame.top() >= area.top()
    assert frame.left() >= area.left()
    # A screen lower than the dialog's minimum height keeps its top edge in view.
    assert frame.bottom() <= area.bottom() or frame.top() == area.top()
    assert frame.right() <= area.right() or frame.left() == area.left()


def test_full_run_plots_every_epoch(qtbot: QtBot, dialog: TrainingDialog,
                                    good_folder: Path) -> None:
    run_to_summary(qtbot, dialog, good_folder)
    reports = dialog.loss_plot.reports
    assert [report.epoch for report in reports] == [1, 2, 3]
    assert all(report.epochs == EPOCHS for report in reports)
    assert all(report.train_loss > 0 and report.validation_loss > 0 for report in reports)
    assert dialog.progress.progress_bar.value() == EPOCHS


def test_small_held_out_set_is_explained(qtbot: QtBot, dialog: TrainingDialog,
                                         good_folder: Path) -> None:
    model = run_to_summary(qtbot, dialog, good_folder)
    # 24 held-out images cannot reach a 1 % rate, so the largest error is the threshold.
    assert model.threshold == model.calibration.clean_scores.max()
    assert "about 1 in 25 new good images" in dialog.summary.rate_note.text()
    assert "99 held-out images would be needed" in dialog.summary.rate_note.text()
    assert not dialog.summary.rate_note.isHidden()


def test_rate_note_shown_whole(qtbot: QtBot, dialog: TrainingDialog, tmp_path: Path,
                               data_root: Path) -> None:
    folder = tmp_path / "eyes"
    write_retina_pngs(data_root, folder, 70)
    # Six skipped files fill the five rows of their table, which leaves the summary
    # too short for all of the note.
    for number in range(6):
        (folder / f"empty-{number}.png").write_bytes(b"")
    start_run(dialog, folder, epochs=1)
    qtbot.waitUntil(lambda: dialog.step in (Step.SUMMARY, Step.STOPPED), timeout=TIMEOUT_MS)
    assert dialog.step is Step.SUMMARY, dialog.progress.status
    note = dialog.summary.rate_note
    assert note.text().endswith("299 held-out images would be needed.")
    wait_shown_whole(qtbot, note)
    # The dialog can be made no shorter than the whole note needs.
    dialog.resize(760, 440)
    wait_shown_whole(qtbot, note)


def test_model_file_shown_whole(qtbot: QtBot, dialog: TrainingDialog, good_folder: Path,
                                tmp_path: Path) -> None:
    # A folder name of 120 characters without a space, so the path must wrap inside it.
    output = tmp_path / ("trained_models_" * 8) / "cells.safetensors"
    dialog.options_form.set_output(output)
    run_to_summary(qtbot, dialog, good_folder)
    summary = dialog.summary
    view = summary.output_view
    assert summary.output_text == str(output)
    line = view.fontMetrics().lineSpacing()

    def check_whole() -> None:
        assert view.heightForWidth(view.width()) <= view.height()

    # The path wraps onto several lines, all of them in view.
    qtbot.waitUntil(check_whole, timeout=LAYOUT_TIMEOUT_MS)
    assert view.height() >= 3 * line
    assert view.verticalScrollBar().maximum() == 0
    # Also in the smallest dialog.
    dialog.resize(760, 440)
    qtbot.waitUntil(check_whole, timeout=LAYOUT_TIMEOUT_MS)


def test_save_and_use_writes_model_and_card(
    qtbot: QtBot, dialog: TrainingDialog, good_folder: Path, models_folder: Path
) -> None:
    trained = run_to_summary(qtbot, dialog, good_folder)
    with qtbot.waitSignal(dialog.model_trained, timeout=TIMEOUT_MS) as emitted:
        dialog.save_button.click()
    path = models_folder / "cells.safetensors"
    model = emitted.args[0]
    assert model is trained
    assert model.path == path
    assert dialog.result() == QDialog.DialogCode.Accepted
    loaded = load_model(path)
    assert loaded.threshold == pytest.approx(trained.threshold)
    assert loaded.fingerprint == trained.fingerprint
    assert loaded.training["epochs"] == EPOCHS
    card = card_path(path).read_text(encoding="utf-8")
    assert f"Trained in the Retina Curator window from {good_folder}" in card
    assert "(epochs 3, latent 64, target FRR 0.01)" in card


def test_file_during_training_named_in_summary(
    qtbot: QtBot, dialog: TrainingDialog, good_folder: Path, models_folder: Path
) -> None:
    start_run(dialog, good_folder)
    # Another program writes the chosen file while the model trains.
    models_folder.mkdir()
    existing = models_folder / "cells.safetensors"
    existing.write_bytes(b"written meanwhile")
    qtbot.waitUntil(lambda: dialog.step in (Step.SUMMARY, Step.STOPPED), timeout=TIMEOUT_MS)
    assert dialog.step is Step.SUMMARY, dialog.progress.status
    free = models_folder / "cells-2.safetensors"
    summary = dialog.summary
    assert summary.output_text == str(free)
    assert summary.output_note.text() == (
        f"{existing} already exists, so Save and use writes the model to cells-2.safetensors "
        "beside it and leaves that file as it is. Use Change… to choose another file.")
    assert not summary.output_note.isHidden()
    wait_shown_whole(qtbot, summary.output_note)
    save_beside(qtbot, dialog, existing, free)


def save_beside(qtbot: QtBot, dialog: TrainingDialog, existing: Path, free: Path) -> None:
    """Click Save and use, and check that the model went to `free`, beside `existing`."""
    with qtbot.waitSignal(dialog.model_trained, timeout=TIMEOUT_MS) as emitted:
        dialog.save_button.click()
    assert existing.read_bytes() == b"written meanwhile"
    assert emitted.args[0].path == free
    assert card_path(free).is_file()


def test_file_after_summary_stops_save(
    qtbot: QtBot, dialog: TrainingDialog, good_folder: Path, models_folder: Path
) -> None:
    run_to_summary(qtbot, dialog, good_folder)
    assert dialog.summary.output_note.isHidden()
    # Another program writes the shown file while the summary is open.
    models_folder.mkdir()
    existing = models_folder / "cells.safetensors"
    existing.write_bytes(b"written meanwhile")
    free = models_folder / "cells-2.safetensors"
    with qtbot.assertNotEmitted(dialog.model_trained):
        dialog.save_button.click()
    assert dialog.step is Step.SUMMARY
    assert files_under(models_folder) == [existing]
    assert dialog.progress.status == (
        "Nothing was saved, because another file took the model file's name. Check the new "
        "name under Model file, then click Save and use again.")
    assert dialog.summary.output_text == str(free)
    assert dialog.summary.output_note.text().startswith(f"{existing} already exists")
    save_beside(qtbot, dialog, existing, free)


def test_change_output_saves_elsewhere(
    qtbot: QtBot, dialog: TrainingDialog, good_folder: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_to_summary(qtbot, dialog, good_folder)
    assert dialog.summary.output_text.endswith("cells.safetensors")
    chosen = tmp_path / "elsewhere" / "blood"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *args, **kwargs: (str(chosen), ""))
    dialog.summary.output_button.click()
    # The suffix is added to a name typed without it.
    expected = tmp_path / "elsewhere" / "blood.safetensors"
    assert dialog.summary.output_text == str(expected)
    with qtbot.waitSignal(dialog.model_trained, timeout=TIMEOUT_MS) as emitted:
        dialog.save_button.click()
    assert emitted.args[0].path == expected
    assert load_model(expected).fingerprint == emitted.args[0].fingerprint


def test_change_to_taken_name_shows_free_name(
    qtbot: QtBot, dialog: TrainingDialog, good_folder: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_to_summary(qtbot, dialog, good_folder)
    existing = tmp_path / "elsewhere" / "blood.safetensors"
    existing.parent.mkdir()
    existing.write_bytes(b"an older model")
    # Typed without the suffix, so the file dialog never confirmed replacing it.
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *args, **kwargs: (str(tmp_path / "elsewhere" / "blood"), ""))
    dialog.summary.output_button.click()
    free = tmp_path / "elsewhere" / "blood-2.safetensors"
    assert dialog.summary.output_text == str(free)
    assert dialog.summary.output_note.text().startswith(f"{existing} already exists")
    with qtbot.waitSignal(dialog.model_trained, timeout=TIMEOUT_MS) as emitted:
        dialog.save_button.click()
    assert emitted.args[0].path == free
    assert existing.read_bytes() == b"an older model"


def test_discard_writes_no_file(qtbot: QtBot, dialog: TrainingDialog, good_folder: Path,
                                models_folder: Path) -> None:
    run_to_summary(qtbot, dialog, good_folder)
    with qtbot.assertNotEmitted(dialog.model_trained):
        dialog.discard_button.click()
    assert dialog.result() == QDialog.DialogCode.Rejected
    assert files_under(models_folder) == []


# Cancel, close and too few images


def test_cancel_writes_no_file(qtbot: QtBot, dialog: TrainingDialog, good_folder: Path,
                               models_folder: Path) -> None:
    start_run(dialog, good_folder, LONG_EPOCHS)
    wait_for_first_epoch(qtbot, dialog)
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: dialog.step is Step.STOPPED, timeout=TIMEOUT_MS)
    assert dialog.progress.status == "Training cancelled. No model file was written."
    time_text = dialog.progress.time_label.text()
    assert time_text.startswith("Cancelled after ")
    assert "left" not in time_text
    assert not dialog.is_running()
    assert dialog.model is None
    assert len(dialog.loss_plot.reports) < LONG_EPOCHS
    assert files_under(models_folder) == []
    assert dialog.back_button.isVisible()


def test_back_after_cancel_returns_to_options(qtbot: QtBot, dialog: TrainingDialog,
                                              good_folder: Path) -> None:
    start_run(dialog, good_folder, LONG_EPOCHS)
    wait_for_first_epoch(qtbot, dialog)
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: dialog.step is Step.STOPPED, timeout=TIMEOUT_MS)
    dialog.back_button.click()
    assert dialog.step is Step.OPTIONS
    assert dialog.options_form.request().folder == good_folder
    assert dialog.train_button.isEnabled()


def test_close_during_training_waits_for_job(qtbot: QtBot, dialog: TrainingDialog,
                                             good_folder: Path, models_folder: Path) -> None:
    start_run(dialog, good_folder, LONG_EPOCHS)
    wait_for_first_epoch(qtbot, dialog)
    dialog.close()
    pool = dialog.findChild(QThreadPool)
    assert pool is not None
    assert pool.activeThreadCount() == 0
    assert not dialog.is_running()
    assert not dialog.isVisible()
    assert files_under(models_folder) == []


def test_too_few_images_never_trains(
    qtbot: QtBot, dialog: TrainingDialog, tmp_path: Path, data_root: Path,
    models_folder: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "few"
    copies = copy_blood_jpegs(data_root, folder, 1)
    for number in (1, 2):
        shutil.copy2(copies[0], folder / f"copy-{number}.jpg")
    (folder / "empty.jpg").write_bytes(b"")
    calls: list[object] = []
    monkeypatch.setattr(gui.training_worker, "train_model",
                        lambda *args, **kwargs: calls.append(args))
    start_run(dialog, folder)
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT_MS)
    # Back on the options step, where another folder can be chosen.
    assert dialog.step is Step.OPTIONS
    assert dialog.options_form.isVisible()
    assert not dialog.loss_plot.isVisible()
    assert dialog.train_button.isVisible()
    assert dialog.train_button.isEnabled()
    assert not dialog.back_button.isVisible()
    message = dialog.problem_label.text()
    assert dialog.problem_label.isVisible()
    assert f"at least {minimum_images(0.3)} usable images" in message
    assert f"{folder} contains 10. 1 other file could not be read as an image." in message
    assert "held out" in message
    assert calls == []
    assert dialog.loss_plot.reports == []
    assert files_under(models_folder) == []


def test_too_few_message_cleared_by_edit(
    qtbot: QtBot, dialog: TrainingDialog, tmp_path: Path, good_folder: Path,
    data_root: Path,
) -> None:
    folder = tmp_path / "few"
    copy_blood_jpegs(data_root, folder, 1)
    start_run(dialog, folder)
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT_MS)
    assert dialog.problem_label.text().startswith("Training needs at least")
    dialog.options_form.set_folder(good_folder)
    assert dialog.problem_label.text() == ""
    assert dialog.train_button.isEnabled()


def test_folder_removed_before_train_click(dialog: TrainingDialog, tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    dialog.options_form.set_folder(folder)
    folder.rmdir()
    dialog.train_button.click()
    assert dialog.step is Step.OPTIONS
    assert dialog.problem_label.text().startswith(f"{folder} does not exist.")
    assert not dialog.train_button.isEnabled()


def test_unreadable_folder_reports_failure(
    qtbot: QtBot, dialog: TrainingDialog, good_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def deny(folder: Path, _framing: object) -> None:
        # A real permission error needs a non-root user, and tests may run as root.
        raise PermissionError(13, "Permission denied", str(folder))

    monkeypatch.setattr(gui.training_worker, "load_folder", deny)
    start_run(dialog, good_folder)
    qtbot.waitUntil(lambda: dialog.step is Step.STOPPED, timeout=TIMEOUT_MS)
    assert dialog.progress.status == (f"Reading {good_folder} failed: Permission denied. "
                                      "No model file was written.")


def test_settings_keep_last_options(qtbot: QtBot, tmp_path: Path, good_folder: Path,
                                    models_folder: Path) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    first = TrainingDialog(None, settings, models_folder)
    qtbot.addWidget(first)
    first.options_form.set_folder(good_folder)
    first.options_form.epochs_spin.setValue(7)
    first.options_form.frr_spin.setValue(5.0)
    first.options_form.save(settings)
    second = TrainingDialog(None, settings, models_folder)
    qtbot.addWidget(second)
    request = second.options_form.request()
    assert request.folder == good_folder
    assert request.options.epochs == 7
    assert request.options.target_frr == pytest.approx(0.05)


def test_invalid_settings_keep_defaults(qtbot: QtBot, tmp_path: Path,
                                       models_folder: Path) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("training/epochs", "many")
    dialog = TrainingDialog(None, settings, models_folder)
    qtbot.addWidget(dialog)
    assert dialog.options_form.epochs_spin.value() == TrainingOptions().epochs


# Plots and helpers


def test_loss_plot_adds_points(qtbot: QtBot) -> None:
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.start(10)
    assert plot.epochs == 10
    plot.add_epoch(EpochReport(1, 10, 0.05, 0.06))
    plot.add_epoch(EpochReport(2, 10, 0.01, 0.02))
    assert [report.epoch for report in plot.reports] == [1, 2]
    scale = plot.value_scale()
    assert scale.low < 0.01
    assert scale.high > 0.06
    plot.start(4)
    assert plot.reports == []


def test_loss_scale_widens_flat_curve() -> None:
    scale = loss_scale(np.array([0.100, 0.101]))
    assert scale.high / scale.low == pytest.approx(5.0)
    assert len(scale.ticks()) >= 2


@pytest.mark.parametrize(
    ("epochs", "expected"),
    [
        (1, [1]),
        (3, [1, 2, 3]),
        (80, [1, 10, 20, 30, 40, 50, 60, 70, 80]),
        (1000, [1, 200, 400, 600, 800, 1000]),
    ],
)
def test_epoch_ticks(epochs: int, expected: list[int]) -> None:
    assert epoch_ticks(epochs) == expected


def test_calibration_histogram_counts_every_score(qtbot: QtBot) -> None:
    histogram = CalibrationHistogram()
    qtbot.addWidget(histogram)
    scores = np.array([0.001, 0.0012, 0.002, 0.004, 0.02])
    histogram.set_calibration(Calibration(0.2, 0.004, scores))
    assert histogram.bin_counts.sum() == 5
    assert histogram.threshold == 0.004


@pytest.mark.parametrize(
    ("target_frr", "expected"),
    [(0.01, 99), (0.05, 19), (0.5, 1)],
)
def test_calibration_images_needed(target_frr: float, expected: int) -> None:
    assert calibration_images_needed(target_frr) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.4, "0 s"), (59, "59 s"), (65, "1 min 05 s"), (3720, "1 h 02 min")],
)
def test_format_duration(seconds: float, expected: str) -> None:
    assert format_duration(seconds) == expected


def test_unique_model_path_counts_up(tmp_path: Path) -> None:
    assert unique_model_path(tmp_path, "eyes") == tmp_path / "eyes.safetensors"
    (tmp_path / "eyes.safetensors").write_bytes(b"")
    assert unique_model_path(tmp_path, "eyes") == tmp_path / "eyes-2.safetensors"
    assert unique_model_path(tmp_path, "") == tmp_path / "model.safetensors"
