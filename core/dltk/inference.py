"""Batched inference on one device, shared by core's evaluation and plugins' own loops.

A model is any :class:`dltk.base.BaseModel`; its ``predict_step`` returns post-processed outputs
(probabilities or values in the target's units). Several models (an ensemble) are averaged and
their spread returned as an uncertainty.
"""

from __future__ import annotations

from typing import Any

import numpy as np


DEVICE_ENV = "DLTK_DEVICE"
"""Environment variable naming the inference device (``cpu``, ``cuda``, ``cuda:1``); unset: auto."""


def device() -> Any:
    """The device inference runs on: ``$DLTK_DEVICE`` when set, else the first GPU when present,
    else the CPU."""
    import os

    import torch

    chosen = os.environ.get(DEVICE_ENV, "").strip()
    if chosen:
        return torch.device(chosen)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_inference(model: Any, loader: Any, *, with_targets: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions (and targets, batch key ``y``) for every batch of ``loader``, in order."""
    import torch

    from dltk.base import TARGET

    dev = device()
    model = model.to(dev).eval()
    preds, targets = [], []
    with torch.inference_mode():
        for batch in loader:
            batch = {k: v.to(dev) if hasattr(v, "to") else v for k, v in batch.items()}
            preds.append(model.predict_step(batch).float().cpu())
            if with_targets:
                targets.append(batch[TARGET].float().cpu())
    p = torch.cat(preds).numpy() if preds else np.zeros((0, max(1, model.num_tasks)), np.float32)
    t = (torch.cat(targets).numpy() if targets else np.zeros((0,), np.float32)) if with_targets else None
    return p, t


def ensemble_inference(models: list[Any], loader: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Mean prediction of ``models``, the members' standard deviation (None for one model), targets."""
    outputs = []
    target = None
    for i, model in enumerate(models):
        preds, t = run_inference(model, loader, with_targets=i == 0)
        outputs.append(preds)
        target = t if i == 0 else target
    stacked = np.stack(outputs)
    std = stacked.std(axis=0) if len(models) > 1 else None
    return stacked.mean(axis=0), std, target
