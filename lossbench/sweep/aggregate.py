"""Sweep results from disk: one row per job (summary.csv) and per variant across seeds
(comparison.csv).

Every job writes its own summary.json (and Hydra its .hydra/overrides.yaml) before and after it
trains, so aggregation reads only files: it works for failed jobs (Hydra skips
`on_multirun_end` when a job fails), for jobs run in other processes or on a cluster, and again
later on any folder (`lossbench-report`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossbench.errors import ConfigError, did_you_mean
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
    """One row per job of the sweep in `root` (`resume.sweep_jobs`); `attrs["problems"]` names
    the files that could not be read, `attrs["left_out"]` the folders of jobs it did not plan."""
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
    frame.attrs["problems"] = problems  # files that could not be read, each with its reason
    frame.attrs["left_out"] = [str(p.relative_to(root)) for p in others]  # another sweep's
    return frame


def _override_and_result_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
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
NOT_COMPARED = re.compile(r"^(final_loss|train_loss|val_loss.*|steps|epochs|steps_per_second|"
                          r"train_seconds|split|share_.*)$")  # fmt: skip
VERDICT_COLUMNS = [
    "variant", "baseline", "metric", "n", "diff_mean", "diff_ci_low", "diff_ci_high",
    "p_improvement", "verdict", "seeds_needed",
]  # fmt: skip
# A task's plain loss, the default baseline (the first of these in the sweep).
PLAIN_LOSSES = ("bce", "mse")
BASELINE_KEY = "report.baseline"


def compared_metrics(frame: pd.DataFrame) -> list[str]:
    """The quality metrics of a summary frame (what verdicts compare)."""
    import pandas as pd

    _, results = _override_and_result_columns(frame)
    return [c for c in results if c != "message" and not NOT_COMPARED.match(c)
            and pd.to_numeric(frame[c], errors="coerce").notna().any()]  # fmt: skip


def default_baseline(frame: pd.DataFrame) -> str | None:
    """The task's plain loss when the sweep ran it (bce, mse), else None."""
    present = set(frame["loss"].astype(str)) if "loss" in frame else set()
    return next((name for name in PLAIN_LOSSES if name in present), None)


def _same(a: object, b: object) -> bool:
    """Equal settings, numbers compared as numbers ("1" and "1.0" are the same temperature)."""
    if str(a) == str(b):
        return True
    try:
        return float(str(a)) == float(str(b))
    except ValueError:
        return False


def resolve_baseline(
    settings: dict[str, list[str]], text: str, key: str = BASELINE_KEY
) -> tuple[str, str]:
    """The setting (key, value) a baseline names among a sweep's `settings` (each key that tells
    variants apart, `loss` first, with the values the sweep ran).

    `text` is a loss (`bce`), any setting's value (`losses/mine.py:my_loss`), or a setting as
    `KEY=VALUE` or `KEY:VALUE` (`loss.temperature:1.0`, which Hydra takes unquoted).

    Raises:
        ConfigError: naming `key`, the baselines the sweep offers, and `text`.
    """
    candidates = []
    if text.startswith("loss=") or text.startswith("loss:"):
        candidates.append(("loss", text[5:]))
    candidates += [(k, text) for k in settings]
    for sep in "=:":
        if sep in text:
            name, _, value = text.partition(sep)
            candidates.append((name.strip().lstrip("+"), value.strip()))
    for name, value in candidates:
        for ran in settings.get(name, []):
            if _same(ran, value):
                return name, str(ran)
    offered = [str(v) for v in settings.get("loss", [])] + [
        f"{k}:{v}" for k, values in settings.items() if k != "loss" for v in values
    ]
    raise ConfigError(
        key, f"a loss or setting this sweep ran ({', '.join(offered) or 'none'})", text
    ).with_hint(did_you_mean(text, offered))


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
    overrides, _ = _override_and_result_columns(frame)
    plain = frame[overrides].astype(object).where(frame[overrides].notna(), None)
    return settings_of(plain.to_dict("records"))


