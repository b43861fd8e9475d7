"""Background jobs of the training dialog: reading a folder of images and training on it."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QRunnable, Signal

from engine.framing import Framing
from engine.training import (
    TrainingCancelled,
    TrainingData,
    TrainingOptions,
    load_folder,
    train_model,
)

# NOTE: _lower_thread_priority is private to gui.batch_worker. The training jobs use it
# too, so that on a busy machine the GUI thread still gets the CPU to paint.
from gui.batch_worker import PoolSignals, _lower_thread_priority

logger = logging.getLogger(__name__)


class JobSignals(PoolSignals):
    """Signals of an EngineJob, emitted from its pool thread.

    The object lives in the thread that created the job, so connected slots of
    GUI objects run in the GUI thread.

    Signals:
        epoch_finished(object): an EpochReport after each epoch of a TrainingJob.
        finished(object): the job's result, described by the job class.
        failed(str): the job raised an exception, described by the message.
        cancelled(): the job stopped early because cancel() was called.
    """

    epoch_finished = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()


class EngineJob(QRunnable):
    """One engine call on a pool thread that ends with finished, failed or cancelled.

    Exactly one of the three is emitted. Subclasses implement `_work()`, which may
    raise TrainingCancelled once `cancel_event` is set. A cancel that comes after
    the work ended still counts, so the result of a cancelled job is never used.
    """

    def __init__(self, action: str) -> None:
        super().__init__()
        self.signals = JobSignals()
        self.cancel_event = threading.Event()
        self._action = action

    @property
    def action(self) -> str:
        """What the job does, as used in messages: "Training on /data/good"."""
        return self._action

    def cancel(self) -> None:
        """Ask the job to stop at its next check. Safe to call from any thread."""
        self.cancel_event.set()

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.signals.release()

    def _run(self) -> None:
        _lower_thread_priority()
        started = time.perf_counter()
        logger.debug("%s started", self._action)
        try:
            result = self._work()
        except TrainingCancelled:
            result = None
        except OSError as error:
            logger.warning("%s failed: %s", self._action, error)
            self.signals.failed.emit(f"{self._action} failed: {error.strerror or error}.")
            return
        except Exception as error:
            # Any other failure, expected or a bug, must reach the dialog.
            logger.exception("%s failed", self._action)
            self.signals.failed.emit(f"{self._action} failed: {error}")
            return
        elapsed = time.perf_counter() - started
        if self.cancel_event.is_set():
            logger.info("%s cancelled after %.1f s", self._action, elapsed)
            self.signals.cancelled.emit()
        else:
            logger.debug("%s finished in %.1f s", self._action, elapsed)
            self.signals.finished.emit(result)

    def _work(self) -> Any:
        raise NotImplementedError


class FolderReadingJob(EngineJob):
    """Reads every image under a folder. `finished` carries load_folder's (data, skipped).

    NOTE: load_folder cannot stop part-way, so a cancel takes effect only once the
    whole folder has been read.
    """

    def __init__(self, folder: Path, framing: Framing) -> None:
        super().__init__(f"Reading {folder}")
        self._folder = folder
        self._framing = framing

    def _work(self) -> Any:
        return load_folder(self._folder, self._framing)


class TrainingJob(EngineJob):
    """Trains and calibrates a model. `finished` carries the unsaved ReferenceModel.

    A cancel takes effect before the next batch of images.
    """

    def __init__(self, data: TrainingData, framing: Framing, options: TrainingOptions,
                 folder: Path) -> None:
        super().__init__(f"Training on {folder}")
        self._data = data
        self._framing = framing
        self._options = options

    def _work(self) -> Any:
        return train_model(self._data, self._framing, self._options,
                           progress=self.signals.epoch_finished.emit, cancel=self.cancel_event)
