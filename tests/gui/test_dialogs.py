"""Tests of the export options, report and shortcut dialogs."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialogButtonBox
from pytestqt.qtbot import QtBot

from gui.dialogs import ConfirmDialog, ReportDialog, ShortcutDialog, dialog_screen
from gui.export_dialog import ExportDialog, ExportOptions
from gui.main_window import MainWindow


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


def test_export_dialog_opens_with_initial_options(qtbot: QtBot, tmp_path: Path) -> None:
    typed = tmp_path / "batch" / "cleaned"
    dialog = ExportDialog(tmp_path, "", initial=ExportOptions(typed, link=True, merge=True))
    qtbot.addWidget(dialog)
    assert dialog.destination_edit.text() == str(typed)
    # Selected, so typing replaces the whole path.
    assert dialog.destination_edit.selectedText() == str(typed)
    assert dialog.options() == ExportOptions(typed, link=True, merge=True)
    assert dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()


def test_export_dialog_browses_from_typed_path(qtbot: QtBot, tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    dialog = ExportDialog(tmp_path / "start", "")
    qtbot.addWidget(dialog)
    assert dialog.browse_folder() == tmp_path / "start"
    dialog.destination_edit.setText(str(tmp_path / "exports"))
    assert dialog.browse_folder() == tmp_path / "exports"
    # A folder still to be created: Browse… opens in its parent.
    dialog.destination_edit.setText(str(tmp_path / "exports" / "new"))
    assert dialog.browse_folder() == tmp_path / "exports"
    dialog.destination_edit.setText("relative/path")
    assert dialog.browse_folder() == tmp_path / "start"


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


def long_path(root: str = "/data") -> str:
    """Return a path of 854 characters without a space, wider than any screen.

    Its file name of 248 characters has no line-break opportunity, such as a space
    or a slash, so only a wrap inside the word keeps it on screen.
    """
    folders = [f"scan_session_{number:02d}_left_eye" for number in range(24)]
    name = "retina_" + "_".join(f"session{number:02d}lefteye" for number in range(14)) + ".png"
    return "/".join([root, *folders, name])


def test_report_dialog_wraps_long_lines(qtbot: QtBot) -> None:
    summary = f"1 image could not be moved. 6 images were moved to {long_path('/q')}."
    line = f"Moving {long_path()} failed: No such file or directory."
    dialog = ReportDialog("Move Rejects Out", summary, [line])
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)

    screen = dialog_screen(dialog).availableGeometry()
    assert dialog.frameGeometry().width() <= screen.width()
    assert dialog.summary_view.horizontalScrollBar().maximum() == 0
    assert dialog.details.horizontalScrollBar().maximum() == 0
    # The summary shows every line it wraps into, without scrolling.
    assert dialog.summary_view.verticalScrollBar().maximum() == 0
    assert dialog.details.document().firstBlock().layout().lineCount() > 1
    assert dialog.summary == summary
    assert dialog.lines == [line]


def test_report_dialog_copies_report(qtbot: QtBot) -> None:
    lines = [f"Moving {long_path()} failed: Permission denied.",
             "Moving b.png failed: No such file or directory."]
    dialog = ReportDialog("Move Rejects Out", "2 images could not be moved.", lines)
    qtbot.addWidget(dialog)
    QGuiApplication.clipboard().clear()

    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)

    assert QGuiApplication.clipboard().text() == "\n".join(
        ["2 images could not be moved.", "", *lines])


def test_confirm_dialog_wraps_long_folder(qtbot: QtBot) -> None:
    name = "_".join(f"session{number:02d}lefteye" for number in range(14))[:230]
    text = (f"Move 7 images out of\n/data/{name}\ninto\n/data/{name}_rejected?\n\n"
            "6 flagged by the model, 1 not scored, 0 rejected by you.")
    dialog = ConfirmDialog("Move Rejects Out", text)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)

    screen = dialog_screen(dialog).availableGeometry()
    assert len(name) == 230
    assert dialog.text == text
    assert dialog.frameGeometry().width() <= screen.width()
    assert dialog.text_view.horizontalScrollBar().maximum() == 0
    assert dialog.text_view.verticalScrollBar().maximum() == 0


def test_confirm_dialog_buttons(qtbot: QtBot) -> None:
    dialog = ConfirmDialog("Export Cleaned Set", "Copy 12 images?")
    qtbot.addWidget(dialog)
    yes = dialog.buttons.button(QDialogButtonBox.StandardButton.Yes)
    cancel = dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel)

    assert dialog.buttons.standardButtons() == (QDialogButtonBox.StandardButton.Yes
                                                | QDialogButtonBox.StandardButton.Cancel)
    # As in the QMessageBox.question it replaces, Cancel is the default and has the focus.
    assert cancel.isDefault()
    assert not yes.isDefault()
    assert dialog.focusWidget() is cancel
    yes.click()
    assert dialog.result() == ConfirmDialog.DialogCode.Accepted


def test_shortcut_dialog_rows(qtbot: QtBot) -> None:
    rows = [("P", "Keep"), ("X", "Reject")]
    dialog = ShortcutDialog(rows)
    qtbot.addWidget(dialog)
    assert dialog.rows() == rows


def test_shortcut_dialog_shows_every_row(qtbot: QtBot, window: MainWindow) -> None:
    dialog = window.show_shortcuts()
    qtbot.waitExposed(dialog)
    table = dialog.table
    rows = window.window_actions.shortcut_rows()
    assert table.rowCount() == len(rows)
    # Each row at its natural height, and all of them within the visible table.
    header = table.verticalHeader()
    for row in range(table.rowCount()):
        assert header.sectionSize(row) == header.defaultSectionSize()
    assert table.viewport().height() >= header.length()
    assert not table.verticalScrollBar().isVisible()
    screen = dialog_screen(dialog).availableGeometry()
    assert dialog.frameGeometry().height() <= screen.height()
    dialog.close()
