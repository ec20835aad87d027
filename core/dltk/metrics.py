"""Masked multitask metrics (missing labels are NaN and never count), on torchmetrics.

One :class:`MultitaskMetrics` accumulates predictions and targets (synchronised across processes
as a concatenation, so DDP results equal single-process ones) and computes, per task and as the
mean over tasks:

- classification: ``auroc`` and ``auprc`` (average precision), each over the labelled samples
  of that task only; a task whose labelled samples hold a single class is skipped in the mean;
- regression: ``rmse``, ``mae`` and ``r2``;
- multiclass (one target, ``C`` classes, e.g. cell phenotypes or per-frame behaviours):
  ``accuracy``, ``balanced_accuracy`` (mean per-class recall over the classes present in the
  targets), ``macro_f1`` (over every class), ``f1/<class>`` per class and ``auroc`` (macro
  one-vs-rest over the classes present). Predictions are probabilities ``(N, C)`` or
  ``(N, T, C)``; targets class indices ``(N,)``/``(N, 1)`` or ``(N, T)``, NaN = unlabelled.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.functional.classification import binary_auroc, binary_average_precision
from torchmetrics.functional.regression import mean_absolute_error, mean_squared_error, r2_score
from torchmetrics.utilities import dim_zero_cat

TaskType = Literal["classification", "regression", "multiclass"]

PRIMARY = {"classification": ("auroc", "max"), "regression": ("rmse", "min"),
           "multiclass": ("macro_f1", "max")}


def flatten_multiclass(preds: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``(N[, T], C)`` probabilities and ``(N[, T])`` class indices -> the labelled rows only:
    ``(M, C)`` and integer ``(M,)``."""
    p = np.asarray(preds.detach().float().cpu() if isinstance(preds, torch.Tensor) else preds, dtype=np.float64)
    t = np.asarray(target.detach().float().cpu() if isinstance(target, torch.Tensor) else target, dtype=np.float64)
    p = p.reshape(-1, p.shape[-1])
    t = t.reshape(-1)
    if len(t) != len(p):
        raise ValueError(f"multiclass targets {t.shape} do not match predictions {p.shape}")
    keep = ~np.isnan(t)
    return p[keep], t[keep].astype(np.int64)


def multiclass_metrics(preds: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray,
                       class_names: list[str]) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro-F1, per-class F1 and macro one-vs-rest ROC-AUC
    (scikit-learn's implementations) over the labelled entries."""
    from sklearn.metrics import accuracy_score, f1_score, recall_score, roc_auc_score

    p, t = flatten_multiclass(preds, target)
    n = len(class_names)
    out: dict[str, float] = {}
    if len(t) == 0:
        return {"accuracy": math.nan, "balanced_accuracy": math.nan, "macro_f1": math.nan, "auroc": math.nan}
    pred = p.argmax(axis=1)
    present = np.unique(t)
    out["accuracy"] = float(accuracy_score(t, pred))
    out["balanced_accuracy"] = float(recall_score(t, pred, labels=present, average="macro", zero_division=0))
    f1 = f1_score(t, pred, labels=np.arange(n), average=None, zero_division=0)
    out["macro_f1"] = float(np.mean(f1))
    for name, value in zip(class_names, f1):
        out[f"f1/{name}"] = float(value)
    aucs = []
    for c in present:
        y = (t == c).astype(int)
        if 0 < y.sum() < len(y):
            aucs.append(roc_auc_score(y, p[:, c]))
    out["auroc"] = float(np.mean(aucs)) if aucs else math.nan
    return out


def compute_metrics(preds: torch.Tensor, target: torch.Tensor, task_type: TaskType,
                    task_names: list[str], class_names: list[str] | None = None) -> dict[str, float]:
    """Per-task and mean metrics. ``preds`` are probabilities (classification, multiclass) or values.

    Returns a flat dict: ``{"auroc": mean, "auroc/<task>": value, ...}``; NaN where a task has no
    usable labels. Multiclass needs ``class_names`` and returns :func:`multiclass_metrics`.
    """
    if task_type == "multiclass":
        if not class_names:
            raise ValueError("multiclass metrics need class_names")
        return multiclass_metrics(preds, target, class_names)
    preds = preds.detach().float().cpu()
    target = target.detach().float().cpu()
    if preds.ndim == 1:
        preds, target = preds[:, None], target[:, None]
    out: dict[str, float] = {}
    names = ("auroc", "auprc") if task_type == "classification" else ("rmse", "mae", "r2")
    per: dict[str, list[float]] = {n: [] for n in names}
    for j, task in enumerate(task_names):
        mask = ~torch.isnan(target[:, j])
        p, t = preds[mask, j], target[mask, j]
        values: dict[str, float]
        if task_type == "classification":
            if t.numel() == 0 or t.min() == t.max():
                values = {"auroc": math.nan, "auprc": math.nan}
            else:
                ti = t.long()
                values = {"auroc": float(binary_auroc(p, ti)), "auprc": float(binary_average_precision(p, ti))}
        else:
            if t.numel() < 2:
                values = {"rmse": math.nan, "mae": math.nan, "r2": math.nan}
            else:
                values = {"rmse": float(mean_squared_error(p, t, squared=False)),
                          "mae": float(mean_absolute_error(p, t)), "r2": float(r2_score(p, t))}
        for name, value in values.items():
            out[f"{name}/{task}"] = value
            per[name].append(value)
    for name, values in per.items():
        finite = [v for v in values if not math.isnan(v)]
        out[name] = sum(finite) / len(finite) if finite else math.nan
    return {k: out[k] for k in sorted(out, key=lambda k: ("/" in k, k))}


class MultitaskMetrics(Metric):
    """Accumulates (preds, target) for masked multitask metrics; see :func:`compute_metrics`."""

    full_state_update = False

    def __init__(self, task_type: TaskType, task_names: list[str], class_names: list[str] | None = None) -> None:
        super().__init__()
        self.task_type = task_type
        self.task_names = list(task_names)
        self.class_names = list(class_names) if class_names else None
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if self.task_type == "multiclass":  # (B[, T], C) and (B[, T]): keep one row per labelled entry
            preds = preds.reshape(-1, preds.shape[-1])
            target = target.reshape(-1)
        self.preds.append(preds.detach().float())
        self.target.append(target.detach().float())

    def compute(self) -> dict[str, float]:
        return compute_metrics(dim_zero_cat(self.preds), dim_zero_cat(self.target), self.task_type,
                               self.task_names, self.class_names)
