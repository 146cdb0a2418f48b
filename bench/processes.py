"""`make bench`'s whole-process measurements: start-up, memory, a large table, sweeps."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from measure import LOSSBENCH, run_measured


def startup_rows(repeats: int, quick: bool, tmp: Path, backend: str) -> list[dict[str, Any]]:
    """`lossbench --help`, importing Keras on `backend` as a run does (and nothing else), the
    default run and a 1,000,000-sample run, on `backend` (the default backend, TensorFlow, is
    named in the table only when it is not the one used). A run's row also gives its summary's
    `compile_seconds` (its programs' first calls), so start-up is split into its parts."""
    on = [] if backend == "tensorflow" else [f"backend={backend}"]
    name = " ".join(["lossbench", *on])
    quiet = [*on, "trainer.progress=false"]
    import_only = (
        f"import os; from lossbench.run.experiment import select_backend; "
        f"select_backend({backend!r}); os._exit(0)"  # without teardown, as a run ends
    )
    cases = [
        ("lossbench --help", [*LOSSBENCH, "--help"], max(repeats, 3)),
        (f"import Keras on {backend} (select_backend)", [sys.executable, "-c", import_only],
         max(repeats, 3)),
        (f"{name} (default run)", [*LOSSBENCH, *quiet], 1 if quick else repeats),
    ]  # fmt: skip
    if not quick:
        cases.append(
            (f"{name} data.n_samples=1000000 trainer.epochs=1",
             [*LOSSBENCH, *quiet, "data.n_samples=1000000", "trainer.epochs=1"], 1)
        )  # fmt: skip
    rows = []
    for label, cmd, n in cases:
        walls, rss, compiles = [], [], []
        for k in range(n):
            run_dir = tmp / f"run_{len(rows)}_{k}"
            run = cmd[: len(LOSSBENCH)] == LOSSBENCH
            wall, peak, _ = run_measured([*cmd, f"hydra.run.dir={run_dir}"] if run else cmd, tmp)
            walls.append(wall)
            rss.append(peak)
            if (run_dir / "summary.json").exists():
                summary = json.loads((run_dir / "summary.json").read_text())
                compiles.append(summary["compile_seconds"])
        rows.append({
            "command": label,
            "seconds": statistics.median(walls),
            "peak_rss_mib": max(rss),
            "compile_seconds": statistics.median(compiles) if compiles else None,
        })  # fmt: skip
    return rows


TABLE_ROWS, TABLE_COLUMNS = 1_000_000, 50


def table_rows(tmp: Path) -> list[dict[str, Any]]:
    """A CSV of 1,000,000 rows x 50 columns (49 features, a regression target): loading it
    into a Dataset alone, and a whole one-epoch run on it, each with wall time and peak RSS."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.standard_normal((TABLE_ROWS, TABLE_COLUMNS - 1)).astype("float32")
    frame = pd.DataFrame(x, columns=[f"f{j}" for j in range(TABLE_COLUMNS - 1)])
    frame["y"] = x[:, :5].sum(axis=1) + 0.1 * rng.standard_normal(TABLE_ROWS).astype("float32")
    path = tmp / "table.csv"
    frame.to_csv(path, index=False, float_format="%.6g")
    del frame, x
    data = ["data=table", f"data.path={path}", "data.target=y", "loss=mse"]
    load = (
        "import sys; from lossbench.config.compose import compose; from lossbench.data.load import "
        "make_dataset; cfg = compose(sys.argv[1:]); "
        "make_dataset(cfg.loss.training_task(), cfg.data, 0)"
    )
    cases = [
        ("load the CSV into a Dataset (no framework)", [sys.executable, "-c", load, *data]),
        ("lossbench data=table ... loss=mse trainer.epochs=1",
         [*LOSSBENCH, *data, "trainer.epochs=1", "trainer.progress=false",
          f"hydra.run.dir={tmp / 'table_run'}"]),
    ]  # fmt: skip
    size = path.stat().st_size / 2**20
    rows = []
    for label, cmd in cases:
        wall, peak, _ = run_measured(cmd, tmp)
        rows.append({"command": label, "seconds": wall, "peak_rss_mib": peak, "csv_mib": size})
    return rows


# Sweeps of the default run (short jobs: start-up dominates) and of jobs long enough for a second
# core to pay, with Hydra's basic launcher and with its joblib launcher at 2 workers.
SWEEPS = {
    "default run, 8 seeds": ["seed=range(8)"],
    "default run, 48 seeds": ["seed=range(48)"],
    "long jobs (trainer.epochs=200), 4 seeds": ["seed=range(4)", "trainer.epochs=200"],
}
LAUNCHERS = {"basic": [], "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]}
SWEEP_TABLES = ("steps.csv", "grad_norms.csv", "epochs.csv")


def sweep_rows(tmp: Path, repeats: int, quick: bool = False) -> list[dict[str, Any]]:
    """Each sweep of SWEEPS with each launcher of LAUNCHERS, timed in interleaved rounds, and
    whether every job's tables are the same bytes under both; plus a one-seed sweep (what any
    launcher pays once)."""
    cases = dict(list(SWEEPS.items())[:1]) if quick else SWEEPS
    cases = {"default run, 1 seed": ["seed=0"], **cases}
    rows = []
    for label, args in cases.items():
        launchers = {"basic": []} if args == ["seed=0"] else LAUNCHERS
        walls: dict[str, list[float]] = {name: [] for name in launchers}
        same = True
        for k in range(repeats):
            folders = {}
            for name, extra in launchers.items():
                folders[name] = tmp / f"sweep_{len(rows)}_{name}_{k}"
                cmd = [*LOSSBENCH, "-m", "trainer.progress=false", *args, *extra,
                       f"hydra.sweep.dir={folders[name]}"]  # fmt: skip
                walls[name].append(run_measured(cmd, tmp)[0])
            same = same and _same_tables(list(folders.values()))
        row: dict[str, Any] = {"sweep": label, "command": " ".join(["lossbench -m", *args]),
                               "rounds": repeats, "same_tables": same}  # fmt: skip
        for name in launchers:
            row[f"{name}_seconds"] = statistics.median(walls[name])
        if "joblib" in walls:
            pairs = zip(walls["joblib"], walls["basic"], strict=True)
            row["ratio"] = statistics.median(j / b for j, b in pairs)
        rows.append(row)
    return rows


def _same_tables(folders: list[Path]) -> bool:
    """Whether every job folder of the first sweep has byte-identical tables in the others."""
    jobs = sorted(p.name for p in folders[0].iterdir() if (p / "summary.json").exists())
    return bool(jobs) and all(
        (folders[0] / job / t).read_bytes() == (other / job / t).read_bytes()
        for other in folders[1:]
        for job in jobs
        for t in SWEEP_TABLES
    )
