"""The trainer: the loop (`loop`), its per-step records (`records`) and the backend runners
(`runner`, `tensorflow_backend`, `jax_backend`)."""

from lossbench.store.records import StepRecords, first_non_finite, split_records
from lossbench.trainer.base import Runner
from lossbench.trainer.loop import TrainResult, plan_epoch, shuffle_rng, steps_per_epoch, train
from lossbench.trainer.runner import make_runner

__all__ = [
    "Runner",
    "StepRecords",
    "TrainResult",
    "first_non_finite",
    "make_runner",
    "plan_epoch",
    "shuffle_rng",
    "split_records",
    "steps_per_epoch",
    "train",
]
