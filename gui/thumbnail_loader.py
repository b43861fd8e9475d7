"""Thumbnails of deferred gallery items, read from the thumbnail cache when their tiles show."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal, Slot

from engine.framing import Framing
from engine.scoring import ScoredFile
from engine.thumbcache import ThumbnailCache, open_cache, thumbnail_key
from engine.thumbnails import CachedThumbnail
from gui.workers import ThumbnailWorker

logger = logging.getLogger(__name__)

# Files a ThumbnailWorker decodes again at most, so that the tiles shown now come
# first when the curator scrolls on while the cache misses decode.
MAX_FILES_PER_WORKER = 64


class ThumbnailLoader(QObject):
    """Reads the thumbnails of one scan's deferred gallery items for GalleryModel.

    `read` is the gallery model's ThumbnailReader. It looks the thumbnail up in
    the thumbnail cache in the GUI thread, one indexed row of a local SQLite file.
    A file whose thumbnail is not there, because the cache evicted it, was cleared
    or cannot be opened, is decoded again on a pool thread, a few files at a time,
    and `loaded` delivers the result to GalleryModel.set_thumbnails.

    Signals:
        loaded(list): the CachedThumbnail of each file decoded again.
    """

    loaded = Signal(list)

    def __init__(self, pool: QThreadPool, cache_folder: Path | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = pool
        self._cache_folder = cache_folder
        self._cache: ThumbnailCache | None = None
        self._framing: Framing | None = None
        self._pixels = 0
        # Paths of the files requested for decoding, until their worker delivers them.
        self._requested: set[Path] = set()
        self._waiting: list[ScoredFile] = []
        self._worker: ThumbnailWorker | None = None
        self._worker_records: list[ScoredFile] = []
        # One worker starts for all the misses of a paint, not one for each tile.
        self._start_timer = QTimer(self)
        self._start_timer.setSingleShot(True)
        self._start_timer.setInterval(0)
        self._start_timer.timeout.connect(self._start_worker)

    def start(self, framing: Framing, pixels: int) -> None:
        """Read the thumbnails of a new scan, made with `framing` to fit in `pixels`."""
        self.stop()
        self._framing = framing
        self._pixels = pixels

    def stop(self) -> None:
        """Forget the scan's requests, cancel the decoding and close the cache file."""
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        self._start_timer.stop()
        self._requested.clear()
        self._waiting.clear()
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def is_loading(self) -> bool:
        """Return whether thumbnails requested for decoding have not all been delivered."""
        return self._worker is not None or bool(self._waiting)

    def read(self, record: ScoredFile) -> bytes | None:
        """Return the cached thumbnail of `record`, or None after requesting its decoding."""
        if self._framing is None or record.path in self._requested:
            return None
        key = thumbnail_key(record, self._pixels, time.time_ns())
        if key is None:
            return None
        if self._cache is None:
            self._cache = open_cache(self._cache_folder)
        thumbnail = self._cache.get_many([key]).get(key)
        if thumbnail is None:
            self._requested.add(record.path)
            self._waiting.append(record)
            if self._worker is None:
                self._start_timer.start()
        return thumbnail

    @Slot()
    def _start_worker(self) -> None:
        if self._worker is not None or not self._waiting or self._framing is None:
            return
        # The newest requests are the tiles on screen now.
        records = self._waiting[-MAX_FILES_PER_WORKER:]
        del self._waiting[-MAX_FILES_PER_WORKER:]
        worker = ThumbnailWorker(records, self._pixels, self._framing, self._cache_folder)
        worker.signals.items_produced.connect(self._on_worker_items_produced)
        worker.signals.failed.connect(self._on_worker_failed)
        for ended in (worker.signals.finished, worker.signals.failed, worker.signals.cancelled):
            ended.connect(self._on_worker_ended)
        self._worker = worker
        self._worker_records = records
        self._pool.start(worker)

    def _is_current(self) -> bool:
        return self._worker is not None and self.sender() is self._worker.signals

    @Slot(list)
    def _on_worker_items_produced(self, thumbnails: list[CachedThumbnail]) -> None:
        if self._is_current():
            for thumbnail in thumbnails:
                self._requested.discard(thumbnail.record.path)
            self.loaded.emit(thumbnails)

    @Slot(str)
    def _on_worker_failed(self, _message: str) -> None:
        # The worker logged the error. Its files not delivered get no thumbnail, so
        # that their tiles do not read "Loading…" for good.
        if self._is_current():
            failed = [record for record in self._worker_records
                      if record.path in self._requested]
            self._requested.difference_update(record.path for record in failed)
            self.loaded.emit([CachedThumbnail(record, None) for record in failed])

    @Slot()
    def _on_worker_ended(self) -> None:
        if self._is_current():
            self._worker = None
            self._start_worker()
