"""Options page of the training dialog: the image folder, training settings and model file."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths, Signal, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.modelcard import card_path
from engine.names import find_folder_problem
from engine.training import TrainingOptions, minimum_images

logger = logging.getLogger(__name__)

MODEL_SUFFIX = ".safetensors"

_FOLDER_KEY = "training/folder"
_EPOCHS_KEY = "training/epochs"
_LATENT_KEY = "training/latent_size"
_FRR_KEY = "training/target_frr"


@dataclass(frozen=True)
class TrainingRequest:
    """A training run as the user set it up: images, options and the model file to write."""

    folder: Path
    options: TrainingOptions
    output: Path

    def command_text(self) -> str:
        """Describe the run for the model card, as a command line would."""
        options = self.options
        return (f"Trained in the Retina Curator window from {self.folder} "
                f"(epochs {options.epochs}, latent {options.latent_size}, "
                f"target FRR {options.target_frr:g})")


def default_models_folder() -> Path:
    """Return the `models` folder in the user's application data folder."""
    location = QStandardPaths.StandardLocation.AppLocalDataLocation
    return Path(QStandardPaths.writableLocation(location)) / "models"


def output_taken(path: Path) -> bool:
    """Return whether writing a model to `path` would replace a model file or its card."""
    return path.exists() or card_path(path).exists()


def unique_model_path(folder: Path, stem: str) -> Path:
    """Return `folder/<stem>.safetensors`, or `<stem>-2`, `<stem>-3`, … if that is taken."""
    stem = stem or "model"
    path = folder / f"{stem}{MODEL_SUFFIX}"
    number = 2
    while output_taken(path):
        path = folder / f"{stem}-{number}{MODEL_SUFFIX}"
        number += 1
    return path


def renamed_output_note(chosen: Path, path: Path) -> str:
    """Return why the model is saved to `path`, not to the `chosen` file, or "" if it is not.

    The dialog saves under a free numbered name beside a model file or card that
    the curator did not agree to replace, such as one that appeared during training.
    """
    if path == chosen:
        return ""
    existing = chosen if chosen.exists() else card_path(chosen)
    return (f"{existing} already exists, so Save and use writes the model to {path.name} "
            "beside it and leaves that file as it is. Use Change… to choose another file.")


