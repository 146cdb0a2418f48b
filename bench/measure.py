"""`make bench`'s measurements: the workers' timings, start-up, memory and the anchors."""

from __future__ import annotations

import itertools
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ANCHORS = ROOT.parent / "shared" / "anchors"
# The lossbench command, run with this interpreter (no console script needed).
LOSSBENCH = [sys.executable, "-c", "from lossbench.cli import main; main()"]
N_SAMPLES, N_FEATURES = 65536, 32
ANCHOR_MODEL = "MLP 32-64-64-1"  # the anchors' model
MODELS = {ANCHOR_MODEL: [64, 64], "wide 32-512-512-1": [512, 512]}
BATCHES = [64, 1024]
RATIOS = {"c/a": "fit", "c/b": "fit_spe32", "c/d": "lossbench_norecord"}
# Extra rounds (times --repeats) for the cheap paired comparisons: c/d and the variant table.
PAIRED_ROUNDS = 2


# ---- worker: runs inside one backend ------------------------------------------------------------


def _interleaved(fns: dict[str, Any], steps: int, repeats: int) -> dict[str, list[float]]:
    """Steps per second of each callable, timed in rounds: every round times each callable once,
    so that a slow spell of a shared machine hits all of them alike (after one warm call each)."""
    for fn in fns.values():
        fn()
    rates: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            rates[name].append(steps / (time.perf_counter() - t0))
    return rates


def _call_times(call: Any, n: int) -> list[float]:
    """Seconds of each of `n` calls of `call`, after one warm-up call."""
    call()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def _anchor_data(n: int) -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, N_FEATURES), dtype=np.float32)
    y = (rng.random((n, 1)) < 0.1).astype(np.float32)
    return x, y


def _mlp(hidden: list[int]) -> Any:
    import keras

    layers = [keras.Input((N_FEATURES,))]
    layers += [
        keras.layers.Dense(h, activation="relu", name=f"hidden_{i}") for i, h in enumerate(hidden)
    ]
    layers.append(keras.layers.Dense(1, activation="sigmoid", name="head"))
    return keras.Sequential(layers)


def _trainer_fn(model: Any, loss: Any, x: Any, y: Any, batch: int, record: bool,
                backend: str) -> Any:  # fmt: skip
    """A callable that trains one epoch with lossbench's trainer."""
    import keras

    from lossbench.config.schema import TrainerConfig
    from lossbench.run.experiment import layer_groups
    from lossbench.trainer import make_runner, train

    names, slices = layer_groups(model)
    runner, _ = make_runner(
        backend, model=model, loss=loss, optimizer=keras.optimizers.Adam(), x=x, y=y,
        layer_slices=slices, record=record, jit_compile=True,
    )  # fmt: skip
    cfg = TrainerConfig(epochs=1, batch_size=batch, record=record)
    return lambda: train(runner, len(x), names, cfg, 0, lambda r: {})


