"""The pages, buttons and step indicator of the Train Reference Model dialog."""

from __future__ import annotations

import enum
from pathlib import Path

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from gui.loss_plot import LossPlot
from gui.training_options import TrainingOptionsForm
from gui.training_progress import TrainingProgress
from gui.training_summary import CalibrationSummary, SkippedFilesBox

_STEP_TITLES = ("Options", "Training", "Summary")


class Step(enum.Enum):
    """Stage of the dialog. Each stage shows its own page and buttons."""

    OPTIONS = 0
    READING = 1
    TRAINING = 2
    SUMMARY = 3
    STOPPED = 4  # cancelled or failed


class TrainingPages(QDialog):
    """The widgets of TrainingDialog and the display of its current step, without its jobs."""

    def _build_ui(self, models_folder: Path) -> None:
        self.step_label = QLabel(self)
        self.options_form = TrainingOptionsForm(models_folder, self)
        self.problem_label = QLabel(self)
        self.problem_label.setWordWrap(True)
        options_page = QWidget(self)
        options_layout = QVBoxLayout(options_page)
        options_layout.setContentsMargins(0, 0, 0, 0)
        options_layout.addWidget(self.options_form, 1)
        options_layout.addWidget(self.problem_label)

        self.pages = QStackedWidget(self)
        self.pages.addWidget(options_page)
        self.pages.addWidget(self._build_run_page())

        self.buttons = QDialogButtonBox(self)
        role = QDialogButtonBox.ButtonRole
        self.train_button = self.buttons.addButton("Train", role.AcceptRole)
        self.save_button = self.buttons.addButton("Save and use", role.AcceptRole)
        self.back_button = self.buttons.addButton("Back", role.ActionRole)
        self.discard_button = self.buttons.addButton("Discard", role.RejectRole)
        self.cancel_button = self.buttons.addButton("Cancel training", role.RejectRole)
        self.close_button = self.buttons.addButton("Close", role.RejectRole)

        layout = QVBoxLayout(self)
        layout.addWidget(self.step_label)
        layout.addWidget(self.pages, 1)
        layout.addWidget(self.buttons)
        self.resize(760, 440)

    def _build_run_page(self) -> QWidget:
        page = QWidget(self)
        self.progress = TrainingProgress(page)
        self.loss_plot = LossPlot(page)
        loss_box = QGroupBox("Loss per epoch", page)
        QVBoxLayout(loss_box).addWidget(self.loss_plot)
        self.summary = CalibrationSummary(page)
        self.skipped_box = SkippedFilesBox(page)

        plots_row = QHBoxLayout()
        plots_row.addWidget(loss_box, 5)
        plots_row.addWidget(self.summary, 4)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.progress)
        layout.addLayout(plots_row, 1)
        layout.addWidget(self.skipped_box)
        return page

    def _show_step(self, step: Step) -> None:
        self._step = step
        self.pages.setCurrentIndex(0 if step is Step.OPTIONS else 1)
        running = step in (Step.READING, Step.TRAINING)
        self.train_button.setVisible(step is Step.OPTIONS)
        self.close_button.setVisible(step in (Step.OPTIONS, Step.STOPPED))
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        self.back_button.setVisible(step is Step.STOPPED)
        self.save_button.setVisible(step is Step.SUMMARY)
        self.discard_button.setVisible(step is Step.SUMMARY)
        self.summary.setVisible(step is Step.SUMMARY)
        self.skipped_box.setVisible(step in (Step.SUMMARY, Step.STOPPED)
                                    and self.skipped_box.table.rowCount() > 0)
        default = {Step.OPTIONS: self.train_button, Step.SUMMARY: self.save_button,
                   Step.STOPPED: self.back_button}.get(step)
        if default is not None:
            default.setDefault(True)
        self._update_step_label()

    def _update_step_label(self) -> None:
        current = {Step.OPTIONS: 0, Step.SUMMARY: 2}.get(self._step, 1)
        dim = self.palette().color(QPalette.ColorRole.PlaceholderText).name()
        parts = []
        for index, title in enumerate(_STEP_TITLES):
            text = f"{index + 1}&nbsp;&nbsp;{title}"
            parts.append(f"<b>{text}</b>" if index == current
                         else f"<span style='color:{dim}'>{text}</span>")
        self.step_label.setText(f"<span style='color:{dim}'> &nbsp;›&nbsp; </span>".join(parts))
