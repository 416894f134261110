"""The evaluation figures logged with every model version: feature importance, and by task the ROC curve and
calibration by decile (binary), residuals and predicted against actual (regression), the confusion matrix
(multiclass).

Built on ``matplotlib.figure.Figure`` directly, not pyplot: no global figure registry or GUI backend, so it is safe
in Dagster's worker processes and threads, and nothing leaks between calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _figure(width: float = 6.0, height: float = 5.0) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _title(ax, title: str) -> None:
    ax.set_title(title, fontsize=10)


def roc_figure(y, p, title: str) -> Figure:
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, label=f"model (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01))
    _title(ax, title)
    ax.legend(loc="lower right")
    return fig


def calibration_figure(deciles: pd.DataFrame, title: str) -> Figure:
    """Observed positive rate (target == 1) against mean score per decile; the diagonal is perfect calibration."""
    fig = _figure()
    ax = fig.add_subplot()
    top = float(max(deciles["mean_score"].max(), deciles["positive_rate"].max(), 0.01)) * 1.05
    ax.plot([0, top], [0, top], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(deciles["mean_score"], deciles["positive_rate"], marker="o", label="holdout deciles")
    for row in deciles.itertuples():
        ax.annotate(str(row.decile), (row.mean_score, row.positive_rate), textcoords="offset points", xytext=(4, -10))
    ax.set(xlabel="mean predicted probability", ylabel="observed positive rate", xlim=(0, top), ylim=(0, top))
    _title(ax, title)
    ax.legend(loc="upper left")
    return fig


def importance_figure(importance: pd.DataFrame, title: str, xlabel: str = "drop in ROC AUC when shuffled") -> Figure:
    """Horizontal bars of permutation importance (by default the drop in ROC AUC), most important on top."""
    ordered = importance.iloc[::-1]
    fig = _figure(7.0, max(3.0, 0.3 * len(ordered) + 1.2))
    ax = fig.add_subplot()
    positions = np.arange(len(ordered))
    ax.barh(positions, ordered["importance_mean"], xerr=ordered["importance_std"], color="tab:blue")
    ax.set_yticks(positions, ordered["feature"])
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set(xlabel=xlabel)
    _title(ax, title)
    return fig


def residuals_figure(y, p, title: str) -> Figure:
    """Residual (actual - predicted) against the predicted value: a band around 0 that does not fan out or bend is
    an unbiased model of even error."""
    y, p = np.asarray(y, dtype="float64"), np.asarray(p, dtype="float64")
    fig = _figure()
    ax = fig.add_subplot()
    ax.scatter(p, y - p, s=6, alpha=0.35, color="tab:blue", linewidths=0)
    ax.axhline(0, color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="predicted value", ylabel="residual (actual - predicted)")
    _title(ax, title)
    return fig


def predicted_vs_actual_figure(y, p, title: str) -> Figure:
    """Predicted against actual value, with the diagonal a perfect model would sit on."""
    y, p = np.asarray(y, dtype="float64"), np.asarray(p, dtype="float64")
    fig = _figure()
    ax = fig.add_subplot()
    low, high = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    ax.scatter(y, p, s=6, alpha=0.35, color="tab:blue", linewidths=0, label="holdout rows")
    ax.plot([low, high], [low, high], linestyle="--", color="grey", label="predicted = actual")
    ax.set(xlabel="actual value", ylabel="predicted value")
    _title(ax, title)
    ax.legend(loc="upper left")
    return fig


def confusion_figure(confusion: pd.DataFrame, title: str) -> Figure:
    """The confusion matrix (rows: actual class, columns: predicted class), each cell's count written in it and
    shaded by the share of its actual class (so a rare class's misses show as plainly as a common one's)."""
    counts = confusion.to_numpy(dtype="float64")
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    size = max(5.0, 0.6 * len(confusion) + 2.5)
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, column), count in np.ndenumerate(counts):
        color = "white" if shares[row, column] > 0.6 else "black"
        ax.text(column, row, f"{int(count)}", ha="center", va="center", fontsize=8, color=color)
    positions = np.arange(len(confusion))
    ax.set_xticks(positions, [str(c) for c in confusion.columns], rotation=45, ha="right")
    ax.set_yticks(positions, [str(c) for c in confusion.index])
    ax.set(xlabel="predicted class", ylabel="actual class")
    fig.colorbar(image, ax=ax, label="share of the actual class")
    _title(ax, title)
    return fig


def save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
