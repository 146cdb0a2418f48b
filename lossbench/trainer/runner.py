"""The runner of a backend (`make_runner`) and its device's memory peak."""

from __future__ import annotations

from typing import Any

from lossbench.errors import LossbenchError
from lossbench.trainer.base import Runner


def make_runner(backend: str, **kwargs: Any) -> tuple[Runner, str]:
    """Build the runner for `backend`; return it with the device it runs on.

    Raises:
        LossbenchError: the backend has no runner yet.
    """
    if backend == "tensorflow":
        import lossbench.trainer.tensorflow_backend as tensorflow_backend

        return tensorflow_backend.TensorFlowRunner(**kwargs), tensorflow_backend.device_name()
    if backend == "jax":
        import lossbench.trainer.jax_backend as jax_backend

        return jax_backend.JaxRunner(**kwargs), jax_backend.device_name()
    raise LossbenchError(
        f"invalid value for `backend`: the trainer runs on tensorflow and jax, received {backend!r}"
    )


def device_peak_bytes(backend: str) -> int | None:
    """The accelerator's peak memory in use by this process so far, in bytes; None on a CPU
    (which reports none: a run's host memory is measured from outside, by `make bench`)."""
    if backend == "tensorflow":
        import lossbench.trainer.tensorflow_backend as tensorflow_backend

        return tensorflow_backend.peak_bytes()
    if backend == "jax":
        import lossbench.trainer.jax_backend as jax_backend

        return jax_backend.peak_bytes()
    return None
