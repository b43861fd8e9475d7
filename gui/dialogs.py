"""Dialogs of the main window: confirmations, job reports and shortcut keys."""

from __future__ import annotations

import logging
import math

from PySide6.QtCore import QSize, Qt, Slot
from PySide6.QtGui import QGuiApplication, QIcon, QScreen, QTextDocument, QTextOption
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractScrollArea,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QSizePolicy,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

logger = logging.getLogger(__name__)

# Widths of the dialogs in logical pixels, where the screen is wide enough.
REPORT_WIDTH = 720
CONFIRM_WIDTH = 620
EXPORT_DIALOG_WIDTH = 620
SHORTCUT_DIALOG_WIDTH = 520
# The tallest a WrappedText grows, in logical pixels. Longer text scrolls.
MAX_WRAPPED_TEXT_HEIGHT = 240
# A confirmation's text may grow taller, because it has no list below it and the
# user should see its paths in full before files are moved or copied.
MAX_CONFIRM_TEXT_HEIGHT = 480
# Room left between a dialog and the edges of the screen, for its frame.
_SCREEN_MARGIN = 40


class ReportDialog(QDialog):
    """A summary of a finished job with an optional list of per-file messages.

    The summary and the list wrap their lines to the dialog's width, breaking a
    path or another long word anywhere when it does not fit, so the dialog never
    needs to be wider than the screen. Both are selectable, and Copy puts the
    whole report on the clipboard.
    """

    def __init__(self, title: str, summary: str, lines: list[str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.summary_view = WrappedText(summary, self)
        self.details = QPlainTextEdit("\n".join(lines), self)
        self.details.setReadOnly(True)
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.details.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.details.setVisible(bool(lines))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.button(QDialogButtonBox.StandardButton.Close).setDefault(True)
        self.copy_button = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.setAutoDefault(False)
        self.copy_button.setToolTip("Copy the summary and every line of the list")
        self.copy_button.clicked.connect(self._on_copy_button_clicked)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary_view)
        layout.addWidget(self.details, 1)
        layout.addWidget(buttons)
        fit_to_screen(self, REPORT_WIDTH, 420 if lines else 0)

    @property
    def summary(self) -> str:
        return self.summary_view.toPlainText()

    @property
    def lines(self) -> list[str]:
        text = self.details.toPlainText()
        return text.split("\n") if text else []

    def report_text(self) -> str:
        """Return the summary and the lines as plain text, as Copy puts them on the clipboard."""
        return "\n\n".join(part for part in (self.summary, "\n".join(self.lines)) if part)

    @Slot()
    def _on_copy_button_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.report_text())


class ConfirmDialog(QDialog):
    """A Yes or Cancel question like QMessageBox.question, with text that wraps long paths.

    A QMessageBox cuts off a path with a long folder or file name (see WrappedText),
    and a path is what the user checks before files are moved or copied. Cancel is
    the default button and has the focus, so Enter and Escape both cancel.
    `yes_text` and `cancel_text` replace the buttons' labels when given.
    """

    def __init__(self, title: str, text: str, parent: QWidget | None = None,
                 yes_text: str = "", cancel_text: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        style = self.style()
        icon_size = style.pixelMetric(QStyle.PixelMetric.PM_MessageBoxIconSize, None, self)
        icon = style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxQuestion, None, self)
        icon_label = QLabel(self)
        icon_label.setPixmap(icon.pixmap(icon_size, icon_size))
        self.text_view = WrappedText(text, self, MAX_CONFIRM_TEXT_HEIGHT)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Yes | QDialogButtonBox.StandardButton.Cancel, self)
        cancel_button = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        # A label of its own replaces the standard icon too, because a style's check
        # mark or cross may not fit the label's meaning.
        if yes_text:
            yes_button = self.buttons.button(QDialogButtonBox.StandardButton.Yes)
            yes_button.setText(yes_text)
            yes_button.setIcon(QIcon())
        if cancel_text:
            cancel_button.setText(cancel_text)
            cancel_button.setIcon(QIcon())
        cancel_button.setDefault(True)
        cancel_button.setFocus()
        # Yes has the YesRole, which emits accepted.
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        row = QHBoxLayout()
        row.addWidget(icon_label, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.text_view, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.buttons)
        fit_to_screen(self, CONFIRM_WIDTH)

    @property
    def text(self) -> str:
        return self.text_view.toPlainText()

    def set_text(self, text: str) -> None:
        """Show `text` in place of the question's text, such as a count that changed."""
        self.text_view.set_text(text)


