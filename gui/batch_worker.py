"""Base classes of the QThreadPool jobs: signals owned by the application, and BatchWorker."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QRunnable, Signal

from engine.export import ExportError
from engine.reviewdb import BatchLockedError
from engine.undo import UndoError

logger = logging.getLogger(__name__)

# A batch is sent when it has this many items or is this old, whichever comes
# first, so the GUI gets a few updates per second and never one event per file.
# Each batch costs the GUI thread an insertion, a repaint and a progress update,
# all holding the GIL that the worker needs too. Re-opening a scored folder of
# 20 000 files took 0.83 s in batches of 256 and 0.72 s in batches of 1024.
BATCH_SIZE = 1024
BATCH_INTERVAL_S = 0.1

# Nice value of worker threads on Linux (0 is normal, 19 the lowest priority), so
# that on a busy machine the GUI thread still gets the CPU to paint.
_WORKER_NICE = 10


class PoolSignals(QObject):
    """Base of the signals objects of pool jobs, owned by the application.

    A job's Python object, and with it a signals object it owned, could be freed
    as soon as its run() returned, while signals it had emitted still waited in
    the GUI thread's queue. A slot that called sender() for one of them then read
    a freed object, and the window crashed when a folder was opened again during
    its scan. So the application owns the object, and the job's run() ends with
    release(), after its last signal.
    """

    def __init__(self) -> None:
        super().__init__(QCoreApplication.instance())

    def release(self) -> None:
        """Delete this object once the signals emitted before this call are delivered.

        Call it last in the job's thread. deleteLater is thread-safe, and its event
        comes after the queued signals in the GUI thread's queue.
        """
        self.deleteLater()


class WorkerSignals(PoolSignals):
    """Signals of a BatchWorker, emitted from its pool thread.

    The object lives in the thread that created the worker, so connected slots of
    GUI objects run in the GUI thread.

    Signals:
        items_produced(list): the items produced since the previous batch.
        progressed(int, int): items done and total items; the total is 0 until known.
        finished(): the job ran to its end.
        failed(str): the job raised an exception, described by the message.
        cancelled(): the job stopped early because cancel() was called.
        locked_out(str): a job that takes the folder's batch lock did not start,
            because another process owns it (engine.reviewdb.BatchLockedError).
            The message is the engine's.
    """

    items_produced = Signal(list)
    progressed = Signal(int, int)
    finished = Signal()
    failed = Signal(str)
    cancelled = Signal()
    locked_out = Signal(str)


class BatchWorker(QRunnable):
    """A job that produces items one by one and can be cancelled between items.

    Subclasses implement `_produce()`, a generator that may call `_set_total()`
    once the item count is known. Exactly one of `finished`, `failed`,
    `cancelled` or `locked_out` is emitted at the end, always after the last
    `items_produced`. Only a subclass that sets `takes_batch_lock` emits
    `locked_out`, and others report a BatchLockedError with `failed`.
    """

    takes_batch_lock = False

    def __init__(self, action: str) -> None:
        super().__init__()
        self.signals = WorkerSignals()
        self._action = action
        self._cancel_requested = threading.Event()
        self._total = 0

    @property
    def action(self) -> str:
        """What the job does, as used in messages: "Scoring /data/batch7"."""
        return self._action

    def cancel(self) -> None:
        """Ask the job to stop after the item in progress. Safe to call from any thread."""
        self._cancel_requested.set()

    def is_cancel_requested(self) -> bool:
        return self._cancel_requested.is_set()

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
            completed = self._emit_batches()
        except Exception as error:
            self._report_failure(error)
            return
        elapsed = time.perf_counter() - started
        if completed:
            logger.debug("%s finished in %.1f s", self._action, elapsed)
            self.signals.finished.emit()
        else:
            logger.info("%s cancelled after %.1f s", self._action, elapsed)
            self.signals.cancelled.emit()

    def _report_failure(self, error: Exception) -> None:
        """Log the exception that stopped the job and emit `locked_out` or `failed`."""
        if self.takes_batch_lock and isinstance(error, BatchLockedError):
            logger.info("%s did not start: %s", self._action, error)
            self.signals.locked_out.emit(str(error))
        elif isinstance(error, UndoError):
            # The message gives the remedy, so no traceback is logged.
            logger.error("%s", error)
            self.signals.failed.emit(str(error))
        elif isinstance(error, ExportError):
            # The message names the destination and the reason, so no traceback is
            # logged. It is worded as on the command line.
            logger.error("%s failed: %s", self._action, error)
            self.signals.failed.emit(f"Exporting failed: {error}")
        else:
            # Any failure of the job, expected or a bug, must reach the window.
            logger.exception("%s failed", self._action)
            self.signals.failed.emit(f"{self._action} failed: {error}")

    def _produce(self) -> Generator[Any, None, None]:
        raise NotImplementedError

    def _set_total(self, total: int) -> None:
        self._total = total
        self.signals.progressed.emit(0, total)

    def _emit_batches(self) -> bool:
        """Run the job and return True if it ran to its end, False if cancelled."""
        outbox = _Outbox(self._send)
        completed = False
        try:
            with contextlib.closing(self._produce()) as items:
                for item in items:
                    outbox.add(item)
                    if self._cancel_requested.is_set():
                        break
                else:
                    completed = True
        finally:
            # Items in hand are delivered even after a cancel or an error, because
            # they may describe work already done, such as moved files.
            outbox.close()
        return completed

    def _send(self, batch: list[Any], done: int) -> None:
        if batch:
            self.signals.items_produced.emit(batch)
        self.signals.progressed.emit(done, max(self._total, done))


class _Outbox:
    """Items that a job has produced, sent to the window in batches of up to BATCH_SIZE.

    A job may produce items in bursts, such as a scan that scores a batch of files
    at a time. Sent only as items come, the end of each burst would wait for the
    next one: up to 6 s for a batch of large photos. So a thread of its own sends
    what has waited BATCH_INTERVAL_S while the job waits for its next item.
    """

    def __init__(self, send: Callable[[list[Any], int], None]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._items: list[Any] = []
        self._done = 0
        self._last_sent = time.monotonic()
        self._closed = threading.Event()
        self._sender = threading.Thread(target=self._send_waiting, name="outbox", daemon=True)
        self._sender.start()

    def add(self, item: Any) -> None:
        with self._lock:
            self._items.append(item)
            self._done += 1
            if (len(self._items) >= BATCH_SIZE
                    or time.monotonic() - self._last_sent >= BATCH_INTERVAL_S):
                self._send_held()

    def close(self) -> None:
        """Stop the sending thread and send the items still held, with the progress."""
        self._closed.set()
        self._sender.join()
        with self._lock:
            self._send_held()

    def _send_waiting(self) -> None:
        while not self._closed.wait(BATCH_INTERVAL_S):
            with self._lock:
                if self._items and time.monotonic() - self._last_sent >= BATCH_INTERVAL_S:
                    self._send_held()

    def _send_held(self) -> None:
        self._send(self._items, self._done)
        self._items = []
        self._last_sent = time.monotonic()


def _lower_thread_priority() -> None:
    """Give the calling pool thread, and the threads it starts, less CPU than the GUI.

    On Linux a nice value set with a thread id applies to that thread alone and is
    inherited by threads it creates, such as the engine's decode threads. Other
    systems keep the default priority.
    """
    if sys.platform != "linux":
        return
    thread_id = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, thread_id) < _WORKER_NICE:
            os.setpriority(os.PRIO_PROCESS, thread_id, _WORKER_NICE)
    except OSError as error:
        logger.debug("lowering the priority of worker thread %d failed: %s", thread_id, error)
