"""Tests of the export options, report and shortcut dialogs."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDialogButtonBox
from pytestqt.qtbot import QtBot

from gui.dialogs import ExportDialog, ExportOptions, ReportDialog, ShortcutDialog


def test_export_dialog_initial_state(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = ExportDialog(tmp_path, "12 images are kept.")
    qtbot.addWidget(dialog)
    assert dialog.copy_button.isChecked()
    assert not dialog.link_button.isChecked()
    assert not dialog.merge_box.isChecked()
    # Export needs a destination first.
    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()


def test_export_dialog_returns_options(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = ExportDialog(tmp_path, "")
    qtbot.addWidget(dialog)
    dialog.destination_edit.setText(f"  {tmp_path / 'out'}  ")
    dialog.link_button.setChecked(True)
    dialog.merge_box.setChecked(True)
    assert dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    assert dialog.options() == ExportOptions(tmp_path / "out", link=True, merge=True)


def test_report_dialog_lists_lines(qtbot: QtBot) -> None:
    dialog = ReportDialog("Move Rejects Out", "1 image could not be moved.",
                          ["Moving a.png failed: permission denied."])
    qtbot.addWidget(dialog)
    assert dialog.summary == "1 image could not be moved."
    assert dialog.lines == ["Moving a.png failed: permission denied."]
    assert not dialog.details.isHidden()


def test_report_dialog_without_lines(qtbot: QtBot) -> None:
    dialog = ReportDialog("Undo Move", "7 images were moved back.", [])
    qtbot.addWidget(dialog)
    assert dialog.lines == []
    assert dialog.details.isHidden()


def test_shortcut_dialog_rows(qtbot: QtBot) -> None:
    rows = [("P", "Keep"), ("X", "Reject")]
    dialog = ShortcutDialog(rows)
    qtbot.addWidget(dialog)
    assert dialog.rows() == rows
