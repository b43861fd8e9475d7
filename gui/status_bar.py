"""Status bar of the main window: job progress, gallery counts and the active model."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QRect, QSize, Qt, Signal, Slot
from PySide6.QtGui import QFontMetrics, QHelpEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QProgressBar,
    QPushButton,
    QStatusBar,
    QStyle,
    QStyleOption,
    QToolTip,
    QWidget,
)

from engine.modelfile import ReferenceModel
from engine.plurals import counted
from gui.gallery_items import GalleryCounts
from gui.model_info import describe_model_facts
from gui.score_format import format_threshold

logger = logging.getLogger(__name__)

# The rate is shown once a job has run this long, because the first batches come
# before any steady rate exists.
RATE_DELAY_S = 0.25
# Progress is shown at most this often, and always at a job's start and end.
# QProgressBar.setValue repaints at once: 80 updates took about 0.12 s of the GUI
# thread while a folder of 20 000 cached files was re-opened.
PROGRESS_REFRESH_S = 0.1


def describe_counts(counts: GalleryCounts) -> str:
    """Return "N images · K keep · R reject · F flagged · S not scored · O decided by you"."""
    return (
        f"{counted(counts.total, 'image')} · {counts.kept} keep · {counts.rejected} reject · "
        f"{counts.flagged} flagged · {counts.not_scored} not scored · "
        f"{counts.overridden} decided by you"
    )


def describe_rate(done: int, total: int, elapsed_s: float) -> str:
    """Return "950 images/s · 12 s left" for a job that did `done` of `total` items so far.

    Returns an empty string while no rate can be measured: nothing done yet, or
    less than RATE_DELAY_S elapsed. The time left is left out while the total is unknown (0).
    """
    if done <= 0 or elapsed_s < RATE_DELAY_S:
        return ""
    rate = done / elapsed_s
    text = f"{rate:.0f} images/s" if rate >= 10 else f"{rate:.1f} images/s"
    if total > done:
        text += f" · {format_duration((total - done) / rate)} left"
    return text


def format_duration(seconds: float) -> str:
    """Return a duration rounded up to whole seconds: "45 s", "3 min 05 s", "2 h 04 min"."""
    whole = math.ceil(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole // 60 % 60:02d} min"


def describe_model(model: ReferenceModel | None) -> tuple[str, str]:
    """Return the model's name and its calibrated threshold, as two parts of one text."""
    if model is None:
        return "No model loaded: scoring is disabled", ""
    return f"Model: {model.name}", f" · calibrated threshold {format_threshold(model.threshold)}"


class _ElidedLabel(QLabel):
    """A one-line label no wider than `widest` text. Its text has a head, cut with "…"
    where the whole does not fit, and a tail always shown, so that a long text
    leaves the status bar's message some space and does not widen the window.
    """

    def __init__(self, widest: str) -> None:
        super().__init__()
        self._tail = ""
        self.setMaximumWidth(self.fontMetrics().horizontalAdvance(widest))

    def set_parts(self, head: str, tail: str) -> None:
        self._tail = tail
        self.setText(head + tail)

    def minimumSizeHint(self) -> QSize:
        return QSize(self.fontMetrics().horizontalAdvance(f"…{self._tail}"),
                     super().minimumSizeHint().height())

    def shown_text(self) -> str:
        """Return the text as painted."""
        metrics = self.fontMetrics()
        head = self.text()[: len(self.text()) - len(self._tail)]
        room = self.contentsRect().width() - metrics.horizontalAdvance(self._tail)
        return metrics.elidedText(head, Qt.TextElideMode.ElideRight, max(room, 0)) + self._tail

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setPen(self.palette().windowText().color())
        painter.drawText(self.contentsRect(), Qt.AlignmentFlag.AlignLeading
                         | Qt.AlignmentFlag.AlignVCenter, self.shown_text())


def _separator() -> QFrame:
    line = QFrame()
    line.setFrameShape(QFrame.Shape.VLine)
    line.setFrameShadow(QFrame.Shadow.Sunken)
    return line


