"""Tests of the batch workers: batching, progress, cancellation and failures."""

from __future__ import annotations

import hashlib
import itertools
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QObject, QThread, QThreadPool, Slot
from pytestqt.qtbot import QtBot

from engine.export import CleanedSetExport
from engine.journal import last_undoable_batch
from engine.modelfile import ReferenceModel
from engine.records import Location
from engine.review import ReviewStore
from engine.thumbcache import open_cache, thumbnail_key
from gui.batch_worker import BATCH_INTERVAL_S, BATCH_SIZE, BatchWorker
from gui.gallery_items import GalleryItem
from gui.workers import ExportWorker, MoveWorker, ScoringWorker, ThumbnailWorker, UndoWorker

TIMEOUT_MS = 60_000


class CountingWorker(BatchWorker):
    """Yields 0, 1, 2, … without end, so only a cancel stops it.

    After the first full batch it waits for `resume` to be set, so the test can
    cancel it at a known point instead of racing a flood of batches.
    """

    def __init__(self) -> None:
        super().__init__("Counting")
        self.resume = threading.Event()

    def _produce(self) -> Iterator[int]:
        self._set_total(0)
        for number in itertools.count():
            if number == BATCH_SIZE:
                self.resume.wait(TIMEOUT_MS / 1000)
            yield number


class BurstWorker(BatchWorker):
    """Yields a burst of items after a pause, then waits, as a scan of large files does."""

    def __init__(self) -> None:
        super().__init__("Bursting")
        self.resume = threading.Event()

    def _produce(self) -> Iterator[int]:
        self._set_total(10)
        time.sleep(2 * BATCH_INTERVAL_S)
        yield from range(5)
        self.resume.wait(TIMEOUT_MS / 1000)
        yield from range(5, 10)


class FailingWorker(BatchWorker):
    """Yields three items, then raises."""

    def __init__(self) -> None:
        super().__init__("Counting to three")

    def _produce(self) -> Iterator[int]:
        yield from range(3)
        raise OSError("disk vanished")


class Recorder(QObject):
    """Collects what a worker emits, in the GUI thread as the window does.

    Its slots run in emission order, so once `ending` is set every batch before
    it has been recorded. A test that waits on the worker's own signals does not
    get that order, because pytest-qt receives them in the worker thread.
    """

    def __init__(self, worker: BatchWorker) -> None:
        super().__init__()
        self.batches: list[list[object]] = []
        self.progress: list[tuple[int, int]] = []
        self.ending: list[str] = []
        worker.signals.items_produced.connect(self._on_worker_items_produced)
        worker.signals.progressed.connect(self._on_worker_progressed)
        worker.signals.finished.connect(self._on_worker_finished)
        worker.signals.cancelled.connect(self._on_worker_cancelled)
        worker.signals.failed.connect(self._on_worker_failed)

    @property
    def items(self) -> list[object]:
        return [item for batch in self.batches for item in batch]

    def wait_for_end(self, qtbot: QtBot) -> str:
        """Wait until the worker's last signal arrives and return its description."""
        qtbot.waitUntil(lambda: bool(self.ending), timeout=TIMEOUT_MS)
        assert len(self.ending) == 1
        return self.ending[0]

    @Slot(list)
    def _on_worker_items_produced(self, batch: list[object]) -> None:
        assert QThread.currentThread() is QCoreApplication.instance().thread()
        self.batches.append(batch)

    @Slot(int, int)
    def _on_worker_progressed(self, done: int, total: int) -> None:
        self.progress.append((done, total))

    @Slot()
    def _on_worker_finished(self) -> None:
        self.ending.append("finished")

    @Slot()
    def _on_worker_cancelled(self) -> None:
        self.ending.append("cancelled")

    @Slot(str)
    def _on_worker_failed(self, message: str) -> None:
        self.ending.append(f"failed: {message}")


@pytest.fixture
def pool() -> Iterator[QThreadPool]:
    thread_pool = QThreadPool()
    yield thread_pool
    assert thread_pool.waitForDone(TIMEOUT_MS)


def sha256_inventory(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and ".retina-curator" not in path.parts
    }


@pytest.fixture
def store(mixed_folder: Path) -> Iterator[ReviewStore]:
    review = ReviewStore.open(mixed_folder)
    yield review
    review.close()


def run_to_end(qtbot: QtBot, pool: QThreadPool, worker: BatchWorker) -> Recorder:
    recorder = Recorder(worker)
    pool.start(worker)
    assert recorder.wait_for_end(qtbot) == "finished"
    return recorder


