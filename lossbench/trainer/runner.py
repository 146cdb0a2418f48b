"""The runner of a backend: `make_runner`."""

from __future__ import annotations

from typing import Any

from lossbench.errors import LossbenchError
from lossbench.trainer.base import Runner, default_unroll


def make_runner(
    backend: str, unroll: int | None = None, jit_compile: bool | None = None, **kwargs: Any
) -> tuple[Runner, str]:
    """Build the runner for `backend`; return it with the device it runs on.

    Args:
        unroll: steps per unrolled program (0: one loop per chunk); None: `default_unroll`
            for the model and device.
        jit_compile: compile with XLA; None: yes.
        kwargs: the runner's arguments (`RunnerBase`).

    Raises:
        LossbenchError: the backend has no runner yet.
    """
    if backend == "tensorflow":
        import lossbench.trainer.tensorflow_backend as module
    elif backend == "jax":
        import lossbench.trainer.jax_backend as module  # type: ignore[no-redef]
    else:
        raise LossbenchError(
            "invalid value for `backend`: the trainer runs on tensorflow and jax, received "
            f"{backend!r}"
        )
    device = module.device_name()
    if unroll is None:
        unroll = default_unroll(kwargs["model"], device, backend)
    runner_class = module.TensorFlowRunner if backend == "tensorflow" else module.JaxRunner
    jit = True if jit_compile is None else jit_compile
    return runner_class(unroll=unroll, jit_compile=jit, **kwargs), device