class TrainingOptionsForm(QWidget):
    """Form for the folder of known-good images, epochs, latent size, target rate and output.

    The output file follows the folder's name until the user edits it, and is
    chosen so that it replaces no existing model.

    Signals:
        options_changed(): a field was edited, so problem() may return another text.
    """

    options_changed = Signal()

    def __init__(self, models_folder: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._models_folder = models_folder
        self._output_edited = False
        self._build_ui()
        self._connect_signals()

    def _build_ui(self) -> None:
        defaults = TrainingOptions()
        self.folder_edit = QLineEdit(self)
        self.folder_edit.setPlaceholderText("Folder of images that all belong")
        self.folder_button = QPushButton("Browse…", self)
        self.epochs_spin = _spin_box(self, 1, 2000, defaults.epochs,
                                     "Passes over the training images.")
        self.latent_spin = _spin_box(self, 2, 1024, defaults.latent_size,
                                     "Width of the autoencoder's bottleneck: smaller values "
                                     "learn only the coarse look of the images.")
        self.frr_spin = QDoubleSpinBox(self)
        self.frr_spin.setRange(0.1, 50.0)
        self.frr_spin.setDecimals(1)
        self.frr_spin.setSingleStep(0.5)
        self.frr_spin.setSuffix(" %")
        self.frr_spin.setValue(100 * defaults.target_frr)
        self.frr_spin.setToolTip("Share of good images that the threshold may flag.")
        self.output_edit = QLineEdit(self)
        self.output_edit.setPlaceholderText(f"Model file ({MODEL_SUFFIX})")
        self.output_button = QPushButton("Browse…", self)

        form = QFormLayout()
        form.addRow("Known-good images:", _row(self.folder_edit, self.folder_button))
        form.addRow("", _hint(self, self._minimum_text(defaults)))
        form.addRow("Epochs:", _row(self.epochs_spin))
        form.addRow("Latent size:", _row(self.latent_spin))
        form.addRow("Target false-reject rate:", _row(self.frr_spin))
        form.addRow("Model file:", _row(self.output_edit, self.output_button))
        form.addRow("", _hint(self, "A model card (.md) is written next to the model file."))
        intro = QLabel(
            "Train a reference model on a folder of images that all belong, such as "
            "photographs that passed a review. The model learns to reconstruct them and "
            "records their codes and colours. An image is flagged when it is reconstructed "
            "poorly, lands far from the training codes or has colours outside their range. "
            "Each threshold is set from held-out images, so that together they flag at most "
            "the target share of good images.",
            self)
        intro.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addSpacing(8)
        layout.addLayout(form)
        layout.addStretch(1)

    def _connect_signals(self) -> None:
        self.folder_button.clicked.connect(self._on_folder_button_clicked)
        self.output_button.clicked.connect(self._on_output_button_clicked)
        self.folder_edit.textChanged.connect(self._on_folder_edit_changed)
        self.output_edit.textEdited.connect(self._on_output_edit_edited)
        self.output_edit.textChanged.connect(self.options_changed)
        for spin in (self.epochs_spin, self.latent_spin, self.frr_spin):
            spin.valueChanged.connect(self.options_changed)

    @staticmethod
    def _minimum_text(options: TrainingOptions) -> str:
        return (f"At least {minimum_images(options.calibration_fraction)} usable images. "
                f"{100 * options.calibration_fraction:g} % of them are held out, never trained "
                "on, to set the threshold.")

    # Public interface

    def request(self) -> TrainingRequest:
        """Return the run the fields describe; check problem() first."""
        options = replace(TrainingOptions(), epochs=self.epochs_spin.value(),
                          latent_size=self.latent_spin.value(),
                          target_frr=round(self.frr_spin.value() / 100, 6))
        return TrainingRequest(_path(self.folder_edit.text()), options,
                               _path(self.output_edit.text()))

    def problem(self) -> str:
        """Return why the fields cannot start a run, or an empty string."""
        folder_text, output_text = self.folder_edit.text().strip(), self.output_edit.text().strip()
        if not folder_text:
            return "Choose a folder of known-good images."
        folder = _path(folder_text)
        if not folder.exists():
            return f"{folder} does not exist. Choose a folder of known-good images."
        if not folder.is_dir():
            return f"{folder} is not a folder. Choose a folder of known-good images."
        if not output_text:
            return "Choose the model file to write."
        output = _path(output_text)
        if output.suffix != MODEL_SUFFIX:
            return f"The model file must end in {MODEL_SUFFIX}: {output.name}"
        if output.is_dir():
            return f"{output} is a folder. Choose a file name for the model."
        return _output_folder_problem(output)

    def set_folder(self, folder: Path) -> None:
        self.folder_edit.setText(str(folder))

    def set_output(self, path: Path) -> None:
        """Set the model file and stop deriving it from the folder's name."""
        self._output_edited = True
        self.output_edit.setText(str(path))

    def restore(self, settings: QSettings | None) -> None:
        """Fill the fields from the previous run kept in `settings`, if any."""
        if settings is None:
            return
        # An INI file returns numbers as strings; the spin boxes clamp them to range.
        try:
            epochs = int(str(settings.value(_EPOCHS_KEY, self.epochs_spin.value())))
            latent_size = int(str(settings.value(_LATENT_KEY, self.latent_spin.value())))
            frr = float(str(settings.value(_FRR_KEY, self.frr_spin.value() / 100)))
        except ValueError as error:
            logger.warning("ignored invalid training settings in %s: %s",
                           settings.fileName(), error)
        else:
            self.epochs_spin.setValue(epochs)
            self.latent_spin.setValue(latent_size)
            self.frr_spin.setValue(100 * frr)
        folder = settings.value(_FOLDER_KEY)
        if folder:
            self.set_folder(Path(str(folder)))

    def save(self, settings: QSettings | None) -> None:
        """Keep the fields of `request` in `settings` for the next run."""
        if settings is None:
            return
        request = self.request()
        settings.setValue(_FOLDER_KEY, str(request.folder))
        settings.setValue(_EPOCHS_KEY, request.options.epochs)
        settings.setValue(_LATENT_KEY, request.options.latent_size)
        settings.setValue(_FRR_KEY, request.options.target_frr)

    # Slots

    @Slot()
    def _on_folder_button_clicked(self) -> None:
        start = self.folder_edit.text().strip() or str(Path.home())
        chosen = QFileDialog.getExistingDirectory(self, "Folder of Known-Good Images", start)
        if chosen:
            self.set_folder(Path(chosen))

    @Slot()
    def _on_output_button_clicked(self) -> None:
        start = self.output_edit.text().strip() or str(self._models_folder)
        # The Train button requests confirmation before replacing a model, so the
        # file dialog must not request it a second time.
        chosen, _ = QFileDialog.getSaveFileName(
            self, "Save Model As", start, f"Reference models (*{MODEL_SUFFIX})",
            options=QFileDialog.Option.DontConfirmOverwrite)
        if chosen:
            path = Path(chosen)
            self.set_output(path if path.suffix else path.with_suffix(MODEL_SUFFIX))

    @Slot(str)
    def _on_folder_edit_changed(self, text: str) -> None:
        if not self._output_edited and text.strip():
            name = _path(text).name
            self.output_edit.setText(str(unique_model_path(self._models_folder, name)))
        self.options_changed.emit()

    @Slot(str)
    def _on_output_edit_edited(self, _text: str) -> None:
        self._output_edited = True


def _output_folder_problem(output: Path) -> str:
    """Return why the model file and its card cannot be created beside `output`, or "".

    The same check as the command line's before training, without its test write,
    because this one runs at each key press and must create no file or folder.
    """
    # NOTE: this checks permissions and read-only mounts only. A full disk, or a file
    # system that rejects writes that os.access allows, fails only when Save writes.
    found = find_folder_problem(output.parent)
    if found is None:
        return ""
    remedy = found.remedy[:1].upper() + found.remedy[1:]
    return (f"The model file cannot be written: {found.reason}. {remedy}, or choose "
            "another model file.")


def _path(text: str) -> Path:
    return Path(text.strip()).expanduser()


def _spin_box(parent: QWidget, low: int, high: int, value: int, tip: str) -> QSpinBox:
    spin = QSpinBox(parent)
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin


def _row(field: QWidget, button: QPushButton | None = None) -> QHBoxLayout:
    """Lay out a line edit with its button, or a spin box at its natural width."""
    row = QHBoxLayout()
    if button is None:
        field.setMinimumWidth(110)
        row.addWidget(field)
        row.addStretch(1)
    else:
        row.addWidget(field, 1)
        row.addWidget(button)
    return row


def _hint(parent: QWidget, text: str) -> QLabel:
    label = QLabel(text, parent)
    palette = label.palette()
    dim = palette.color(QPalette.ColorRole.PlaceholderText)
    palette.setColor(QPalette.ColorRole.WindowText, dim)
    label.setPalette(palette)
    return label
