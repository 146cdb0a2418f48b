"""`make bench`'s CNN row: a user's model (examples/my_models.py's small_cnn, with
BatchNormalization and Dropout) on scikit-learn's digits as 8x8x1 images, lossbench's trainer
against plain `model.fit` of the same model, data, loss and batch, in interleaved rounds."""

from __future__ import annotations

import statistics
from typing import Any

from measure import ROOT, _interleaved

BATCH = 64
EXAMPLE = ROOT / "examples" / "my_models.py"


def _digits() -> tuple[Any, Any]:
    import numpy as np
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[bunch.target]
    return x, y


def _model(seed: int) -> Any:
    from lossbench.config.schema import CustomModel, Task
    from lossbench.run.models import ModelBuilder

    cfg = CustomModel(target=f"{EXAMPLE}:small_cnn")
    return ModelBuilder(Task.multiclass, cfg, 64, (8, 8, 1), (10,)).build(seed)


def cnn_rows(backend: str, repeats: int, quick: bool) -> list[dict[str, Any]]:
    """Steps per second of one epoch of digits (1,797 images, batch 64, Adam, categorical
    cross-entropy from logits): (a) `model.fit` and (c) lossbench's trainer with recording."""
    import keras

    from lossbench.config.schema import TrainerConfig
    from lossbench.run.experiment import layer_groups
    from lossbench.trainer import make_runner, train

    x, y = _digits()
    steps = -(-len(x) // BATCH)
    epochs = 1 if quick else 4  # a few epochs per timed call: one is a fraction of a second
    fitted = _model(0)
    fitted.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    ours = _model(0)
    names, slices = layer_groups(ours)
    runner, _ = make_runner(
        backend, model=ours, loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.Adam(), x=x, y=y, layer_slices=slices, record=True,
        jit_compile=True,
    )  # fmt: skip
    cfg = TrainerConfig(epochs=epochs, batch_size=BATCH, record=True)
    fns = {
        "fit": lambda: fitted.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0),
        "lossbench": lambda: train(runner, len(x), names, cfg, 0, lambda r: {}),
    }
    rates = _interleaved(fns, steps * epochs, repeats)
    ratio = statistics.median(c / a for c, a in zip(rates["lossbench"], rates["fit"], strict=True))
    keras.backend.clear_session()
    return [{"backend": backend, "model": "small_cnn (Conv-BN x2, Dropout) on digits 8x8x1",
             "batch": BATCH, "fit": statistics.median(rates["fit"]),
             "lossbench": statistics.median(rates["lossbench"]), "c/a": ratio}]  # fmt: skip


def cnn_lines(results: dict[str, Any]) -> list[str]:
    """The report's CNN table (goal: lossbench at least 1.5x `model.fit`)."""
    lines = ["", "A user's model (`model=custom`): examples/my_models.py's `small_cnn` (two "
             "Conv2D-BatchNormalization blocks, pooling, Dropout, lossbench's 10-class head) on "
             "scikit-learn's digits as 8x8x1 images, categorical cross-entropy from logits, Adam, "
             f"batch {BATCH}; (a) plain `model.fit`, (c) lossbench's trainer recording every "
             "step (goal: c/a at least 1.5):", "",
             "| backend | model | batch | (a) fit steps/s | (c) lossbench | c/a |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for w in results["workers"]:
        for r in w.get("cnn", []):
            lines.append(f"| {r['backend']} | {r['model']} | {r['batch']} | {r['fit']:,.0f} | "
                         f"{r['lossbench']:,.0f} | {r['c/a']:.2f}x |")  # fmt: skip
    return lines