def test_scoring_worker_scores_folder(
    qtbot: QtBot, pool: QThreadPool, default_model: ReferenceModel, mixed_folder: Path
) -> None:
    worker = ScoringWorker(default_model, mixed_folder, thumbnail_pixels=64)
    recorder = Recorder(worker)
    pool.start(worker)
    assert recorder.wait_for_end(qtbot) == "finished"

    items = recorder.items
    total = len(list(mixed_folder.rglob("*.*")))
    assert len(items) == total
    assert all(isinstance(item, GalleryItem) for item in items)
    assert all(len(batch) <= BATCH_SIZE for batch in recorder.batches)
    assert recorder.progress[0] == (0, total)
    assert recorder.progress[-1] == (total, total)
    assert all(item.record.thumbnail is None for item in items)
    readable = [item for item in items if item.record.score is not None]
    assert len(readable) == total - 1
    assert all(item.thumbnail and item.thumbnail.startswith(b"\xff\xd8") for item in readable)


def test_cancel_stops_endless_worker(qtbot: QtBot, pool: QThreadPool) -> None:
    worker = CountingWorker()
    recorder = Recorder(worker)
    with qtbot.waitSignal(worker.signals.items_produced, timeout=TIMEOUT_MS):
        pool.start(worker)
    worker.cancel()
    worker.resume.set()
    assert recorder.wait_for_end(qtbot) == "cancelled"

    # The cancel lands just before or just after item BATCH_SIZE is produced, and
    # every produced item reaches the GUI in order before `cancelled`.
    produced = len(recorder.items)
    assert produced in (BATCH_SIZE, BATCH_SIZE + 1)
    assert recorder.items == list(range(produced))
    assert recorder.progress[-1] == (produced, produced)


def test_burst_reaches_gui_while_worker_waits(qtbot: QtBot, pool: QThreadPool) -> None:
    worker = BurstWorker()
    recorder = Recorder(worker)
    pool.start(worker)

    # The first item of the burst goes at once, the other four a moment later,
    # not with the next burst.
    # The progress signal follows the items, so both are awaited.
    qtbot.waitUntil(lambda: len(recorder.items) == 5 and recorder.progress[-1:] == [(5, 10)],
                    timeout=TIMEOUT_MS)
    waited = recorder.items[:]
    worker.resume.set()

    assert waited == list(range(5))
    assert recorder.wait_for_end(qtbot) == "finished"
    assert recorder.items == list(range(10))


def test_failure_reaches_failed_signal(qtbot: QtBot, pool: QThreadPool) -> None:
    worker = FailingWorker()
    recorder = Recorder(worker)
    pool.start(worker)
    assert recorder.wait_for_end(qtbot) == "failed: Counting to three failed: disk vanished"
    assert recorder.items == [0, 1, 2]


def test_move_worker_moves_files(qtbot: QtBot, pool: QThreadPool, mixed_folder: Path) -> None:
    before = sha256_inventory(mixed_folder)
    destination = mixed_folder.parent / "rejected"
    chosen = sorted(path for path in before if path.startswith("incoming/"))
    worker = MoveWorker(mixed_folder, [*chosen, "gone.png"], destination)
    recorder = Recorder(worker)
    pool.start(worker)
    assert recorder.wait_for_end(qtbot) == "finished"

    outcomes = recorder.items
    assert [outcome.relative_path for outcome in outcomes] == [*chosen, "gone.png"]
    assert all(outcome.error is None for outcome in outcomes[:-1])
    assert outcomes[-1].error is not None
    assert "gone.png" in outcomes[-1].error
    moved = sha256_inventory(destination)
    assert moved == {path: before[path] for path in chosen}
    remaining = sha256_inventory(mixed_folder)
    assert remaining == {path: digest for path, digest in before.items() if path not in chosen}


class PriorityWorker(BatchWorker):
    """Yields the nice value of the thread it runs in."""

    def __init__(self) -> None:
        super().__init__("Reading the thread priority")

    def _produce(self) -> Iterator[int]:
        yield os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux-only")
def test_worker_thread_runs_niced(qtbot: QtBot, pool: QThreadPool) -> None:
    worker = PriorityWorker()
    recorder = Recorder(worker)
    pool.start(worker)
    assert recorder.wait_for_end(qtbot) == "finished"
    assert recorder.items[0] >= 10
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < 10


