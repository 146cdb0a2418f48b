"""Write experiments/README.md from README.template.md and each study's committed results/, and
check that regenerated studies still say what it says.

Every number in the README is a placeholder of the template filled from a results/ file, so
the prose cannot drift from the tables behind it:

    {{VARIANT|METRIC|FIELD|FORMAT}}   a number: FIELD is `mean`, `low`, `high` (the 95% interval
                                      of the mean across seeds) or `diff`, `diff_low`,
                                      `diff_high` (the difference with the baseline and its
                                      interval); `-FIELD` negates it, `FIELD*100` scales it;
                                      FORMAT is Python's (`.2f`, `+.3g`)
    {{VARIANT|METRIC|verdict}}        the stated verdict (better, worse) or `not stated`
    {{seeds}}                         the number of seeds each variant finished
    {{table:result}}                  the means and intervals of the headline metrics
    {{table:verdicts}}                the stated verdicts

VARIANT is a label of verdicts.csv (`logit_adjusted`, `temperature, loss.temperature=2.0`) or the
part of one that singles it out (`loss.temperature=2.0`). A verdict is stated when it is clear,
in the same direction, natively and with XLA capped to AVX2 (results/<study>/verdicts.csv and
verdicts-avx2.csv, both written by `make studies`).

Usage:
    python experiments/tables.py                 write README.md
    python experiments/tables.py --check         exit 1 if README.md is not what it writes
    python experiments/tables.py --against DIR   exit 1 unless the studies regenerated under DIR
                                                 (DIR/<study>/) state the same verdicts and
                                                 every number within its tolerance
"""

from __future__ import annotations

import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
TEMPLATE = HERE / "README.template.md"
RESULTS = HERE / "results"
LOSS_VALUES = ("final_loss", "val_loss")  # each variant's own objective: no column, no verdict
CLEAR = ("better", "worse")
NOT_STATED = "not stated"
PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")


@dataclass
class Study:
    """One study's results: its comparison, its verdicts and the verdicts it states."""

    name: str
    summary: pd.DataFrame
    comparison: pd.DataFrame
    verdicts: pd.DataFrame
    stated: dict[tuple[str, str], str]  # (variant, metric) -> better | worse

    @classmethod
    def read(cls, folder: Path, cross_check: Path | None = None) -> Study:
        """The study in `folder`; its stated verdicts are those clear there and, when
        `cross_check` (another run's verdicts.csv) is given, clear the same way there too."""
        verdicts = pd.read_csv(folder / "verdicts.csv")
        stated = _clear(verdicts)
        if cross_check is not None:
            other = _clear(pd.read_csv(cross_check))
            stated = {k: v for k, v in stated.items() if other.get(k) == v}
        return cls(folder.name, pd.read_csv(folder / "summary.csv"),
                   pd.read_csv(folder / "comparison.csv"), verdicts, stated)  # fmt: skip

    def labels(self) -> list[str]:
        """Each comparison row's variant label, as verdicts.csv writes them."""
        from lossbench.sweep.aggregate import variant_keys

        keys = variant_keys(self.summary)
        return [
            ", ".join([str(row["loss"])] + [f"{k}={row[k]}" for k in keys if k != "loss"])
            for _, row in self.comparison.iterrows()
        ]

    def variant(self, spec: str, labels: list[str]) -> str:
        """The one label among `labels` that `spec` names."""
        if spec in labels:
            return spec
        parts = [p.strip() for p in spec.split(",")]
        found = [label for label in labels if all(p in label.split(", ") for p in parts)]
        if len(found) != 1:
            raise ValueError(f"{self.name}: {spec!r} names {len(found)} variants of {labels}")
        return found[0]

    def label_of(self, spec: str, field: str) -> str:
        """The label `spec` names among the verdicts' variants (a `diff` field) or the
        comparison's rows."""
        if field.startswith("diff"):
            return self.variant(spec, list(dict.fromkeys(self.verdicts["variant"])))
        return self.variant(spec, self.labels())

    def value(self, spec: str, metric: str, field: str) -> tuple[float, float]:
        """A number and the half-width of the 95% interval it comes with."""
        if field.startswith("diff"):
            row = self._verdict_row(spec, metric)
            half = (row["diff_ci_high"] - row["diff_ci_low"]) / 2
            name = {"diff": "diff_mean", "diff_low": "diff_ci_low", "diff_high": "diff_ci_high"}
            return float(row[name[field]]), float(half)
        labels = self.labels()
        row = self.comparison.iloc[labels.index(self.variant(spec, labels))]
        half = (row[f"{metric}_ci_high"] - row[f"{metric}_ci_low"]) / 2
        name = {"mean": "mean", "low": "ci_low", "high": "ci_high"}[field]
        return float(row[f"{metric}_{name}"]), float(half)

    def verdict(self, spec: str, metric: str) -> str:
        row = self._verdict_row(spec, metric)
        return self.stated.get((row["variant"], metric), NOT_STATED)

    def _verdict_row(self, spec: str, metric: str) -> pd.Series:
        labels = list(dict.fromkeys(self.verdicts["variant"]))
        label = self.variant(spec, labels)
        rows = self.verdicts[(self.verdicts["variant"] == label)
                             & (self.verdicts["metric"] == metric)]  # fmt: skip
        if rows.empty:
            raise ValueError(f"{self.name}: no verdict for {label} on {metric}")
        return rows.iloc[0]


