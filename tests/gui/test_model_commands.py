"""Tests of the Model menu: switching models on an open folder, bad files, recents, training."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot
from window_helpers import SCORING_TIMEOUT_MS, open_and_wait, select_paths

import engine.scoring
import gui.file_commands
from engine.decisions import Decision
from engine.framing import Framing
from engine.modelfile import ReferenceModel, load_model, save_model
from engine.resources import DEFAULT_MODEL_PATH
from engine.training import TrainingData, TrainingOptions, frame_arrays, train_model
from gui.error_map import full_scale
from gui.gallery_roles import GalleryRole
from gui.main_window import MainWindow
from gui.score_format import format_threshold
from gui.settings import WindowSettings
from gui.training_dialog import TrainingDialog

# Printed by the pickle payload of the malicious checkpoint if it were ever unpickled.
PAYLOAD_MARKER = "CASEFILES_PICKLE_PAYLOAD_EXECUTED"

# Files of the mixed folder that decode and so go through a model. empty.png does not decode.
READABLE_COUNT = 18


@pytest.fixture(scope="session")
def second_model_path(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """A model file trained for two epochs on 200 RetinaMNIST train images: real but rough."""
    with np.load(data_root / "medmnist" / "retinamnist.npz") as arrays:
        images = frame_arrays(arrays["train_images"][:200], Framing())
    data = TrainingData(images, "200 RetinaMNIST train images")
    model = train_model(data, Framing(), TrainingOptions(epochs=2))
    path = tmp_path_factory.mktemp("models") / "retina_rough.safetensors"
    save_model(model, path)
    return path


@pytest.fixture
def second_model(second_model_path: Path) -> ReferenceModel:
    return load_model(second_model_path)


@pytest.fixture
def model_inputs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the batches of images that scoring sends through a model.

    The detail pane's reconstruction of one image is not counted.
    """
    sizes: list[int] = []
    score = engine.scoring.signal_scores

    def counting(model: ReferenceModel, images: np.ndarray, *args: int) -> dict[str, np.ndarray]:
        sizes.append(len(images))
        return score(model, images, *args)

    monkeypatch.setattr(engine.scoring, "signal_scores", counting)
    return sizes


def switch_and_wait(qtbot: QtBot, window: MainWindow, path: Path) -> None:
    """Open the model file `path` in `window` and wait until the folder is scored again."""
    with qtbot.waitSignal(window.scoring_finished, timeout=SCORING_TIMEOUT_MS):
        assert window.model_commands.open_model_file(path)


def gallery_scores(window: MainWindow) -> dict[str, float | None]:
    model = window.gallery_model
    return {model.item(row).record.relative_path: model.item(row).record.score
            for row in range(model.rowCount())}


def shown_warnings(window: MainWindow) -> list[str]:
    return [box.text() for box in window.findChildren(QMessageBox) if box.isVisible()]


def recent_model_actions(window: MainWindow) -> list[str]:
    return [str(action.data()) for action in window.window_actions.recent_models_menu.actions()
            if action.data()]


# Switching models on an open folder


