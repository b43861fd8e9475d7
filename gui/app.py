"""Command-line entry point of the Retina Curator window."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, QSettings, QStandardPaths, QTimer, Slot
from PySide6.QtGui import QPixmapCache
from PySide6.QtWidgets import QApplication

from engine.cli_parser import HelpFormatter
from engine.images import log_decoder_warnings
from engine.invocation import WINDOW_ENTRY_POINT, program_name
from engine.modelfile import ModelFileError, load_model
from engine.resources import DEFAULT_MODEL_PATH, demo_working_copy
from gui.main_window import APP_NAME, MainWindow
from gui.thumbnails import PIXMAP_CACHE_KB

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1  # no display, scoring failed or the screenshot could not be written
EXIT_USAGE = 2  # invalid arguments, a model that cannot load, a missing folder

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


# A thread that waits for the GIL requests it after this many seconds, and any
# waiting thread may get it then. With Python's default of 5 ms, a 50 ms timer in
# the GUI thread fired up to 200 ms late beside two threads running Python code on
# a two-core machine. With 0.5 ms it fired at most 10 ms late. A scan runs three
# such threads.
GIL_SWITCH_INTERVAL_S = 0.0005
# Allocations between two collections of the youngest generation (Python's default
# is 700). A scan builds a result, a record and a gallery item for every file, so
# the default ran a collection every few dozen files. Re-opening a scored folder of
# 20 000 files took 1.00–1.07 s with 700, 0.92–0.96 s with 10 000 and 0.90–0.92 s
# with no collection at all.
GC_YOUNG_THRESHOLD = 10_000


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the window's command-line options."""
    parser = argparse.ArgumentParser(
        prog=program_name(WINDOW_ENTRY_POINT), formatter_class=HelpFormatter,
        description="Score the images of a folder with a reference model and review "
                    "the ones it flags as not belonging there.",
        epilog="Headless commands, which need no display: train, score, evaluate, "
               f"move-rejects, undo and export. Run '{program_name()} COMMAND --help' "
               "for the options of one.",
    )
    parser.add_argument("folder", nargs="?", type=Path, metavar="FOLDER",
                        help="folder to open and score at start")
    parser.add_argument("--demo", action="store_true",
                        help="open a working copy of the bundled demo folder, made "
                             "in the user's data folder")
    parser.add_argument("--model", type=Path, metavar="FILE",
                        help="reference model file (.safetensors) to score with (default: "
                             "the model used last in the window, else the bundled "
                             f"{DEFAULT_MODEL_PATH.name}; with --screenshot, always the "
                             "bundled one)")
    parser.add_argument("--screenshot", type=Path, metavar="PATH",
                        help="once scoring has finished, save a PNG of the whole window "
                             "to PATH and exit")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="WARNING",
                        help="lowest level of log messages written to stderr "
                             "(default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the window until it is closed and return the process exit code.

    With --screenshot the window exits by itself: 0 once the PNG is written, 1 if
    scoring or writing fails, 2 if the model or folder cannot be opened.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.demo and args.folder is not None:
        parser.error("give either FOLDER or --demo, not both")
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log_decoder_warnings()

    app = QApplication.instance()
    if not isinstance(app, QApplication):
        problem = missing_display()
        if problem:
            print(problem, file=sys.stderr)
            return EXIT_FAILED
        app = QApplication([sys.argv[0]])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    configure_process()
    folder: Path | None = _demo_folder() if args.demo else args.folder

    if args.screenshot is not None:
        sys.excepthook = _exit_on_unhandled_error
        return _run_screenshot(app, args.model or DEFAULT_MODEL_PATH, folder, args.screenshot)
    sys.excepthook = _log_unhandled_error
    return _run_interactive(app, args.model, folder)


def missing_display() -> str:
    """Return why the window cannot start for lack of a display, or an empty string.

    On Linux and other X11 or Wayland systems, Qt aborts the process (SIGABRT) when
    neither DISPLAY nor WAYLAND_DISPLAY is set, unless QT_QPA_PLATFORM names a
    platform that needs no display server, such as offscreen. On macOS and
    Windows, Qt uses the system's own window system, so this returns "" there.
    """
    if os.name != "posix" or sys.platform == "darwin":
        return ""
    if any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        return ""
    command = program_name()
    return ("Starting the window failed: no display found (DISPLAY and WAYLAND_DISPLAY are "
            "not set), and the window needs one. The command-line sub-commands train, "
            "score, evaluate, move-rejects, undo and export work without a display, such "
            f"as {command} score FOLDER --csv scores.csv; run {command} --help for all.")


def configure_process() -> None:
    """Set the process-wide settings the window relies on; call once, after the imports.

    Sets the pixmap cache size and the GIL switch interval, hides the objects
    alive now from the cyclic garbage collector (gc.freeze) and makes its young
    collections rarer. A full collection holds the GIL while it walks every
    tracked object, and torch, Qt and numpy leave about 190 000 of them after
    import. Full collections in the scan's thread took up to 275 ms with them and
    up to 88 ms without, on a 20 000-image folder at a load average of 4 on two
    cores (scripts/benchmark_gui.py).
    """
    QPixmapCache.setCacheLimit(PIXMAP_CACHE_KB)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _demo_folder() -> Path:
    """Return the user's working copy of the demo folder, made on first use."""
    location = QStandardPaths.StandardLocation.AppLocalDataLocation
    return demo_working_copy(Path(QStandardPaths.writableLocation(location)) / "demo")


