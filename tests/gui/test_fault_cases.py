"""Qt and window cases from real reports, on copies of the case files and the real app."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from window_helpers import SCORING_TIMEOUT_MS, gallery_paths, open_and_wait, sha256_inventory

from engine.images import Status
from gui.gallery_proxy import FilterMode
from gui.gallery_roles import GalleryRole
from gui.main_window import MainWindow

REPOSITORY = Path(__file__).resolve().parents[2]
PROCESS_TIMEOUT_S = 300
MANY_IMAGES = 3000

# The offscreen platform plugin of Qt 6.11 warns this whenever a window's layout
# sets its minimum size, which every window with a layout does. It is the one
# warning that the runs below accept.
OFFSCREEN_PLUGIN_WARNING = "This plugin does not support propagateSizeHints()"


@pytest.fixture
def many_images(tmp_path: Path, cases_root: Path) -> Path:
    """A copy of the case folder of 3000 small PNGs."""
    folder = Path(shutil.copytree(cases_root / "layouts" / "many_images", tmp_path / "many"))
    for path in folder.iterdir():
        os.chmod(path, 0o644)
    os.chmod(folder, 0o755)
    return folder


def run_child(
    program: str, *arguments: str, **environment: str
) -> subprocess.CompletedProcess[str]:
    """Run `program` in a new Python on the offscreen platform, with settings kept apart."""
    home = Path(arguments[0]).parent / "home" if arguments else REPOSITORY
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        PYTHONPATH=str(REPOSITORY),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        **environment,
    )
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(program), *arguments],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT_S,
        check=False,
    )


# --- pixmaps only in the GUI thread ----------------------------------------------


# Runs the real app on a folder and records every Qt warning. QT_FATAL_WARNINGS=1
# cannot be used: with it, the offscreen plugin's own warning aborts any window.
WARNINGS_RECORDED = """
    import json, sys
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler
    from gui.app import main

    warnings = []

    def record(kind, context, message):
        if kind in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg):
            warnings.append(message)

    qInstallMessageHandler(record)
    code = main([sys.argv[1], "--screenshot", sys.argv[2]])
    print(json.dumps({"code": code, "warnings": warnings}))
"""


def test_many_images_without_qt_warnings(many_images: Path, tmp_path: Path) -> None:
    screenshot = tmp_path / "window.png"

    result = run_child(WARNINGS_RECORDED, str(many_images), str(screenshot))

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["code"] == 0
    assert [w for w in report["warnings"] if w != OFFSCREEN_PLUGIN_WARNING] == []
    assert "QPixmap" not in result.stderr
    assert "Traceback" not in result.stderr
    assert screenshot.stat().st_size > 0


# --- closing while scoring -------------------------------------------------------


CLOSE_AFTER_HALF_A_SECOND = """
    import sys, time
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication
    from engine.modelfile import load_model
    from engine.resources import DEFAULT_MODEL_PATH
    from gui.main_window import MainWindow

    app = QApplication([])
    window = MainWindow()
    window.set_model(load_model(DEFAULT_MODEL_PATH))
    window.show()
    closed = []

    def close():
        closed.append((time.monotonic(), window.is_busy()))
        window.close()

    window.open_folder(sys.argv[1])
    QTimer.singleShot(500, close)
    code = app.exec()
    del window
    closed_at, busy = closed[0]
    print("busy_at_close", int(busy), "seconds", time.monotonic() - closed_at)
    sys.exit(code)
