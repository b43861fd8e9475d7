"""The Model menu: open a model file, reopen a recent one, train one and describe the one in use."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QMainWindow

from engine.modelfile import ModelFileError, ReferenceModel, load_model
from engine.resources import DEFAULT_MODEL_PATH
from gui.actions import WindowActions
from gui.dialogs import show_warning
from gui.file_jobs import FileJobs
from gui.model_info import ModelInfoDialog
from gui.settings import WindowSettings
from gui.training_dialog import TrainingDialog

logger = logging.getLogger(__name__)

MODEL_FILE_FILTER = "Reference models (*.safetensors);;All files (*)"

_BUSY_TEXT = ("Files are being moved or exported, and switching models now would mix the "
              "scores of two models. Wait until that ends, then choose the model again.")


class ModelCommands(QObject):
    """Loads the model files requested in the Model menu and keeps the recent models.

    A model that loads is handed to the window with `model_loaded`; one that fails
    is reported, and the window keeps its model. The window reports every model it
    switches to with remember_model(), which keeps the model's file as the last and
    most recent one, whether the Model menu, training or the command line chose it.

    Signals:
        model_loaded(object): a ReferenceModel was loaded or trained for the window to use.
    """

    model_loaded = Signal(object)

    def __init__(self, window: QMainWindow, settings: WindowSettings, jobs: FileJobs) -> None:
        super().__init__(window)
        self._window = window
        self._settings = settings
        self._jobs = jobs
        self._actions: WindowActions | None = None
        self._model: ReferenceModel | None = None
        self.training_dialog: TrainingDialog | None = None
        self.info_dialog: ModelInfoDialog | None = None

    def connect_actions(self, actions: WindowActions) -> None:
        """Run the Model menu's actions here and fill Open Recent Model from the settings."""
        self._actions = actions
        actions.open_model.triggered.connect(self.ask_and_open_model)
        actions.use_bundled_model.triggered.connect(self.use_bundled_model)
        actions.train_model.triggered.connect(self.show_training_dialog)
        actions.about_model.triggered.connect(self.show_model_info)
        actions.recent_model_requested.connect(self._on_actions_recent_model_requested)
        actions.clear_recent_models_requested.connect(self._on_actions_clear_recent_requested)
        actions.about_model.setEnabled(False)
        actions.set_recent_models(self._settings.recent_models())

    # Loading

    def open_model_file(self, path: Path | str) -> bool:
        """Load the model file `path` and hand it to the window.

        Returns False, after showing why, if the file cannot be loaded or a file job
        runs; the window's model is then unchanged.
        """
        if self._jobs.is_running():
            self._show_error("Opening model failed", _BUSY_TEXT)
            return False
        try:
            model = load_model(Path(path))
        except ModelFileError as error:
            self._show_error("Opening model failed", str(error))
            return False
        self.model_loaded.emit(model)
        return True

    def restore_last_model(self) -> bool:
        """Load the model used last, else the bundled one, and hand it to the window.

        A remembered model that cannot be loaded any more is replaced by the bundled
        one, with a note in the status bar. Returns False, after showing why, if the
        bundled model cannot be loaded either.
        """
        last = self._settings.last_model()
        if last is None or Path(last) == DEFAULT_MODEL_PATH:
            return self.open_model_file(DEFAULT_MODEL_PATH)
        try:
            model = load_model(Path(last))
        except ModelFileError as error:
            logger.warning("using the bundled model instead of the last one: %s", error)
            if not self.open_model_file(DEFAULT_MODEL_PATH):
                return False
            self._window.statusBar().showMessage(
                f"The model used last, {last}, could not be loaded, so the bundled model "
                "is used. Choose another in Model › Open Model….", 30_000)
            return True
        self.model_loaded.emit(model)
        return True

    @Slot()
    def ask_and_open_model(self) -> None:
        """Ask for a model file, then load it as open_model_file() does."""
        current = self._model.path if self._model is not None else None
        start = str(current.parent if current is not None else DEFAULT_MODEL_PATH.parent)
        chosen, _ = QFileDialog.getOpenFileName(self._window, "Open Model", start,
                                                MODEL_FILE_FILTER)
        if chosen:
            self.open_model_file(chosen)

    @Slot()
    def use_bundled_model(self) -> None:
        """Load the model that ships with Retina Curator."""
        self.open_model_file(DEFAULT_MODEL_PATH)

    @Slot(object)
    def remember_model(self, model: ReferenceModel | None) -> None:
        """Remember that the window now scores with `model`."""
        self._model = model
        if self._actions is not None:
            self._actions.about_model.setEnabled(model is not None)
        if model is None or model.path is None:
            return
        self._settings.add_recent_model(model.path.resolve())
        self._refresh_recent_menu()

    # Dialogs

    @Slot()
    def show_training_dialog(self) -> TrainingDialog:
        """Open the training dialog, window-modal, and return it.

        Window-modal, because the window must not close while the dialog trains.
        The model it saves is used at once, unless a file job runs then.
        """
        if self.training_dialog is not None:
            self.training_dialog.raise_()
            return self.training_dialog
        dialog = TrainingDialog(self._window, self._settings.qsettings)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.model_trained.connect(self._on_training_dialog_model_trained)
        dialog.destroyed.connect(self._on_training_dialog_destroyed)
        self.training_dialog = dialog
        dialog.open()
        return dialog

    @Slot()
    def show_model_info(self) -> ModelInfoDialog | None:
        """Show the facts of the model in use without blocking, replacing the previous dialog."""
        if self._model is None:
            return None
        if self.info_dialog is not None:
            self.info_dialog.close()
            self.info_dialog.deleteLater()
        self.info_dialog = ModelInfoDialog(self._model, self._window)
        self.info_dialog.open()
        return self.info_dialog

    # Slots

    @Slot(object)
    def _on_training_dialog_model_trained(self, model: ReferenceModel) -> None:
        if model.path is None:
            logger.error("the training dialog reported model %s without a file", model.name)
            return
        if self._jobs.is_running():
            self._settings.add_recent_model(model.path.resolve())
            self._refresh_recent_menu()
            self._window.statusBar().showMessage(
                f"Model {model.name} was saved to {model.path}. Choose it in Model › Open "
                "Recent Model once the files are moved or exported.", 20_000)
            return
        self.model_loaded.emit(model)

    @Slot()
    def _on_training_dialog_destroyed(self) -> None:
        self.training_dialog = None

    @Slot(str)
    def _on_actions_recent_model_requested(self, path: str) -> None:
        if not Path(path).is_file():
            self._settings.remove_recent_model(path)
            self._refresh_recent_menu()
            self._show_error("Opening model failed", f"The model file {path} does not exist "
                             "any more, so it was removed from Open Recent Model.")
            return
        self.open_model_file(path)

    @Slot()
    def _on_actions_clear_recent_requested(self) -> None:
        self._settings.clear_recent_models()
        self._refresh_recent_menu()

    def _refresh_recent_menu(self) -> None:
        if self._actions is not None:
            self._actions.set_recent_models(self._settings.recent_models())

    def _show_error(self, title: str, message: str) -> None:
        logger.error("%s: %s", title, message)
        show_warning(self._window, title, message)
