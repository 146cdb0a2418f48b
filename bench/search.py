"""`make bench`'s search section: the README's 30-trial focal search, with and without pruning
across seeds (`hydra.sweeper.pruner=median`), on three sampler seeds: each search's wall time
and the best value it finds."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import yaml
from measure import LOSSBENCH, run_measured

# The README's search (README.md, "Tune a loss's parameters").
SEARCH = ["-m", "hydra/sweeper=optuna", "loss=focal", "loss.gamma=interval(0,5)",
          "loss.alpha=interval(0.05,0.95)", "hydra.sweeper.n_trials=30", "hydra.sweeper.seeds=3",
          "hydra.sweeper.objective=minority_recall", "hydra.sweeper.direction=maximize",
          "trainer.progress=false"]  # fmt: skip
QUICK = ["hydra.sweeper.n_trials=6", "hydra.sweeper.seeds=2", "data.n_samples=2000",
         "trainer.epochs=2"]  # fmt: skip
PRUNERS = ("none", "median")


def search_rows(tmp: Path, quick: bool, seeds: int = 3) -> list[dict[str, Any]]:
    """One row per (sampler seed, pruner), the two pruners interleaved for each seed."""
    import pandas as pd

    rows = []
    for seed in range(1 if quick else seeds):
        for pruner in PRUNERS:
            folder = tmp / f"search_{seed}_{pruner}"
            args = [*LOSSBENCH, *SEARCH, *(QUICK if quick else []),
                    f"hydra.sweeper.sampler.seed={seed}", f"hydra.sweeper.pruner={pruner}",
                    f"hydra.sweep.dir={folder}"]  # fmt: skip
            wall, _, _ = run_measured(args, tmp)
            best = yaml.safe_load((folder / "best.yaml").read_text())
            states = pd.read_csv(folder / "trials.csv")["state"]
            jobs = sum(1 for p in folder.glob("*/summary.json"))
            rows.append({"seed": seed, "pruner": pruner, "seconds": wall, "best": best["value"],
                         "pruned": int((states == "PRUNED").sum()), "jobs": jobs})  # fmt: skip
    return rows


def search_lines(results: dict[str, Any]) -> list[str]:
    """The section of docs/benchmarks.md."""
    rows = results.get("search")
    if not rows:
        return []
    sitting = results.get("search_sitting")
    when = (
        (
            f" (measured {sitting['date']} on {sitting['machine']['cpu']} with "
            f"`{sitting['command']}`)"
        )
        if sitting
        else ""
    )
    lines = ["", f"A search, whole process{when}: the README's 30-trial focal search (3 seeds per "
             "trial, minority recall on validation) without and with "
             "`hydra.sweeper.pruner=median`, on sampler seeds 0 to 2 "
             "(`hydra.sweeper.sampler.seed`), the two run one after the other for each seed:",
             "",
             "| sampler seed | pruner | seconds | best minority_recall | trials pruned | "
             "jobs that ran |", "| ---: | --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['seed']} | {r['pruner']} | {r['seconds']:.0f} | {r['best']:.4f} | "
                     f"{r['pruned']} | {r['jobs']} |")  # fmt: skip
    by = {p: [r for r in rows if r["pruner"] == p] for p in PRUNERS}
    ratio = statistics.median(m["seconds"] / n["seconds"] for n, m in zip(*by.values(),
                                                                          strict=True))  # fmt: skip
    lines += ["", f"Pruning takes {ratio:.2f}x the time of the full search (median over the "
              f"seeds); the best values: {_best(by['none'])} without, {_best(by['median'])} "
              "with pruning."]  # fmt: skip
    return lines


def _best(rows: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['best']:.3f}" for r in rows)
