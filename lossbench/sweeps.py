"""Sweep results from disk: one row per job (summary.csv) and per variant across seeds
(comparison.csv).

Every job writes its own summary.json (and Hydra its .hydra/overrides.yaml) before and after it
trains, so aggregation reads only files: it works for failed jobs (Hydra skips
`on_multirun_end` when a job fails), for jobs run in other processes or on a cluster, and again
later on any folder (`lossbench-report`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:  # pandas is imported where tables are built: `lossbench --help` stays fast
    import pandas as pd

JOB_COLUMNS = ["job", "status", "message"]
RESULT_COLUMNS = ["final_loss", "steps", "epochs", "steps_per_second", "train_seconds"]
SEED_KEY = "seed"


def job_folders(root: Path) -> list[Path]:
    """Folders under `root` (itself included) that hold a run's summary.json, in job order."""
    found = [p.parent for p in root.rglob("summary.json")]

    def order(p: Path) -> tuple[int, str]:
        head = p.name.split("_", 1)[0]
        return (int(head) if head.isdigit() else math.inf, str(p))  # type: ignore[return-value]

    return sorted(found, key=order)


def _overrides(job: Path) -> dict[str, str]:
    """The job's command-line overrides (from Hydra's .hydra/overrides.yaml), as key -> value."""
    path = job / ".hydra" / "overrides.yaml"
    if not path.exists():
        return {}
    out = {}
    for item in yaml.safe_load(path.read_text()) or []:
        key, _, value = str(item).partition("=")
        out[key.lstrip("+~")] = value
    return out


def job_row(job: Path, root: Path) -> dict[str, Any]:
    """One job's row: its folder, overrides, status, message, results and final metrics."""
    try:
        summary = json.loads((job / "summary.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        summary = {"status": "unreadable", "message": f"summary.json: {error}"}
    if not isinstance(summary, dict):
        kind = type(summary).__name__
        summary = {"status": "unreadable", "message": f"summary.json: a {kind}, not an object"}
    status = summary.get("status", "unknown")
    if status == "running":
        # Written when a job starts and replaced when it ends: the process died in between.
        summary["message"] = "the job stopped without writing its result (killed?)"
    row: dict[str, Any] = {"job": str(job.relative_to(root)) if job != root else job.name}
    row.update(_overrides(job))
    row.setdefault("loss", summary.get("loss"))
    row.setdefault(SEED_KEY, summary.get("seed"))
    row["status"] = status
    row["message"] = summary.get("message", "")
    for key in RESULT_COLUMNS:
        row[key] = summary.get(key)
    metrics = summary.get("metrics")
    for key, value in (metrics if isinstance(metrics, dict) else {}).items():
        row[key] = value
    return row


def summary_frame(root: Path) -> pd.DataFrame:
    """One row per job found under `root`."""
    import pandas as pd

    rows = [job_row(job, root) for job in job_folders(root)]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=[*JOB_COLUMNS, *RESULT_COLUMNS])
    return frame


def _override_and_result_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The columns before `status` (job and overrides) and those after it (message, results)."""
    columns = list(frame.columns)
    status = columns.index("status")
    return columns[:status], columns[status + 1 :]


def variant_keys(frame: pd.DataFrame) -> list[str]:
    """The columns that tell variants apart: `loss`, then every override except the seed that
    takes more than one value in the sweep (overrides come before the status column)."""
    overrides, _ = _override_and_result_columns(frame)
    varying = [
        c
        for c in overrides
        if c not in ("job", "loss", SEED_KEY) and frame[c].nunique(dropna=False) > 1
    ]
    return ["loss", *varying]


def comparison_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Per variant: jobs, finished jobs, and mean and standard deviation across seeds of the
    final loss, steps/s and every metric (finished jobs only)."""
    import pandas as pd

    if frame.empty:
        return pd.DataFrame(columns=["loss", "jobs", "ok"])
    keys = variant_keys(frame)
    _, results = _override_and_result_columns(frame)
    numeric = [
        c
        for c in results
        if c not in ("message", "steps", "epochs")
        and pd.to_numeric(frame[c], errors="coerce").notna().any()
    ]
    rows = []
    for values, group in frame.groupby(keys, sort=False, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        row: dict[str, Any] = dict(zip(keys, values, strict=True))
        ok = group[group["status"] == "ok"]
        row["jobs"], row["ok"] = len(group), len(ok)
        for col in numeric:
            vals = pd.to_numeric(ok[col], errors="coerce")
            row[f"{col}_mean"] = vals.mean()
            row[f"{col}_std"] = vals.std(ddof=1) if vals.count() > 1 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def aggregate(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write summary.csv and comparison.csv into `root`; return both tables."""
    from lossbench.tables import write_csv

    summary = summary_frame(root)
    comparison = comparison_frame(summary)
    write_csv(summary, root / "summary.csv")
    write_csv(comparison, root / "comparison.csv")
    return summary, comparison


def failed_jobs(summary: pd.DataFrame) -> pd.DataFrame:
    """The jobs whose status is not ok."""
    if summary.empty:
        return summary
    return summary[summary["status"] != "ok"]
