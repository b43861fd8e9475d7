"""The Train Reference Model dialog: options, training in the background, then a summary."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QSize, QThreadPool, Signal, Slot
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from engine.framing import Framing
from engine.images import LoadedImage
from engine.modelcard import card_path, write_card
from engine.modelfile import ReferenceModel, save_model
from engine.training import MIN_SPLIT_IMAGES, EpochReport, TrainingData, minimum_images
from gui.training_options import (
    MODEL_SUFFIX,
    TrainingRequest,
    default_models_folder,
    output_taken,
    renamed_output_note,
    unique_model_path,
)
from gui.training_pages import Step, TrainingPages
from gui.training_summary import format_duration
from gui.training_worker import EngineJob, FolderReadingJob, TrainingJob

logger = logging.getLogger(__name__)

# Closing the dialog waits this long for a cancelled job. Training stops within
# one batch, but reading a folder cannot stop part-way.
SHUTDOWN_TIMEOUT_MS = 10_000


class TrainingDialog(TrainingPages):
    """Trains a reference model on a folder of known-good images and saves it on request.

    The options step takes the folder, the training settings and the model file.
    The training step reads the folder and trains in a pool thread, with a live loss
    curve. A folder with too few usable images leads back to the options step, which
    shows the reason. The summary step shows the threshold and saves the model with
    its card.
    Closing the dialog cancels a running job and waits for it.

    Signals:
        model_trained(object): the saved ReferenceModel with `path` set, emitted just
            before the dialog accepts.
    """

    model_trained = Signal(object)

    def __init__(self, parent: QWidget | None = None, settings: QSettings | None = None,
                 models_folder: Path | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train Reference Model")
        self._settings = settings
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._framing = Framing()
        self._step = Step.OPTIONS
        self._job: EngineJob | None = None
        self._request: TrainingRequest | None = None
        self._model: ReferenceModel | None = None
        self._approved_output: Path | None = None
        self._shown_output: Path | None = None
        self._options_size = QSize()
        self._build_ui(models_folder or default_models_folder())
        self._connect_signals()
        self.options_form.restore(settings)
        self._on_options_form_options_changed()
        self._show_step(Step.OPTIONS)

    def _connect_signals(self) -> None:
        self.options_form.options_changed.connect(self._on_options_form_options_changed)
        self.train_button.clicked.connect(self._on_train_button_clicked)
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        self.back_button.clicked.connect(self._on_back_button_clicked)
        self.save_button.clicked.connect(self._on_save_button_clicked)
        self.discard_button.clicked.connect(self.reject)
        self.close_button.clicked.connect(self.reject)
        self.summary.output_change_requested.connect(self._on_summary_output_change_requested)

    # Public interface

    @property
    def step(self) -> Step:
        return self._step

    @property
    def model(self) -> ReferenceModel | None:
        """The model of the finished run, saved only once the user chose Save and use."""
        return self._model

    def is_running(self) -> bool:
        """Return whether a folder is being read or a model trained."""
        return self._job is not None

    def done(self, result: int) -> None:
        """Cancel a running job and wait for it, then close the dialog."""
        self._shut_down_job()
        super().done(result)

    # Steps

    def _start_job(self, job: EngineJob, on_finished: Callable[[Any], None]) -> None:
        job.signals.finished.connect(on_finished)
        job.signals.epoch_finished.connect(self._on_job_epoch_finished)
        job.signals.failed.connect(self._on_job_failed)
        job.signals.cancelled.connect(self._on_job_cancelled)
        self._job = job
        self._pool.start(job)

    def _is_current(self) -> bool:
        return self._job is not None and self.sender() is self._job.signals

    def _stop(self, message: str, outcome: str) -> None:
        """End the run without a model and show why, with `outcome` before its duration."""
        self._job = None
        self.progress.stop(message, outcome)
        self._show_step(Step.STOPPED)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._keep_on_screen()

    def _keep_on_screen(self) -> None:
        """Shrink the dialog to its screen's free area if larger, and move it into it.

        The dialog grows downwards from where it was placed, for the plots and for
        a long list of skipped files. That put its buttons below a 768-pixel screen
        that no window manager corrected.
        """
        screen = self.screen()
        if screen is None:
            return
        area = screen.availableGeometry()
        self.resize(min(self.width(), area.width()), min(self.height(), area.height()))
        frame = self.frameGeometry()
        left = max(area.left(), min(frame.left(), area.right() + 1 - frame.width()))
        top = max(area.top(), min(frame.top(), area.bottom() + 1 - frame.height()))
        if (left, top) != (frame.left(), frame.top()):
            self.move(left, top)

    def _return_to_options(self, message: str) -> None:
        """End the run before training and show `message` on the options step.

        The message stays until an option is edited, and Train stays enabled, so
        the same folder can be tried again once images have been added to it.
        """
        self._job = None
        self.resize(self._options_size)
        self._show_step(Step.OPTIONS)
        self.problem_label.setText(message)

    def _shut_down_job(self) -> None:
        if self._job is None:
            return
        logger.info("cancelling %s because the dialog closes", self._job.action)
        self._job.cancel()
        self._job = None
        self.progress.clock_timer.stop()
        # NOTE: after the timeout the dialog closes anyway, and the thread pool's
        # destructor waits for the job, so no thread outlives the dialog.
        if not self._pool.waitForDone(SHUTDOWN_TIMEOUT_MS):
            logger.warning("the training job still runs %d s after the dialog closed",
                           SHUTDOWN_TIMEOUT_MS // 1000)

    def _start_training(self, data: TrainingData) -> None:
        assert self._request is not None
        options = self._request.options
        self.progress.start_epochs(
            options.epochs, f"Training on {len(data.images)} images from {self._request.folder}…")
        self._show_step(Step.TRAINING)
        job = TrainingJob(data, self._framing, options, self._request.folder)
        self._start_job(job, self._on_training_job_finished)

    def _too_few_message(self, usable: int, skipped: int) -> str:
        assert self._request is not None
        fraction = self._request.options.calibration_fraction
        minimum = minimum_images(fraction)
        unreadable = ""
        if skipped:
            unreadable = (" 1 other file could not be read as an image." if skipped == 1
                          else f" {skipped} other files could not be read as images.")
        return (f"Training needs at least {minimum} usable images, but "
                f"{self._request.folder} contains {usable}.{unreadable} {100 * fraction:g} % "
                "of the images are held out, never trained on, to set the threshold, and both "
                f"the training and the held-out part need at least {MIN_SPLIT_IMAGES} images. "
                "Add images to the folder or choose another folder.")

    def _save_path(self) -> Path:
        """Return where to save: the chosen file, or a free name beside it if it was taken."""
        assert self._request is not None
        path = self._request.output
        if output_taken(path) and path != self._approved_output:
            free = unique_model_path(path.parent, path.stem)
            logger.info("%s appeared during training; saving to %s instead", path, free)
            return free
        return path

    def _show_save_path(self) -> None:
        """Show where Save and use writes, and why when that is not the chosen file."""
        assert self._request is not None
        path = self._save_path()
        self._shown_output = path
        self.summary.show_output(path, renamed_output_note(self._request.output, path))

    # Slots

    @Slot()
    def _on_options_form_options_changed(self) -> None:
        problem = self.options_form.problem()
        self.problem_label.setText(problem)
        self.train_button.setEnabled(not problem)

    @Slot()
    def _on_train_button_clicked(self) -> None:
        # The folder may have gone since the form was last edited.
        self._on_options_form_options_changed()
        if self.options_form.problem():
            return
        request = self.options_form.request()
        self._approved_output = None
        if output_taken(request.output):
            answer = QMessageBox.question(
                self, "Replace Model?",
                f"{request.output.name} or its model card already exists in "
                f"{request.output.parent}. Replace them with the new model?")
            if answer != QMessageBox.StandardButton.Yes:
                return
            self._approved_output = request.output
        self.options_form.save(self._settings)
        self._request = request
        self._model = None
        self.loss_plot.start(request.options.epochs)
        self.skipped_box.set_files([], request.folder)
        self.progress.show_busy(f"Reading images in {request.folder}…")
        # The plots need more room than the options.
        self._options_size = self.size()
        self.resize(max(self.width(), 960), max(self.height(), 680))
        self._show_step(Step.READING)
        logger.info("training requested: %s", request.command_text())
        self._start_job(FolderReadingJob(request.folder, self._framing),
                        self._on_reading_job_finished)

    @Slot(object)
    def _on_reading_job_finished(self, result: tuple[TrainingData, list[LoadedImage]]) -> None:
        if not self._is_current() or self._request is None:
            return
        data, skipped = result
        self.skipped_box.set_files(skipped, self._request.folder)
        usable = len(data.images)
        if usable < minimum_images(self._request.options.calibration_fraction):
            logger.warning("not training on %s: %d usable images", self._request.folder, usable)
            self._return_to_options(self._too_few_message(usable, len(skipped)))
            return
        self._start_training(data)

    @Slot(object)
    def _on_job_epoch_finished(self, report: EpochReport) -> None:
        if not self._is_current():
            return
        self.loss_plot.add_epoch(report)
        self.progress.add_epoch(report)

    @Slot(object)
    def _on_training_job_finished(self, model: ReferenceModel) -> None:
        if not self._is_current() or self._request is None:
            return
        self._job = None
        self._model = model
        self.summary.show_model(model)
        self._show_save_path()
        seconds = float(model.training.get("seconds", 0.0))
        self.progress.finish(seconds, f"Training finished in {format_duration(seconds)}. Check "
                             "the threshold, then save the model to use it, or discard it.")
        self._show_step(Step.SUMMARY)

    @Slot(str)
    def _on_job_failed(self, message: str) -> None:
        if self._is_current():
            self._stop(f"{message} No model file was written.", "Failed")

    @Slot()
    def _on_job_cancelled(self) -> None:
        if self._is_current():
            self._stop("Training cancelled. No model file was written.", "Cancelled")

    @Slot()
    def _on_cancel_button_clicked(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.cancel_button.setEnabled(False)
            self.progress.set_status("Cancelling…")
            self.progress.stop_estimate()

    @Slot()
    def _on_back_button_clicked(self) -> None:
        self._show_step(Step.OPTIONS)

    @Slot()
    def _on_summary_output_change_requested(self) -> None:
        if self._request is None:
            return
        chosen, _ = QFileDialog.getSaveFileName(
            self, "Save Model As", str(self._save_path()),
            f"Reference models (*{MODEL_SUFFIX})")
        if not chosen:
            return
        path = Path(chosen)
        # The file dialog confirms before returning an existing file. A name that is
        # taken only once the suffix is added was never confirmed, so _save_path
        # picks a free name instead.
        confirmed = path.suffix == MODEL_SUFFIX
        if not confirmed:
            path = path.with_name(path.name + MODEL_SUFFIX)
        self._approved_output = path if confirmed and output_taken(path) else None
        self._request = replace(self._request, output=path)
        self._show_save_path()

    @Slot()
    def _on_save_button_clicked(self) -> None:
        if self._model is None or self._request is None:
            return
        path = self._save_path()
        if path != self._shown_output:
            # A file took the shown name after the summary showed it. Save only to
            # a file that the curator has seen named.
            self._show_save_path()
            self.progress.set_status("Nothing was saved, because another file took the "
                                     "model file's name. Check the new name under Model "
                                     "file, then click Save and use again.")
            return
        command = self._request.command_text()
        self._model.training["command"] = command
        try:
            save_model(self._model, path)
        except OSError as error:
            logger.error("saving model %s failed: %s", path, error)
            QMessageBox.warning(self, "Save Model",
                                f"Saving the model to {path} failed: {error.strerror or error}. "
                                "Choose another file with Change… and save again.")
            return
        try:
            write_card(self._model, path, command)
        except OSError as error:
            logger.error("writing the card of %s failed: %s", path, error)
            QMessageBox.warning(self, "Save Model",
                                f"The model was saved to {path}, but writing its card "
                                f"{card_path(path)} failed: {error.strerror or error}.")
        self.model_trained.emit(self._model)
        self.accept()
