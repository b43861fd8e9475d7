"""The Export Cleaned Set dialog and the options it returns: destination, copy or link, merge."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from gui.dialogs import EXPORT_DIALOG_WIDTH, WrappedText, fit_to_screen


@dataclass(frozen=True)
class ExportOptions:
    """Destination and method of an export of the cleaned set."""

    destination: Path
    link: bool = False  # hard-link where possible instead of copying
    merge: bool = False  # allow a destination that is not empty


class ExportDialog(QDialog):
    """Asks for the export destination, copy or hard link, and whether to merge.

    `initial` fills in the options the dialog opens with, such as a destination
    that was rejected, so the user can correct it instead of typing it again.
    Browse… starts in the typed destination when it is a folder, else in
    `start_folder`.
    """

    def __init__(self, start_folder: Path, summary: str, parent: QWidget | None = None,
                 initial: ExportOptions | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export Cleaned Set")
        self._start_folder = start_folder
        self._build_ui(summary)
        self._connect_signals()
        if initial is not None:
            self.destination_edit.setText(str(initial.destination))
            self.destination_edit.selectAll()
            self.link_button.setChecked(initial.link)
            self.merge_box.setChecked(initial.merge)
        self._on_destination_edit_changed(self.destination_edit.text())

    def _build_ui(self, summary: str) -> None:
        self.destination_edit = QLineEdit(self)
        self.destination_edit.setPlaceholderText("Folder to export the kept images to")
        self.browse_button = QPushButton("Browse…", self)
        row = QHBoxLayout()
        row.addWidget(self.destination_edit, 1)
        row.addWidget(self.browse_button)
        self.copy_button = QRadioButton("Copy the files", self)
        self.copy_button.setChecked(True)
        self.link_button = QRadioButton(
            "Hard-link the files (no extra disk space; copies where links are impossible)", self)
        self.merge_box = QCheckBox(
            "Merge into a folder that is not empty (existing files are never overwritten)", self)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export…")

        form = QFormLayout()
        form.addRow("Destination:", row)
        form.addRow("Method:", self.copy_button)
        form.addRow("", self.link_button)
        form.addRow("", self.merge_box)
        self.summary_view = WrappedText(summary, self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary_view)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        fit_to_screen(self, EXPORT_DIALOG_WIDTH)

    def _connect_signals(self) -> None:
        self.browse_button.clicked.connect(self._on_browse_button_clicked)
        self.destination_edit.textChanged.connect(self._on_destination_edit_changed)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    def options(self) -> ExportOptions:
        """Return the chosen options. The destination is empty until one is entered."""
        return ExportOptions(Path(self.destination_edit.text().strip()).expanduser(),
                             link=self.link_button.isChecked(), merge=self.merge_box.isChecked())

    def browse_folder(self) -> Path:
        """Return the folder that Browse… opens in."""
        typed = self.destination_edit.text().strip()
        if typed:
            destination = Path(typed).expanduser()
            for folder in (destination, destination.parent):
                if folder.is_absolute() and folder.is_dir():
                    return folder
        return self._start_folder

    @Slot()
    def _on_browse_button_clicked(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Export To", str(self.browse_folder()))
        if chosen:
            self.destination_edit.setText(chosen)

    @Slot(str)
    def _on_destination_edit_changed(self, text: str) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(text.strip()))