def confirm(parent: QWidget, title: str, text: str, yes_text: str = "",
            cancel_text: str = "") -> bool:
    """Ask `text` in a modal ConfirmDialog and return True if the user chose Yes.

    `yes_text` and `cancel_text` replace the labels of the Yes and Cancel buttons.
    """
    dialog = ConfirmDialog(title, text, parent, yes_text, cancel_text)
    try:
        return dialog.exec() == QDialog.DialogCode.Accepted
    finally:
        dialog.deleteLater()


class WrappedText(QTextEdit):
    """Read-only text that wraps like a word-wrapped QLabel, but also inside long words.

    A QLabel breaks lines only where Unicode allows, such as after a space or a
    slash, so a long file name in its text makes it, and its dialog, as wide as
    the name. This widget breaks such a word at the edge and keeps the text
    selectable. Its heightForWidth gives the layout the height of the text at
    the width it gets, up to `max_height` logical pixels, above which the text scrolls.
    """

    def __init__(self, text: str, parent: QWidget | None = None,
                 max_height: int = MAX_WRAPPED_TEXT_HEIGHT) -> None:
        super().__init__(parent)
        self._max_height = max_height
        self._measure = QTextDocument(self)
        self.setPlainText(text)
        self.setReadOnly(True)
        # Like a selectable label: a click selects, and Tab passes it by.
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.viewport().setAutoFillBackground(False)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setLineWrapMode(QTextEdit.LineWrapMode.WidgetWidth)
        self.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.document().setDocumentMargin(0)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)

    def set_text(self, text: str) -> None:
        """Show `text` as plain text, and make the layout read its new height."""
        self.setPlainText(text)
        self.updateGeometry()

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        """Return the height that shows all of the text at `width`, up to the maximum."""
        frame = 2 * self.frameWidth()
        # Laid out in a second document, because the widget lays its own out at its
        # current width. NOTE: a clone() made for each call led to segmentation faults
        # after windows closed, for a cause not found; this child document has not.
        document = self._measure
        document.setDefaultFont(self.document().defaultFont())
        document.setDefaultTextOption(self.document().defaultTextOption())
        document.setDocumentMargin(self.document().documentMargin())
        document.setPlainText(self.toPlainText())
        document.setTextWidth(max(width - frame, 1))
        return min(math.ceil(document.size().height()) + frame, self._max_height)

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        return QSize(hint.width(), self.heightForWidth(hint.width()))

    def minimumSizeHint(self) -> QSize:
        # One line of text. The minimum of a QTextEdit has room for scroll bars,
        # which would leave a gap under a one-line summary.
        line = self.fontMetrics().lineSpacing() + 2 * self.frameWidth()
        return QSize(super().minimumSizeHint().width(), line)


def dialog_screen(dialog: QDialog) -> QScreen:
    """Return the screen of the dialog's parent window, else the primary screen."""
    # NOTE: QWidget.screen() is avoided. With PySide6 6.11.3, calling it here made
    # a later garbage collection delete the C++ QScreen with its wrapper, so the
    # next window created crashed in QGuiApplication::screenAt (seen in the tests).
    parent = dialog.parentWidget()
    if parent is not None:
        screen = QGuiApplication.screenAt(parent.window().geometry().center())
        if screen is not None:
            return screen
    return QGuiApplication.primaryScreen()


def fit_to_screen(dialog: QDialog, width: int, height: int = 0) -> None:
    """Resize `dialog` to `width` or the screen's available width, whichever is less.

    A `height` of 0 makes the dialog as tall as its layout needs at that width.
    """
    available = dialog_screen(dialog).availableGeometry()
    width = min(width, available.width() - _SCREEN_MARGIN)
    if not height:
        height = dialog.heightForWidth(width)
        if height < 0:
            height = dialog.sizeHint().height()
    dialog.resize(width, min(height, available.height() - _SCREEN_MARGIN))


class ShortcutDialog(QDialog):
    """A table of every key of the window and what it does.

    The dialog is as tall as all rows at their natural height when the screen has
    room for them. On a shorter screen the table scrolls.
    """

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
        # The table's size hint then covers every row, and the layout's hint with it.
        self.table.setSizeAdjustPolicy(QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        fit_to_screen(self, max(SHORTCUT_DIALOG_WIDTH, self.sizeHint().width()))

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