def core_rows(backend: str, repeats: int, quick: bool) -> list[dict[str, Any]]:
    """(a)-(d) for each model and batch size, timed in interleaved rounds. Each figure is the
    median over rounds; each ratio is the median of the per-round ratios."""
    import keras

    from lossbench.losses import BinaryCrossentropy

    n = 8192 if quick else N_SAMPLES
    x, y = _anchor_data(n)
    rows = []
    models = dict(list(MODELS.items())[:1]) if quick else MODELS
    for label, hidden in models.items():
        for batch in BATCHES:
            steps = -(-n // batch)
            fns = {}
            for name, spe in (("fit", 1), ("fit_spe32", 32)):
                model = _mlp(hidden)
                model.compile(optimizer="adam", loss="binary_crossentropy", steps_per_execution=spe)
                fns[name] = lambda m=model, b=batch: m.fit(x, y, batch_size=b, epochs=1, verbose=0)
            for name, record in (("lossbench", True), ("lossbench_norecord", False)):
                fns[name] = _trainer_fn(
                    _mlp(hidden), BinaryCrossentropy(), x, y, batch, record, backend
                )
            rates = _interleaved(fns, steps, repeats)
            # c/d has the tightest target (10%) and a round of (c) and (d) alone is cheap, so
            # PAIRED_ROUNDS x repeats more of them follow: its median rests on more pairs.
            pair = {name: fns[name] for name in ("lossbench", "lossbench_norecord")}
            for name, extra in _interleaved(pair, steps, PAIRED_ROUNDS * repeats).items():
                rates[name] += extra
            row: dict[str, Any] = {"backend": backend, "model": label, "batch": batch}
            row.update({name: statistics.median(r) for name, r in rates.items()})
            for name, other in RATIOS.items():
                # Round k of (c) pairs with round k of the other; fit ran only the first rounds.
                pairs = zip(rates["lossbench"], rates[other], strict=False)
                row[name] = statistics.median(ci / oi for ci, oi in pairs)
            rows.append(row)
            keras.backend.clear_session()
    return rows


def variant_rows(backend: str, repeats: int, quick: bool) -> list[dict[str, Any]]:
    """Each variant's step rate against plain BCE (binary task) or MSE on the same task."""
    from dataclasses import replace

    from lossbench.config.compose import compose
    from lossbench.config.schema import Task
    from lossbench.losses import BinaryCrossentropy, MeanSquaredError
    from lossbench.run.experiment import RunnerCache, build_experiment
    from lossbench.trainer import steps_per_epoch, train
    from lossbench.variants.registry import variants

    rows, runners = [], RunnerCache()  # runners kept as a sweep's process keeps them
    for name in variants():
        if name in ("bce", "mse", "custom"):  # custom needs a user target
            continue
        overrides = [f"loss={name}", f"backend={backend}", "trainer.progress=false"]
        if quick:
            overrides += ["data.n_samples=4096", "data.n_nodes=512"]
        cfg = compose(overrides)
        # The baseline trains on finite data: robust_weights' NaN-injected data would stop a
        # plain loss at its first step.
        base_cfg = compose([*overrides, "data.nan_rate=0"])
        fns = {}
        for which in ("variant", "baseline"):
            binary = cfg.loss.training_task() is Task.binary
            base = BinaryCrossentropy() if binary else MeanSquaredError()
            if which == "variant":
                exp = build_experiment(cfg, runners=runners)
            else:
                exp = build_experiment(base_cfg, loss=base, runners=runners)
            n = len(exp.data.train)
            per_epoch = steps_per_epoch(n, cfg.trainer.batch_size)
            # Enough steps per timed call that per-call bookkeeping does not dominate.
            epochs = max(1, -(-1000 // per_epoch))
            steps = epochs * per_epoch
            trainer_cfg = replace(cfg.trainer, epochs=epochs)

            def run(e: Any = exp, c: Any = trainer_cfg, k: int = n, s: int = steps) -> None:
                result = train(e.runner, k, e.layer_names, c, 0, lambda r: {})
                if result.steps != s:  # a diverged run would time a fraction of the steps
                    raise RuntimeError(f"{e.cfg.loss.name}: {result.status} at {result.steps}")

            fns[which] = run
        # A paired comparison against a 1.5x target: more rounds than the (a)-(d) table.
        timed = _interleaved(fns, steps, (1 + PAIRED_ROUNDS) * repeats)
        rates = {which: statistics.median(r) for which, r in timed.items()}
        pairs = zip(timed["variant"], timed["baseline"], strict=True)
        ratio = statistics.median(b / v for v, b in pairs)
        rows.append(
            {
                "backend": backend,
                "loss": name,
                "task": cfg.loss.training_task().value,
                "variant": rates["variant"],
                "baseline": rates["baseline"],
                "time_ratio": ratio,
            }
        )
    return rows


def graph_row(backend: str, repeats: int) -> dict[str, Any]:
    """Loss plus gradient of the graph loss on 1,024 nodes x 64 dimensions, compiled."""
    import numpy as np

    from lossbench.losses import ContextGraphLoss

    rng = np.random.default_rng(0)
    adjacency = (rng.random((1024, 1024)) < 0.01).astype("float32")
    loss = ContextGraphLoss.from_adjacency(adjacency)
    y_true = loss.pack_targets(rng.normal(size=(1024, 64)), np.arange(1024))
    emb = rng.normal(size=(1024, 64)).astype("float32")
    if backend == "tensorflow":
        import tensorflow as tf

        yt, e = tf.constant(y_true), tf.constant(emb)

        @tf.function(jit_compile=True)
        def value_and_grad(p: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(p)
                value = loss(yt, p)
            return value, tape.gradient(value, p)

        def call() -> None:
            value_and_grad(e)[1].numpy()
    else:
        import jax

        yt, e = jax.numpy.asarray(y_true), jax.numpy.asarray(emb)
        fn = jax.jit(jax.value_and_grad(lambda p: loss(yt, p)))

        def call() -> None:
            jax.block_until_ready(fn(e))

    times = _call_times(call, max(repeats, 5) * 10)
    return {"backend": backend, "ms": 1e3 * statistics.median(times)}


def train_flops(hidden: list[int], batch: int) -> float:
    """Floating-point operations of one training step of the MLP on `batch` samples: its matrix
    multiplies, 2 * batch * fan-in * fan-out each, three times over (forward, and the two
    products of the backward pass). Element-wise work (activations, Adam) is left out, so this
    is a lower bound of the work done."""
    sizes = [N_FEATURES, *hidden, 1]
    return 3 * sum(2 * batch * a * b for a, b in itertools.pairwise(sizes))


MATMUL_N = 2048


def matmul_row(backend: str, repeats: int) -> dict[str, Any]:
    """A large float32 matrix multiply (2048 x 2048) in the backend, compiled, with its default
    threads: the throughput this machine reaches on dense work (the roofline's ceiling)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((MATMUL_N, MATMUL_N), dtype=np.float32) for _ in range(2))
    if backend == "tensorflow":
        import tensorflow as tf

        ta, tb = tf.constant(a), tf.constant(b)
        fn = tf.function(lambda x, y: tf.linalg.matmul(x, y), jit_compile=True)

        def call() -> None:
            fn(ta, tb).numpy()
    else:
        import jax

        ja, jb = jax.numpy.asarray(a), jax.numpy.asarray(b)
        jfn = jax.jit(lambda x, y: x @ y)

        def call() -> None:
            jax.block_until_ready(jfn(ja, jb))

    times = _call_times(call, max(repeats, 5) * 2)
    return {"backend": backend, "n": MATMUL_N, "gflops": 2 * MATMUL_N**3 / min(times) / 1e9}


def worker(backend: str, repeats: int, quick: bool) -> dict[str, Any]:
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    import keras

    from lossbench.trainer import make_runner  # noqa: F401  (imports the backend runner)

    out = {
        "backend": backend,
        "keras": keras.__version__,
        "core": core_rows(backend, repeats, quick),
        "variants": variant_rows(backend, repeats, quick),
        "graph": graph_row(backend, repeats),
        "matmul": matmul_row(backend, repeats),
    }
    if backend == "jax":
        from lossbench.trainer.jax_backend import device_name
    else:
        from lossbench.trainer.tensorflow_backend import device_name
    out["device"] = device_name()
    return out


# ---- orchestrator: child processes, the anchors, the machine ----------------------------------


def run_measured(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and output of one child process (in `env`, else this
    process's environment)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read().decode() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out[-2000:]}")
    return time.perf_counter() - t0, usage.ru_maxrss / 1024, out


def anchor_rows(tmp: Path, anchors: Path, backends: list[str]) -> list[dict[str, Any]]:
    """The reference scripts for the benchmarked backends, run now on this machine (they print
    their own steps/s), once each."""
    scripts = {"tensorflow": "fused_tf.py", "jax": "fused_jax.py"}
    found: dict[str, list[int]] = {}
    for script, args, rounds in [
        item for b in backends for item in (("keras_fit.py", [b], 1), (scripts[b], [], 1))
    ]:  # fmt: skip
        path = anchors / script
        if not path.exists():
            continue
        for _ in range(rounds):
            _, _, out = run_measured([sys.executable, str(path), *args], tmp)
            for line in out.splitlines():
                match = re.search(r"steps/s=(\d+)", line)
                if match and ("bs=" in line or "jit=" in line):
                    label = f"{script} {line.split(' steps/s')[0]}"
                    found.setdefault(label, []).append(int(match[1]))
    return [
        {"anchor": label, "steps_per_s": int(statistics.median(v)), "runs": len(v)}
        for label, v in found.items()
    ]


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": str(os.cpu_count()), "isa": isa(),
            "python": platform.python_version(), "platform": platform.platform()}  # fmt: skip


def isa(env: dict[str, str] | None = None) -> str:
    """The widest vector instructions of this CPU that XLA uses, and the cap on them that
    XLA_FLAGS sets in `env` (else this process's environment), e.g. "AVX-512" or
    "AVX2 (AVX-512 capped by XLA_FLAGS)"."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        flags = set()
    native = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE4 or older"
    cap = re.search(r"--xla_cpu_max_isa=(\w+)", (env or os.environ).get("XLA_FLAGS", ""))
    if cap and cap[1].upper() != native.replace("-", ""):
        return f"{cap[1].upper()} ({native} capped by XLA_FLAGS)"
    return native