"""


def test_close_during_scoring_exits_fast(many_images: Path) -> None:
    before = sha256_inventory(many_images)

    result = run_child(CLOSE_AFTER_HALF_A_SECOND, str(many_images))

    assert result.returncode == 0, result.stderr
    assert "QThread: Destroyed" not in result.stderr
    assert "Traceback" not in result.stderr
    fields = result.stdout.split()
    assert fields[1] == "1"
    assert float(fields[3]) < 5.0
    assert sha256_inventory(many_images) == before


# --- responsiveness --------------------------------------------------------------


# Runs in a fresh process, so that the heartbeat measures the app and not the
# garbage collections of a test process that has built hundreds of windows.
HEARTBEAT = """
    import json, sys, time
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QPixmapCache
    from PySide6.QtWidgets import QApplication
    from engine.modelfile import load_model
    from engine.resources import DEFAULT_MODEL_PATH
    from gui.gallery_roles import GalleryRole
    from gui.main_window import MainWindow

    app = QApplication([])
    window = MainWindow()
    window.set_model(load_model(DEFAULT_MODEL_PATH))
    beats, painted = [], []

    def beat():
        beats.append(time.perf_counter())
        proxy = window.proxy_model
        if not painted and proxy.rowCount():
            index = proxy.index(0, 0)
            ratio = window.gallery_view.devicePixelRatioF()
            if QPixmapCache.find(f"{index.data(GalleryRole.THUMBNAIL_KEY)}@{ratio:g}"):
                painted.append(time.perf_counter())

    heartbeat = QTimer()
    heartbeat.setInterval(50)
    heartbeat.timeout.connect(beat)
    window.scoring_finished.connect(app.quit)
    started = time.perf_counter()
    window.show()
    heartbeat.start()
    window.open_folder(sys.argv[1])
    app.exec()
    print(json.dumps({"started": started, "beats": beats, "painted": painted,
                      "rows": window.gallery_model.rowCount()}))
"""


def test_many_images_window_stays_responsive(many_images: Path) -> None:
    result = run_child(HEARTBEAT, str(many_images))

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    beats = report["beats"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(beats)]
    worst = max(range(len(gaps)), key=gaps.__getitem__)
    assert report["rows"] == MANY_IMAGES
    assert report["painted"], "no thumbnail was painted while scoring"
    assert report["painted"][0] - report["started"] < 2.0
    assert len(beats) > 10
    assert max(gaps) < 0.2, f"{gaps[worst]:.3f} s after {beats[worst] - report['started']:.3f} s"


# --- high-DPI thumbnails ---------------------------------------------------------


THUMBNAIL_PIXELS = """
    import json, sys
    from PySide6.QtWidgets import QApplication
    from engine.modelfile import load_model
    from engine.resources import DEFAULT_MODEL_PATH
    from gui.gallery_roles import GalleryRole
    from gui.main_window import MainWindow
    from gui.thumbnails import thumbnail_pixmap

    app = QApplication([])
    window = MainWindow()
    window.set_model(load_model(DEFAULT_MODEL_PATH))
    window.show()
    window.scoring_finished.connect(app.quit)
    window.open_folder(sys.argv[1])
    app.exec()
    view = window.gallery_view
    view.viewport().grab()
    ratio = view.devicePixelRatioF()
    item = window.gallery_model.item(0)
    pixmap = thumbnail_pixmap(item.thumbnail_key, item.thumbnail, ratio)
    print(json.dumps({
        "ratio": ratio, "side": view.thumbnail_side, "pixmap_ratio": pixmap.devicePixelRatio(),
        "pixels": [pixmap.width(), pixmap.height()],
    }))
