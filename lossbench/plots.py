"""The report's plots (matplotlib, no display needed): training curves, per-layer gradient-norm
heatmaps on one colour scale, and final metrics with their 95% t intervals."""

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


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
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
        smooth = _smooth(entry[key], window)
        x = np.arange(smooth.shape[1])
        line = ax.plot(x, np.nanmean(smooth, axis=0), label=f"{label} ({len(smooth)} seeds)")[0]
        if len(smooth) > 1:
            ax.fill_between(x, np.nanmin(smooth, axis=0), np.nanmax(smooth, axis=0),
                            color=line.get_color(), alpha=0.2, linewidth=0)  # fmt: skip
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

    fig, axes = plt.subplots(len(curves), 1, figsize=(8, 1.2 + 0.9 * len(curves) * 1.6),
                             squeeze=False)  # fmt: skip
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
            grids[label], aspect="auto", cmap="viridis", interpolation="nearest",
            extent=(0, steps, len(entry["layers"]) - 0.5, -0.5), vmin=low, vmax=high,
        )  # fmt: skip
        ax.set_yticks(range(len(entry["layers"])), entry["layers"])
        ax.set_title(label, fontsize="medium")
        ax.set_xlabel("optimizer step")
        fig.colorbar(image, ax=ax, label="log10 grad norm")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_metric_bars(comparison: pd.DataFrame, keys: list[str], metrics: list[str],
                     path: Path) -> None:  # fmt: skip
    """One panel per metric: the mean across seeds per variant, error bar = its 95% t
    interval (none with a single seed)."""
    import matplotlib.pyplot as plt

    labels = [variant_label(row, keys) for _, row in comparison.iterrows()]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        mean = comparison[f"{metric}_mean"].to_numpy(dtype="float64")
        low = comparison[f"{metric}_ci_low"].to_numpy(dtype="float64")
        high = comparison[f"{metric}_ci_high"].to_numpy(dtype="float64")
        err = np.nan_to_num(np.stack([mean - low, high - mean]).clip(min=0))
        ax.bar(range(len(labels)), mean, yerr=err, capsize=3, color="tab:blue", alpha=0.8)
        ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize="small")
        ax.set_title(metric)
        ax.set_ylabel(metric)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
