"""Helpers of the window tests: file inventories, scoring, answering questions, read-only mounts."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from engine.reviewdb import DB_FOLDER_NAME
from gui.gallery_roles import GalleryRole
from gui.main_window import MainWindow

SCORING_TIMEOUT_MS = 120_000
JOB_TIMEOUT_MS = 60_000

# The review cache does not trust a score taken within two seconds of a file's
# last change (engine.scorestore.RACY_WINDOW_NS), so test files are dated an hour back,
# as files copied into a folder some time ago would be.
AGE_S = 3600


def backdate(folder: Path, age_s: float = AGE_S) -> None:
    """Set the modification time of every file under `folder` to `age_s` seconds ago."""
    moment = time.time() - age_s
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, (moment, moment))


def sha256_inventory(folder: Path) -> dict[str, str]:
    """Map each file's path relative to `folder` to the SHA-256 of its bytes.

    The review database folder is left out, because it changes with every decision.
    """
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and DB_FOLDER_NAME not in path.relative_to(folder).parts
    }


def gallery_paths(window: MainWindow) -> list[str]:
    """Relative paths of the gallery's rows in the order shown."""
    proxy = window.proxy_model
    return [proxy.index(row, 0).data(GalleryRole.RELATIVE_PATH) for row in range(proxy.rowCount())]


def open_and_wait(qtbot: QtBot, window: MainWindow, folder: Path) -> None:
    """Open `folder` in `window` and wait until scoring has finished."""
    with qtbot.waitSignal(window.scoring_finished, timeout=SCORING_TIMEOUT_MS):
        assert window.open_folder(folder)


def select_paths(window: MainWindow, relative_paths: list[str]) -> None:
    """Select exactly the gallery tiles of `relative_paths`; the last one becomes current."""
    proxy = window.proxy_model
    selection = window.gallery_view.selectionModel()
    selection.clearSelection()
    rows = {proxy.index(row, 0).data(GalleryRole.RELATIVE_PATH): row
            for row in range(proxy.rowCount())}
    for relative_path in relative_paths:
        index = proxy.index(rows[relative_path], 0)
        selection.setCurrentIndex(index, selection.SelectionFlag.Select)


def current_path(window: MainWindow) -> str | None:
    """Relative path of the gallery's current tile, or None."""
    index = window.gallery_view.currentIndex()
    return index.data(GalleryRole.RELATIVE_PATH) if index.isValid() else None


@contextlib.contextmanager
def read_only_bind(folder: Path) -> Iterator[Path]:
    """Mount `folder` read-only onto itself for the block, so it is read-only also for root."""
    if os.geteuid() != 0:
        pytest.fail("a read-only bind mount needs root: run the tests as root, as .ci/run does")
    commands = [["mount", "--bind", str(folder), str(folder)],
                ["mount", "-o", "remount,bind,ro", str(folder)]]
    mounted = False
    try:
        for command in commands:
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                pytest.fail(f"{' '.join(command)} failed: {result.stderr.strip()}")
            mounted = True
        yield folder
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], capture_output=True, check=True)
