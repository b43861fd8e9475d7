"""Dialogs of the main window: export options, job reports and the keyboard shortcuts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportOptions:
    """Destination and method of an export of the cleaned set."""

    destination: Path
    link: bool = False  # hard-link where possible instead of copying
    merge: bool = False  # allow a destination that is not empty


class ExportDialog(QDialog):
    """Asks for the export destination, copy or hard link, and whether to merge."""

    def __init__(self, start_folder: Path, summary: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export Cleaned Set")
        self._start_folder = start_folder
        self._build_ui(summary)
        self._connect_signals()
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
        summary_label = QLabel(summary, self)
        summary_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(summary_label)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self.resize(620, self.sizeHint().height())

    def _connect_signals(self) -> None:
        self.browse_button.clicked.connect(self._on_browse_button_clicked)
        self.destination_edit.textChanged.connect(self._on_destination_edit_changed)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    def options(self) -> ExportOptions:
        """Return the chosen options. The destination is empty until one is entered."""
        return ExportOptions(Path(self.destination_edit.text().strip()).expanduser(),
                             link=self.link_button.isChecked(), merge=self.merge_box.isChecked())

    @Slot()
    def _on_browse_button_clicked(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Export To", str(self._start_folder))
        if chosen:
            self.destination_edit.setText(chosen)

    @Slot(str)
    def _on_destination_edit_changed(self, text: str) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(text.strip()))


class ReportDialog(QDialog):
    """A summary of a finished job with an optional list of per-file messages."""

    def __init__(self, title: str, summary: str, lines: list[str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.summary_label = QLabel(summary, self)
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details = QPlainTextEdit("\n".join(lines), self)
        self.details.setReadOnly(True)
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.details.setVisible(bool(lines))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.details, 1)
        layout.addWidget(buttons)
        self.resize(720, 420 if lines else self.sizeHint().height())

    @property
    def summary(self) -> str:
        return self.summary_label.text()

    @property
    def lines(self) -> list[str]:
        text = self.details.toPlainText()
        return text.split("\n") if text else []


class ShortcutDialog(QDialog):
    """A table of every key of the window and what it does."""

    def __init__(self, rows: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard Shortcuts")
        self.table = QTableWidget(len(rows), 2, self)
        self.table.setHorizontalHeaderLabels(["Key", "Action"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for row, (keys, text) in enumerate(rows):
            key_item = QTableWidgetItem(keys)
            font = key_item.font()
            font.setBold(True)
            key_item.setFont(font)
            self.table.setItem(row, 0, key_item)
            self.table.setItem(row, 1, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(520, min(640, 80 + 30 * len(rows)))

    def rows(self) -> list[tuple[str, str]]:
        """Return the (key, action) pairs shown."""
        return [(self.table.item(row, 0).text(), self.table.item(row, 1).text())
                for row in range(self.table.rowCount())]


def show_warning(parent: QWidget, title: str, message: str) -> QMessageBox:
    """Show a warning without blocking, so a running job keeps updating the window."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, message,
                      QMessageBox.StandardButton.Ok, parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def show_report(parent: QWidget, title: str, summary: str, lines: list[str]) -> ReportDialog:
    """Show a ReportDialog without blocking. It is deleted when closed."""
    dialog = ReportDialog(title, summary, lines, parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog
