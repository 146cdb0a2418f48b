"""Sweep results from disk: one row per job (summary.csv) and per variant across seeds
(comparison.csv).

Every job writes its own summary.json (and Hydra its .hydra/overrides.yaml) before and after it
trains, so aggregation reads only files: it works for failed jobs (Hydra skips
`on_multirun_end` when a job fails), for jobs run in other processes or on a cluster, and again
later on any folder (`lossbench-report`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossbench.store.resume import override_pair, read_overrides, sweep_jobs
from lossbench.store.run_folder import RunFolder, Status

if TYPE_CHECKING:  # pandas is imported where tables are built: `lossbench --help` stays fast
    import pandas as pd

JOB_COLUMNS = ["job", "status", "message"]
RESULT_COLUMNS = ["final_loss", "steps", "epochs", "steps_per_second", "train_seconds"]
SEED_KEY = "seed"
SPLIT_COLUMN = "split"  # the split a job's metrics were measured on


def job_folders(root: Path) -> list[Path]:
    """Folders under `root` (itself included) that hold a run's summary.json, in job order."""
    found = [p.parent for p in root.rglob("summary.json")]

    def order(p: Path) -> tuple[int, str]:
        head = p.name.split("_", 1)[0]
        return (int(head) if head.isdigit() else math.inf, str(p))  # type: ignore[return-value]

    return sorted(found, key=order)


def _overrides(job: Path, problems: list[str]) -> dict[str, str]:
    """The job's command-line overrides (from Hydra's .hydra/overrides.yaml), as key -> value;
    an unreadable file gives none, and says why in `problems`."""
    try:
        items = read_overrides(job)
    except ValueError as error:
        path = job / ".hydra" / "overrides.yaml"
        problems.append(f"{path}: unreadable, its job's settings are left out ({error})")
        return {}
    return dict(pair for pair in map(override_pair, items) if pair is not None)


def job_row(job: Path, root: Path, problems: list[str] | None = None) -> dict[str, Any]:
    """One job's row: its folder, overrides, status, message, results and final metrics (what
    cannot be read goes to `problems`)."""
    summary = RunFolder(job).read()
    status = str(summary.get("status", "unknown"))
    if status == Status.running:
        # Written when a job starts and replaced when it ends: the process died in between.
        summary["message"] = "the job stopped without writing its result (killed?)"
    row: dict[str, Any] = {"job": str(job.relative_to(root)) if job != root else job.name}
    row.update(_overrides(job, [] if problems is None else problems))
    row.setdefault("loss", summary.get("loss"))
    row.setdefault(SEED_KEY, summary.get("seed"))
    row["status"] = status
    row["message"] = summary.get("message", "")
    row["task"] = summary.get("task")
    for key in RESULT_COLUMNS:
        row[key] = summary.get(key)
    metrics, test = summary.get("metrics"), summary.get("test_metrics")
    if isinstance(metrics, dict) or isinstance(test, dict):
        # Judged on the held-out test split when the run has one (its losses stay validation's).
        row[SPLIT_COLUMN] = "test" if isinstance(test, dict) else "val"
    for part in (metrics, test):
        row.update(part if isinstance(part, dict) else {})
    shares = summary.get("gradient_shares")  # trainer.record_groups: `share_<by>_<name>[_phase]`
    row.update(shares if isinstance(shares, dict) else {})
    return row


def metrics_split(frame: pd.DataFrame) -> str:
    """Which split a summary frame's metrics come from: `test`, `val`, or `test and val` (a
    sweep whose runs differ in `data.test_fraction`)."""
    splits = sorted(set(frame[SPLIT_COLUMN].dropna())) if SPLIT_COLUMN in frame else []
    return " and ".join(reversed(splits)) or "val"


def summary_frame(root: Path) -> pd.DataFrame:
    """One row per job of the sweep in `root` (see `read_jobs`)."""
    return read_jobs(root)[0]


def read_jobs(root: Path) -> tuple[pd.DataFrame, list[str], list[str]]:
    """One row per job of the sweep in `root` (`resume.sweep_jobs`); the files that could not
    be read, each with its reason; the folders of jobs the sweep did not plan (another's)."""
    import pandas as pd

    problems: list[str] = []
    own, others = sweep_jobs(root, job_folders(root))
    rows = [job_row(job, root, problems) for job in own]
    # Settings before `status` in every row, whichever row has them (overrides can differ).
    settings = dict.fromkeys(k for row in rows for k in list(row)[: list(row).index("status")])
    rest = dict.fromkeys(k for row in rows for k in row if k not in settings)
    frame = pd.DataFrame(rows, columns=[*settings, *rest])
    if frame.empty:
        frame = pd.DataFrame(columns=[*JOB_COLUMNS, *RESULT_COLUMNS])
    return frame, problems, [str(p.relative_to(root)) for p in others]


def override_and_result_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The columns before `status` (job and overrides) and those after it (message, results)."""
    columns = list(frame.columns)
    status = columns.index("status")
    return columns[:status], columns[status + 1 :]


def variant_keys(frame: pd.DataFrame) -> list[str]:
    """The columns that tell variants apart: `loss`, then every override except the seed that
    takes more than one value in the sweep (see `settings_of`)."""
    return list(sweep_settings(frame)) or ["loss"]


def comparison_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Per variant: jobs, finished jobs, `n` (finished jobs) and, for the final loss, steps/s and
    every metric, the mean, standard deviation and 95% t interval of the mean across
    seeds (finished jobs only; see `lossbench.sweep.stats`)."""
    import pandas as pd

    from lossbench.sweep.stats import mean_ci

    if frame.empty:
        return pd.DataFrame(columns=["loss", "jobs", "ok"])
    keys = variant_keys(frame)
    _, results = override_and_result_columns(frame)
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
        ok = group[group["status"] == Status.ok]
        row["jobs"], row["ok"], row["n"] = len(group), len(ok), len(ok)
        for col in numeric:
            vals = pd.to_numeric(ok[col], errors="coerce")
            row[f"{col}_mean"] = vals.mean()
            row[f"{col}_std"] = vals.std(ddof=1) if vals.count() > 1 else float("nan")
            row[f"{col}_ci_low"], row[f"{col}_ci_high"] = mean_ci(vals.to_numpy())
        rows.append(row)
    return pd.DataFrame(rows)


# Columns that are no verdict's business: bookkeeping, speed, and each variant's own objective
# (a loss value measures a different thing for every variant).
def settings_of(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The keys that tell a sweep's variants apart, with the values each took: `loss`, then
    every other setting (not the seed) that takes more than one value across `rows`."""
    keys = list(dict.fromkeys(["loss", *(k for row in rows for k in row)]))
    settings = {}
    for key in keys:
        if key in ("job", SEED_KEY):
            continue
        values = list(dict.fromkeys(str(row.get(key)) for row in rows))
        if key == "loss" or len(values) > 1:
            settings[key] = [v for v in values if v not in ("None", "nan")]
    return settings


def sweep_settings(frame: pd.DataFrame) -> dict[str, list[str]]:
    """`settings_of` a summary frame's override columns."""
    if frame.empty or "loss" not in frame:
        return {}
    overrides, _ = override_and_result_columns(frame)
    plain = frame[overrides].astype(object).where(frame[overrides].notna(), None)
    return settings_of(plain.to_dict("records"))
