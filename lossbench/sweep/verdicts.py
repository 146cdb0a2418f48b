"""A sweep's verdicts: which loss is the baseline (`report.baseline`, else the plain BCE or MSE
of each task), each variant against it on every compared metric paired by seed
(`lossbench.sweep.stats`), why a sweep has no verdicts, and the sentences that say them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lossbench.errors import ConfigError, did_you_mean
from lossbench.store.run_folder import Status
from lossbench.sweep.aggregate import (
    SEED_KEY,
    override_and_result_columns,
    sweep_settings,
    variant_keys,
)

if TYPE_CHECKING:
    import pandas as pd


NOT_COMPARED = re.compile(
    r"^(final_loss|train_loss|val_loss.*|steps|epochs|steps_per_second|"
    r"train_seconds|split|share_.*)$"
)
VERDICT_COLUMNS = [
    "variant",
    "baseline",
    "metric",
    "n",
    "diff_mean",
    "diff_ci_low",
    "diff_ci_high",
    "p_improvement",
    "verdict",
    "seeds_needed",
]
# A task's plain loss, the default baseline (the first of these in the sweep).
PLAIN_LOSSES = ("bce", "mse")
BASELINE_KEY = "report.baseline"


def compared_metrics(frame: pd.DataFrame) -> list[str]:
    """The quality metrics of a summary frame (what verdicts compare)."""
    import pandas as pd

    _, results = override_and_result_columns(frame)
    return [
        c
        for c in results
        if c != "message"
        and not NOT_COMPARED.match(c)
        and pd.to_numeric(frame[c], errors="coerce").notna().any()
    ]


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
        parts = [
            verdict_frame(part.reset_index(drop=True))
            for _, part in frame.groupby("task", sort=False)
        ]
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
            base = base[
                [_same(v, setting[k]) or (pd.isna(v) and pd.isna(setting[k])) for v in base[k]]
            ]
        if base.empty:
            continue
        label = ", ".join(
            [str(setting["loss"])] + [f"{k}={setting[k]}" for k in keys if k != "loss"]
        )
        for metric in metrics:
            verdict = compare(_by_seed(group, metric), _by_seed(base, metric), metric)
            if verdict is not None:
                rows.append(
                    {"variant": label, "baseline": name, "metric": metric, **verdict.__dict__}
                )
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
        return (
            f"no verdicts: name the baseline to compare with (`{BASELINE_KEY}=NAME`, or "
            f"`lossbench-report DIR --baseline NAME`); this sweep ran no plain loss "
            f"({', '.join(PLAIN_LOSSES)})."
        )
    key, wanted = resolve_baseline(settings, baseline)
    runs = frame[[_same(v, wanted) for v in frame[key].astype(str)]]
    if not (runs["status"] == Status.ok).any():
        return (
            f"no verdicts: the baseline `{baseline}` did not finish in any seed "
            f"({len(runs)} jobs; see summary.csv)."
        )
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
            unclear.append(
                f"`{r.variant}` vs `{r.baseline}` on {r.metric}: too few seeds for "
                f"a verdict ({_signed(r.diff_mean)}, {pairs}; a verdict needs at "
                f"least {MIN_SEEDS} seeds on each side)."
            )
            continue
        ci = f"95% CI {_signed(r.diff_ci_low)} to {_signed(r.diff_ci_high)}"
        numbers = f"{_signed(r.diff_mean)}, {ci}, {pairs}, P(improvement) {r.p_improvement:.2f}"
        if r.verdict in ("better", "worse"):
            clear.append(
                f"`{r.variant}` is {r.verdict} than `{r.baseline}` on {r.metric} ({numbers})."
            )
        elif r.diff_ci_low == r.diff_ci_high == 0:
            unclear.append(
                f"`{r.variant}` and `{r.baseline}` give the same {r.metric} on every "
                f"seed ({pairs})."
            )
        else:
            needed = r.seeds_needed
            if needed == needed and needed is not None:
                more = f" about {int(needed)} paired seeds would likely settle it."
            elif not can_plan(int(r.n)):
                more = " too few seeds to estimate how many would settle it."
            else:
                more = (
                    " no practical number of seeds would settle it (the difference is "
                    "small next to the spread between seeds)."
                )
            why = f": {FRAGILE_WHY}" if r.verdict == FRAGILE else ""
            unclear.append(
                f"`{r.variant}` vs `{r.baseline}` on {r.metric}: {r.verdict} "
                f"({numbers}){why};{more}"
            )
    return clear + unclear


def _by_seed(group: pd.DataFrame, metric: str) -> dict[int, float]:
    import pandas as pd

    values = pd.to_numeric(group[metric], errors="coerce")
    seeds = pd.to_numeric(group[SEED_KEY], errors="coerce")
    return {int(s): float(v) for s, v in zip(seeds, values, strict=True) if s == s}