def _log_unhandled_error(
    kind: type[BaseException], error: BaseException, trace: TracebackType | None
) -> None:
    # PySide reports an exception raised in a slot or a virtual override here and
    # then carries on, so the window stays usable after a bug.
    logger.critical("unhandled error", exc_info=(kind, error, trace))


def _exit_on_unhandled_error(
    kind: type[BaseException], error: BaseException, trace: TracebackType | None
) -> None:
    # A screenshot run has no user to notice a broken window, so it stops at once.
    _log_unhandled_error(kind, error, trace)
    print(f"Taking the screenshot failed: unhandled {kind.__name__}: {error}", file=sys.stderr)
    QApplication.exit(EXIT_FAILED)


def _run_interactive(app: QApplication, model_path: Path | None, folder: Path | None) -> int:
    window = MainWindow(QSettings())
    window.show()
    # Each of these shows a message if no model could be loaded.
    if model_path is None:
        window.model_commands.restore_last_model()
    else:
        window.model_commands.open_model_file(model_path)
    if folder is not None:
        window.open_folder_with_model(folder)
    code = app.exec()
    window.deleteLater()
    return code


def _run_screenshot(app: QApplication, model_path: Path, folder: Path | None,
                    output: Path) -> int:
    try:
        model = load_model(model_path)
    except ModelFileError as error:
        # Printed only: a log record of it too would put the message on stderr twice.
        print(error, file=sys.stderr)
        return EXIT_USAGE
    if folder is not None and not folder.is_dir():
        print(f"Opening folder failed: {folder} is not a folder.", file=sys.stderr)
        return EXIT_USAGE

    window = MainWindow(settings=None, unattended=True)
    window.set_model(model)
    window.show()
    screenshot = _Screenshot(window, output)
    if folder is None:
        QTimer.singleShot(0, screenshot.save_and_exit)
    elif not window.open_folder(folder):
        return EXIT_USAGE
    code = app.exec()
    window.close()
    window.deleteLater()
    return code


# A screenshot is taken at the latest this long after scoring ends, even if the
# detail pane has not shown the current image's reconstruction by then.
_DETAIL_WAIT_MS = 10_000
# The tiles in view whose thumbnails are decoded again are checked this often, for
# at most _THUMBNAIL_WAIT_S, before the screenshot is saved.
_THUMBNAIL_POLL_MS = 100
_THUMBNAIL_WAIT_S = 30.0


class _Screenshot(QObject):
    """Saves a PNG of the window once scoring ends and the detail pane is filled, then exits."""

    def __init__(self, window: MainWindow, output: Path) -> None:
        super().__init__(window)
        self._window = window
        self._output = output
        self._saved = False
        self._thumbnail_deadline: float | None = None
        window.scoring_finished.connect(self._on_window_scoring_finished)
        window.scoring_failed.connect(self._on_window_scoring_failed)
        window.detail_pane.images_shown.connect(self._on_detail_pane_images_shown)

    def save_and_exit(self) -> None:
        """Save the PNG and exit the event loop with 0, or with 1 if saving fails.

        The tiles in view show their thumbnails, unless decoding them again takes
        longer than _THUMBNAIL_WAIT_S.
        """
        if self._saved:
            return
        # Painting requests the thumbnails of the tiles in view that are not read yet.
        image = self._window.grab()
        if self._thumbnail_deadline is None:
            self._thumbnail_deadline = time.monotonic() + _THUMBNAIL_WAIT_S
        if self._window.thumbnails_loading() and time.monotonic() < self._thumbnail_deadline:
            QTimer.singleShot(_THUMBNAIL_POLL_MS, self.save_and_exit)
            return
        self._saved = True
        if image.save(str(self._output), "PNG"):
            logger.info("saved a screenshot of the window to %s", self._output)
            QApplication.exit(EXIT_OK)
            return
        print(f"Saving the screenshot to {self._output} failed: check that the folder "
              "exists and is writable.", file=sys.stderr)
        QApplication.exit(EXIT_FAILED)

    @Slot()
    def _on_window_scoring_finished(self) -> None:
        if self._window.detail_pane.is_loading:
            QTimer.singleShot(_DETAIL_WAIT_MS, self.save_and_exit)
            return
        # Deferred so the layout changes that the last results caused are done first.
        QTimer.singleShot(0, self.save_and_exit)

    @Slot(str)
    def _on_detail_pane_images_shown(self, _path: str) -> None:
        if not self._window.is_busy():
            QTimer.singleShot(0, self.save_and_exit)

    @Slot(str)
    def _on_window_scoring_failed(self, message: str) -> None:
        print(message, file=sys.stderr)
        QApplication.exit(EXIT_FAILED)
