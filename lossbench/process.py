"""How a lossbench process ends once its work is written."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import sys
import tempfile
from typing import NoReturn

FRAMEWORKS = ("tensorflow", "jax", "keras")
PRIVATE_TEMP_PREFIX = "lossbench-"


def use_private_tempdir() -> str | None:
    """Give this process's temporary files a folder of their own, removed when it ends (None:
    no temporary folder can be written now, and nothing changes).

    TensorFlow's autograph writes a generated module per converted function into the temporary
    folder and deletes it only from an `atexit` hook, which `exit_now` skips: without this, every
    run would leave files in /tmp. Child processes choose their own.
    """
    try:
        path = tempfile.mkdtemp(prefix=PRIVATE_TEMP_PREFIX)
    except OSError:  # a full disk: whatever needs a temporary file says so when it does
        return None
    tempfile.tempdir = path
    atexit.register(remove_private_tempdir)
    return path


def remove_private_tempdir() -> None:
    """Remove the folder `use_private_tempdir` chose, when this process chose one."""
    path = tempfile.tempdir
    if path and os.path.basename(path).startswith(PRIVATE_TEMP_PREFIX):
        shutil.rmtree(path, ignore_errors=True)


def framework_loaded() -> bool:
    """Whether this process has imported TensorFlow, JAX or Keras (a module blocked by a None
    entry in `sys.modules`, as `experiment.select_backend` does for JAX, is not loaded)."""
    return any(sys.modules.get(name) is not None for name in FRAMEWORKS)


def exit_now(code: int) -> NoReturn:
    """Exit with `code`, skipping the interpreter's teardown when a framework is loaded.

    Unloading TensorFlow takes over a second and changes nothing once a run's files are closed
    (tables are written atomically and TensorBoard's writer is closed by the run): the streams and
    logging handlers are flushed here, then the process ends. Without a framework, a normal exit.
    """
    if not framework_loaded():
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader that has gone; a closed stream
            stream.flush()
    logging.shutdown()
    remove_private_tempdir()
    os._exit(code)
