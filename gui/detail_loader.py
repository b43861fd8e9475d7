"""Background decode and reconstruction of the image shown in the detail pane."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from engine.images import Status, load_image
from engine.modelfile import ReferenceModel
from engine.scoring import ScoredFile, reconstruct
from engine.thumbnails import CHANGED_SINCE_SCORED

logger = logging.getLogger(__name__)

# Maximum side of the original image shown in the detail pane, in device pixels.
DETAIL_SIDE = 640


@dataclass(frozen=True)
class DetailImages:
    """Everything the detail pane shows of one file beyond its gallery record.

    Arrays are uint8 (h, w, 3) images except `error_map`, an (n, n) float32 array
    of squared errors. All are None when the file could not be read now, and then
    `status` and `detail` give the reason. They are None too when the file is no
    longer the version that was scored, and then `problem` is CHANGED_SINCE_SCORED.
    `file_size` is in bytes, None if unknown.
    """

    path: Path
    status: Status
    detail: str
    file_size: int | None
    modified_ns: int | None
    original: np.ndarray | None = None
    model_input: np.ndarray | None = None
    reconstruction: np.ndarray | None = None
    error_map: np.ndarray | None = None
    score: float | None = None
    problem: str = ""


def load_details(model: ReferenceModel, record: ScoredFile,
                 side: int = DETAIL_SIDE) -> DetailImages:
    """Decode the file of `record` at up to `side` pixels and reconstruct it with `model`.

    A problem with the file is reported in the result's status, as engine.images.load_image
    reports it, and a failing os.stat leaves the size and time unknown. A file whose
    size or mtime differs from the record's gets no images, because they would show
    other content than the record describes. A record without a size and mtime is
    not checked.
    """
    path = record.path
    file_size: int | None = None
    modified_ns: int | None = None
    try:
        stat = os.stat(path)
        file_size, modified_ns = stat.st_size, stat.st_mtime_ns
    except OSError as error:
        logger.debug("stat of %s failed: %s", path, error)
    loaded = load_image(path, model.framing, side)
    if loaded.status is not Status.OK or loaded.model_input is None:
        return DetailImages(path, loaded.status, loaded.detail, file_size, modified_ns)
    scored = (record.size, record.mtime_ns)
    if None not in scored and (loaded.size, loaded.mtime_ns) != scored:
        return DetailImages(path, loaded.status, loaded.detail, file_size, modified_ns,
                            problem=CHANGED_SINCE_SCORED)
    result = reconstruct(model, loaded.model_input)
    return DetailImages(path, loaded.status, loaded.detail, file_size, modified_ns,
                        original=loaded.thumbnail, model_input=loaded.model_input,
                        reconstruction=result.reconstruction, error_map=result.error_map,
                        score=result.score)


class _DetailSignals(QObject):
    loaded = Signal(object)


class _DetailJob(QRunnable):
    def __init__(self, model: ReferenceModel, record: ScoredFile) -> None:
        super().__init__()
        self.signals = _DetailSignals()
        self._model = model
        self._record = record

    def run(self) -> None:
        try:
            images = load_details(self._model, self._record)
        except Exception as error:
            # A bug must not end the job silently, so the pane shows its message.
            logger.exception("loading the details of %s failed", self._record.path)
            images = DetailImages(self._record.path, Status.DAMAGED,
                                  f"Loading the details failed: {error}", None, None)
        self.signals.loaded.emit(images)


class DetailLoader(QObject):
    """Loads one file's DetailImages at a time. While one runs, only the newest request waits.

    Holding an arrow key in the gallery requests many files per second, so
    requests in between are dropped instead of queued.

    Signals:
        loaded(DetailImages): the images of the most recently requested file.
    """

    loaded = Signal(object)

    def __init__(self, pool: QThreadPool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = pool
        self._running: _DetailJob | None = None
        # The finished job is kept until the next one starts, so its signals object
        # is never deleted while the slot that it queued still runs.
        self._finished: _DetailJob | None = None
        self._waiting: tuple[ReferenceModel, ScoredFile] | None = None
        self._latest: Path | None = None

    def request(self, model: ReferenceModel, record: ScoredFile) -> None:
        """Load the file of `record` after the job in progress, replacing any request
        still waiting.
        """
        self._latest = record.path
        if self._running is None:
            self._start(model, record)
        else:
            self._waiting = (model, record)

    def cancel(self) -> None:
        """Drop the waiting request and ignore the result of the running one."""
        self._waiting = None
        self._latest = None

    def is_running(self) -> bool:
        return self._running is not None

    def _start(self, model: ReferenceModel, record: ScoredFile) -> None:
        job = _DetailJob(model, record)
        job.signals.loaded.connect(self._on_job_loaded)
        self._running = job
        self._pool.start(job)

    @Slot(object)
    def _on_job_loaded(self, images: DetailImages) -> None:
        self._finished, self._running = self._running, None
        if self._waiting is not None:
            model, record = self._waiting
            self._waiting = None
            self._start(model, record)
        elif images.path == self._latest:
            self.loaded.emit(images)