class MainStatusBar(QStatusBar):
    """Status bar with a progress bar, the job's rate and time left, and a Cancel button.

    `clock` returns seconds from any fixed point; the rate is measured with it.

    Signals:
        cancel_requested(): the user pressed Cancel.
    """

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(parent)
        self._clock = clock
        self._verb: str | None = None  # of the job shown
        self._origin: tuple[float, int] | None = None  # time and count of its first progress
        self._refreshed = -math.inf  # when the progress shown was last updated
        self._build_ui()
        self._connect_signals()
        self.hide_progress()
        self.set_model(None)
        self.set_counts(GalleryCounts())

    def _build_ui(self) -> None:
        self._progress_bar = QProgressBar()
        # Wide enough for the longest text of a large job, which the status bar
        # otherwise squeezed until "Scoring 7425 / 20000" was cut off.
        longest = QFontMetrics(self._progress_bar.font()).horizontalAdvance(
            "Exporting 888888 / 888888")
        self._progress_bar.setMinimumWidth(longest + 24)
        self._progress_bar.setMaximumWidth(max(240, longest + 24))
        self._progress_bar.setTextVisible(True)
        self._rate_label = QLabel()
        self._rate_label.setToolTip("Items done per second so far, and the time left at that rate")
        self._cancel_button = QPushButton("Cancel")
        self._cancel_button.setToolTip("Stop the running job after the current file")
        self._counts_label = QLabel()
        # Room for a name of 24 letters, such as the bundled model's of 14.
        self._model_label = _ElidedLabel("Model: a_model_name_of_24_letters · "
                                         "calibrated threshold 1.000")
        self.addWidget(self._progress_bar)
        self.addWidget(self._rate_label)
        self.addWidget(self._cancel_button)
        # A message as long as the space left would otherwise run up to the counts.
        self._permanent_widgets = [_separator(), self._counts_label, _separator(),
                                   self._model_label]
        for widget in self._permanent_widgets:
            self.addPermanentWidget(widget)

    def _connect_signals(self) -> None:
        self._cancel_button.clicked.connect(self._on_cancel_button_clicked)

    @property
    def counts_text(self) -> str:
        return self._counts_label.text()

    @property
    def model_text(self) -> str:
        return self._model_label.text()

    @property
    def shown_model_text(self) -> str:
        """The model's text as painted, its name cut where the whole does not fit."""
        return self._model_label.shown_text()

    @property
    def rate_text(self) -> str:
        return self._rate_label.text()

    @property
    def progress_text(self) -> str:
        return self._progress_bar.format()

    def shown_message(self) -> str:
        """Return the current message as painted: cut with "…" where it does not fit."""
        return self.fontMetrics().elidedText(self.currentMessage(), Qt.TextElideMode.ElideRight,
                                             self._message_area().width())

    def _message_area(self) -> QRect:
        """Return the space of a message: from the left edge to the first permanent widget.

        The same space as QStatusBar's own, mirrored for right-to-left layouts.
        """
        left, right = 6, self.width() - 12
        visible = [widget for widget in self._permanent_widgets if widget.isVisible()]
        if visible and self.layoutDirection() is Qt.LayoutDirection.RightToLeft:
            left = max(left, visible[0].geometry().right() + 3)
        elif visible:
            right = min(right, visible[0].x() - 2)
        return QRect(left, 0, max(0, right - left), self.height())

    def paintEvent(self, event: QPaintEvent) -> None:
        """Paint as QStatusBar does, but cut a message too long for its space with "…".

        QStatusBar clips the text at the first permanent widget, with no sign
        that some is missing. The whole message shows in a tooltip.
        """
        if not self.currentMessage():
            super().paintEvent(event)
            return
        painter = QPainter(self)
        style = self.style()
        panel = QStyleOption()
        panel.initFrom(self)
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelStatusBar, panel, painter, self)
        for widget in self._permanent_widgets:
            if widget.isVisible():
                frame = QStyleOption()
                frame.rect = widget.geometry().adjusted(-2, -1, 2, 1)
                frame.palette = self.palette()
                style.drawPrimitive(QStyle.PrimitiveElement.PE_FrameStatusBarItem, frame,
                                    painter, widget)
        painter.setPen(self.palette().windowText().color())
        painter.drawText(self._message_area(), Qt.AlignmentFlag.AlignLeading
                         | Qt.AlignmentFlag.AlignVCenter | Qt.TextFlag.TextSingleLine,
                         self.shown_message())

    def event(self, event: QEvent) -> bool:
        if (event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent)
                and self.shown_message() != self.currentMessage()
                and self._message_area().contains(event.pos())):
            QToolTip.showText(event.globalPos(), self.currentMessage(), self)
            return True
        return super().event(event)

    def is_progress_visible(self) -> bool:
        return not self._progress_bar.isHidden()

    def show_progress(self, verb: str, done: int, total: int) -> None:
        """Show "<verb> done / total", the rate and the time left, with the Cancel button.

        A call with `done` 0 or another verb, or the first call after
        hide_progress(), starts a new job. Its rate is measured from its first
        call with `done` above 0, so the time spent before the first item, such
        as listing a folder, does not lower the rate.
        """
        now = self._clock()
        if self._verb != verb or done == 0:
            self._verb, self._origin = verb, None
            # A message from before the job, such as the last job's result, gives way.
            self.clearMessage()
        if self._origin is None and done > 0:
            self._origin = (now, done)
        elif 0 < done < total and now - self._refreshed < PROGRESS_REFRESH_S:
            return
        self._refreshed = now
        self._progress_bar.setMaximum(max(total, 1))
        self._progress_bar.setValue(done)
        self._progress_bar.setFormat(f"{verb} {done} / {total}" if total else f"{verb}…")
        rate = ""
        if self._origin is not None:
            started, first_done = self._origin
            rate = describe_rate(done - first_done, max(total - first_done, 0), now - started)
        self._rate_label.setText(rate)
        # Qt hides these widgets while it shows a message, which they would cover in
        # part, and shows them again when the message ends.
        if not self.currentMessage():
            self._progress_bar.show()
            self._rate_label.show()
            self._cancel_button.show()

    def hide_progress(self) -> None:
        """Hide the progress bar, rate and Cancel button, and make Cancel usable again."""
        self._verb = None
        self._origin = None
        self._progress_bar.hide()
        self._rate_label.hide()
        self._rate_label.clear()
        self._cancel_button.hide()
        self._cancel_button.setEnabled(True)
        self._cancel_button.setText("Cancel")

    def set_counts(self, counts: GalleryCounts) -> None:
        self._counts_label.setText(describe_counts(counts))
        self._counts_label.setToolTip(
            "keep and reject: final decisions, yours where you decided, else the model's\n"
            "flagged: scored above the threshold\n"
            "not scored: files that could not be read as images (empty, damaged, too large, "
            "unreadable…); they are rejected unless you keep them"
        )

    def set_model(self, model: ReferenceModel | None) -> None:
        """Show the name and threshold of `model`, with its training and file in the tooltip."""
        self._model_label.set_parts(*describe_model(model))
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
