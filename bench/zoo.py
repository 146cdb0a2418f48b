"""`make bench`'s model zoo: the `lossbench` command against plain `model.fit`, per model.

Each model of bench/zoo_models.py trains on scikit-learn's digits (reshaped to its input: 8x8x1
images, 8 steps of 8 features, a 4x4x4x1 volume), with the 10-class head lossbench adds, Adam,
categorical cross-entropy from logits (`loss=temperature loss.temperature=1`), batch 64:
- through the command, `lossbench model=custom model.target=bench/zoo_models.py:NAME ...`, with
  lossbench's defaults (its program-form probe included): summary.json's steady steps/s;
- through `model.fit` of the same network and head on the same training split, with Keras's
  defaults and with `jit_compile=True`: steps/s of `EPOCHS` epochs after a warm-up epoch, in one
  worker process per backend.
Each round runs the fit worker, then the command once per model; the ratio is the median over
rounds of the command's rate over the faster fit's (goal: at least 1.0x for every model).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from measure import LOSSBENCH, ROOT, run_measured

# name: the input shape the digits are reshaped to
ZOO = {
    "mlp": [64],
    "cnn": [8, 8, 1],
    "resnet_block": [8, 8, 1],
    "separable": [8, 8, 1],
    "conv1d": [8, 8],
    "gru": [8, 8],
    "lstm": [8, 8],
    "transformer": [8, 8],
    "conv3d": [4, 4, 4, 1],
}
MODELS_FILE = ROOT / "bench" / "zoo_models.py"
EPOCHS = 6
BATCH = 64
ROUNDS = 3


def overrides(name: str, backend: str) -> list[str]:
    """The command's overrides for zoo model `name` (the fit worker composes the same data)."""
    shape = ",".join(str(d) for d in ZOO[name])
    return [f"backend={backend}", "model=custom", f"model.target={MODELS_FILE}:{name}",
            "data=sklearn", "data.name=digits", f"data.input_shape=[{shape}]",
            "loss=temperature", "loss.temperature=1.0", f"trainer.batch_size={BATCH}",
            f"trainer.epochs={EPOCHS}", "trainer.progress=false"]  # fmt: skip


def fit_rates(backend: str, names: list[str]) -> dict[str, dict[str, float]]:
    """In this process (a fresh one per backend): `model.fit`'s steps/s per model, with
    Keras's defaults and with `jit_compile=True`."""
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    import keras

    from lossbench.config.compose import compose
    from lossbench.config.schema import Task
    from lossbench.data.load import make_dataset
    from lossbench.run.models import ModelBuilder

    out = {}
    for name in names:
        cfg = compose(overrides(name, backend))
        data = make_dataset(Task.multiclass, cfg.data, cfg.seed)
        x, y = data.train.x, data.train.y  # flat: the model reshapes, as lossbench's does
        steps = EPOCHS * -(-len(x) // BATCH)
        rates = {}
        for label, jit in (("fit", "auto"), ("fit_jit", True)):
            builder = ModelBuilder(Task.multiclass, cfg.model, x.shape[1], tuple(ZOO[name]),
                                   tuple(y.shape[1:]))  # fmt: skip
            model = builder.build(cfg.seed)
            loss = keras.losses.CategoricalCrossentropy(from_logits=True)
            model.compile(optimizer=keras.optimizers.Adam(), loss=loss, jit_compile=jit)
            model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)  # compiles
            t0 = time.perf_counter()
            model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0)
            rates[label] = steps / (time.perf_counter() - t0)
            keras.backend.clear_session()
        out[name] = rates
    return out


def zoo_rows(tmp: Path, backends: list[str], rounds: int = ROUNDS,
             names: list[str] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """One row per (backend, model): medians over rounds and the median per-round ratio."""
    names = names or list(ZOO)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rows = []
    for backend in backends:
        seen: dict[str, dict[str, list[Any]]] = {
            n: {"fit": [], "fit_jit": [], "lossbench": [], "program": []} for n in names
        }
        for k in range(rounds):
            cmd = [sys.executable, str(Path(__file__)), backend, *names]
            fits = json.loads(run_measured(cmd, tmp, env)[2].strip().splitlines()[-1])
            for name in names:
                folder = tmp / f"zoo_{backend}_{name}_{k}"
                cmd = [*LOSSBENCH, *overrides(name, backend), f"hydra.run.dir={folder}"]
                run_measured(cmd, tmp, env)
                summary = json.loads((folder / "summary.json").read_text())
                seen[name]["lossbench"].append(summary["steps_per_second"])
                seen[name]["program"].append(summary["program"])
                for label in ("fit", "fit_jit"):
                    seen[name][label].append(fits[name][label])
        for name, values in seen.items():
            best = [max(a, b) for a, b in zip(values["fit"], values["fit_jit"], strict=True)]
            ratios = [o / b for o, b in zip(values["lossbench"], best, strict=True)]
            rows.append({
                "backend": backend, "model": name, "input": ZOO[name], "rounds": rounds,
                **{label: statistics.median(values[label])
                   for label in ("fit", "fit_jit", "lossbench")},
                "ratio": statistics.median(ratios), "ratios": [round(r, 3) for r in ratios],
                "forms": [p["form"] for p in values["program"]],
                "probed": values["program"][-1].get("probed"),
            })  # fmt: skip
    return rows


def zoo_lines(results: dict[str, Any]) -> list[str]:
    """The section of docs/benchmarks.md."""
    rows = results.get("zoo")
    if not rows:
        return []
    sitting = results.get("zoo_sitting") or results
    lines = ["", f"The model zoo (measured {sitting['date']} with `{sitting['command']}`, on "
             f"{sitting['machine']['cpu']}, {sitting['machine'].get('isa', '')}): each model of "
             "bench/zoo_models.py (two dense layers; two convolutions; a residual block with "
             "BatchNormalization and `Add`; depthwise and separable convolutions; two Conv1D; a "
             "GRU; an LSTM; a transformer block with `MultiHeadAttention` and "
             "`LayerNormalization`; two Conv3D) on scikit-learn's digits reshaped to its input, "
             "with lossbench's 10-class head, Adam, categorical cross-entropy from logits, batch "
             f"{BATCH}. The command is `lossbench model=custom model.target=bench/zoo_models.py:"
             "NAME data=sklearn data.name=digits data.input_shape=[...] loss=temperature "
             f"loss.temperature=1.0 trainer.epochs={EPOCHS}` with lossbench's defaults (its "
             "program-form probe included), summary.json's steady steps/s; `fit` is the same "
             "network and head on the same training split with Keras's defaults and with "
             f"`jit_compile=True`, {EPOCHS} epochs timed after a warm-up epoch. "
             f"{rows[0]['rounds']} rounds (the fit worker, then the command per model); the "
             "ratio is the median of the per-round ratios of the command to the faster `fit` "
             "(goal: at least 1.0x); the form is the one the command's probe chose:", "",
             "| backend | model | input | fit steps/s | fit jit steps/s | `lossbench` steps/s "
             "| ratio | form |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |"]  # fmt: skip
    for r in rows:
        forms = sorted(set(r["forms"]))
        lines.append(f"| {r['backend']} | {r['model']} | {'x'.join(map(str, r['input']))} | "
                     f"{r['fit']:,.1f} | {r['fit_jit']:,.1f} | {r['lossbench']:,.1f} | "
                     f"{r['ratio']:.2f}x | {', '.join(forms)} |")  # fmt: skip
    return lines


if __name__ == "__main__":
    print(json.dumps(fit_rates(sys.argv[1], sys.argv[2:])))
