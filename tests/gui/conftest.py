"""Fixtures of the GUI tests: folders of real images and a window with the real model."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot
from window_helpers import backdate

from engine.modelfile import ReferenceModel
from gui.main_window import MainWindow

RETINA_COUNT = 12
BLOOD_CLASSES = ("basophil", "eosinophil", "lymphocyte", "monocyte", "neutrophil", "platelet")

# Long enough that a scan is still running when the first batch arrives.
LARGE_FOLDER_COUNT = 1500


def write_retina_pngs(data_root: Path, folder: Path, count: int, offset: int = 0) -> list[Path]:
    """Write RetinaMNIST test images `offset`.. as PNGs into `folder`; return their paths."""
    images = np.load(data_root / "medmnist" / "retinamnist.npz")["test_images"]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(offset, offset + count):
        path = folder / f"retina_{number:04d}.png"
        Image.fromarray(images[number % len(images)]).save(path)
        paths.append(path)
    return paths


def copy_blood_jpegs(data_root: Path, folder: Path) -> list[Path]:
    """Copy one full-size PBC blood-cell JPEG per class into `folder`; return the copies."""
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for cell_class in BLOOD_CLASSES:
        source = sorted((data_root / "blood" / "pbc" / cell_class).glob("*.jpg"))[0]
        copies.append(Path(shutil.copy2(source, folder / source.name)))
    return copies


@pytest.fixture
def mixed_folder(tmp_path: Path, data_root: Path) -> Path:
    """A folder of retina PNGs, blood-cell JPEGs in a subfolder and one empty file.

    The files are dated an hour back, so their scores are cached for a re-opened folder.
    """
    folder = tmp_path / "batch"
    write_retina_pngs(data_root, folder, RETINA_COUNT)
    copy_blood_jpegs(data_root, folder / "incoming")
    (folder / "empty.png").write_bytes(b"")
    backdate(folder)
    return folder


@pytest.fixture
def large_folder(tmp_path: Path, data_root: Path) -> Path:
    """A folder of many small retina PNGs."""
    folder = tmp_path / "large"
    write_retina_pngs(data_root, folder, LARGE_FOLDER_COUNT)
    return folder


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    """Settings in a temporary INI file, so tests never touch the user's settings."""
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(
    qtbot: QtBot, default_model: ReferenceModel, settings: QSettings
) -> Iterator[Callable[[], MainWindow]]:
    """Make a new shown main window with the shipped model, as a restart of the app would.

    The fixture keeps a reference to each window until pytest-qt has closed it
    after the test, as the app does for its window while it runs. qtbot.addWidget
    keeps only a weak reference, and the parts of a window refer to each other, so
    once the test returned, the cyclic garbage collector could free a shown window.
    A collection while Qt painted the gallery deleted the window mid-paint and
    crashed the process.
    """
    windows: list[MainWindow] = []

    def make() -> MainWindow:
        main_window = MainWindow(settings)
        qtbot.addWidget(main_window)
        windows.append(main_window)
        main_window.set_model(default_model)
        main_window.show()
        qtbot.waitExposed(main_window)
        return main_window

    yield make
    windows.clear()


@pytest.fixture
def window(make_window: Callable[[], MainWindow]) -> MainWindow:
    """A shown main window with the shipped model and no folder open."""
    return make_window()