def test_scoring_worker_fills_review_cache(
    qtbot: QtBot, pool: QThreadPool, default_model: ReferenceModel, mixed_folder: Path,
    store: ReviewStore,
) -> None:
    first = run_to_end(qtbot, pool, ScoringWorker(default_model, mixed_folder, 64, store))
    records = store.records(default_model.fingerprint)
    assert len(records) == len(first.items) == 19
    assert sum(record.score is not None for record in records) == 18

    second = run_to_end(qtbot, pool, ScoringWorker(default_model, mixed_folder, 64, store))
    scores = {item.record.relative_path: item.record.score for item in second.items}
    assert scores == {item.record.relative_path: item.record.score for item in first.items}
    # Cached scores come without thumbnails, which the gallery reads when it shows them.
    readable = [item for item in second.items if item.record.score is not None]
    assert all(item.deferred and item.thumbnail is None for item in readable)
    assert not any(item.deferred for item in second.items if item.record.score is None)
    # The files were written just now, so the cache stored none: they decode again.
    read = run_to_end(qtbot, pool, ThumbnailWorker([item.record for item in readable], 64,
                                                   default_model.framing))
    assert [thumbnail.record.relative_path for thumbnail in read.items] == [
        item.record.relative_path for item in readable]
    assert all(thumbnail.data for thumbnail in read.items)


def test_scoring_worker_reuses_thumbnail_cache(
    qtbot: QtBot, pool: QThreadPool, default_model: ReferenceModel, mixed_folder: Path,
    store: ReviewStore, tmp_path: Path,
) -> None:
    # An mtime an hour back, because a just-written file's thumbnail is not stored.
    paths = sorted(path for path in mixed_folder.rglob("*.*") if path.is_file())
    for path in paths:
        past = path.stat().st_mtime_ns - 3600 * 10**9
        os.utime(path, ns=(past, past))
    cache_folder = tmp_path / "thumbnails"
    first = run_to_end(qtbot, pool, ScoringWorker(default_model, mixed_folder, 64, store,
                                                  cache_folder))
    readable = {item.record.path: item.thumbnail for item in first.items
                if item.record.score is not None}
    keys = {item.record.path: thumbnail_key(item.record, 64, time.time_ns())
            for item in first.items if item.record.score is not None}
    cache = open_cache(cache_folder)
    assert cache.get_many([key for key in keys.values() if key is not None]) == {
        key: readable[path] for path, key in keys.items()}
    cache.close()

    second = run_to_end(qtbot, pool, ScoringWorker(default_model, mixed_folder, 64, store,
                                                   cache_folder))
    deferred = [item.record for item in second.items if item.deferred]
    assert sorted(record.path for record in deferred) == sorted(readable)
    # With the files gone, the thumbnails can only come from the cache.
    for path in paths:
        path.unlink()
    read = run_to_end(qtbot, pool, ThumbnailWorker(deferred, 64, default_model.framing,
                                                   cache_folder))
    assert {thumbnail.record.path: thumbnail.data for thumbnail in read.items} == readable


def test_journaled_move_and_undo_workers(
    qtbot: QtBot, pool: QThreadPool, default_model: ReferenceModel, mixed_folder: Path,
    store: ReviewStore,
) -> None:
    run_to_end(qtbot, pool, ScoringWorker(default_model, mixed_folder, 64, store))
    before = sha256_inventory(mixed_folder)
    chosen = sorted(path for path in before if path.startswith("incoming/"))
    destination = mixed_folder.parent / "rejected"

    moved = run_to_end(qtbot, pool, MoveWorker(mixed_folder, chosen, destination, store))
    assert all(outcome.error is None for outcome in moved.items)
    batch = last_undoable_batch(store)
    assert batch is not None
    assert batch.in_quarantine == len(chosen)
    assert store.record(chosen[0]).location is Location.QUARANTINE

    undone = run_to_end(qtbot, pool, UndoWorker(store))
    assert sorted(outcome.relative_path for outcome in undone.items) == chosen
    assert undone.progress[0] == (0, len(chosen))
    assert sha256_inventory(mixed_folder) == before
    assert last_undoable_batch(store) is None


def test_undo_worker_without_batch_finishes(
    qtbot: QtBot, pool: QThreadPool, store: ReviewStore
) -> None:
    recorder = run_to_end(qtbot, pool, UndoWorker(store))
    assert recorder.items == []


def test_export_worker_reports_every_file(
    qtbot: QtBot, pool: QThreadPool, default_model: ReferenceModel, mixed_folder: Path,
    store: ReviewStore, tmp_path: Path,
) -> None:
    run_to_end(qtbot, pool, ScoringWorker(default_model, mixed_folder, 64, store))
    export = CleanedSetExport(store, tmp_path / "out", default_model.fingerprint,
                              default_model.threshold)
    worker = ExportWorker(export)
    recorder = run_to_end(qtbot, pool, worker)
    assert len(recorder.items) == export.total == 19
    assert worker.export.summary.exported == 12
    assert (tmp_path / "out" / "manifest.csv").is_file()