def _clear(verdicts: pd.DataFrame) -> dict[tuple[str, str], str]:
    clear = verdicts[verdicts["verdict"].isin(CLEAR)]
    return {(r.variant, r.metric): r.verdict for r in clear.itertuples()}


@dataclass
class Number:
    """A placeholder's number: its field, scale and sign, and its format."""

    spec: str
    metric: str
    field: str
    scale: float
    sign: float
    fmt: str

    @classmethod
    def parse(cls, parts: list[str]) -> Number:
        spec, metric, field, fmt = parts
        sign = -1.0 if field.startswith("-") else 1.0
        field, _, scale = field.lstrip("-").partition("*")
        return cls(spec, metric, field, float(scale or 1), sign, fmt)

    def of(self, study: Study) -> tuple[float, float]:
        """The shown value and its tolerance, in half-widths h of its own 95% interval, plus
        half its last digit. A run whose float32 sums round otherwise is in effect a rerun: a
        mean lands within h of the first, and an interval's bound within 1.5 h (the spread
        across seeds, which sets h, is itself known to about +-50% at 95% with 5 to 20 seeds)."""
        value, half = study.value(self.spec, self.metric, self.field)
        shown = self.sign * self.scale * value
        bound = self.field in ("low", "high", "diff_low", "diff_high")
        spread = (1.5 if bound else 1.0) * self.scale * half
        return shown, spread + _half_unit(format(shown, self.fmt))


def _half_unit(text: str) -> float:
    """Half a unit of the last digit `text` shows (`0.94`: 0.005; `12`: 0.5)."""
    digits = re.search(r"\.(\d+)", text.split("e")[0])
    exponent = int(text.split("e")[1]) if "e" in text else 0
    return 0.5 * 10.0 ** (exponent - (len(digits.group(1)) if digits else 0))


