"""Optional TensorBoard event files for a run (`trainer.tensorboard=true`), written from the
recorded tables after training, so that the training loop itself stays free of summary ops.

Scalars: `train/loss`, `train/grad_norm` and `grad_norm/<layer>` per step, `epoch/<column>`
per epoch (validation loss and metrics). Histograms: per layer and epoch, the distribution of
that layer's per-step gradient norms (`grad_norm_hist/<layer>`), and each weight tensor at the
end of training (`weights/<name>`). Written with `tf.summary` (TensorFlow is a dependency on
every backend); read them with `tensorboard --logdir <run>/tensorboard`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lossbench.store.records import StepRecords


def write_events(
    folder: Path,
    records: StepRecords,
    layer_names: list[str],
    epochs: list[dict[str, Any]],
    weights: dict[str, np.ndarray],
) -> Path:
    """Write the event files into `folder`/tensorboard; return that folder."""
    import tensorflow as tf

    logdir = folder / "tensorboard"
    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        for step in range(len(records.loss)):
            tf.summary.scalar("train/loss", records.loss[step], step=step)
            if np.isfinite(records.grad_norm[step]):
                tf.summary.scalar("train/grad_norm", records.grad_norm[step], step=step)
                for k, name in enumerate(layer_names):
                    tf.summary.scalar(
                        f"grad_norm/{name}", records.layer_grad_norms[step, k], step=step
                    )
        for row in epochs:
            for key, value in row.items():
                if key not in ("epoch", "step") and np.isfinite(value):
                    tf.summary.scalar(f"epoch/{key}", value, step=int(row["step"]))
        for epoch in np.unique(records.epoch):
            rows = records.epoch == epoch
            last = int(np.flatnonzero(rows)[-1])
            for k, name in enumerate(layer_names):
                norms = records.layer_grad_norms[rows, k]
                if np.isfinite(norms).all():
                    tf.summary.histogram(f"grad_norm_hist/{name}", norms, step=last)
        final = max(len(records.loss) - 1, 0)
        for name, value in weights.items():
            tf.summary.histogram(f"weights/{name}", value, step=final)
    writer.flush()
    writer.close()
    return logdir
