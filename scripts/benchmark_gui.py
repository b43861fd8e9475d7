"""Time the real window on one folder and write the figures as JSON for benchmark.py.

The window is built the way `python main.py --model FILE FOLDER` builds it. A 50 ms
heartbeat timer records when the event loop gets to run, so the longest gap between
two ticks, less the 50 ms interval, is the longest stall of the window. A stall also
counts the time the kernel gave the cores to other processes, so the application
times every event it handles as well: the longest handler is the window's own work.
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

# The checkout that contains this script is measured, not an installed copy.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from gui.app import configure_process  # noqa: E402
from gui.main_window import APP_NAME, MainWindow  # noqa: E402

logger = logging.getLogger(__name__)

HEARTBEAT_MS = 50
# Scrolling moves one page per step, with this pause so each page gets painted.
SCROLL_STEP_MS = 10
WINDOW_SIZE = (1400, 900)
# Handlers shorter than this are not recorded, to keep the list short.
HANDLER_RECORD_S = 0.002


class TimedApplication(QApplication):
    """A QApplication that times the handling of each outermost event.

    Timer events, queued signal deliveries and paint events all pass through
    notify(). Each handler is timed twice: in wall time, which also counts waiting
    for the GIL and for a core, and in the GUI thread's CPU time, which is the
    window's own work.
    """

    def __init__(self, arguments: list[str]) -> None:
        super().__init__(arguments)
        self.handlers: list[tuple[float, float, float, str]] = []  # end, wall s, CPU s, what
        self._depth = 0

    def notify(self, receiver: QObject, event: QEvent) -> bool:
        self._depth += 1
        started, started_cpu = time.perf_counter(), time.thread_time()
        try:
            return super().notify(receiver, event)
        finally:
            self._depth -= 1
            if self._depth == 0:
                ended = time.perf_counter()
                if ended - started > HANDLER_RECORD_S:
                    self.handlers.append((ended, ended - started,
                                          time.thread_time() - started_cpu,
                                          f"{event.type().name} to {type(receiver).__name__}"))

    def longest_handler(self, start: float, end: float) -> dict[str, float | str]:
        """Return the longest handler that ended between two times, by CPU time, in ms."""
        inside = [(cpu, wall, name) for ended, wall, cpu, name in self.handlers
                  if start <= ended <= end]
        if not inside:
            return {"cpu_ms": 0.0, "wall_ms": 0.0, "event": "none"}
        cpu, wall, name = max(inside)
        return {"cpu_ms": cpu * 1000, "wall_ms": wall * 1000, "event": name}


class WindowRun(QObject):
    """Opens a folder in the window, scrolls the whole gallery, then opens it again."""

    def __init__(self, window: MainWindow, folder: Path, window_started: float,
                 timeout_s: float) -> None:
        super().__init__()
        self.window = window
        self.folder = folder
        self.figures: dict[str, float] = {}
        self.ticks: list[float] = []
        self._marks = {"window started": window_started}
        self._phase = "first scoring"
        self._heartbeat = QTimer(self)
        self._heartbeat.setTimerType(Qt.TimerType.PreciseTimer)
        self._heartbeat.setInterval(HEARTBEAT_MS)
        self._heartbeat.timeout.connect(lambda: self.ticks.append(time.perf_counter()))
        self._scroll_timer = QTimer(self)
        self._scroll_timer.setInterval(SCROLL_STEP_MS)
        self._scroll_timer.timeout.connect(self._scroll_one_page)
        window.scoring_finished.connect(self._on_window_scoring_finished)
        window.scoring_failed.connect(self._on_window_scoring_failed)
        window.gallery_view.viewport().installEventFilter(self)
        QTimer.singleShot(round(timeout_s * 1000), self._on_timeout)

    def start(self) -> None:
        self._heartbeat.start()
        self._mark("first scoring started")
        if not self.window.open_folder(self.folder):
            self._fail(f"opening {self.folder} failed")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and self.window.proxy_model.rowCount() > 0:
            watched.removeEventFilter(self)
            # Runs once the paint event that shows the first tiles has been handled.
            QTimer.singleShot(0, lambda: self._mark("first thumbnails"))
        return False

    def stall_ms(self, start: str, end: str) -> float:
        """Return the longest heartbeat gap between two marks, less the interval, in ms."""
        first, last = self._marks[start], self._marks[end]
        inside = [first, *(tick for tick in self.ticks if first <= tick <= last), last]
        gaps = [b - a for a, b in itertools.pairwise(inside)]
        return max(0.0, max(gaps) * 1000 - HEARTBEAT_MS)

    def longest_handler(self, start: str, end: str) -> dict[str, float | str]:
        """Return the longest event handler between two marks, by the GUI thread's CPU time."""
        app = QApplication.instance()
        assert isinstance(app, TimedApplication)
        return app.longest_handler(self._marks[start], self._marks[end])

    def seconds(self, start: str, end: str) -> float:
        return self._marks[end] - self._marks[start]

    def _mark(self, name: str) -> None:
        self._marks[name] = time.perf_counter()

    def _on_window_scoring_finished(self) -> None:
        if self._phase == "first scoring":
            self._mark("first scoring finished")
            self._phase = "scrolling"
            self.window.gallery_view.verticalScrollBar().setValue(0)
            self._mark("scrolling started")
            self._scroll_timer.start()
        elif self._phase == "reopening":
            self._mark("reopening finished")
            self._heartbeat.stop()
            QApplication.exit(0)

    def _scroll_one_page(self) -> None:
        bar = self.window.gallery_view.verticalScrollBar()
        if bar.value() < bar.maximum():
            bar.setValue(bar.value() + bar.pageStep())
            return
        self._scroll_timer.stop()
        self._mark("scrolling finished")
        self._phase = "reopening"
        self._mark("reopening started")
        if not self.window.open_folder(self.folder):
            self._fail(f"opening {self.folder} again failed")

    def _on_window_scoring_failed(self, message: str) -> None:
        self._fail(message)

    def _on_timeout(self) -> None:
        self._fail(f"the window run did not end within the timeout, in phase {self._phase}")

    def _fail(self, message: str) -> None:
        print(f"Window benchmark failed: {message}", file=sys.stderr)
        QApplication.exit(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path, help="folder of images to open")
    parser.add_argument("--model", type=Path, required=True, help="model file to score with")
    parser.add_argument("--json", type=Path, required=True, help="file to write the figures to")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="give up after this many seconds (default: %(default)s)")
    args = parser.parse_args()
    imported = time.perf_counter()

    app = TimedApplication([sys.argv[0]])
    app.setApplicationName(APP_NAME)
    configure_process()
    with tempfile.TemporaryDirectory() as settings_folder:
        settings = QSettings(str(Path(settings_folder) / "settings.ini"),
                             QSettings.Format.IniFormat)
        window_started = time.perf_counter()
        window = MainWindow(settings)
        window.resize(*WINDOW_SIZE)
        window.show()
        if not window.model_commands.open_model_file(args.model):
            print(f"Window benchmark failed: loading {args.model} failed", file=sys.stderr)
            return 1
        run = WindowRun(window, args.folder, window_started, args.timeout)
        run.start()
        code = app.exec()
        window.close()
    if code != 0:
        return code

    figures = {
        "files": window.gallery_model.rowCount(),
        "imports_s": imported - _STARTED,
        "first_thumbnails_s": run.seconds("window started", "first thumbnails"),
        "first_scoring_s": run.seconds("first scoring started", "first scoring finished"),
        "scoring_stall_ms": run.stall_ms("first scoring started", "first scoring finished"),
        "scrolling_s": run.seconds("scrolling started", "scrolling finished"),
        "scrolling_stall_ms": run.stall_ms("scrolling started", "scrolling finished"),
        "reopening_s": run.seconds("reopening started", "reopening finished"),
        "reopening_stall_ms": run.stall_ms("reopening started", "reopening finished"),
        "scoring_handler": run.longest_handler("first scoring started", "first scoring finished"),
        "scrolling_handler": run.longest_handler("scrolling started", "scrolling finished"),
        "reopening_handler": run.longest_handler("reopening started", "reopening finished"),
        "peak_rss_mb": peak_resident_mb(),
    }
    args.json.write_text(json.dumps(figures, indent=2))
    return 0


def peak_resident_mb() -> float:
    """Return this process's peak resident memory in MB, from Linux's VmHWM.

    getrusage's ru_maxrss would not do: it starts from the peak of the process that
    forked this one, benchmark.py, which has scored folders by then.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("/proc/self/status has no VmHWM line; the benchmark needs Linux")


if __name__ == "__main__":
    sys.exit(main())