def test_open_model_rescores_folder(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, second_model: ReferenceModel,
    model_inputs: list[int],
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    assert sum(model_inputs) == READABLE_COUNT
    model_inputs.clear()

    switch_and_wait(qtbot, window, second_model.path)

    assert window.model is not None
    assert window.model.fingerprint == second_model.fingerprint
    assert sum(model_inputs) == READABLE_COUNT
    assert window.status_bar.model_text == (
        f"Model: retina_rough · calibrated threshold {format_threshold(second_model.threshold)}"
    )
    assert window.ui.threshold_dock.windowTitle() == "Threshold of model retina_rough"
    panel = window.threshold_panel
    assert panel.threshold == second_model.threshold
    assert not panel.reset_button.isEnabled()
    clean_count = second_model.calibration.clean_scores.size
    assert f" of {clean_count} held-out clean images" in panel.clean_rate_label.text()
    assert panel.scale.high >= second_model.threshold
    assert panel.histogram.bin_counts.sum() == READABLE_COUNT
    assert window.detail_pane.error_map_scale == full_scale(second_model)
    assert format_threshold(second_model.threshold) in window.detail_pane.info_text("Model")


def test_switch_back_scores_nothing(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, second_model_path: Path,
    model_inputs: list[int],
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    first_scores = gallery_scores(window)
    switch_and_wait(qtbot, window, second_model_path)
    model_inputs.clear()

    with qtbot.waitSignal(window.scoring_finished, timeout=SCORING_TIMEOUT_MS):
        window.window_actions.use_bundled_model.trigger()

    assert model_inputs == []
    assert window.model is not None
    assert window.model.path == DEFAULT_MODEL_PATH
    assert gallery_scores(window) == first_scores
    assert window.gallery_model.rowCount() == READABLE_COUNT + 1


def test_switch_keeps_decisions_and_thresholds(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, second_model: ReferenceModel,
    default_model: ReferenceModel,
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    window.controller.advance = False
    select_paths(window, ["retina_0003.png"])
    window.controller.reject_selected()
    chosen = default_model.threshold * 1.5
    window.gallery_model.set_threshold(chosen)

    switch_and_wait(qtbot, window, second_model.path)
    assert window.gallery_model.threshold == second_model.threshold
    assert window.gallery_model.overrides() == {"retina_0003.png": Decision.REJECT}
    row = window.gallery_model.row_of("retina_0003.png")
    assert row is not None
    assert window.gallery_model.decision_at(row) is Decision.REJECT

    switch_and_wait(qtbot, window, DEFAULT_MODEL_PATH)
    assert window.gallery_model.threshold == chosen
    assert window.gallery_model.overrides() == {"retina_0003.png": Decision.REJECT}
    assert window.session is not None
    record = window.session.store.record("retina_0003.png")
    assert record is not None
    assert record.override is Decision.REJECT


def test_switch_during_scan_restarts_it(
    qtbot: QtBot, window: MainWindow, large_folder: Path, second_model: ReferenceModel,
) -> None:
    with qtbot.waitSignal(window.gallery_model.rowsInserted, timeout=SCORING_TIMEOUT_MS):
        window.open_folder(large_folder)
    first = window.gallery_model.item(0).record.relative_path
    select_paths(window, [first])
    window.controller.advance = False
    window.controller.keep_selected()

    switch_and_wait(qtbot, window, second_model.path)

    qtbot.waitUntil(lambda: not window.is_busy(), timeout=SCORING_TIMEOUT_MS)
    session = window.session
    assert session is not None
    records = session.store.records(second_model.fingerprint)
    assert len(records) == window.gallery_model.rowCount() == len(list(large_folder.glob("*.png")))
    assert all(record.score is not None for record in records)
    kept = [record.relative_path for record in records if record.override is Decision.KEEP]
    assert kept == [first]
    flags = {window.gallery_model.index(row).data(GalleryRole.FLAGGED)
             for row in range(window.gallery_model.rowCount())}
    assert None not in flags


# Files that are not models


@pytest.mark.parametrize("name", [
    "model.pt",  # a pickled checkpoint with a payload, under its own suffix
    "model.safetensors",  # the same pickle renamed to look like a model file
])
def test_malicious_model_rejected(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, data_root: Path, tmp_path: Path,
    default_model: ReferenceModel, capfd: pytest.CaptureFixture[str], name: str,
) -> None:
    source = data_root.parent / "cases" / "models" / "ckpt_malicious.pt"
    path = Path(shutil.copy(source, tmp_path / name))
    open_and_wait(qtbot, window, mixed_folder)
    status = window.status_bar.model_text

    assert not window.model_commands.open_model_file(path)

    assert window.model is default_model
    assert window.status_bar.model_text == status
    assert not window.is_busy()
    assert window.gallery_model.rowCount() == READABLE_COUNT + 1
    warnings = shown_warnings(window)
    assert len(warnings) == 1
    assert warnings[0].startswith(f"Loading model {path} failed: it is not a safetensors")
    output = capfd.readouterr()
    assert PAYLOAD_MARKER not in output.out
    assert PAYLOAD_MARKER not in output.err
    assert recent_model_actions(window) == [str(DEFAULT_MODEL_PATH)]


def test_missing_model_file_rejected(window: MainWindow, tmp_path: Path,
                                     default_model: ReferenceModel) -> None:
    missing = tmp_path / "gone.safetensors"
    assert not window.model_commands.open_model_file(missing)
    assert window.model is default_model
    assert shown_warnings(window) == [f"Loading model {missing} failed: the file does not exist."]


def test_open_model_rejected_during_move(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, second_model_path: Path,
    default_model: ReferenceModel, monkeypatch: pytest.MonkeyPatch,
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    monkeypatch.setattr(gui.file_commands, "confirm", lambda *_args: True)
    with qtbot.waitSignal(window.move_finished, timeout=SCORING_TIMEOUT_MS):
        assert window.file_commands.move_rejects_out()
        assert not window.model_commands.open_model_file(second_model_path)
    assert window.model is default_model
    assert any(text.startswith("Files are being moved or exported") for text in
               shown_warnings(window))
    assert window.window_actions.open_model.isEnabled()


# Recent and last models


def test_recent_models_persist(
    qtbot: QtBot, make_window: Callable[[], MainWindow], settings: QSettings,
    second_model_path: Path,
) -> None:
    first = make_window()
    assert first.model_commands.open_model_file(second_model_path)
    first.close()
    expected = [str(second_model_path.resolve()), str(DEFAULT_MODEL_PATH)]
    assert WindowSettings(settings).recent_models() == expected
    assert WindowSettings(settings).last_model() == expected[0]

    restarted = MainWindow(settings)
    qtbot.addWidget(restarted)
    assert recent_model_actions(restarted) == expected
    assert restarted.window_actions.recent_models_menu.isEnabled()
    assert restarted.model_commands.restore_last_model()
    assert restarted.model is not None
    assert restarted.model.path == second_model_path


def test_recent_model_menu_opens_model(
    window: MainWindow, second_model_path: Path, second_model: ReferenceModel,
) -> None:
    assert window.model_commands.open_model_file(second_model_path)
    assert window.model_commands.open_model_file(DEFAULT_MODEL_PATH)
    entry = next(action for action in window.window_actions.recent_models_menu.actions()
                 if action.data() == str(second_model_path.resolve()))
    entry.trigger()
    assert window.model is not None
    assert window.model.fingerprint == second_model.fingerprint
    assert recent_model_actions(window)[0] == str(second_model_path.resolve())


def test_missing_last_model_falls_back(qtbot: QtBot, settings: QSettings,
                                       tmp_path: Path) -> None:
    missing = tmp_path / "deleted.safetensors"
    WindowSettings(settings).add_recent_model(missing)
    window = MainWindow(settings)
    qtbot.addWidget(window)

    assert window.model_commands.restore_last_model()

    assert window.model is not None
    assert window.model.path == DEFAULT_MODEL_PATH
    message = window.statusBar().currentMessage()
    assert message.startswith(f"The model used last, {missing}, could not be loaded")
    assert shown_warnings(window) == []
    assert WindowSettings(settings).last_model() == str(DEFAULT_MODEL_PATH)


def test_no_last_model_uses_bundled(qtbot: QtBot, settings: QSettings) -> None:
    window = MainWindow(settings)
    qtbot.addWidget(window)
    assert window.model is None
    assert window.model_commands.restore_last_model()
    assert window.model is not None
    assert window.model.path == DEFAULT_MODEL_PATH


def test_missing_recent_model_removed(
    window: MainWindow, settings: QSettings, tmp_path: Path, default_model: ReferenceModel,
) -> None:
    missing = tmp_path / "deleted.safetensors"
    WindowSettings(settings).add_recent_model(missing)
    window.window_actions.set_recent_models([str(missing)])

    window.window_actions.recent_models_menu.actions()[0].trigger()

    assert window.model is default_model
    assert str(missing) not in WindowSettings(settings).recent_models()
    assert str(missing) not in recent_model_actions(window)
    assert shown_warnings(window) == [f"The model file {missing} does not exist any more, so "
                                      "it was removed from Open Recent Model."]


def test_clear_recent_models_menu(window: MainWindow, settings: QSettings,
                                  second_model_path: Path) -> None:
    assert window.model_commands.open_model_file(second_model_path)
    clear = next(action for action in window.window_actions.recent_models_menu.actions()
                 if action.text() == "&Clear Menu")
    clear.trigger()
    assert recent_model_actions(window) == []
    assert not window.window_actions.recent_models_menu.isEnabled()
    assert WindowSettings(settings).recent_models() == []
    # The model to start with is still the one in use.
    assert WindowSettings(settings).last_model() == str(second_model_path.resolve())


# Training and model facts


def test_trained_model_used(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, second_model: ReferenceModel,
    second_model_path: Path, settings: QSettings,
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    window.window_actions.train_model.trigger()
    dialog = window.model_commands.training_dialog
    assert isinstance(dialog, TrainingDialog)
    assert dialog.isVisible()

    with qtbot.waitSignal(window.scoring_finished, timeout=SCORING_TIMEOUT_MS):
        dialog.model_trained.emit(second_model)
    dialog.accept()

    assert window.model is second_model
    assert window.gallery_model.threshold == second_model.threshold
    assert WindowSettings(settings).recent_models()[0] == str(second_model_path.resolve())
    qtbot.waitUntil(lambda: window.model_commands.training_dialog is None)


def test_about_model_dialog(window: MainWindow, default_model: ReferenceModel) -> None:
    assert window.window_actions.about_model.isEnabled()
    window.window_actions.about_model.trigger()
    dialog = window.model_commands.info_dialog
    assert dialog is not None
    assert dialog.isVisible()
    assert dialog.value("Name") == "retina_default"
    assert dialog.value("Fingerprint") == default_model.fingerprint
    assert dialog.value("File") == str(DEFAULT_MODEL_PATH)
    assert dialog.value("Training data").startswith("RetinaMNIST 28 px train+val")
    assert dialog.value("Images trained on") == "840"
    assert dialog.value("Images held out") == "360, to set the threshold"
    assert dialog.value("Trained") not in ("", "unknown")


def test_status_bar_tooltip_describes_model(window: MainWindow,
                                            default_model: ReferenceModel) -> None:
    tooltip = window.status_bar.model_tooltip.splitlines()
    assert "Training data: RetinaMNIST 28 px train+val (1200 images) from retinamnist.npz" \
        in tooltip
    assert "Images trained on: 840" in tooltip
    assert "Images held out: 360, to set the threshold" in tooltip
    assert f"Fingerprint: {default_model.fingerprint}" in tooltip
    assert f"File: {DEFAULT_MODEL_PATH}" in tooltip
    assert any(line.startswith("Trained: 20") for line in tooltip)


def test_model_menu_actions(window: MainWindow) -> None:
    menu = window.window_actions.model_menu
    texts = [action.text() for action in menu.actions() if not action.isSeparator()]
    assert texts == ["&Open Model…", "Open &Recent Model", "Use &Bundled Model",
                     "&Train Reference Model…", "&About This Model…"]
    assert menu.menuAction() in window.menuBar().actions()


def test_without_model_about_disabled(window: MainWindow) -> None:
    window.set_model(None)
    assert not window.window_actions.about_model.isEnabled()
    assert window.model_commands.show_model_info() is None
