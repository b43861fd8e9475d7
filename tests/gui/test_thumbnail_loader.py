"""Tests of deferred thumbnails: a re-opened folder reads them as its tiles are shown."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import write_retina_pngs
from PySide6.QtCore import QThreadPool
from pytestqt.qtbot import QtBot
from window_helpers import backdate, open_and_wait

import gui.file_commands
import gui.workers
from engine.framing import Framing
from engine.modelfile import ReferenceModel
from engine.review import ReviewStore
from engine.thumbcache import CACHE_FILE_NAME, default_cache_folder
from engine.thumbnails import CachedThumbnail
from engine.training import TrainingData, TrainingOptions, frame_arrays, train_model
from gui.gallery_model import GalleryModel
from gui.gallery_proxy import FilterMode
from gui.gallery_roles import THUMBNAIL_ROLES
from gui.main_window import MainWindow
from gui.scanner import FolderScanner

FILE_COUNT = 40
PIXELS = 64
TIMEOUT_MS = 60_000


@pytest.fixture
def folder(tmp_path: Path, data_root: Path) -> Path:
    folder = tmp_path / "retina"
    write_retina_pngs(data_root, folder, FILE_COUNT)
    # Dated back, so that both the scores and the thumbnails are cached.
    backdate(folder)
    return folder


@pytest.fixture
def store(folder: Path) -> Iterator[ReviewStore]:
    with ReviewStore.open(folder) as opened:
        yield opened


@pytest.fixture
def pool() -> Iterator[QThreadPool]:
    pool = QThreadPool()
    yield pool
    pool.waitForDone()


@dataclass
class Scanning:
    """A gallery that a FolderScanner fills from the test folder and its review."""

    qtbot: QtBot
    model: ReferenceModel
    folder: Path
    store: ReviewStore
    gallery: GalleryModel
    scanner: FolderScanner

    def scan(self) -> None:
        """Scan the folder into the gallery and wait until the scan has finished."""
        with self.qtbot.waitSignal(self.scanner.scan_finished, timeout=TIMEOUT_MS):
            self.scanner.start(self.model, self.folder, PIXELS, self.store)


@pytest.fixture
def scanning(qtbot: QtBot, pool: QThreadPool, default_model: ReferenceModel, folder: Path,
             store: ReviewStore) -> Scanning:
    gallery = GalleryModel()
    return Scanning(qtbot, default_model, folder, store, gallery, FolderScanner(pool, gallery))


def thumbnails_by_path(gallery: GalleryModel) -> dict[str, bytes | None]:
    items = (gallery.item(row) for row in range(gallery.rowCount()))
    return {item.record.relative_path: item.thumbnail for item in items}


def test_cached_thumbnails_read_as_tiles_show(qtbot: QtBot, scanning: Scanning) -> None:
    gallery, scanner = scanning.gallery, scanning.scanner
    scanning.scan()
    first = thumbnails_by_path(gallery)
    assert all(first.values())

    scanning.scan()
    assert all(gallery.item(row).deferred for row in range(FILE_COUNT))
    with qtbot.assertNotEmitted(scanner._thumbnails.loaded, wait=200):
        tile = gallery.tile(3)
    assert not tile.item.deferred
    assert tile.item.thumbnail == first[tile.item.record.relative_path]
    # Only the tile shown was read.
    assert sum(gallery.item(row).deferred for row in range(FILE_COUNT)) == FILE_COUNT - 1


def test_missing_thumbnails_decode_again(qtbot: QtBot, scanning: Scanning) -> None:
    gallery, scanner = scanning.gallery, scanning.scanner
    scanning.scan()
    first = thumbnails_by_path(gallery)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{default_cache_folder() / CACHE_FILE_NAME}{suffix}").unlink(missing_ok=True)

    scanning.scan()
    changed: list[tuple[int, int, list[int]]] = []
    gallery.dataChanged.connect(
        lambda top, bottom, roles: changed.append((top.row(), bottom.row(), list(roles))))
    with qtbot.waitSignal(scanner._thumbnails.loaded, timeout=TIMEOUT_MS) as loaded:
        for row in range(5):
            assert gallery.tile(row).item.thumbnail is None
        # A tile painted again while its file decodes is not asked for twice.
        assert gallery.tile(0).item.deferred
    assert [thumbnail.record.relative_path for thumbnail in loaded.args[0]] == [
        gallery.item(row).record.relative_path for row in range(5)]

    assert changed == [(0, 4, [int(role) for role in THUMBNAIL_ROLES])]
    for row in range(5):
        item = gallery.item(row)
        assert not item.deferred
        assert item.thumbnail == first[item.record.relative_path]
    assert gallery.item(5).deferred


def test_thumbnails_of_an_earlier_scan_are_ignored(scanning: Scanning) -> None:
    gallery = scanning.gallery
    scanning.scan()
    scanning.scan()
    earlier = gallery.item(0).record
    scanning.scan()

    gallery.set_thumbnails([CachedThumbnail(earlier, b"stale thumbnail")])
    item = gallery.item(gallery.row_of(earlier.relative_path) or 0)
    assert item.record is not earlier
    assert item.deferred
    assert item.thumbnail is None


def test_failed_decoding_leaves_no_tile_loading(
    qtbot: QtBot, scanning: Scanning, monkeypatch: pytest.MonkeyPatch
) -> None:
    gallery, scanner = scanning.gallery, scanning.scanner
    scanning.scan()
    scanning.scan()
    Path(default_cache_folder() / CACHE_FILE_NAME).unlink()

    def fail(*_arguments: object) -> Iterator[object]:
        raise OSError("the disk went away")

    monkeypatch.setattr(gui.workers, "cached_thumbnails", fail)
    with qtbot.waitSignal(scanner._thumbnails.loaded, timeout=TIMEOUT_MS) as loaded:
        gallery.tile(0)
        gallery.tile(1)
    assert [thumbnail.data for thumbnail in loaded.args[0]] == [None, None]
    for row in (0, 1):
        assert not gallery.item(row).deferred
        assert gallery.item(row).thumbnail is None


@pytest.fixture
def confirmed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Confirm every question of the window's file commands with Yes."""
    monkeypatch.setattr(gui.file_commands, "confirm", lambda *_arguments: True)


