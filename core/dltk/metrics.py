"""Masked multitask metrics (missing labels are NaN and never count), on torchmetrics.

One :class:`MultitaskMetrics` accumulates predictions and targets (synchronised across processes
as a concatenation, so DDP results equal single-process ones) and computes, per task and as the
mean over tasks:

- classification: ``auroc`` and ``auprc`` (average precision), each over the labelled samples
  of that task only; a task whose labelled samples hold a single class is skipped in the mean;
- regression: ``rmse``, ``mae`` and ``r2``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torchmetrics import Metric
from torchmetrics.functional.classification import binary_auroc, binary_average_precision
from torchmetrics.functional.regression import mean_absolute_error, mean_squared_error, r2_score
from torchmetrics.utilities import dim_zero_cat

TaskType = Literal["classification", "regression"]

PRIMARY = {"classification": ("auroc", "max"), "regression": ("rmse", "min")}


def compute_metrics(preds: torch.Tensor, target: torch.Tensor, task_type: TaskType,
                    task_names: list[str]) -> dict[str, float]:
    """Per-task and mean metrics. ``preds`` are probabilities (classification) or values.

    Returns a flat dict: ``{"auroc": mean, "auroc/<task>": value, ...}``; NaN where a task has no
    usable labels.
    """
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

    def __init__(self, task_type: TaskType, task_names: list[str]) -> None:
        super().__init__()
        self.task_type = task_type
        self.task_names = list(task_names)
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        self.preds.append(preds.detach().float())
        self.target.append(target.detach().float())

    def compute(self) -> dict[str, float]:
        return compute_metrics(dim_zero_cat(self.preds), dim_zero_cat(self.target), self.task_type,
                               self.task_names)
