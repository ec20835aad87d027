"""The shared base of the behaviour datamodules: per-frame features -> sliding windows.

Every recording is split into contiguous *segments* (whole recordings, or blocks of time), never
random frames, since neighbouring frames are near-duplicates. Training windows overlap (``stride``);
validation and test windows carry a context ``margin`` on each side and own only their core, so
each frame is scored exactly once (targets outside the core are NaN), and
:func:`dltk_video.evaluation.evaluate_frames` stitches the predictions back into one label per
frame.

Batches: ``x`` float32 ``(B, window, F)`` standardised features, ``y`` float ``(B, window)`` class
indices (NaN = unlabelled or outside the core).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from dltk.base import INPUT, TARGET, BaseDataModule, TensorDictDataset
from dltk.errors import ConfigError, DataError

from dltk_video.datasets import Session
from dltk_video.features import WindowPlan, eval_windows, plan_windows, stitch, training_windows
from dltk_video.options import FramePredictOptions

TARGET_NAME = "behavior"


@dataclass
class Segment:
    """Frames ``lo .. hi-1`` of session ``session`` (index into the datamodule's sessions)."""

    session: int
    lo: int
    hi: int


def expand_paths(spec: str, what: str) -> list[Path]:
    """Comma-separated files or glob patterns (each sorted) -> paths; ConfigError naming
    ``data.<what>`` when a pattern matches nothing."""
    import glob

    out: list[Path] = []
    for item in [s.strip() for s in spec.split(",") if s.strip()]:
        matches = sorted(glob.glob(item)) if any(c in item for c in "*?[") else [item]
        if not matches:
            raise ConfigError(f"data.{what}: no file matches {item!r}")
        out.extend(Path(m) for m in matches)
    return out


class FrameWindowDataModule(BaseDataModule):
    """Per-frame behaviour labels from windows of per-frame features; a source gives the
    recordings (:meth:`load_sessions`), the split (:meth:`split`) and the classes.

    :class:`dltk_video.models.PoseSequenceClassifier` evaluates every datamodule of this kind per
    frame (:func:`dltk_video.evaluation.evaluate_frames`).

    Args:
        window: frames per window.
        margin: context frames on each side of an evaluation window's core.
        stride: step between training windows.
        batch_size, num_workers, split_seed: see :class:`dltk.base.BaseDataModule`.
    """

    predict_options = FramePredictOptions

    class_names: tuple[str, ...] = ()
    primary: tuple[str, str] = ("macro_f1", "max")
    #: minimum bout length of the predicted labels (see :class:`PoseBehaviorDataModule`); 0 = none
    min_bout: int = 0

    def __init__(self, window: int = 64, margin: int = 16, stride: int = 16, batch_size: int = 32,
                 num_workers: int = 0, split_seed: int = 0) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, split_seed=split_seed)
        if window - 2 * margin <= 0 or stride <= 0:
            raise ConfigError(f"data.window ({window}) must exceed 2 * data.margin ({margin}); stride > 0")
        self.window, self.margin, self.stride = int(window), int(margin), int(stride)
        self.sessions_: list[Session] = []
        self.features_: list[np.ndarray] = []
        self.mirrored_: list[np.ndarray | None] = []
        self.parts: dict[str, list[tuple[Segment, WindowPlan]]] = {}
        self._mean: np.ndarray | None = None
        self._std: np.ndarray | None = None
        self._counts: list[int] = []
        self.task_type = "multiclass"
        self.task_names = [TARGET_NAME]

    # -- source hooks ---------------------------------------------------------------------------
    def load_sessions(self) -> list[Session]:
        raise NotImplementedError

    def split(self, sessions: list[Session]) -> dict[str, list[Segment]]:
        """``{"train": [...], "val": [...], "test": [...]}`` segments."""
        raise NotImplementedError

    def session_features(self, session: Session) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-frame features of a session and of its mirrored copy (None: no augmentation)."""
        assert session.features is not None
        return session.features, None

    def human_rows(self, segment: Segment) -> dict[str, np.ndarray]:
        """Other annotators' labels of a test segment (name -> per-frame labels), for the human ceiling."""
        s = self.sessions_[segment.session]
        return {k: v[segment.lo:segment.hi] for k, v in s.labels.items() if k != s.reference}

    def extra_metrics(self) -> dict[str, float]:
        """Dataset-specific reference scores on the test frames (e.g. a published baseline)."""
        return {}

    # -- loading ------------------------------------------------------------------------------
    def load(self) -> None:
        self.sessions_ = self.load_sessions()
        self.features_, self.mirrored_ = [], []
        for s in self.sessions_:
            X, mirrored = self.session_features(s)
            self.features_.append(X)
            self.mirrored_.append(mirrored)
        segments = self.split(self.sessions_)
        train_rows = np.concatenate([self.features_[g.session][g.lo:g.hi] for g in segments["train"]])
        self._mean = train_rows.mean(axis=0)
        self._std = np.maximum(train_rows.std(axis=0), 1e-6)
        y_train = self.targets(segments["train"])
        self._counts = [int((y_train == c).sum()) for c in range(len(self.class_names))]
        if min(self._counts[1:], default=0) == 0:
            raise DataError(None, f"a behaviour has no training frame: {dict(zip(self.class_names, self._counts))}")
        self.train_dataset = self._train_set(segments["train"])
        self.parts = {}
        for part in ("val", "test"):
            self.parts[part] = [(g, plan_windows(g.hi - g.lo, self.window, self.margin)) for g in segments[part]]
        self.val_dataset = self._eval_set(self.parts["val"])
        self.test_dataset = self._eval_set(self.parts["test"])
        for part in ("train", "val", "test"):
            frames = sum(g.hi - g.lo for g in segments[part])
            y = self.targets(segments[part])
            counts = ", ".join(f"{n} {int((y == c).sum())}" for c, n in enumerate(self.class_names))
            print(f"dltk video: {part}: {frames} frames in {len(segments[part])} segments ({counts})")

    def targets(self, segments: list[Segment]) -> np.ndarray:
        """The reference labels of these segments, concatenated."""
        return np.concatenate([self.sessions_[g.session].target[g.lo:g.hi] for g in segments])

    def standardise(self, X: np.ndarray) -> np.ndarray:
        assert self._mean is not None and self._std is not None
        return np.clip((X - self._mean) / self._std, -10, 10).astype(np.float32)

    def _train_set(self, segments: list[Segment]) -> TensorDictDataset:
        xs, ys = [], []
        for g in segments:
            X = self.standardise(self.features_[g.session][g.lo:g.hi])
            y = self.sessions_[g.session].target[g.lo:g.hi]
            idx = training_windows(g.hi - g.lo, self.window, self.stride)
            xs.append(X[idx])
            ys.append(y[idx].astype(np.float32))
            mirrored = self.mirrored_[g.session]
            if mirrored is not None:
                xs.append(self.standardise(mirrored[g.lo:g.hi])[idx])
                ys.append(y[idx].astype(np.float32))
        return TensorDictDataset(**{INPUT: np.concatenate(xs), TARGET: np.concatenate(ys)})

    def _eval_set(self, parts: list[tuple[Segment, WindowPlan]]) -> TensorDictDataset:
        xs, ys = [], []
        for g, plan in parts:
            X = self.standardise(self.features_[g.session][g.lo:g.hi])
            x, y = eval_windows(X, self.sessions_[g.session].target[g.lo:g.hi], plan)
            xs.append(x)
            ys.append(y)
        return TensorDictDataset(**{INPUT: np.concatenate(xs), TARGET: np.concatenate(ys)})

    def extra_info(self) -> dict[str, Any]:
        return {"in_features": len(self._mean) if self._mean is not None else 0,
                "class_names": list(self.class_names), "class_counts": list(self._counts),
                "primary_metric": list(self.primary),
                "feature_mean": [float(v) for v in self._mean] if self._mean is not None else [],
                "feature_std": [float(v) for v in self._std] if self._std is not None else [],
                "window": self.window, "margin": self.margin}

    def stitched(self, preds: np.ndarray, part: str = "test") -> list[tuple[Segment, np.ndarray]]:
        """Window predictions of a split (loader order) -> per-frame predictions per segment."""
        out, start = [], 0
        for g, plan in self.parts[part]:
            n = len(plan.starts)
            out.append((g, stitch(preds[start:start + n], plan)))
            start += n
        if start != len(preds):
            raise RuntimeError(f"{len(preds)} windows predicted for {start} planned")
        return out
