"""Plots written into a run directory (matplotlib, Agg backend, atomic PNG writes)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dltk.io import atomic_path  # noqa: E402


def _grid(n: int) -> tuple[int, int]:
    cols = min(4, max(1, n))
    return math.ceil(n / cols), cols


def save_figure(fig: plt.Figure, path: Path, dpi: int = 110) -> Path:
    """Write a matplotlib figure as PNG atomically (never a half-written file) and close it."""
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(fig)
    return Path(path)


_save = save_figure


def _panels(n: int, width: float, height: float) -> tuple[Any, Any]:
    """A figure with a grid of ``n`` panels of ``width`` x ``height`` inches (spare cells hidden)."""
    rows, cols = _grid(n)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, axes


def _binary_panels(y_true: np.ndarray, y_prob: np.ndarray, task_names: list[str], path: Path, title: str,
                   draw: Callable[[Any, np.ndarray, np.ndarray], str], labels: tuple[str, str],
                   ylim: float = 1.0) -> Path:
    """One panel per task over its labelled samples; ``draw(ax, t, p)`` plots a curve and returns
    the score text for the panel title (with counts)."""
    fig, axes = _panels(len(task_names), 3.2, 3.0)
    for j, (task, ax) in enumerate(zip(task_names, axes.flat)):
        mask = ~np.isnan(y_true[:, j])
        t, p = y_true[mask, j], y_prob[mask, j]
        if len(np.unique(t)) == 2:
            score = draw(ax, t, p)
            ax.set_title(f"{task}\n{score} (n={mask.sum()}, pos={int(t.sum())})", fontsize=8)
        else:
            ax.set_title(f"{task}\n(one class only)", fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, ylim)
        ax.tick_params(labelsize=7)
        ax.set_xlabel(labels[0], fontsize=7)
        ax.set_ylabel(labels[1], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def roc_curves(y_true: np.ndarray, y_prob: np.ndarray, task_names: list[str], path: Path,
               title: str = "") -> Path:
    """One ROC panel per task over its labelled samples, AUC and counts in each title."""
    from sklearn.metrics import roc_auc_score, roc_curve

    def draw(ax: Any, t: np.ndarray, p: np.ndarray) -> str:
        ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
        fpr, tpr, _ = roc_curve(t, p)
        ax.plot(fpr, tpr, lw=1.5)
        return f"AUC {roc_auc_score(t, p):.3f}"

    return _binary_panels(y_true, y_prob, task_names, path, title, draw,
                          ("false positive rate", "true positive rate"))


def pr_curves(y_true: np.ndarray, y_prob: np.ndarray, task_names: list[str], path: Path,
              title: str = "") -> Path:
    """One precision-recall panel per task over its labelled samples; average precision and the
    positive rate (the chance level, dashed) in each title."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    def draw(ax: Any, t: np.ndarray, p: np.ndarray) -> str:
        precision, recall, _ = precision_recall_curve(t, p)
        ax.plot(recall, precision, lw=1.5)
        ax.axhline(t.mean(), color="0.7", lw=0.8, ls="--")
        return f"AP {average_precision_score(t, p):.3f}"

    return _binary_panels(y_true, y_prob, task_names, path, title, draw, ("recall", "precision"), ylim=1.02)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str], path: Path,
                     title: str = "") -> Path:
    """Confusion matrix of class indices: counts in each cell, colour = row-normalised recall, so
    rare classes stay visible; per-class recall on the right."""
    from sklearn.metrics import confusion_matrix as sk_confusion

    n = len(class_names)
    cm = sk_confusion(np.asarray(y_true, int), np.asarray(y_pred, int), labels=np.arange(n))
    recall = cm / np.clip(cm.sum(axis=1, keepdims=True), 1, None)
    size = max(3.5, 0.55 * n + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if recall[i, j] > 0.6 else "black")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), [f"{c} ({r:.2f})" for c, r in zip(class_names, recall.diagonal())], fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (recall)")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def parity(y_true: np.ndarray, y_pred: np.ndarray, task_names: list[str], path: Path,
           title: str = "") -> Path:
    """Predicted vs measured per task, with RMSE in each title."""
    fig, axes = _panels(len(task_names), 3.4, 3.2)
    for j, (task, ax) in enumerate(zip(task_names, axes.flat)):
        mask = ~np.isnan(y_true[:, j])
        t, p = y_true[mask, j], y_pred[mask, j]
        lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
        ax.plot([lo, hi], [lo, hi], color="0.7", lw=0.8, ls="--")
        ax.scatter(t, p, s=6, alpha=0.6)
        rmse = float(np.sqrt(np.mean((t - p) ** 2)))
        ax.set_title(f"{task}\nRMSE {rmse:.3f} (n={mask.sum()})", fontsize=8)
        ax.set_xlabel("measured", fontsize=7)
        ax.set_ylabel("predicted", fontsize=7)
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def learning_curves(metrics_csv: Path, path: Path, primary: str, mode: str = "max") -> Path | None:
    """Training and validation loss, and the validation score, per epoch (from CSVLogger)."""
    if not metrics_csv.is_file():
        return None
    df = pd.read_csv(metrics_csv)
    if "epoch" not in df:
        return None
    per_epoch = df.groupby("epoch").mean(numeric_only=True)
    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(9, 3.4))
    for key, label in [("train/loss", "train"), ("val/loss", "validation")]:
        if key in per_epoch:
            series = per_epoch[key].dropna()
            ax_loss.plot(series.index, series.values, marker=".", label=label)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend(fontsize=8)
    series = per_epoch[primary].dropna() if primary in per_epoch else pd.Series(dtype=float)
    if not series.empty:
        ax_score.plot(series.index, series.values, marker=".", color="C2")
        best = series.idxmax() if mode == "max" else series.idxmin()
        ax_score.axvline(best, color="0.6", ls=":", lw=1)
        ax_score.set_title(f"best {primary} {series[best]:.3f} at epoch {best}", fontsize=9)
    ax_score.set_xlabel("epoch")
    ax_score.set_ylabel(primary)
    fig.tight_layout()
    return _save(fig, path)
