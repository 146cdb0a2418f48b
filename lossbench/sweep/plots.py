"""The report's plots (matplotlib, no display needed): training curves, per-layer gradient-norm
heatmaps on one colour scale, final metrics with their 95% t intervals, and reliability
diagrams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HEATMAP_BINS = 60


def variant_label(row: pd.Series, keys: list[str]) -> str:
    """A short name for a variant: its loss, then any other varying override."""
    parts = [str(row["loss"])] + [f"{k}={row[k]}" for k in keys if k != "loss"]
    return ", ".join(parts)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Rolling mean along the last axis (NaN-aware, same length)."""
    if window <= 1:
        return values
    frame = pd.DataFrame(values.T)
    return frame.rolling(window, min_periods=1).mean().to_numpy().T


def _spans_decades(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values) & (values > 0)]
    return finite.size > 0 and finite.max() / finite.min() > 30


def plot_curves(curves: dict[str, dict[str, Any]], key: str, ylabel: str, path: Path) -> int:
    """Mean across seeds (line) and min-max band per variant; returns the smoothing window."""
    import matplotlib.pyplot as plt

    steps = max(v[key].shape[1] for v in curves.values())
    window = max(1, steps // 100)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, entry in curves.items():
        smoothed = smooth(entry[key], window)
        x = np.arange(smoothed.shape[1])
        line = ax.plot(x, np.nanmean(smoothed, axis=0), label=f"{label} ({len(smoothed)} seeds)")[0]
        if len(smoothed) > 1:
            ax.fill_between(
                x,
                np.nanmin(smoothed, axis=0),
                np.nanmax(smoothed, axis=0),
                color=line.get_color(),
                alpha=0.2,
                linewidth=0,
            )
    if _spans_decades(np.concatenate([e[key].ravel() for e in curves.values()])):
        ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    suffix = f", rolling mean over {window} steps" if window > 1 else ""
    ax.set_ylabel(f"{ylabel}{suffix}")
    ax.set_title(f"{ylabel}: mean across seeds, band = min to max")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return window


def plot_layer_heatmap(curves: dict[str, dict[str, Any]], path: Path) -> None:
    """log10 of the per-layer gradient norm (mean across seeds) over binned steps."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(curves), 1, figsize=(8, 1.2 + 0.9 * len(curves) * 1.6), squeeze=False
    )
    grids = {}
    for label, entry in curves.items():
        mean = np.nanmean(entry["per_layer"], axis=0)  # (steps, layers)
        bins = np.array_split(np.arange(len(mean)), min(HEATMAP_BINS, len(mean)))
        with np.errstate(divide="ignore"):
            grids[label] = np.log10(np.stack([np.nanmean(mean[b], axis=0) for b in bins], axis=1))
    # One colour scale for every variant, so that equal colours mean equal norms.
    finite = np.concatenate([g[np.isfinite(g)] for g in grids.values()] or [np.zeros(1)])
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    for ax, (label, entry) in zip(axes[:, 0], curves.items(), strict=True):
        steps = entry["per_layer"].shape[1]
        image = ax.imshow(
            grids[label],
            aspect="auto",
            cmap="viridis",
            interpolation="nearest",
            extent=(0, steps, len(entry["layers"]) - 0.5, -0.5),
            vmin=low,
            vmax=high,
        )
        ax.set_yticks(range(len(entry["layers"])), entry["layers"])
        ax.set_title(label, fontsize="medium")
        ax.set_xlabel("optimizer step")
        fig.colorbar(image, ax=ax, label="log10 grad norm")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


PANELS_PER_ROW = 4


def figure_panels(n: int, width: float, height: float, labels: float = 0.0, **shared: Any) -> Any:
    """A figure of `n` panels of `width` x `height` inches, at most `PANELS_PER_ROW` a row
    (plus `labels` inches for the row labels), the grid's unused cells hidden. Returns the
    figure, the (rows, columns) axes and the `n` panels in order."""
    import matplotlib.pyplot as plt

    columns = min(n, PANELS_PER_ROW)
    n_rows = -(-n // columns)
    fig, axes = plt.subplots(
        n_rows,
        columns,
        figsize=(labels + width * columns, height * n_rows),
        squeeze=False,
        **shared,
    )
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes, list(axes.ravel()[:n])


# Each variant's own objective (final or validation loss) measures a different thing per variant:
# drawn side by side it would look comparable, so the metric panels leave it out.
OWN_OBJECTIVES = ("final_loss", "val_loss", "train_loss")
LABEL_WIDTH = 28  # characters of a variant label per line


def plot_metric_intervals(
    comparison: pd.DataFrame, keys: list[str], metrics: list[str], path: Path
) -> list[str]:
    """One panel per metric: each variant's mean across seeds (a point) and its 95% t interval
    (a line; none with a single seed), on an axis fitted to the values, so differences near 1
    stay visible. Variants are rows, their labels wrapped, shown once. Returns the metrics drawn
    (every one but the variants' own objectives)."""
    import textwrap

    import matplotlib.pyplot as plt

    drawn = [m for m in metrics if m not in OWN_OBJECTIVES]
    if not drawn:
        return []
    labels = [
        "\n".join(textwrap.wrap(variant_label(row, keys), LABEL_WIDTH, break_long_words=False))
        for _, row in comparison.iterrows()
    ]
    lines = sum(label.count("\n") + 1 for label in labels)
    fig, axes, panels = figure_panels(
        len(drawn), 2.8, max(1.6, 0.7 + 0.28 * lines), 2.4, sharey=True
    )
    rows = np.arange(len(labels))
    for ax, metric in zip(panels, drawn, strict=True):
        mean = comparison[f"{metric}_mean"].to_numpy(dtype="float64")
        low = comparison[f"{metric}_ci_low"].to_numpy(dtype="float64")
        high = comparison[f"{metric}_ci_high"].to_numpy(dtype="float64")
        err = np.nan_to_num(np.stack([mean - low, high - mean]).clip(min=0))
        ax.errorbar(mean, rows, xerr=err, fmt="o", capsize=3, color="tab:blue")
        ax.set_title(metric, fontsize="medium")
        ax.grid(axis="x", alpha=0.3)
        ax.margins(x=0.15, y=0.5 / max(len(labels), 1))
    for ax in axes[:, 0]:
        ax.set_yticks(rows, labels, fontsize="small")
    axes[0, 0].invert_yaxis()  # the comparison's order, top to bottom
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


def plot_reliability(bins: dict[str, tuple[np.ndarray, ...]], split: str, path: Path) -> None:
    """A reliability diagram per variant: the fraction of positives against the mean predicted
    P(y=1) in each equal-width bin (seeds pooled), the diagonal being perfect calibration;
    `bins` maps a variant to `metrics.reliability_bins` and its ECE."""
    import matplotlib.pyplot as plt

    fig, axes, panels = figure_panels(len(bins), 3.2, 3.3, sharex=True, sharey=True)
    for ax, (label, (mean_prob, positives, counts, ece)) in zip(panels, bins.items(), strict=True):
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
        ax.plot(mean_prob, positives, marker="o", color="tab:blue")
        ax.set_title(f"{label}\nECE {ece:.3f}, {int(counts.sum())} predictions", fontsize="small")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("mean predicted P(y=1)")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"fraction positive ({split})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