"""


@pytest.mark.parametrize("scale", [1, 2])
def test_thumbnails_sharp_at_scale(tmp_path: Path, data_root: Path, scale: int) -> None:
    folder = tmp_path / "cells"
    folder.mkdir()
    # Full-size blood-cell JPEGs (360 × 363 px): large enough for 256-pixel thumbnails.
    for source in sorted((data_root / "blood" / "pbc" / "basophil").glob("*.jpg"))[:2]:
        shutil.copy(source, folder / source.name)

    result = run_child(THUMBNAIL_PIXELS, str(folder), QT_SCALE_FACTOR=str(scale))

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["ratio"] == scale
    assert report["pixmap_ratio"] == scale
    assert max(report["pixels"]) == scale * report["side"]


# --- problem files and links in the gallery --------------------------------------


PROBLEM_CASES = {
    "zero.png": "empty file",
    "bad_crc.png": "damaged",
    "bomb.png": "too large",
    "huge_error.png": "too large",
}


def test_not_scored_filter_lists_each_file(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, cases_root: Path
) -> None:
    folder = tmp_path / "cases"
    folder.mkdir()
    for name in [*PROBLEM_CASES, "good.png", "png_named.jpg"]:
        shutil.copy(cases_root / name, folder / name)
    (folder / "notes.png").write_text("not an image", encoding="utf-8")
    os.symlink("missing.png", folder / "broken.png")
    expected = {**PROBLEM_CASES, "notes.png": "not an image", "broken.png": "unreadable"}
    open_and_wait(qtbot, window, folder)

    window.filter_combo.setCurrentText("Not scored")

    assert window.proxy_model.filter_mode is FilterMode.NOT_SCORED
    assert sorted(gallery_paths(window)) == sorted(expected)
    for row in range(window.proxy_model.rowCount()):
        index = window.proxy_model.index(row, 0)
        record = index.data(GalleryRole.RECORD)
        assert record.status is not Status.OK
        assert index.data(GalleryRole.STATUS) == expected[record.relative_path]
        # No thumbnail: the tile paints the placeholder with the status text.
        assert index.data(GalleryRole.THUMBNAIL) is None
        assert record.detail
        assert record.detail in index.data(Qt.ItemDataRole.ToolTipRole)


def test_symlink_folder_listed_once(qtbot: QtBot, window: MainWindow, symlink_layout: Path) -> None:
    open_and_wait(qtbot, window, symlink_layout)

    assert sorted(gallery_paths(window)) == ["broken_link.png", "link_to_outside.png", "real.png"]
    statuses = {
        window.gallery_model.item(row).record.relative_path: window.gallery_model.item(
            row
        ).record.status
        for row in range(window.gallery_model.rowCount())
    }
    assert statuses["broken_link.png"] is Status.UNREADABLE
    window.filter_combo.setCurrentText("Not scored")
    assert gallery_paths(window) == ["broken_link.png"]


# --- no model, no scoring --------------------------------------------------------


def open_malicious_model(window: MainWindow, tmp_path: Path, cases_root: Path) -> bool:
    """Unload the window's model, then try a copy of the pickle-payload checkpoint."""
    window.set_model(None)
    malicious = Path(shutil.copy(cases_root / "models" / "ckpt_malicious.pt", tmp_path / "m.pt"))
    return window.model_commands.open_model_file(malicious)


def test_scoring_waits_for_valid_model(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, cases_root: Path, mixed_folder: Path
) -> None:
    assert not open_malicious_model(window, tmp_path, cases_root)

    assert window.model is None
    assert not window.window_actions.open_folder.isEnabled()
    assert not window.open_folder(mixed_folder)
    assert window.gallery_model.rowCount() == 0

    with qtbot.waitSignal(window.model_changed, timeout=SCORING_TIMEOUT_MS):
        assert window.model_commands.open_model_file(
            REPOSITORY / "resources" / "models" / "retina_default.safetensors"
        )
    assert window.window_actions.open_folder.isEnabled()
    open_and_wait(qtbot, window, mixed_folder)
    assert window.gallery_model.rowCount() > 0


def test_folder_opens_once_a_model_loads(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, cases_root: Path, mixed_folder: Path
) -> None:
    assert not open_malicious_model(window, tmp_path, cases_root)

    window.open_folder_with_model(mixed_folder)

    assert window.gallery_model.rowCount() == 0
    assert str(mixed_folder) in window.gallery_view.placeholder_text()
    with qtbot.waitSignal(window.scoring_finished, timeout=SCORING_TIMEOUT_MS):
        window.model_commands.use_bundled_model()
    assert window.gallery_model.rowCount() > 0
