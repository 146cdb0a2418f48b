"""How a lossbench process ends once its work is written."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import NoReturn

FRAMEWORKS = ("tensorflow", "jax", "keras")


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
    os._exit(code)
