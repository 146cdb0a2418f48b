"""The hand-fused anchors (../shared/anchors) against the `lossbench` command users run.

Each round runs, one after another in fresh processes: the backend's fused anchor script (it
times one warm-up epoch, then 3 epochs on TensorFlow and 5 on JAX), the `lossbench` command on
the anchor's network (its summary.json's `steps_per_second`: the first epoch compiles, the
others are its steady state), lossbench's trainer alone timed the anchor's way (the "twin"), and
the default run (`lossbench backend=B`, its wall time). Every ratio is the median of the per-round
ratios, so a slow spell of the machine hits both sides alike. The comparison runs natively and
with XLA capped to AVX2 (`XLA_FLAGS=--xla_cpu_max_isa=AVX2`), which changes float32 sums and
kernels on an AVX-512 CPU.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from measure import (
    ANCHOR_MODEL,
    LOSSBENCH,
    MODELS,
    N_SAMPLES,
    ROOT,
    _anchor_data,
    _mlp,
    _trainer_fn,
    isa,
    run_measured,
    train_flops,
)

ANCHOR_ROUNDS = 5
# Each fused anchor's own timing: one warm-up epoch, then this many timed epochs.
ANCHOR_EPOCHS = {"tensorflow": 3, "jax": 5}
FUSED_SCRIPTS = {"tensorflow": "fused_tf.py", "jax": "fused_jax.py"}
AVX2 = "--xla_cpu_max_isa=AVX2"
# The anchor's network through the command: 24 features and the 8 groups' indicators make its
# 32 inputs; 81,920 samples leave 65,536 for training after the 20% validation split, 1,024
# steps of 64 per epoch (one compiled chunk), as the anchor's epoch.
ANCHOR_SHAPED = ["data.n_features=24", "data.n_samples=81920", "trainer.progress=false"]


def twin(backend: str) -> dict[str, Any]:
    """lossbench's trainer timed the way the backend's fused anchor times itself (same model,
    data, batch; one warm-up epoch, then the anchor's number of epochs), in this process."""
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    from lossbench.losses import BinaryCrossentropy

    x, y = _anchor_data(N_SAMPLES)
    fn = _trainer_fn(_mlp(MODELS[ANCHOR_MODEL]), BinaryCrossentropy(), x, y, 64, True, backend)
    fn()
    epochs = ANCHOR_EPOCHS[backend]
    t0 = time.perf_counter()
    for _ in range(epochs):
        fn()
    steps = epochs * (N_SAMPLES // 64)
    return {"backend": backend, "steps_per_s": steps / (time.perf_counter() - t0)}


def _command(backend: str, folder: Path, env: dict[str, str], tmp: Path) -> dict[str, float]:
    """The `lossbench` command on the anchor's network: steady steps/s and wall seconds."""
    cmd = [*LOSSBENCH, f"backend={backend}", *ANCHOR_SHAPED,
           f"trainer.epochs={ANCHOR_EPOCHS[backend] + 1}", f"hydra.run.dir={folder}"]  # fmt: skip
    wall, _, _ = run_measured(cmd, tmp, env)
    summary = json.loads((folder / "summary.json").read_text())
    return {"steps_per_s": summary["steps_per_second"], "wall": wall}


def paired_anchor_rows(
    tmp: Path, anchors: Path, backends: list[str], rounds: int = ANCHOR_ROUNDS,
    caps: tuple[str, ...] = ("",), twins: bool = True,
) -> list[dict[str, Any]]:  # fmt: skip
    """One row per (XLA cap, backend): the command, the twin and the anchor, in rounds.

    Args:
        caps: XLA_FLAGS values to run under ("": this process's own environment).
        twins: also time the twin (lossbench's trainer alone).
    """
    rows = []
    for n, cap in enumerate(caps):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if cap:
            env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {cap}".strip()
        for backend in backends:
            script = anchors / FUSED_SCRIPTS[backend]
            if not script.exists():
                continue
            seen: dict[str, list[float]] = {"anchor": [], "lossbench": [], "twin": [],
                                            "wall": [], "default_wall": []}  # fmt: skip
            for k in range(rounds):
                _, _, out = run_measured([sys.executable, str(script)], tmp, env)
                rates = re.findall(r"(?:jit=True|bs=64) steps/s=(\d+)", out)
                seen["anchor"].append(float(rates[-1]))
                ours = _command(backend, tmp / f"cli_{backend}_{n}_{k}", env, tmp)
                seen["lossbench"].append(ours["steps_per_s"])
                seen["wall"].append(ours["wall"])
                if twins:
                    cmd = [sys.executable, str(ROOT / "bench" / "run.py"), "--twin", backend]
                    out = run_measured(cmd, tmp, env)[2]
                    seen["twin"].append(json.loads(out.strip().splitlines()[-1])["steps_per_s"])
                default = [*LOSSBENCH, f"backend={backend}", "trainer.progress=false",
                           f"hydra.run.dir={tmp / f'default_{backend}_{n}_{k}'}"]  # fmt: skip
                seen["default_wall"].append(run_measured(default, tmp, env)[0])
            rows.append(_row(backend, isa(env), rounds, seen))
    return rows


def _row(backend: str, label: str, rounds: int, seen: dict[str, list[float]]) -> dict[str, Any]:
    """Medians of each measure, and of the per-round ratios to the anchor."""
    row: dict[str, Any] = {"backend": backend, "isa": label, "rounds": rounds}
    for name, values in seen.items():
        if values:
            row[name] = statistics.median(values)
    for name in ("lossbench", "twin"):
        if seen[name]:
            ratios = [o / t for o, t in zip(seen[name], seen["anchor"], strict=True)]
            row[f"{name}_ratio"] = statistics.median(ratios)
            row[f"{name}_ratios"] = [round(r, 3) for r in ratios]
    return row


def anchor_lines(results: dict[str, Any]) -> list[str]:
    """The section of docs/benchmarks.md: the command against the anchors."""
    paired = [r for r in results.get("paired") or [] if "lossbench_ratio" in r]
    if not paired:
        return []
    sitting = results.get("cli_sitting")
    when = f" (measured {sitting['date']} with `{sitting['command']}`)" if sitting else ""
    where = (sitting or results)["machine"]
    gflops = train_flops(MODELS[ANCHOR_MODEL], 64) / 1e9
    lines = [
        "",
        f"The `lossbench` command against the hand-fused anchors{when}, on {where['cpu']} "
        f"({where['cores']} cores, {where['isa']}): `lossbench backend=B "
        f"{' '.join(ANCHOR_SHAPED)} trainer.epochs=E` trains the anchor's network (MLP "
        "32-64-64-1: 24 features and 8 group indicators; 65,536 training samples, batch 64, "
        "Adam, binary cross-entropy), records every step's loss, global and per-layer gradient "
        "norms, shuffles each epoch and evaluates each epoch; its summary.json's steady-state "
        "steps/s (E is one more epoch than the anchor times, the first compiling). The twin is "
        "lossbench's trainer alone, timed the anchor's way. The default run is `lossbench "
        "backend=B` (16,384 samples, 5 epochs), the whole process's wall time. Each round runs "
        f"all four in fresh processes; {paired[0]['rounds']} rounds, medians; ratios are "
        "medians of the per-round ratios (target: the command at least 1.0x):",
        "",
        "| backend | ISA | `lossbench` steps/s | anchor steps/s | command / anchor | "
        "twin / anchor | command GFLOP/s | default run s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]  # fmt: skip
    for r in paired:
        twin_ratio = f"{r['twin_ratio']:.2f}x" if "twin_ratio" in r else ""
        lines.append(
            f"| {r['backend']} | {r['isa']} | {r['lossbench']:,.0f} | {r['anchor']:,.0f} | "
            f"{r['lossbench_ratio']:.2f}x | {twin_ratio} | {r['lossbench'] * gflops:.1f} | "
            f"{r['default_wall']:.2f} |"
        )
    return lines
