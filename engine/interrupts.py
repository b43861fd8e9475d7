"""Ctrl+C and SIGTERM in the command line: they stop a command's work, never its report."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType, TracebackType
from typing import Any

_Handler = Callable[[int, FrameType | None], Any] | int | None


class _HeldStops:
    """How many stops_held blocks run, and whether a stop came during them."""

    depth = 0
    pending = False


@contextlib.contextmanager
def stops_held() -> Iterator[None]:
    """Hold back the KeyboardInterrupt of a Ctrl+C or SIGTERM that StopSignals
    handles during the block, and raise it at the end of the block.

    For work that a stop must not cut in two, such as writing a manifest. Outside
    the command line, where no StopSignals is active, the block runs as it is.
    """
    _HeldStops.depth += 1
    try:
        yield
    except BaseException:
        if _HeldStops.depth == 1:
            # The block failed anyway: the stop it held back is moot.
            _HeldStops.pending = False
        raise
    finally:
        _HeldStops.depth -= 1
    if _HeldStops.depth == 0 and _HeldStops.pending:
        _HeldStops.pending = False
        raise KeyboardInterrupt


class StopSignals:
    """Handlers that turn SIGINT, and SIGTERM if `sigterm`, into KeyboardInterrupt until
    the work is complete.

    A context manager around one command. It must be entered in the main thread,
    because only that thread can set signal handlers (ValueError otherwise). Once
    the command sets `work_complete`, both signals have no effect, so a late one
    cannot cut the summary short or turn a whole run into a failure.

    On leaving the block, the handlers that were there before come back. With
    `until_exit`, for a process that exits as soon as the command returns, both
    signals stay ignored instead. During interpreter shutdown, CPython 3.11 gives
    each signal with a Python handler its default action back, so a signal then
    would kill the process with no message.
    """

    def __init__(self, *, sigterm: bool, until_exit: bool) -> None:
        self.work_complete = False
        self._sigterm = sigterm
        self._until_exit = until_exit
        self._previous: dict[signal.Signals, _Handler] = {}

    def __enter__(self) -> StopSignals:
        # Python raises KeyboardInterrupt on SIGINT only if SIGINT was at its default
        # action at startup. A shell starts a background job with it ignored, and
        # there it stays ignored.
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._handle)
        if self._sigterm:
            self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, error_type: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.work_complete = True
        for number, previous in self._previous.items():
            if self._until_exit:
                signal.signal(number, signal.SIG_IGN)
            else:
                # None is a handler that was not set from Python, and Python cannot
                # set it again.
                signal.signal(number, signal.SIG_DFL if previous is None else previous)

    def _handle(self, _number: int, _frame: FrameType | None) -> None:
        # Nothing is written here: the handler can run inside a write to stderr,
        # and writing to the same stream from it raises RuntimeError.
        if self.work_complete:
            return
        if _HeldStops.depth:
            _HeldStops.pending = True
            return
        raise KeyboardInterrupt