def verdict_frame(frame: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """One row per (variant, metric): the variant against the baseline with the same other
    settings, paired by seed (see `lossbench.sweep.stats.compare`).

    `baseline` is what `resolve_baseline` reads; None: the task's plain loss when the sweep
    ran it (no verdicts otherwise). A sweep over several tasks (bce beside mse) compares each
    task's variants with that task's own plain loss.

    Raises:
        ConfigError: a baseline the sweep did not run.
    """
    import pandas as pd

    from lossbench.sweep.stats import compare

    if frame.empty:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    if baseline is None and "task" in frame and frame["task"].nunique() > 1:
        parts = [verdict_frame(part.reset_index(drop=True))
                 for _, part in frame.groupby("task", sort=False)]  # fmt: skip
        return pd.concat([p for p in parts if len(p)] or [parts[0]], ignore_index=True)
    baseline = baseline or default_baseline(frame)
    if baseline is None:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    key, wanted = resolve_baseline(sweep_settings(frame), baseline)
    keys = variant_keys(frame)
    others = [k for k in keys if k != key]
    ok = frame[frame["status"] == Status.ok]
    metrics = compared_metrics(frame)
    name = wanted if key == "loss" else f"{key}={wanted}"
    rows = []
    for values, group in ok.groupby(keys, sort=False, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        setting = dict(zip(keys, values, strict=True))
        if _same(setting[key], wanted):
            continue
        base = ok[[_same(v, wanted) for v in ok[key]]]
        for k in others:
            base = base[[_same(v, setting[k]) or (pd.isna(v) and pd.isna(setting[k]))
                         for v in base[k]]]  # fmt: skip
        if base.empty:
            continue
        label = ", ".join(
            [str(setting["loss"])] + [f"{k}={setting[k]}" for k in keys if k != "loss"]
        )
        for metric in metrics:
            verdict = compare(_by_seed(group, metric), _by_seed(base, metric), metric)
            if verdict is not None:
                rows.append({"variant": label, "baseline": name, "metric": metric,
                             **verdict.__dict__})  # fmt: skip
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def why_no_verdicts(frame: pd.DataFrame, baseline: str | None) -> str | None:
    """Why a sweep has no verdicts, in one sentence; None when it has some or needs none."""
    if frame.empty or "loss" not in frame:
        return None
    settings = sweep_settings(frame)
    if sum(len(v) for v in settings.values()) - (len(settings) - 1) < 2:
        return None  # a single variant: nothing to compare
    baseline = baseline or default_baseline(frame)
    if baseline is None:
        return (f"no verdicts: name the baseline to compare with (`{BASELINE_KEY}=NAME`, or "
                f"`lossbench-report DIR --baseline NAME`); this sweep ran no plain loss "
                f"({', '.join(PLAIN_LOSSES)}).")  # fmt: skip
    key, wanted = resolve_baseline(settings, baseline)
    runs = frame[[_same(v, wanted) for v in frame[key].astype(str)]]
    if not (runs["status"] == Status.ok).any():
        return (f"no verdicts: the baseline `{baseline}` did not finish in any seed "
                f"({len(runs)} jobs; see summary.csv).")  # fmt: skip
    return None


def _signed(x: float) -> str:
    return f"{x:+.3g}"


def describe_verdicts(verdicts: pd.DataFrame, metrics: list[str] | None = None) -> list[str]:
    """One sentence per verdict on `metrics` (all when None): clear ones first, then the fragile
    and unclear ones with the seeds a clear answer would likely need (when it can be estimated)."""
    from lossbench.sweep.stats import FRAGILE, FRAGILE_WHY, MIN_SEEDS, TOO_FEW, can_plan

    if verdicts.empty:
        return []
    rows = verdicts if metrics is None else verdicts[verdicts["metric"].isin(metrics)]
    clear, unclear = [], []
    for r in rows.itertuples():
        pairs = f"{r.n} paired seed{'s' if r.n != 1 else ''}" if r.n else "unpaired"
        if r.verdict == TOO_FEW:
            unclear.append(f"`{r.variant}` vs `{r.baseline}` on {r.metric}: too few seeds for "
                           f"a verdict ({_signed(r.diff_mean)}, {pairs}; a verdict needs at "
                           f"least {MIN_SEEDS} seeds on each side).")  # fmt: skip
            continue
        ci = f"95% CI {_signed(r.diff_ci_low)} to {_signed(r.diff_ci_high)}"
        numbers = f"{_signed(r.diff_mean)}, {ci}, {pairs}, P(improvement) {r.p_improvement:.2f}"
        if r.verdict in ("better", "worse"):
            clear.append(f"`{r.variant}` is {r.verdict} than `{r.baseline}` on {r.metric} "
                         f"({numbers}).")  # fmt: skip
        elif r.diff_ci_low == r.diff_ci_high == 0:
            unclear.append(f"`{r.variant}` and `{r.baseline}` give the same {r.metric} on every "
                           f"seed ({pairs}).")  # fmt: skip
        else:
            needed = r.seeds_needed
            if needed == needed and needed is not None:
                more = f" about {int(needed)} paired seeds would likely settle it."
            elif not can_plan(int(r.n)):
                more = " too few seeds to estimate how many would settle it."
            else:
                more = (" no practical number of seeds would settle it (the difference is "
                        "small next to the spread between seeds).")  # fmt: skip
            why = f": {FRAGILE_WHY}" if r.verdict == FRAGILE else ""
            unclear.append(f"`{r.variant}` vs `{r.baseline}` on {r.metric}: {r.verdict} "
                           f"({numbers}){why};{more}")  # fmt: skip
    return clear + unclear


def _by_seed(group: pd.DataFrame, metric: str) -> dict[int, float]:
    import pandas as pd

    values = pd.to_numeric(group[metric], errors="coerce")
    seeds = pd.to_numeric(group[SEED_KEY], errors="coerce")
    return {int(s): float(v) for s, v in zip(seeds, values, strict=True) if s == s}


def sweep_tables(
    root: Path, baseline: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The summary, comparison and verdicts of the job folders under `root` (nothing written)."""
    summary = summary_frame(root)
    return summary, comparison_frame(summary), verdict_frame(summary, baseline)


def write_sweep_tables(root: Path, summary: pd.DataFrame, comparison: pd.DataFrame,
                       verdicts: pd.DataFrame) -> None:  # fmt: skip
    """Write summary.csv, comparison.csv and verdicts.csv into `root`."""
    from lossbench.store.tables import write_csv

    write_csv(summary, root / "summary.csv")
    write_csv(comparison, root / "comparison.csv")
    write_csv(verdicts, root / "verdicts.csv")


def aggregate(
    root: Path, baseline: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Write summary.csv, comparison.csv and verdicts.csv into `root`; return the three."""
    tables = sweep_tables(root, baseline)
    write_sweep_tables(root, *tables)
    return tables


def failed_jobs(summary: pd.DataFrame) -> pd.DataFrame:
    """The jobs whose status is not ok."""
    return summary if summary.empty else summary[summary["status"] != Status.ok]
