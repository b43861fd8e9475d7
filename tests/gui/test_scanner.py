"""Tests of FolderScanner: results enter the gallery in bounded insertions."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_retina_pngs
from PySide6.QtCore import QCoreApplication, QModelIndex, QThreadPool
from pytestqt.qtbot import QtBot
from window_helpers import backdate

from engine.images import Status
from engine.listing import SkippedFolder
from engine.modelfile import ReferenceModel
from engine.review import ReviewStore
from engine.scorecache import score_with_cache
from gui.gallery_model import GalleryModel
from gui.scanner import MAX_ROWS_PER_INSERT, READY_MESSAGE_MS, FolderScanner

FILE_COUNT = 3 * MAX_ROWS_PER_INSERT + 20


@pytest.fixture
def scored_folder(tmp_path: Path, data_root: Path, default_model: ReferenceModel) -> Path:
    """A folder whose every score is in its review's cache."""
    folder = tmp_path / "scored"
    write_retina_pngs(data_root, folder, FILE_COUNT)
    backdate(folder)
    with ReviewStore.open(folder) as store:
        list(score_with_cache(store, default_model))
    return folder


def test_cached_scan_inserts_bounded_batches(
    qtbot: QtBot, scored_folder: Path, default_model: ReferenceModel
) -> None:
    pool = QThreadPool()
    gallery = GalleryModel()
    scanner = FolderScanner(pool, gallery)
    insertions: list[int] = []
    gallery.rowsInserted.connect(
        lambda _parent, first, last: insertions.append(last - first + 1)
    )
    rows_at_finish: list[int] = []
    scanner.scan_finished.connect(lambda _elapsed: rows_at_finish.append(gallery.rowCount()))

    with ReviewStore.open(scored_folder) as store:
        with qtbot.waitSignal(scanner.scan_finished, timeout=60_000):
            scanner.start(default_model, scored_folder, 64, store)
        pool.waitForDone()

    assert rows_at_finish == [FILE_COUNT]
    assert sum(insertions) == FILE_COUNT
    assert max(insertions) <= MAX_ROWS_PER_INSERT
    assert not scanner.is_running()
    assert gallery.rowCount(QModelIndex()) == FILE_COUNT


def test_detach_drops_queued_results(
    qtbot: QtBot, scored_folder: Path, default_model: ReferenceModel
) -> None:
    pool = QThreadPool()
    gallery = GalleryModel()
    scanner = FolderScanner(pool, gallery)

    with ReviewStore.open(scored_folder) as store:
        with qtbot.waitSignal(gallery.rowsInserted, timeout=60_000):
            scanner.start(default_model, scored_folder, 64, store)
        scanner.detach()
        rows = gallery.rowCount()
        pool.waitForDone()
        # Delivers the signals the worker sent after the detach.
        QCoreApplication.processEvents()

    assert not scanner.is_running()
    assert gallery.rowCount() == rows
    assert rows < FILE_COUNT


def test_finished_message_names_skipped_folders() -> None:
    scanner = FolderScanner(QThreadPool(), GalleryModel())

    ready = scanner.finished_message(15, 0.44)
    scanner.skipped_folders = [SkippedFolder("locked", Status.UNREADABLE, "permission denied")]
    skipped = scanner.finished_message(15, 0.44)

    assert ready == ("Ready: 15 files in 0.4 s.", READY_MESSAGE_MS)
    # It stays until the next message, because the user has no other place to see it.
    assert skipped == ("Ready: 15 files in 0.4 s. 1 folder could not be read, so its images "
                       "are not shown.", 0)
    summary, lines = scanner.skipped_folders_report()
    assert summary.startswith("1 folder could not be read, so its images are not shown.")
    assert lines == ["locked: permission denied"]
