"""Frame-level evaluation of a :class:`~dltk_video.datamodules.base.FrameWindowDataModule`'s test
split: window predictions stitched back into one prediction per frame, multiclass metrics over
frames, behaviour (bout) metrics and the human inter-annotator F1; with a run directory, the
per-frame CSV, the test plots and an ethogram per recording."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dltk_video.datamodules.base import TARGET_NAME, FrameWindowDataModule, Segment
from dltk_video.scoring import behavior_metrics, frame_f1, label_metrics, smooth_labels

MIN_BOUT_GRID = (0, 3, 5, 8, 12, 16)

Pieces = list[tuple[Segment, np.ndarray]]


def choose_min_bout(dm: FrameWindowDataModule, val_preds: np.ndarray) -> int:
    """The minimum bout length (frames) that maximises the primary F1 on the validation frames
    (``min_bout`` = -1), or the configured value."""
    if dm.min_bout >= 0:
        return dm.min_bout
    pieces = dm.stitched(val_preds, "val")
    target = dm.targets([g for g, _ in pieces])
    name = dm.primary[0]
    best, best_score = 0, -1.0
    for k in MIN_BOUT_GRID:
        pred = np.concatenate([smooth_labels(p.argmax(axis=1), k) for _, p in pieces])
        score = label_metrics(target, pred, list(dm.class_names)).get(name, math.nan)
        if score > best_score + 1e-9:
            best, best_score = k, score
    return best


def evaluate_frames(dm: FrameWindowDataModule, model: Any, preds: np.ndarray, std: np.ndarray | None,
                    run_dir: Path | None, val_preds: np.ndarray | None = None) -> dict[str, float]:
    """Per-frame metrics of the test split (multiclass metrics over frames, behaviour metrics,
    human inter-annotator F1); with ``run_dir``: per-frame CSV, confusion matrix, ethogram.

    Predicted labels are the argmax, post-processed with the minimum bout length chosen on the
    validation frames (:func:`choose_min_bout`); ``raw_f1/<class>`` are the unsmoothed F1s."""
    from dltk.metrics import multiclass_metrics

    pieces = dm.stitched(preds)
    probs = np.concatenate([p for _, p in pieces])
    target = dm.targets([g for g, _ in pieces])
    metrics = multiclass_metrics(probs, target, list(dm.class_names))
    for cname in dm.class_names:
        metrics[f"raw_f1/{cname}"] = metrics[f"f1/{cname}"]
    min_bout = choose_min_bout(dm, val_preds) if val_preds is not None else max(dm.min_bout, 0)
    pred_labels = [smooth_labels(p.argmax(axis=1), min_bout) for _, p in pieces]
    metrics.update(label_metrics(target, np.concatenate(pred_labels), list(dm.class_names)))
    metrics["min_bout_frames"] = float(min_bout)
    # bout metrics per segment (bouts never span two segments), pooled
    ref_all = np.concatenate([np.append(dm.targets([g]), -1) for g, _ in pieces])
    pred_all = np.concatenate([np.append(p, -1) for p in pred_labels])
    ref_all[ref_all == -1] = np.nan
    pred_all[pred_all == -1] = np.nan
    metrics.update(behavior_metrics(ref_all, pred_all, list(dm.class_names)))
    metrics.update(human_f1(dm, [g for g, _ in pieces]))
    metrics.update(dm.extra_metrics())
    if run_dir is not None:
        std_pieces = dm.stitched(std) if std is not None else None
        write_frame_table(dm, run_dir, pieces, std_pieces, pred_labels)
        model.write_test_plots(run_dir / "plots", probs, target, f"video / {type(dm).__name__}: test frames")
        write_ethograms(dm, run_dir, pieces, pred_labels)
    return metrics


def human_f1(dm: FrameWindowDataModule, segments: list[Segment]) -> dict[str, float]:
    """``human_f1/<class>/<annotator>``: each other annotator's frame F1 against the reference,
    averaged over the test segments (the human ceiling)."""
    human: dict[str, list[float]] = {}
    for g in segments:
        ref = dm.targets([g])
        for name, other in dm.human_rows(g).items():
            for c, cname in enumerate(dm.class_names):
                if c:
                    human.setdefault(f"human_f1/{cname}/{name}", []).append(frame_f1(ref, other, c))
    out = {}
    for key, values in human.items():
        finite = [v for v in values if not math.isnan(v)]
        out[key] = float(np.mean(finite)) if finite else math.nan
    return out


def write_frame_table(dm: FrameWindowDataModule, run_dir: Path, pieces: Pieces, std_pieces: Pieces | None,
                      pred_labels: list[np.ndarray]) -> None:
    """``predictions/test.csv``: one row per test frame with the reference, the prediction and
    each class's probability (and spread, for an ensemble)."""
    from dltk.io import atomic_path

    names = np.asarray(dm.class_names, dtype=object)
    tables = []
    for k, (g, p) in enumerate(pieces):
        s = dm.sessions_[g.session]
        frames = np.arange(g.lo, g.hi)
        true = s.target[g.lo:g.hi]
        table = pd.DataFrame({"video": s.name, "frame": frames, "time_s": frames / s.fps})
        table[f"true_{TARGET_NAME}"] = [names[int(v)] if not np.isnan(v) else "" for v in true]
        table[f"pred_{TARGET_NAME}"] = names[pred_labels[k].astype(int)]
        for c, cname in enumerate(dm.class_names):
            table[f"prob_{cname}"] = p[:, c]
            if std_pieces is not None:
                table[f"std_{cname}"] = std_pieces[k][1][:, c]
        tables.append(table)
    with atomic_path(run_dir / "predictions" / "test.csv") as tmp:
        pd.concat(tables).to_csv(tmp, index=False, float_format="%.6g")


def write_ethograms(dm: FrameWindowDataModule, run_dir: Path, pieces: Pieces, pred_labels: list[np.ndarray]) -> None:
    """``plots/ethogram_<recording>.png``: the reference, the other annotators and the model over
    the held-out frames of each recording."""
    from dltk_video.ethogram import ethogram

    by_session: dict[int, list[int]] = {}
    for k, (g, _) in enumerate(pieces):
        by_session.setdefault(g.session, []).append(k)
    for si, ks in by_session.items():
        s = dm.sessions_[si]
        pred = np.full(s.n_frames, np.nan)
        prob = np.full((s.n_frames, len(dm.class_names)), np.nan)
        for k in ks:
            g = pieces[k][0]
            pred[g.lo:g.hi] = pred_labels[k]
            prob[g.lo:g.hi] = pieces[k][1]
        held = ~np.isnan(pred)
        rows: dict[str, np.ndarray] = {f"{s.reference} (reference)": np.where(held, s.target, np.nan)}
        for name, other in s.labels.items():
            if name != s.reference:
                rows[name] = np.where(held, other, np.nan)
        rows["model"] = pred
        ethogram(rows, list(dm.class_names), s.fps, run_dir / "plots" / f"ethogram_{s.name}.png",
                 f"{s.name}: held-out frames, reference vs model", probabilities=prob)
