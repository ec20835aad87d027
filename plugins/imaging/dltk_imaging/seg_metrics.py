"""Instance-segmentation metrics: the 2018 Data Science Bowl score, AP@0.5 and foreground Dice.

The DSB metric (Caicedo et al. 2019, Nat Methods 16:1247; the Kaggle evaluation page) scores one
image as the mean, over IoU thresholds t = 0.50, 0.55, ..., 0.95, of ``TP / (TP + FP + FN)``: a
predicted object is a true positive at ``t`` when its IoU with a true object is **greater** than
``t``. For ``t >= 0.5`` a true object can overlap at most one predicted object by more than half,
so thresholding the IoU matrix already gives a one-to-one matching; :func:`match_counts` still
enforces it (one match per row and column) so the function is correct for any threshold. The
dataset score is the mean of the per-image scores.
"""

from __future__ import annotations

import numpy as np

DSB_THRESHOLDS: np.ndarray = np.round(np.arange(0.5, 1.0, 0.05), 2)
"""The ten IoU thresholds of the official metric, 0.50 to 0.95."""


def _relabel(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Consecutive ids 1..n for the objects of ``labels`` (0 stays background)."""
    ids, inverse = np.unique(labels, return_inverse=True)
    inverse = inverse.reshape(labels.shape)
    if ids[0] == 0:
        return inverse, len(ids) - 1
    return inverse + 1, len(ids)


def iou_matrix(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU between every true object (rows) and every predicted object (columns).

    Args:
        true, pred: integer instance maps of the same shape, 0 = background; ids need not be
            consecutive.
    """
    if true.shape != pred.shape:
        raise ValueError(f"instance maps differ in shape: {true.shape} vs {pred.shape}")
    t, n_true = _relabel(np.asarray(true))
    p, n_pred = _relabel(np.asarray(pred))
    inter = np.bincount(t.ravel().astype(np.int64) * (n_pred + 1) + p.ravel(),
                        minlength=(n_true + 1) * (n_pred + 1)).reshape(n_true + 1, n_pred + 1)
    area_true = inter.sum(axis=1)[1:]
    area_pred = inter.sum(axis=0)[1:]
    inter = inter[1:, 1:].astype(np.float64)
    union = area_true[:, None] + area_pred[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_counts(iou: np.ndarray, threshold: float) -> tuple[int, int, int]:
    """(TP, FP, FN) with one-to-one matching of pairs whose IoU is greater than ``threshold``.

    Pairs are taken greedily in order of decreasing IoU (for thresholds >= 0.5 every candidate pair
    is already unique, so greedy equals optimal there).
    """
    n_true, n_pred = iou.shape
    rows, cols = np.nonzero(iou > threshold)
    if len(rows) and (len(set(rows.tolist())) < len(rows) or len(set(cols.tolist())) < len(cols)):
        order = np.argsort(-iou[rows, cols], kind="stable")
        used_r: set[int] = set()
        used_c: set[int] = set()
        for r, c in zip(rows[order].tolist(), cols[order].tolist()):
            if r not in used_r and c not in used_c:
                used_r.add(r)
                used_c.add(c)
        tp = len(used_r)
    else:
        tp = len(rows)
    return tp, n_pred - tp, n_true - tp


def dsb_image_score(true: np.ndarray, pred: np.ndarray,
                    thresholds: np.ndarray = DSB_THRESHOLDS) -> float:
    """The DSB score of one image: mean over ``thresholds`` of TP / (TP + FP + FN).

    An image with no true and no predicted object scores 1.0 (nothing to find, nothing invented).
    """
    iou = iou_matrix(true, pred)
    if iou.size == 0 and iou.shape == (0, 0):
        return 1.0
    scores = []
    for t in thresholds:
        tp, fp, fn = match_counts(iou, float(t))
        scores.append(tp / (tp + fp + fn) if tp + fp + fn else 1.0)
    return float(np.mean(scores))


def dice(true: np.ndarray, pred: np.ndarray) -> float:
    """Foreground Dice 2|A and B| / (|A| + |B|) of two masks or instance maps (nonzero = foreground)."""
    a = np.asarray(true) > 0
    b = np.asarray(pred) > 0
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * float(np.logical_and(a, b).sum()) / total


def image_metrics(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """``dsb_score``, ``ap50`` (TP/(TP+FP+FN) at IoU > 0.5) and ``dice`` of one image."""
    iou = iou_matrix(true, pred)
    if iou.shape == (0, 0):
        per_t = [1.0] * len(DSB_THRESHOLDS)
    else:
        per_t = []
        for t in DSB_THRESHOLDS:
            tp, fp, fn = match_counts(iou, float(t))
            per_t.append(tp / (tp + fp + fn) if tp + fp + fn else 1.0)
    return {"dsb_score": float(np.mean(per_t)), "ap50": float(per_t[0]), "dice": dice(true, pred)}


def dataset_metrics(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Mean of :func:`image_metrics` over ``(true, pred)`` pairs (the official per-image average)."""
    if not pairs:
        raise ValueError("no images to score")
    rows = [image_metrics(t, p) for t, p in pairs]
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
