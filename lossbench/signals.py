"""Graceful interruption: the first SIGINT or SIGTERM asks training to stop, the second ends the
process at once.

Training polls the request between compiled chunks, then the run writes its tables through the
last completed step and exits 130 (SIGINT) or 143 (SIGTERM), as a shell reports a process that
the signal ended. Python runs its signal handlers only between bytecodes, and a compiled chunk
holds the interpreter for seconds, so the handlers are installed with SA_RESETHAND: the kernel
gives the second signal its default action at once, even in the middle of a chunk (tables are
written atomically, and summary.json then still says "running": the run did not finish).

`StopRequest.close` marks the moment a run's outcome is fixed (its summary is about to be
written): a signal after it is too late to change the outcome and is ignored, so the exit status
and the folder always agree.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from lossbench.errors import signal_exit_code
from lossbench.process import remove_private_tempdir

HANDLED = (signal.SIGINT, signal.SIGTERM)

# Temporary files being written now (see `lossbench.files.atomic_write_text`): removed before
# an immediate exit, so that no hidden half-written file is left behind.
PENDING_FILES: set[str] = set()


def remove_pending() -> None:
    """Remove the temporary files of writes in progress."""
    for path in list(PENDING_FILES):
        with contextlib.suppress(OSError):
            os.unlink(path)


class Interrupted(BaseException):
    """Raised after an interrupted run has written its tables; carries the exit status.

    A BaseException, like KeyboardInterrupt, so that Hydra's launcher does not record it as one
    failed job and go on with the rest of a sweep.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = signal_exit_code(signum)
        self.reported = False  # the run already printed where its tables are


class StopRequest:
    """Callable that is True once a handled signal has arrived (before `close`)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.closed = False
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        return self.signum is not None

    def arrive(self, signum: int) -> None:
        """Record a signal: the first asks for a stop, the second ends the process."""
        with self._lock:
            if self.closed:
                return
            if self.signum is None:
                self.signum = signum
                return
        remove_pending()
        remove_private_tempdir()
        os.write(2, f"lossbench: {signal.Signals(signum).name} again: stopped at once\n".encode())
        os._exit(128 + signum)

    def close(self) -> int | None:
        """Fix the outcome: return the signal that arrived before now (None: none did)."""
        with self._lock:
            self.closed = True
            return self.signum

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """The Python-level handler."""
        self.arrive(signum)


def raise_on_signals() -> None:
    """Before a run starts: SIGINT and SIGTERM raise `Interrupted` (nothing to flush yet)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    for s in HANDLED:
        signal.signal(s, handler)


def ignore_signals() -> None:
    """After a run's outcome is written: a signal can no longer change it, so it is ignored
    (the process is about to print its summary and exit with the status the folder shows)."""
    for s in HANDLED:
        signal.signal(s, lambda signum, frame: None)


class _SigAction(ctypes.Structure):
    """glibc's `struct sigaction` on Linux."""

    _fields_ = (
        ("handler", ctypes.c_void_p),
        ("mask", ctypes.c_ulong * 16),
        ("flags", ctypes.c_int),
        ("restorer", ctypes.c_void_p),
    )


_SA_RESETHAND = 0x80000000


def _default_after_first(signum: int) -> None:
    """Make the kernel restore the default action once `signum` has been delivered.

    Python runs its handlers only between bytecodes, and a compiled chunk holds the interpreter
    for seconds; with SA_RESETHAND the second signal gets the default action (the process ends)
    at once, whatever the main thread is doing.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    action = _SigAction()
    if libc.sigaction(signum, None, ctypes.byref(action)) == 0:
        action.flags |= _SA_RESETHAND
        libc.sigaction(signum, ctypes.byref(action), None)


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Turn SIGINT/SIGTERM into a StopRequest while the block runs (main thread only; elsewhere
    the request never fires), and restore the previous handlers afterwards."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {s: signal.getsignal(s) for s in HANDLED}
    for s in HANDLED:
        signal.signal(s, request.handle)
        _default_after_first(s)
    try:
        yield request
    finally:
        request.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
