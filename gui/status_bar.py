"""Status bar of the main window: job progress, gallery counts and the active model."""

from __future__ import annotations

import logging

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QFrame, QLabel, QProgressBar, QPushButton, QStatusBar, QWidget

from engine.modelfile import ReferenceModel
from gui.gallery_model import GalleryCounts, format_score
from gui.model_info import describe_model_facts

logger = logging.getLogger(__name__)


def describe_counts(counts: GalleryCounts) -> str:
    """Return "N images · K keep · R reject · F flagged · U unreadable · O by you"."""
    noun = "image" if counts.total == 1 else "images"
    return (
        f"{counts.total} {noun} · {counts.kept} keep · {counts.rejected} reject · "
        f"{counts.flagged} flagged · {counts.unreadable} unreadable · "
        f"{counts.overridden} decided by you"
    )


def describe_model(model: ReferenceModel | None) -> str:
    """Return the model's name and calibrated threshold."""
    if model is None:
        return "No model loaded: scoring is disabled"
    return f"Model: {model.name} · calibrated threshold {format_score(model.threshold)}"


def _separator() -> QFrame:
    line = QFrame()
    line.setFrameShape(QFrame.Shape.VLine)
    line.setFrameShadow(QFrame.Shadow.Sunken)
    return line


class MainStatusBar(QStatusBar):
    """Status bar with a progress bar and Cancel button shown while a job runs.

    Signals:
        cancel_requested(): the user pressed Cancel.
    """

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._build_ui()
        self._connect_signals()
        self.hide_progress()
        self.set_model(None)
        self.set_counts(GalleryCounts())

    def _build_ui(self) -> None:
        self._progress_bar = QProgressBar()
        self._progress_bar.setMaximumWidth(240)
        self._progress_bar.setTextVisible(True)
        self._cancel_button = QPushButton("Cancel")
        self._cancel_button.setToolTip("Stop the running job after the current file")
        self._counts_label = QLabel()
        self._model_label = QLabel()
        self.addWidget(self._progress_bar)
        self.addWidget(self._cancel_button)
        self.addPermanentWidget(self._counts_label)
        self.addPermanentWidget(_separator())
        self.addPermanentWidget(self._model_label)

    def _connect_signals(self) -> None:
        self._cancel_button.clicked.connect(self._on_cancel_button_clicked)

    @property
    def counts_text(self) -> str:
        return self._counts_label.text()

    @property
    def model_text(self) -> str:
        return self._model_label.text()

    def is_progress_visible(self) -> bool:
        return not self._progress_bar.isHidden()

    def show_progress(self, verb: str, done: int, total: int) -> None:
        """Show "<verb> done / total" in the progress bar, with the Cancel button."""
        self._progress_bar.setMaximum(max(total, 1))
        self._progress_bar.setValue(done)
        self._progress_bar.setFormat(f"{verb} {done} / {total}" if total else f"{verb}…")
        self._progress_bar.show()
        self._cancel_button.show()

    def hide_progress(self) -> None:
        """Hide the progress bar and the Cancel button, and make Cancel usable again."""
        self._progress_bar.hide()
        self._cancel_button.hide()
        self._cancel_button.setEnabled(True)
        self._cancel_button.setText("Cancel")

    def set_counts(self, counts: GalleryCounts) -> None:
        self._counts_label.setText(describe_counts(counts))
        self._counts_label.setToolTip(
            "keep and reject: final decisions, yours where you decided, else the model's\n"
            "flagged: scored above the threshold\n"
            "unreadable: files that could not be scored; they are rejected unless you keep them"
        )

    def set_model(self, model: ReferenceModel | None) -> None:
        """Show the name and threshold of `model`, with its training and file in the tooltip."""
        self._model_label.setText(describe_model(model))
        if model is None:
            self._model_label.setToolTip("Open a model file to score images: Model › Open "
                                         "Model…")
            return
        self._model_label.setToolTip(describe_model_facts(model))

    @property
    def model_tooltip(self) -> str:
        return self._model_label.toolTip()

    @Slot()
    def _on_cancel_button_clicked(self) -> None:
        self._cancel_button.setEnabled(False)
        self._cancel_button.setText("Cancelling…")
        self.cancel_requested.emit()
