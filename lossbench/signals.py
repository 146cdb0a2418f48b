"""Graceful interruption: the first SIGINT or SIGTERM asks training to stop, the second kills.

Training polls the request between compiled chunks, then the run writes its tables through the
last completed step and exits 130 (SIGINT) or 143 (SIGTERM), as a shell reports a process that
the signal ended. After the first signal both signals get their default action back, so a second
Ctrl-C ends the process at once, even in the middle of writing (tables are written atomically, so
no half-written file is left).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """Raised after an interrupted run has written its tables; carries the exit status.

    A BaseException, like KeyboardInterrupt, so that Hydra's launcher does not record it as one
    failed job and go on with the rest of a sweep.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = 128 + signum


class StopRequest:
    """Callable that is True once a handled signal has arrived."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self) -> bool:
        return self.signum is not None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        for s in HANDLED:
            signal.signal(s, signal.SIG_DFL)


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Turn SIGINT/SIGTERM into a polled StopRequest while the block runs (main thread only;
    elsewhere the request never fires), and restore the previous handlers afterwards."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {s: signal.getsignal(s) for s in HANDLED}
    for s in HANDLED:
        signal.signal(s, request.handle)
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