def result_table(study: Study) -> str:
    """Mean [95% interval] across seeds of each headline metric, one row per variant."""
    from lossbench.console import headline_metrics

    comparison = study.comparison
    metrics = [m for m in headline_metrics(list(comparison.columns)) if m not in LOSS_VALUES]
    lines = ["| variant | n | " + " | ".join(metrics) + " |",
             "|" + "---|" * (2 + len(metrics))]  # fmt: skip
    for label, (_, row) in zip(study.labels(), comparison.iterrows(), strict=True):
        cells = [label, str(row["n"])]
        for m in metrics:
            mean, low, high = row[f"{m}_mean"], row[f"{m}_ci_low"], row[f"{m}_ci_high"]
            if mean != mean:  # a metric of another task (a sweep over bce and mse)
                cells.append("-")
                continue
            cells.append(f"{mean:.4g} [{low:.3g}, {high:.3g}]" if low == low else f"{mean:.4g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _breakdown(metric: str) -> bool:
    """Per-group and per-part metrics: in verdicts.csv, not in the README."""
    return re.search(r"_group_\d+$|^val_loss_", metric) is not None


def verdict_table(study: Study) -> str:
    """The stated verdicts of headline and summary metrics, in the order of verdicts.csv."""
    lines = ["| variant | metric | verdict | difference [95% CI] |", "|---|---|---|---|"]
    for _, r in study.verdicts.iterrows():
        verdict = study.stated.get((r["variant"], r["metric"]))
        if verdict is None or _breakdown(r["metric"]):
            continue
        diff = f"{r['diff_mean']:+.3g} [{r['diff_ci_low']:+.3g}, {r['diff_ci_high']:+.3g}]"
        lines.append(f"| {r['variant']} | {r['metric']} | {verdict} | {diff} |")
    if len(lines) == 2:
        lines.append("| (none) | | | |")
    return "\n".join(lines)


def _fill(match: re.Match[str], study: Study) -> str:
    parts = [p.strip() for p in match.group(1).split("|")]
    if parts == ["seeds"]:
        return str(int(study.comparison["n"].max()))
    if parts == ["table:result"]:
        return result_table(study)
    if parts == ["table:verdicts"]:
        return verdict_table(study)
    if len(parts) == 3 and parts[2] == "verdict":
        return study.verdict(parts[0], parts[1])
    number = Number.parse(parts)
    return format(number.of(study)[0], number.fmt)


def sections(text: str) -> list[tuple[str, str]]:
    """The template's `## <study>` sections (name "" for text outside any study)."""
    out = []
    for part in re.split(r"(?m)^(?=## )", text):
        name = part[3:].split("\n", 1)[0].strip() if part.startswith("## ") else ""
        out.append((name if (RESULTS / name).is_dir() else "", part))
    return out


def _committed(name: str) -> Study:
    folder = RESULTS / name
    avx2 = folder / "verdicts-avx2.csv"
    return Study.read(folder, avx2 if avx2.exists() else None)


GENERATED = (
    "<!-- Written by experiments/tables.py from README.template.md and results/: edit those. -->\n"
)


def rendered(template: str) -> str:
    """The README: the template with every study's placeholders filled from results/ (the
    template's own leading comment replaced by a line saying where the page comes from)."""
    if template.startswith("<!--"):
        template = template.split("-->\n", 1)[1]
    out = [GENERATED]
    for name, part in sections(template):
        if name:
            study = _committed(name)
            part = PLACEHOLDER.sub(lambda m, s=study: _fill(m, s), part)
            part = re.sub(r"(?ms)^\*\*Finding\.\*\*.*?(?=\n\n|\Z)", _reflowed, part)
        out.append(part)
    return "".join(out)


def _reflowed(match: re.Match[str]) -> str:
    """A finding's paragraph wrapped anew at 100 columns (its numbers are filled in now)."""
    return textwrap.fill(" ".join(match.group(0).split()), width=100, break_on_hyphens=False)


def largest_move(template: str, regenerated: Path) -> tuple[float, str]:
    """The largest move of a verdict's mean difference between the committed results and those
    under `regenerated`, in half-widths of its committed interval, and where it is."""
    largest, where = 0.0, "none"
    for name, _ in sections(template):
        if not name or not (regenerated / name / "verdicts.csv").exists():
            continue
        old = pd.read_csv(RESULTS / name / "verdicts.csv").set_index(["variant", "metric"])
        new = pd.read_csv(regenerated / name / "verdicts.csv").set_index(["variant", "metric"])
        half = (old["diff_ci_high"] - old["diff_ci_low"]) / 2
        move = ((new["diff_mean"] - old["diff_mean"]).abs() / half[half > 0]).dropna()
        if len(move) and move.max() > largest:
            largest, where = float(move.max()), f"{name}: {' on '.join(move.idxmax())}"
    return largest, where


def differences(template: str, regenerated: Path) -> list[str]:
    """What the studies regenerated under `regenerated` say differently from the README: a
    stated verdict that is not clear the same way there, or a number outside its tolerance."""
    found = []
    for name, part in sections(template):
        if not name:
            continue
        if not (regenerated / name / "verdicts.csv").exists():
            found.append(f"{name}: not regenerated under {regenerated}")
            continue
        committed, again = _committed(name), Study.read(regenerated / name)
        for (variant, metric), verdict in committed.stated.items():
            now = again.stated.get((variant, metric), _verdict_of(again, variant, metric))
            if now != verdict:
                found.append(f"{name}: {variant} on {metric}: stated {verdict}, now {now}")
        seen = set()
        for number in [*_quoted_numbers(part), *_table_numbers(committed)]:
            key = (committed.label_of(number.spec, number.field), number.metric, number.field)
            if key in seen:  # quoted in the prose and shown in a table: said once
                continue
            seen.add(key)
            shown, tolerance = number.of(committed)
            now, _ = number.of(again)
            if not abs(now - shown) <= tolerance:
                found.append(
                    f"{name}: {number.spec} {number.metric} {number.field}: "
                    f"{format(shown, number.fmt)} in the README, {format(now, number.fmt)} now "
                    f"(tolerance {tolerance:.3g})"
                )
    return found


def _quoted_numbers(part: str) -> list[Number]:
    """The number placeholders of a template section."""
    found = [[p.strip() for p in m.group(1).split("|")] for m in PLACEHOLDER.finditer(part)]
    return [Number.parse(parts) for parts in found if len(parts) == 4]


def _verdict_of(study: Study, variant: str, metric: str) -> str:
    rows = study.verdicts[(study.verdicts["variant"] == variant)
                          & (study.verdicts["metric"] == metric)]  # fmt: skip
    return str(rows.iloc[0]["verdict"]) if len(rows) else "missing"


def _table_numbers(study: Study) -> list[Number]:
    """The numbers of a study's two tables, as placeholders."""
    from lossbench.console import headline_metrics

    metrics = [m for m in headline_metrics(list(study.comparison.columns))
               if m not in LOSS_VALUES]  # fmt: skip
    numbers = [Number(label, m, field, 1.0, 1.0, ".3g") for label in study.labels()
               for m in metrics for field in ("mean", "low", "high")
               if study.comparison[f"{m}_ci_low"].notna().all()]  # fmt: skip
    numbers += [Number(variant, metric, field, 1.0, 1.0, "+.3g")
                for (variant, metric) in study.stated if not _breakdown(metric)
                for field in ("diff", "diff_low", "diff_high")]  # fmt: skip
    return numbers


def main(argv: list[str]) -> int:
    template = TEMPLATE.read_text()
    if argv[:1] == ["--against"]:
        found = [line for folder in argv[1:] for line in differences(template, Path(folder))]
        for line in found:
            print(f"studies-check: {line}", file=sys.stderr)
        for folder in argv[1:]:
            move, where = largest_move(template, Path(folder))
            print(f"studies-check: {folder}: the largest move of a mean difference is {move:.2f} "
                  f"of its committed 95% half-width ({where})")  # fmt: skip
        folders = ", ".join(argv[1:])
        print(f"studies-check: {len(found)} differences from experiments/README.md in {folders}")
        return 1 if found else 0
    text = rendered(template)
    if argv[:1] == ["--check"]:
        if README.read_text() != text:
            print("experiments/README.md is out of date: run python experiments/tables.py")
            return 1
        return 0
    README.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
