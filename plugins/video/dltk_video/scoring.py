"""Behaviour scores: frame-level F1 per class, bout-level precision/recall at IoU >= 0.5.

Frame F1 of class ``c`` treats ``c`` as positive and every other class as negative (frames with
a NaN reference are skipped). A bout is a maximal run of frames of one class; a predicted bout
matches a reference bout of the same class when their intersection over union (in frames) is at
least ``iou``; matching is one-to-one, greedy by IoU. Bout precision = matched predicted bouts /
predicted bouts; recall = matched reference bouts / reference bouts.
"""

from __future__ import annotations

import math

import numpy as np

from dltk_video.readers import frames_to_bouts


def frame_f1(reference: np.ndarray, predicted: np.ndarray, cls: int) -> float:
    """F1 of class ``cls`` over the frames where ``reference`` is not NaN (NaN if neither has it)."""
    ref = np.asarray(reference, dtype=np.float64)
    pred = np.asarray(predicted, dtype=np.float64)
    keep = ~np.isnan(ref) & ~np.isnan(pred)
    r, p = ref[keep] == cls, pred[keep] == cls
    tp = float((r & p).sum())
    denom = float(r.sum() + p.sum())
    return 2 * tp / denom if denom else math.nan


def bout_scores(reference: np.ndarray, predicted: np.ndarray, cls: int, iou: float = 0.5) -> dict[str, float]:
    """Bout-level precision, recall and F1 of class ``cls`` (see the module docstring)."""
    ref = np.asarray(reference, dtype=np.float64)
    pred = np.asarray(predicted, dtype=np.float64)
    rb = [(a, z) for c, a, z in frames_to_bouts(np.where(np.isnan(ref), -1, ref), background=-2) if c == cls]
    pb = [(a, z) for c, a, z in frames_to_bouts(np.where(np.isnan(pred), -1, pred), background=-2) if c == cls]
    pairs = []
    for i, (a1, z1) in enumerate(rb):
        for j, (a2, z2) in enumerate(pb):
            inter = min(z1, z2) - max(a1, a2) + 1
            if inter <= 0:
                continue
            union = max(z1, z2) - min(a1, a2) + 1
            if inter / union >= iou:
                pairs.append((inter / union, i, j))
    used_r: set[int] = set()
    used_p: set[int] = set()
    for _, i, j in sorted(pairs, reverse=True):
        if i not in used_r and j not in used_p:
            used_r.add(i)
            used_p.add(j)
    matched = len(used_r)
    precision = matched / len(pb) if pb else math.nan
    recall = matched / len(rb) if rb else math.nan
    f1 = 2 * matched / (len(pb) + len(rb)) if (pb or rb) else math.nan
    return {"precision": precision, "recall": recall, "f1": f1, "n_ref": float(len(rb)), "n_pred": float(len(pb))}


def behavior_metrics(reference: np.ndarray, predicted: np.ndarray, class_names: list[str],
                     iou: float = 0.5) -> dict[str, float]:
    """``frame_f1/<class>``, ``frame_macro_f1`` (behaviour classes, background excluded) and
    ``bout_precision/<class>``, ``bout_recall/<class>`` for every behaviour class (index >= 1)."""
    out: dict[str, float] = {}
    f1s = []
    for c, name in enumerate(class_names):
        if c == 0:
            continue
        f1 = frame_f1(reference, predicted, c)
        out[f"frame_f1/{name}"] = f1
        if not math.isnan(f1):
            f1s.append(f1)
        b = bout_scores(reference, predicted, c, iou)
        out[f"bout_precision/{name}"] = b["precision"]
        out[f"bout_recall/{name}"] = b["recall"]
    out["frame_macro_f1"] = float(np.mean(f1s)) if f1s else math.nan
    return out


def smooth_labels(labels: np.ndarray, min_bout: int, background: int = 0) -> np.ndarray:
    """Minimum-bout post-processing of per-frame labels: background gaps shorter than ``min_bout``
    frames between two bouts of the same behaviour are filled, then behaviour bouts shorter than
    ``min_bout`` frames become background (``min_bout`` <= 1: unchanged)."""
    out = np.asarray(labels, dtype=np.float64).copy()
    if min_bout <= 1 or len(out) == 0:
        return out
    runs = _runs(out)
    for k in range(1, len(runs) - 1):
        c, a, z = runs[k]
        if c == background and z - a + 1 < min_bout and runs[k - 1][0] == runs[k + 1][0] != background:
            out[a:z + 1] = runs[k - 1][0]
    for c, a, z in _runs(out):
        if c != background and z - a + 1 < min_bout:
            out[a:z + 1] = background
    return out


def _runs(labels: np.ndarray) -> list[tuple[float, int, int]]:
    out, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            out.append((float(labels[start]), start, i - 1))
            start = i
    return out


def label_metrics(reference: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> dict[str, float]:
    """Label-based multiclass metrics (``accuracy``, ``balanced_accuracy``, ``macro_f1``,
    ``f1/<class>``) of per-frame labels over the frames with a reference label."""
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    keep = ~np.isnan(reference)
    t, p = reference[keep].astype(int), predicted[keep].astype(int)
    f1 = f1_score(t, p, labels=np.arange(len(class_names)), average=None, zero_division=0)
    out = {"accuracy": float(accuracy_score(t, p)),
           "balanced_accuracy": float(recall_score(t, p, labels=np.unique(t), average="macro", zero_division=0)),
           "macro_f1": float(np.mean(f1))}
    out.update({f"f1/{name}": float(v) for name, v in zip(class_names, f1)})
    return out
