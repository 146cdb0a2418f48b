"""The search section of a report on an Optuna sweep folder (`hydra/sweeper=optuna`): the best
trial with its interval over seeds, the trials, parameter importances and two plots, all read
from `trials.csv`, `best.yaml` and the study's journal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from lossbench.stats import mean_ci

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
              and "_seed" not in c]  # fmt: skip
    lines = ["## Search", ""]
    if not isinstance(best, dict):
        return [*lines, f"No trial finished ({len(trials)} trials; see `trials.csv`).", ""]
    values = best.get("values_by_seed") or []
    low, high = mean_ci(np.array(values)) if values else (np.nan, np.nan)
    interval = f" [95% t interval {low:.4g}, {high:.4g}]" if np.isfinite(low) else ""
    settings = ", ".join(f"`{k}={v:.4g}`" if isinstance(v, float) else f"`{k}={v}`"
                         for k, v in best["params"].items())  # fmt: skip
    lines += [f"Objective: {best['direction']} `{best['objective']}` on the {best['split']}, the "
              f"mean over {len(values)} seeds. {len(trials)} trials, "
              f"{int((trials['state'] == 'COMPLETE').sum())} complete.", "",
              f"**Best:** trial {best['trial']}, {best['value']:.4g}{interval}, with {settings}. "
              "Rerun it with:", "", f"```bash\n{best['command']}\n```", ""]  # fmt: skip
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
