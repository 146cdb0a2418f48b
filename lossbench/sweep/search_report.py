"""The search section of a report on an Optuna sweep folder (`hydra/sweeper=optuna`): the best
trial with its interval over seeds, the trials, parameter importances and two plots, all read
from `trials.csv`, `best.yaml` and the study's journal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from lossbench.sweep.stats import mean_ci

TOP = 10


def search_lines(root: Path) -> list[str]:
    """The report's "Search" section (none when `root` holds no search), plots drawn."""
    if not (root / "trials.csv").exists():
        return []
    trials = pd.read_csv(root / "trials.csv")
    try:
        best = yaml.safe_load((root / "best.yaml").read_text())
    except (OSError, yaml.YAMLError):
        best = None
    params = [c for c in trials.columns if c not in ("trial", "state", "mean", "jobs", "message")
              and "_seed" not in c and not c.endswith("_mean")]  # fmt: skip
    lines = ["## Search", ""]
    if not isinstance(best, dict):
        return [*lines, f"No trial finished ({len(trials)} trials; see `trials.csv`).", ""]
    states = trials["state"].value_counts()
    counts = ", ".join(f"{int(states[s])} {s.lower()}" for s in ("COMPLETE", "PRUNED", "FAIL")
                       if s in states)  # fmt: skip
    if "pareto_front" in best:
        return [*lines, *_pareto_lines(trials, params, best, counts, root)]
    values = best.get("values_by_seed") or []
    low, high = mean_ci(np.array(values)) if values else (np.nan, np.nan)
    interval = f" [95% t interval {low:.4g}, {high:.4g}]" if np.isfinite(low) else ""
    lines += [f"Objective: {best['direction']} `{best['objective']}` on the {best['split']} split, "
              f"the mean over {len(values)} seeds. {len(trials)} trials: {counts}.", "",
              f"**Best:** trial {best['trial']}, {best['value']:.4g}{interval}, with "
              f"{_settings(best['params'])}. Rerun it with:", "",
              f"```bash\n{best['command']}\n```", ""]  # fmt: skip
    ascending = best["direction"] == "minimize"
    shown = trials.sort_values("mean", ascending=ascending, na_position="last").head(TOP)
    lines += [f"Best {len(shown)} trials (`trials.csv` has all, with each seed's value):", "",
              _markdown(shown[["trial", "state", *params, "mean"]]), ""]  # fmt: skip
    importances = _importances(root)
    if importances:
        lines += ["Parameter importances (Optuna's fANOVA; they sum to 1):", "",
                  *(f"- `{k}`: {v:.2f}" for k, v in importances.items()), ""]  # fmt: skip
    _plot(trials, params, best, root)
    lines += ["![optimisation history](history.png)", "",
              "![objective against each parameter](params.png)", ""]  # fmt: skip
    return lines


def _settings(params: dict[str, Any]) -> str:
    return ", ".join(f"`{k}={v:.4g}`" if isinstance(v, float) else f"`{k}={v}`"
                     for k, v in params.items())  # fmt: skip


def _pareto_lines(
    trials: pd.DataFrame, params: list[str], best: dict[str, Any], counts: str, root: Path
) -> list[str]:
    """A multi-objective search: its Pareto front (no trial better on every objective) and a
    plot of the first two objectives."""
    objectives, directions = best["objective"], best["direction"]
    front = best["pareto_front"]
    wanted = ", ".join(f"{d} `{o}`" for o, d in zip(objectives, directions, strict=True))
    lines = [f"Objectives: {wanted} on the {best['split']} split, each the mean over its seeds. "
             f"{len(trials)} trials: {counts}.", "",
             f"**Pareto front:** {len(front)} trials that no other trial beats on every objective "
             "(each one's command reruns it: `best.yaml`).", ""]  # fmt: skip
    rows = trials[trials["trial"].isin([e["trial"] for e in front])]
    lines += [_markdown(rows[["trial", *params, *(f"{o}_mean" for o in objectives)]]), ""]
    _plot_pareto(trials, objectives, [e["trial"] for e in front], root)
    return [*lines, "![the first two objectives of every complete trial](pareto.png)", ""]


def _plot_pareto(trials: pd.DataFrame, objectives: list[str], front: list[int], root: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = (f"{o}_mean" for o in objectives[:2])
    done = trials[trials["state"] == "COMPLETE"]
    on = done[done["trial"].isin(front)].sort_values(x)
    fig, ax = plt.subplots(figsize=(5.2, 4))
    ax.plot(done[x], done[y], "o", color="0.6", label="trial (means over seeds)")
    ax.plot(on[x], on[y], "o-", color="C3", label="Pareto front")
    for row in on.itertuples():
        ax.annotate(str(row.trial), (getattr(row, x), getattr(row, y)), fontsize=8,
                    xytext=(3, 3), textcoords="offset points")  # fmt: skip
    ax.set_xlabel(objectives[0])
    ax.set_ylabel(objectives[1])
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(root / "pareto.png", dpi=110)
    plt.close(fig)


def _markdown(frame: pd.DataFrame) -> str:
    def cell(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    rows = ["| " + " | ".join(map(str, frame.columns)) + " |",
            "|" + "---|" * len(frame.columns)]  # fmt: skip
    rows += ["| " + " | ".join(cell(v) for v in r) + " |" for r in frame.itertuples(index=False)]
    return "\n".join(rows)


def _importances(root: Path) -> dict[str, float]:
    """fANOVA importances of the study's parameters (empty when they cannot be computed)."""
    try:
        import optuna
        from optuna.importance import FanovaImportanceEvaluator, get_param_importances
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = JournalStorage(JournalFileBackend(str(root / "optuna.journal")))
        study = optuna.load_study(study_name=None, storage=storage)
        found = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
    except Exception:  # no optuna, no journal, too few complete trials
        return {}
    return {k: float(v) for k, v in found.items()}


def _plot(trials: pd.DataFrame, params: list[str], best: dict[str, Any], root: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = trials[trials["state"] == "COMPLETE"]
    better = np.minimum if best["direction"] == "minimize" else np.maximum
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(done["trial"], done["mean"], "o", label="trial (mean over seeds)")
    ax.plot(done["trial"], better.accumulate(done["mean"].to_numpy()), "-", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(best["objective"])
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(root / "history.png", dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, max(len(params), 1), figsize=(3.2 * max(len(params), 1), 3.4),
                             squeeze=False)  # fmt: skip
    for ax, name in zip(axes[0], params, strict=False):
        ax.plot(done[name].astype(str) if done[name].dtype == object else done[name],
                done["mean"], "o")  # fmt: skip
        ax.set_xlabel(name)
        ax.set_ylabel(best["objective"])
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(root / "params.png", dpi=110)
    plt.close(fig)
