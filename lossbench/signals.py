"""Graceful interruption: the first SIGINT or SIGTERM asks training to stop, the second ends the
process at once.

From the first line of `main` until a run trains, a signal raises `Interrupted` where the process
is (an import, composing, building the experiment: nothing to flush). While it trains, the first
signal is a request that training polls between compiled chunks; the run then writes its tables
through the last completed step and exits 130 (SIGINT) or 143 (SIGTERM), as a shell reports a
process that the signal ended. Python runs its signal handlers only between bytecodes, and a
compiled chunk holds the interpreter for seconds, so the handlers are installed with
SA_RESETHAND: the kernel gives the second signal its default action at once, even in the middle
of a chunk (tables are written atomically, and summary.json then still says "running": the run
did not finish).

`StopRequest.close` marks the moment a run's outcome is fixed (its summary is about to be
written): a signal after it is too late to change that outcome, so the exit status and the folder
always agree. It is ignored after the process's last run, and stops a sweep before its next job.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from lossbench.errors import signal_exit_code
from lossbench.process import remove_private_tempdir

HANDLED = (signal.SIGINT, signal.SIGTERM)

# Temporary files being written now (see `lossbench.store.files.atomic_write_text`): removed before
# an immediate exit, so that no hidden half-written file is left behind.
PENDING_FILES: set[str] = set()

# The signal whose `Interrupted` was raised asynchronously, where the process happened to be.
# Library code on the way out (a `finally`, an `except Exception`) can replace that exception
# with one of its own; any error caught after it is the interruption's, not the user's.
_raised: list[int] = []


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

    def __init__(self, signum: int, written: Sequence[Path] = ()) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = signal_exit_code(signum)
        self.written = list(written)  # the folders that got tables through their last step
        self.reported = False  # the run already printed where its tables are


def _interrupt(signum: int) -> Interrupted:
    """The `Interrupted` to raise where the process is now (remembered: see `_raised`)."""
    _raised.append(signum)
    return Interrupted(signum)


def reraise_if_interrupted(error: BaseException) -> None:
    """Raise `Interrupted` in place of `error` when a signal was raised before it was caught
    (the error is then a knock-on effect of the interruption, e.g. a half-built config)."""
    if _raised and not isinstance(error, Interrupted):
        raise Interrupted(_raised[0]) from error


class StopRequest:
    """Callable that is True once a handled signal has arrived (before `close`)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.late: int | None = None  # the first signal after `close`
        self.closed = False
        self._at_once = False
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        return self.signum is not None

    def arrive(self, signum: int) -> None:
        """Record a signal: the first asks for a stop (within `at_once`: raises `Interrupted`),
        the second ends the process."""
        with self._lock:
            if self.closed:
                self.late = self.late or signum
                return
            if self.signum is None:
                self.signum = signum
                if self._at_once:
                    raise _interrupt(signum)
                return
        remove_pending()
        remove_private_tempdir()
        os.write(2, f"lossbench: {signal.Signals(signum).name} again: stopped at once\n".encode())
        os._exit(128 + signum)

    @contextmanager
    def at_once(self) -> Iterator[None]:
        """While the block runs (it builds, imports or compiles: nothing polls the request), the
        first signal raises `Interrupted` where the block is, as before the run started."""
        self._at_once = True
        try:
            if self.signum is not None:
                raise _interrupt(self.signum)
            yield
        finally:
            self._at_once = False

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
        raise _interrupt(signum)

    for s in HANDLED:
        signal.signal(s, handler)
    quiet_unraisable_interrupts()


def quiet_unraisable_interrupts() -> None:
    """Say nothing of an `Interrupted` raised where it cannot propagate (the handler ran inside
    a weakref callback or a `__del__`, e.g. importlib's module-lock cleanup): Python would print
    it as "Exception ignored", a traceback. It still stands: `_raised` holds it, and the run
    stops with its one line. Any other unraisable exception goes to the hook that was there."""
    previous = sys.unraisablehook
    if getattr(previous, "quiets_interrupts", False):
        return

    def hook(unraisable: object) -> None:
        if not isinstance(getattr(unraisable, "exc_value", None), Interrupted):
            previous(unraisable)  # type: ignore[arg-type]

    hook.quiets_interrupts = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook


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
def stop_on_signals(last: bool = False) -> Iterator[StopRequest]:
    """Turn SIGINT/SIGTERM into a StopRequest while the block runs (main thread only; elsewhere
    the request never fires).

    Afterwards, the process's `last` run ignores signals (its outcome is written; the exit status
    follows it); any other restores the previous handlers and, when a signal came after
    `close`, raises `Interrupted` (with no folder written) so that nothing more starts.
    """
    request = StopRequest()
    if _raised:  # raised before, and swallowed by code on the way (a bare `except:`): it stands
        request.signum = _raised[0]
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
        if last:
            ignore_signals()
        else:
            for s, handler in previous.items():
                signal.signal(s, handler)
    if request.late is not None and not last:
        raise Interrupted(request.late)
