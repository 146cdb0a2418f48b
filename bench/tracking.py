"""`make bench`'s tracking section: what `tracker=mlflow` (the local SQLite store) adds to the
wall time of the default run and of a 16-job sweep, the two run alternately in each round."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from measure import LOSSBENCH, run_measured

DEFAULT_RUN = ["trainer.progress=false"]
# `make sweep`'s four losses on four seeds: 16 jobs.
SWEEP = ["-m", "loss=bce,focal,class_balanced,logit_adjusted", "seed=0,1,2,3",
         "data.n_samples=4000", "trainer.epochs=3", "trainer.progress=false"]  # fmt: skip
QUICK_SWEEP = ["-m", "loss=bce,focal", "seed=0,1", "data.n_samples=2000", "trainer.epochs=2",
               "trainer.progress=false"]  # fmt: skip
TRACKERS = ("none", "mlflow")


def tracking_rows(tmp: Path, quick: bool) -> list[dict[str, Any]]:
    """One row per (what, tracker): the median wall time over rounds and its ratio to none.
    The store is created before the first timed run (a first use's one-off migrations)."""
    run_measured([*LOSSBENCH, *DEFAULT_RUN, "tracker=mlflow", f"hydra.run.dir={tmp / 'w'}"], tmp)
    rows = []
    cases = {"default run": (DEFAULT_RUN, 1 if quick else 5),
             "16-job sweep": (QUICK_SWEEP if quick else SWEEP, 1 if quick else 3)}  # fmt: skip
    for what, (args, rounds) in cases.items():
        seconds: dict[str, list[float]] = {t: [] for t in TRACKERS}
        for k in range(rounds):
            for tracker in TRACKERS:
                where = "hydra.sweep.dir" if args[0] == "-m" else "hydra.run.dir"
                folder = tmp / f"{what.split()[0]}_{tracker}_{k}"
                cmd = [*LOSSBENCH, *args, f"tracker={tracker}", f"{where}={folder}"]
                seconds[tracker].append(run_measured(cmd, tmp)[0])
        base = statistics.median(seconds["none"])
        for tracker, values in seconds.items():
            wall = statistics.median(values)
            rows.append({"what": what, "tracker": tracker, "seconds": wall,
                         "ratio": wall / base, "rounds": rounds})  # fmt: skip
    return rows


def tracking_lines(results: dict[str, Any]) -> list[str]:
    """The section of docs/benchmarks.md."""
    rows = results.get("tracking")
    if not rows:
        return []
    sitting = results.get("tracking_sitting")
    when = f" (measured {sitting['date']} with `{sitting['command']}`)" if sitting else ""
    lines = ["", f"Tracking{when}: the whole process's wall time of the default run and of a "
             "16-job sweep (`make sweep`'s four losses on seeds 0-3) with `tracker=none` and "
             "`tracker=mlflow` (the local SQLite store, created before the first timed run), "
             "alternating; median over rounds:", "",
             "| what | tracker | rounds | seconds | against none |",
             "| --- | --- | ---: | ---: | ---: |"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['what']} | {r['tracker']} | {r['rounds']} | {r['seconds']:.1f} | "
                     f"{r['ratio']:.2f}x |")  # fmt: skip
    return lines