def move_out_and_back(qtbot: QtBot, window: MainWindow) -> None:
    with qtbot.waitSignal(window.move_finished, timeout=TIMEOUT_MS):
        assert window.file_commands.move_rejects_out()
    with qtbot.waitSignal(window.undo_finished, timeout=TIMEOUT_MS):
        window.window_actions.undo.trigger()


def test_undo_reads_thumbnails_lost_while_away(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, confirmed: None
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    shutil.rmtree(default_cache_folder())
    # The gallery shows only kept files, so that it never paints the flagged tiles.
    # Otherwise a paint during the scan requested the thumbnail of the flagged file, and
    # a pool thread decoded it before or after the rename below.
    window.filter_combo.setCurrentText(FilterMode.KEPT.value)
    open_and_wait(qtbot, window, mixed_folder)
    qtbot.waitUntil(lambda: not window.thumbnails_loading(), timeout=TIMEOUT_MS)
    gallery = window.gallery_model
    flagged = next(row for row in range(gallery.rowCount()) if gallery.flag_at(row))
    relative_path = gallery.item(flagged).record.relative_path
    assert gallery.item(flagged).deferred
    # The tile is painted while its file is away, as during a move.
    away = mixed_folder / f"{relative_path}.away"
    (mixed_folder / relative_path).rename(away)
    gallery.tile(flagged)
    qtbot.waitUntil(lambda: not gallery.item(flagged).deferred, timeout=TIMEOUT_MS)
    assert gallery.item(flagged).thumbnail_problem == "the file was removed or renamed"
    away.rename(mixed_folder / relative_path)

    move_out_and_back(qtbot, window)

    row = gallery.row_of(relative_path)
    assert row is not None
    assert gallery.item(row).deferred
    gallery.tile(row)
    qtbot.waitUntil(lambda: gallery.item(row).thumbnail is not None, timeout=TIMEOUT_MS)
    assert gallery.item(row).thumbnail_problem == ""


def test_undo_after_model_switch_shows_its_scores(
    qtbot: QtBot, window: MainWindow, mixed_folder: Path, confirmed: None,
    data_root: Path,
) -> None:
    open_and_wait(qtbot, window, mixed_folder)
    with qtbot.waitSignal(window.move_finished, timeout=TIMEOUT_MS):
        assert window.file_commands.move_rejects_out()
    with np.load(data_root / "medmnist" / "retinamnist.npz") as arrays:
        images = frame_arrays(arrays["train_images"][:200], Framing())
    other = train_model(TrainingData(images, "200 RetinaMNIST train images"), Framing(),
                        TrainingOptions(epochs=3))
    with qtbot.waitSignal(window.scoring_finished, timeout=TIMEOUT_MS):
        window.set_model(other)

    # The files that come back are scored with the model in use, by a new scan.
    with qtbot.waitSignals([window.undo_finished, window.scoring_finished],
                           timeout=TIMEOUT_MS):
        window.window_actions.undo.trigger()
    after_undo = scores_by_path(window)
    with qtbot.waitSignal(window.scoring_finished, timeout=TIMEOUT_MS):
        window.rescan()
    assert after_undo == scores_by_path(window)


def scores_by_path(window: MainWindow) -> dict[str, float | None]:
    gallery = window.gallery_model
    return {gallery.item(row).record.relative_path: gallery.item(row).record.score
            for row in range(gallery.rowCount())}
