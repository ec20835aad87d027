"""Pose-behaviour datamodules: pose tracks + bouts -> per-frame features -> sliding windows.

Every video is split into contiguous *segments* (whole videos, or blocks of time), never random
frames, since neighbouring frames are near-duplicates. Training windows overlap (``stride``);
validation and test windows carry a context ``margin`` on each side and own only their core, so
each frame is scored exactly once (targets outside the core are NaN), and
:meth:`PoseBehaviorDataModule.evaluate_frames` stitches the predictions back into one label per
frame before computing frame F1, bout precision/recall and the human inter-annotator F1.

Batches: ``x`` float32 ``(B, window, F)`` standardised features, ``y`` float ``(B, window)`` class
indices (NaN = unlabelled or outside the core).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from dltk.base import INPUT, TARGET, BaseDataModule, TensorDictDataset
from dltk.errors import ConfigError, DataError

from dltk_video import datasets
from dltk_video.datasets import Session
from dltk_video.features import (
    FeatureConfig,
    WindowPlan,
    eval_windows,
    plan_windows,
    pose_features,
    stitch,
    training_windows,
)
from dltk_video.options import FramePredictOptions
from dltk_video.readers import PoseTrack, bouts_to_frames, clean_track, read_annotations, read_pose
from dltk_video.scoring import behavior_metrics, frame_f1, label_metrics, smooth_labels
from dltk_video.serving import PoseServing

log = logging.getLogger("dltk.video")

TARGET_NAME = "behavior"
MIN_BOUT_GRID = (0, 3, 5, 8, 12, 16)


@dataclass
class Segment:
    """Frames ``lo .. hi-1`` of session ``session`` (index into the datamodule's sessions)."""

    session: int
    lo: int
    hi: int


class PoseBehaviorDataModule(PoseServing, BaseDataModule):
    """Shared behaviour of the pose datamodules; subclasses give sessions, classes and the split.

    Args:
        features: ``+``-separated feature groups (``ego``, ``speed``, ``pairwise``, ``wall``,
            ``social``; see :mod:`dltk_video.features`).
        min_bout: minimum bout length in frames (post-processing of the predicted labels: shorter
            gaps inside a behaviour are filled, shorter bouts dropped); 0 = none (default); -1 =
            chosen on the validation frames from ``MIN_BOUT_GRID`` by the primary F1.
        mirror: add a left-right mirrored copy of the training tracks (x -> -x, left/right body
            parts swapped) as augmentation.
        window: frames per window.
        margin: context frames on each side of an evaluation window's core.
        stride: step between training windows.
        min_likelihood: keypoints below this likelihood are masked and interpolated.
        batch_size, num_workers, split_seed: see :class:`dltk.base.BaseDataModule`.
    """

    predict_options = FramePredictOptions

    class_names: tuple[str, ...] = ()
    primary: tuple[str, str] = ("macro_f1", "max")
    mirror_pairs: tuple[tuple[str, str], ...] = ()

    def __init__(self, window: int = 64, margin: int = 16, stride: int = 16, min_likelihood: float = 0.6,
                 batch_size: int = 32, num_workers: int = 0, split_seed: int = 0,
                 features: str = "ego+speed+pairwise+wall+social", mirror: bool = False, min_bout: int = 0) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, split_seed=split_seed)
        self.mirror = bool(mirror)
        self.min_bout = int(min_bout)
        from dltk_video.features import FEATURE_GROUPS

        self.groups = tuple(g.strip() for g in features.split("+") if g.strip())
        if not self.groups or set(self.groups) - set(FEATURE_GROUPS):
            raise ConfigError(f"data.features: choose groups from {', '.join(FEATURE_GROUPS)} joined by '+'")
        if window - 2 * margin <= 0 or stride <= 0:
            raise ConfigError(f"data.window ({window}) must exceed 2 * data.margin ({margin}); stride > 0")
        self.window, self.margin, self.stride = int(window), int(margin), int(stride)
        self.min_likelihood = float(min_likelihood)
        self.sessions_: list[Session] = []
        self.features_: list[np.ndarray] = []
        self.parts: dict[str, list[tuple[Segment, WindowPlan]]] = {}
        self._mean: np.ndarray | None = None
        self._std: np.ndarray | None = None
        self._counts: list[int] = []
        self.task_type = "multiclass"
        self.task_names = [TARGET_NAME]

    # -- subclass hooks -----------------------------------------------------------------------
    def load_sessions(self) -> list[Session]:
        raise NotImplementedError

    def feature_config(self) -> FeatureConfig:
        raise NotImplementedError

    def split(self, sessions: list[Session]) -> dict[str, list[Segment]]:
        """``{"train": [...], "val": [...], "test": [...]}`` segments."""
        raise NotImplementedError

    def human_rows(self, segment: Segment) -> dict[str, np.ndarray]:
        """Other annotators' labels of a test segment (name -> per-frame labels), for the human ceiling."""
        s = self.sessions_[segment.session]
        return {k: v[segment.lo:segment.hi] for k, v in s.labels.items() if k != s.reference}

    # -- loading ------------------------------------------------------------------------------
    def load(self) -> None:
        config = self.feature_config()
        self.sessions_ = self.load_sessions()
        self.features_ = []
        self.mirrored_: list[np.ndarray | None] = []
        for s in self.sessions_:
            if s.features is not None:
                self.features_.append(s.features)
                self.mirrored_.append(None)
                continue
            assert s.track is not None
            track, report = clean_track(s.track, self.min_likelihood)
            if report.masked or report.empty_parts:
                log.warning(report.line(s.name))
            X, _ = pose_features(track, config)
            self.features_.append(X)
            self.mirrored_.append(pose_features(mirror_track(track, self.mirror_pairs), config)[0]
                                  if self.mirror else None)
        segments = self.split(self.sessions_)
        train_rows = np.concatenate([self.features_[g.session][g.lo:g.hi] for g in segments["train"]])
        self._mean = train_rows.mean(axis=0)
        self._std = np.maximum(train_rows.std(axis=0), 1e-6)
        y_train = np.concatenate([self.sessions_[g.session].target[g.lo:g.hi] for g in segments["train"]])
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
            y = np.concatenate([self.sessions_[g.session].target[g.lo:g.hi] for g in segments[part]])
            counts = ", ".join(f"{n} {int((y == c).sum())}" for c, n in enumerate(self.class_names))
            print(f"dltk video: {part}: {frames} frames in {len(segments[part])} segments ({counts})")

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
            mirrored = self.mirrored_[g.session] if self.mirror else None
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
        config = self.feature_config()
        return {"in_features": len(self._mean) if self._mean is not None else 0,
                "class_names": list(self.class_names), "class_counts": list(self._counts),
                "primary_metric": list(self.primary),
                "feature_config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
                "feature_mean": [float(v) for v in self._mean] if self._mean is not None else [],
                "feature_std": [float(v) for v in self._std] if self._std is not None else [],
                "individuals": list(self.sessions_[0].track.individuals)
                if self.sessions_ and self.sessions_[0].track is not None else [],
                "window": self.window, "margin": self.margin, "min_likelihood": self.min_likelihood}

    # -- evaluation -----------------------------------------------------------------------------
    def extra_metrics(self) -> dict[str, float]:
        """Dataset-specific reference scores on the test frames (e.g. a published baseline)."""
        return {}

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

    def choose_min_bout(self, val_preds: np.ndarray) -> int:
        """The minimum bout length (frames) that maximises the primary F1 on the validation frames
        (``min_bout`` = -1), or the configured value."""
        if self.min_bout >= 0:
            return self.min_bout
        pieces = self.stitched(val_preds, "val")
        target = np.concatenate([self.sessions_[g.session].target[g.lo:g.hi] for g, _ in pieces])
        name = self.primary[0]
        best, best_score = 0, -1.0
        for k in MIN_BOUT_GRID:
            pred = np.concatenate([smooth_labels(p.argmax(axis=1), k) for _, p in pieces])
            score = label_metrics(target, pred, list(self.class_names)).get(name, math.nan)
            if score > best_score + 1e-9:
                best, best_score = k, score
        return best

    def evaluate_frames(self, model: Any, preds: np.ndarray, std: np.ndarray | None,
                        run_dir: Path | None, val_preds: np.ndarray | None = None) -> dict[str, float]:
        """Per-frame metrics of the test split (multiclass metrics over frames, behaviour metrics,
        human inter-annotator F1); with ``run_dir``: per-frame CSV, confusion matrix, ethogram.

        Predicted labels are the argmax, post-processed with the minimum bout length chosen on the
        validation frames (:meth:`choose_min_bout`); ``raw_f1/<class>`` are the unsmoothed F1s."""
        from dltk.metrics import multiclass_metrics

        pieces = self.stitched(preds)
        std_pieces = self.stitched(std) if std is not None else None
        probs = np.concatenate([p for _, p in pieces])
        target = np.concatenate([self.sessions_[g.session].target[g.lo:g.hi] for g, _ in pieces])
        metrics = multiclass_metrics(probs, target, list(self.class_names))
        for cname in self.class_names:
            metrics[f"raw_f1/{cname}"] = metrics[f"f1/{cname}"]
        min_bout = self.choose_min_bout(val_preds) if val_preds is not None else max(self.min_bout, 0)
        pred_labels = []
        for g, p in pieces:
            pred_labels.append(smooth_labels(p.argmax(axis=1), min_bout))
        metrics.update(label_metrics(target, np.concatenate(pred_labels), list(self.class_names)))
        metrics["min_bout_frames"] = float(min_bout)
        # bout metrics per segment (bouts never span two segments), pooled
        ref_all = np.concatenate([np.append(self.sessions_[g.session].target[g.lo:g.hi], -1) for g, _ in pieces])
        pred_all = np.concatenate([np.append(p, -1) for p in pred_labels])
        ref_all[ref_all == -1] = np.nan
        pred_all[pred_all == -1] = np.nan
        metrics.update(behavior_metrics(ref_all, pred_all, list(self.class_names)))
        human: dict[str, list[float]] = {}
        for (g, _), _p in zip(pieces, pred_labels):
            ref = self.sessions_[g.session].target[g.lo:g.hi]
            for name, other in self.human_rows(g).items():
                for c, cname in enumerate(self.class_names):
                    if c:
                        human.setdefault(f"human_f1/{cname}/{name}", []).append(frame_f1(ref, other, c))
        for key, values in human.items():
            finite = [v for v in values if not math.isnan(v)]
            metrics[key] = float(np.mean(finite)) if finite else math.nan
        metrics.update(self.extra_metrics())
        if run_dir is not None:
            self._write_outputs(model, run_dir, pieces, std_pieces, pred_labels)
        return metrics

    def _write_outputs(self, model: Any, run_dir: Path, pieces: list[tuple[Segment, np.ndarray]],
                       std_pieces: list[tuple[Segment, np.ndarray]] | None, pred_labels: list[np.ndarray]) -> None:
        from dltk.io import atomic_path

        from dltk_video.ethogram import ethogram

        tables = []
        for k, (g, p) in enumerate(pieces):
            s = self.sessions_[g.session]
            frames = np.arange(g.lo, g.hi)
            true = s.target[g.lo:g.hi]
            table = pd.DataFrame({"video": s.name, "frame": frames, "time_s": frames / s.fps})
            names = np.asarray(self.class_names, dtype=object)
            table[f"true_{TARGET_NAME}"] = [names[int(v)] if not np.isnan(v) else "" for v in true]
            table[f"pred_{TARGET_NAME}"] = names[pred_labels[k].astype(int)]
            for c, cname in enumerate(self.class_names):
                table[f"prob_{cname}"] = p[:, c]
                if std_pieces is not None:
                    table[f"std_{cname}"] = std_pieces[k][1][:, c]
            tables.append(table)
        with atomic_path(run_dir / "predictions" / "test.csv") as tmp:
            pd.concat(tables).to_csv(tmp, index=False, float_format="%.6g")
        probs = np.concatenate([p for _, p in pieces])
        target = np.concatenate([self.sessions_[g.session].target[g.lo:g.hi] for g, _ in pieces])
        model.write_test_plots(run_dir / "plots", probs, target, f"video / {type(self).__name__}: test frames")
        by_session: dict[int, list[int]] = {}
        for k, (g, _) in enumerate(pieces):
            by_session.setdefault(g.session, []).append(k)
        for si, ks in by_session.items():
            s = self.sessions_[si]
            n = s.n_frames
            rows: dict[str, np.ndarray] = {}
            pred = np.full(n, np.nan)
            prob = np.full((n, len(self.class_names)), np.nan)
            for k in ks:
                g = pieces[k][0]
                pred[g.lo:g.hi] = pred_labels[k]
                prob[g.lo:g.hi] = pieces[k][1]
            held = ~np.isnan(pred)
            rows[f"{s.reference} (reference)"] = np.where(held, s.target, np.nan)
            for name, other in s.labels.items():
                if name != s.reference:
                    rows[name] = np.where(held, other, np.nan)
            rows["model"] = pred
            ethogram(rows, list(self.class_names), s.fps, run_dir / "plots" / f"ethogram_{s.name}.png",
                     f"{s.name}: held-out frames, reference vs model", probabilities=prob)

    # -- prediction on new pose files -------------------------------------------------------
    def predict_file(self, input_path: str, output_path: str, models: list[Any],
                     options: FramePredictOptions | None = None) -> dict[str, int] | None:
        return predict_pose_file(input_path, output_path, models, options or FramePredictOptions(),
                                 self.prediction_min_bout(models))

    def prediction_min_bout(self, models: list[Any]) -> int:
        """The minimum bout length used at test time: configured, or re-chosen on the validation
        frames with these models (the same choice as the run's test; 0 if the training data are
        not available here)."""
        if self.min_bout >= 0:
            return self.min_bout
        from dltk.inference import ensemble_inference

        try:
            self.setup()
        except DataError as exc:
            print(f"dltk video: no minimum-bout smoothing (validation data unavailable: {exc})")
            return 0
        val_preds, _, _ = ensemble_inference(models, self.val_dataloader())
        return self.choose_min_bout(val_preds)


def mirror_track(track: PoseTrack, pairs: tuple[tuple[str, str], ...]) -> PoseTrack:
    """The left-right mirror image of a track: x -> -x, and each (left, right) body-part pair swapped."""
    coords = track.coords.copy()
    coords[..., 0] = -coords[..., 0]
    order = list(range(len(track.bodyparts)))
    for left, right in pairs:
        if left in track.bodyparts and right in track.bodyparts:
            i, j = track.bodyparts.index(left), track.bodyparts.index(right)
            order[i], order[j] = j, i
    return PoseTrack(coords[:, :, order], track.likelihood[:, :, order], track.individuals, track.bodyparts,
                     track.frames, track.path, track.fps, track.index)


def frame_predictions(X: np.ndarray, info: dict[str, Any], models: list[Any], min_bout: int, path: Path | str,
                      what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per-frame class probabilities, smoothed labels and the ensemble's spread (None for one model)
    of a whole recording's features ``X`` (frames x features): standardised with the run's training
    statistics, cut into the run's overlapping windows, averaged over ``models`` and stitched back so
    every frame is predicted once."""
    import torch
    from dltk.inference import ensemble_inference

    mean, std = np.asarray(info["feature_mean"], np.float32), np.asarray(info["feature_std"], np.float32)
    if X.shape[1] != len(mean):
        raise DataError(path, f"{X.shape[1]} {what}, {len(mean)} at training")
    X = np.clip((X - mean) / std, -10, 10).astype(np.float32)
    plan = plan_windows(len(X), int(info["window"]), int(info["margin"]))
    x, y = eval_windows(X, None, plan)
    loader = torch.utils.data.DataLoader(TensorDictDataset(**{INPUT: x, TARGET: y}), batch_size=64)
    preds, sd, _ = ensemble_inference(models, loader)
    probs = stitch(preds, plan)
    spread = None if sd is None else stitch(sd, plan)
    return probs, smooth_labels(probs.argmax(axis=1), min_bout).astype(int), spread


def predict_pose_file(input_path: str, output_path: str, models: list[Any], options: FramePredictOptions,
                      min_bout: int = 0) -> dict[str, int]:
    """Label every frame of a pose file (DeepLabCut CSV or SLEAP HDF5) with a trained run.

    Writes ``output_path`` (``frame, time_s, behavior, prob_<class>...``) and an ethogram PNG
    beside it; the file's body parts and animals must match the training configuration.
    """
    from dltk.io import atomic_path

    from dltk_video.ethogram import ethogram

    ns = options
    path = Path(input_path)
    if path.suffix.lower() in (".mp4", ".avi", ".mov", ".mkv"):
        raise DataError(path, "this run predicts from pose files (DeepLabCut .csv, SLEAP .h5); "
                        "use a video_behavior run for raw video")
    info = models[0].data_info
    fc = dict(info["feature_config"])
    config = FeatureConfig(tuple(fc["bodyparts"]), fc["tail"], fc["head"], tuple(fc.get("arena", ())),
                           float(ns.fps or fc["fps"]), tuple(fc.get("groups", FeatureConfig.groups)))
    track = read_pose(path)
    if track.fps is not None and ns.fps is None and abs(track.fps - config.fps) > 1e-3:
        raise DataError(path, f"the file's fps ({track.fps:g}) differs from the training fps ({config.fps:g}); "
                        "pass --fps to confirm the rate to use")
    individuals = list(info.get("individuals") or [])
    if len(track.individuals) != len(individuals):
        raise DataError(path, f"{len(track.individuals)} animals {track.individuals} in the file; the model was "
                        f"trained on {len(individuals)} {individuals}", field="individuals")
    if len(individuals) > 1 and track.individuals != individuals:
        raise DataError(path, f"animals {track.individuals} differ from the training animals {individuals}",
                        field="individuals")
    track.individuals = individuals or track.individuals
    needed = list(config.bodyparts) + list(config.arena)
    missing = [b for b in needed if b not in track.bodyparts]
    if missing:
        raise DataError(path, f"body parts {missing} of the training configuration are not in the file "
                        f"(it has {track.bodyparts})", field="bodyparts")
    track, report = clean_track(track, ns.min_likelihood if ns.min_likelihood is not None else
                                float(info.get("min_likelihood", 0.6)))
    print(report.line(str(path)))
    X, _ = pose_features(track, config)
    probs, labels, spread = frame_predictions(X, info, models, min_bout, path, "features from this file")
    class_names = list(info["class_names"])
    names = np.asarray(class_names, dtype=object)
    frames = track.frames if len(track.frames) == len(probs) else np.arange(len(probs))
    table = pd.DataFrame({"frame": frames, "time_s": np.arange(len(probs)) / config.fps,
                          TARGET_NAME: names[labels]})
    for c, cname in enumerate(class_names):
        table[f"prob_{cname}"] = probs[:, c]
        if spread is not None:
            table[f"prob_{cname}_std"] = spread[:, c]
    out = Path(output_path)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    if ns.plot:
        png = ethogram({"model": labels.astype(float)}, class_names, config.fps,
                       out.with_suffix(".png"), f"{path.name}: predicted behaviour", probabilities=probs)
        print(f"dltk predict: ethogram -> {png}")
    counts = {"frames": len(probs), "min_bout": min_bout}
    for c, cname in enumerate(class_names[1:], start=1):
        counts[f"{cname}_frames"] = int((labels == c).sum())
    return counts


# ------------------------------------------------------------------------------------------------
# built-in datasets
# ------------------------------------------------------------------------------------------------
class SturmanOFTDataModule(PoseBehaviorDataModule):
    """Sturman et al. 2020 open-field test: rearing (Supported / Unsupported) from DeepLabCut
    tracks, 25 fps, two sessions of 1,998 frames; one whole session is held out for testing.

    Args:
        test_session: the held-out session (``12_01`` or ``8_01``); the other one trains, its last
            ``val_fraction`` of frames (a contiguous block) validates.
        reference: the annotator whose labels are the target (default Oliver: the highest mean
            agreement with the other two on both sessions); the other two give the human ceiling.
        val_fraction: fraction of the training session held out (at its end) for validation.
        **kwargs: see :class:`PoseBehaviorDataModule`.
    """

    class_names = tuple(datasets.STURMAN_CLASSES)
    primary = ("f1/Supported", "max")
    mirror_pairs = (("earl", "earr"), ("bcl", "bcr"), ("hipl", "hipr"), ("tl", "tr"), ("bl", "br"))

    def __init__(self, test_session: Literal["12_01", "8_01"] = "12_01",
                 reference: Literal["Oliver", "Jin", "Furkan"] = "Oliver", val_fraction: float = 0.25,
                 window: int = 64, margin: int = 16, stride: int = 16, min_likelihood: float = 0.6,
                 features: str = "ego+speed+pairwise+wall+social", mirror: bool = False, min_bout: int = 0,
                 batch_size: int = 32, num_workers: int = 0, split_seed: int = 0) -> None:
        super().__init__(window=window, margin=margin, stride=stride, min_likelihood=min_likelihood,
                         batch_size=batch_size, num_workers=num_workers, split_seed=split_seed, features=features,
                         mirror=mirror, min_bout=min_bout)
        if test_session not in datasets.STURMAN_SESSIONS:
            raise ConfigError(f"data.test_session must be one of {datasets.STURMAN_SESSIONS}")
        if not 0 < val_fraction < 1:
            raise ConfigError("data.val_fraction must be in (0, 1)")
        self.test_session, self.reference, self.val_fraction = test_session, reference, float(val_fraction)

    def feature_config(self) -> FeatureConfig:
        return FeatureConfig(datasets.STURMAN_MOUSE, "tailbase", "neck", datasets.STURMAN_ARENA, datasets.STURMAN_FPS,
                             self.groups)

    def load_sessions(self) -> list[Session]:
        return [datasets.load_sturman(s, self.reference) for s in datasets.STURMAN_SESSIONS]

    def split(self, sessions: list[Session]) -> dict[str, list[Segment]]:
        test = next(i for i, s in enumerate(sessions) if s.name == self.test_session)
        train = 1 - test
        n = sessions[train].n_frames
        cut = round(n * (1 - self.val_fraction))
        return {"train": [Segment(train, 0, cut)], "val": [Segment(train, cut, n)],
                "test": [Segment(test, 0, sessions[test].n_frames)]}


class EthomeSocialDataModule(PoseBehaviorDataModule):
    """ethome social interaction (adult + juvenile mouse, multi-animal DeepLabCut, 30 fps, 5,700
    frames, ``interact`` bouts from BORIS), split into contiguous time blocks of ``block_frames``
    for a ``n_folds``-fold cross-validation over time: in fold ``f``, block ``k`` is test when
    ``k % n_folds == f``, validation when ``k % n_folds == (f + n_folds // 2) % n_folds``, training
    otherwise. Over the folds every frame is tested once.

    Each run also reports the one-feature baseline of the data's documentation on the same test
    frames: adult nose to the nearest juvenile point below a threshold (in pixels) tuned on the
    training + validation frames (``baseline_f1/interact``).

    Args:
        block_frames: frames per time block (300 = 10 s).
        n_folds: number of folds.
        fold: the fold to hold out; -1 (default) = ``split_seed % n_folds``, so that the seeds of
            ``dltk benchmark ethome_social`` walk through the folds.
        **kwargs: see :class:`PoseBehaviorDataModule`.
    """

    class_names = tuple(datasets.ETHOME_CLASSES)
    primary = ("f1/interact", "max")
    mirror_pairs = (("leftear", "rightear"), ("lefthip", "righthip"))

    def __init__(self, block_frames: int = 300, n_folds: int = 4, fold: int = -1,
                 window: int = 64, margin: int = 16, stride: int = 16, min_likelihood: float = 0.6,
                 features: str = "ego+speed+pairwise+wall+social", mirror: bool = False, min_bout: int = 0,
                 batch_size: int = 32, num_workers: int = 0, split_seed: int = 0) -> None:
        super().__init__(window=window, margin=margin, stride=stride, min_likelihood=min_likelihood,
                         batch_size=batch_size, num_workers=num_workers, split_seed=split_seed, features=features,
                         mirror=mirror, min_bout=min_bout)
        if block_frames < 2 * margin + 1 or n_folds < 3:
            raise ConfigError("data.block_frames must exceed 2*margin and data.n_folds must be >= 3")
        self.block_frames, self.n_folds = int(block_frames), int(n_folds)
        self.fold = (int(split_seed) if fold < 0 else int(fold)) % self.n_folds

    def feature_config(self) -> FeatureConfig:
        return FeatureConfig(datasets.ETHOME_BODYPARTS, "tail", "neck", (), datasets.ETHOME_FPS, self.groups)

    def load_sessions(self) -> list[Session]:
        return [datasets.load_ethome()]

    def split(self, sessions: list[Session]) -> dict[str, list[Segment]]:
        n = sessions[0].n_frames
        out: dict[str, list[Segment]] = {"train": [], "val": [], "test": []}
        val = (self.fold + self.n_folds // 2) % self.n_folds
        for k, lo in enumerate(range(0, n, self.block_frames)):
            hi = min(n, lo + self.block_frames)
            part = "test" if k % self.n_folds == self.fold else "val" if k % self.n_folds == val else "train"
            out[part].append(Segment(0, lo, hi))
        self.segments_ = out
        return out

    def extra_metrics(self) -> dict[str, float]:
        """The one-feature baseline (see the class docstring) on this fold's test frames."""
        assert self.sessions_[0].track is not None
        track, _ = clean_track(self.sessions_[0].track, self.min_likelihood)
        adult, juvenile = track.individuals.index("adult"), track.individuals.index("juvenile")
        nose = track.bodyparts.index("nose")
        P = track.coords
        dist = np.linalg.norm(P[:, adult, nose][:, None, :] - P[:, juvenile], axis=-1).min(axis=1)
        y = self.sessions_[0].target

        def frames(part: str) -> np.ndarray:
            return np.concatenate([np.arange(g.lo, g.hi) for g in self.segments_[part]])

        fit = np.concatenate([frames("train"), frames("val")])
        grid = np.arange(10, 400, 5)
        scores = [frame_f1(y[fit], (dist[fit] < t).astype(float), 1) for t in grid]
        best = float(grid[int(np.nanargmax(scores))])
        test = frames("test")
        return {"baseline_f1/interact": frame_f1(y[test], (dist[test] < best).astype(float), 1),
                "baseline_threshold_px": best}


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


class PoseFilesDataModule(PoseBehaviorDataModule):
    """Your own pose files (DeepLabCut CSV or SLEAP HDF5) with bout annotations (BORIS export or
    ``start,stop,behavior`` tables), one annotation file per pose file, in the same order.

    With at least ``test_videos + val_videos + 1`` files, whole files are held out (the last
    ``test_videos`` for test, the ``val_videos`` before them for validation); with fewer, every
    file is cut in time: the first 60% trains, the next 20% validates, the last 20% tests.

    Args:
        pose: comma-separated pose files or glob patterns (sorted).
        labels: annotation files (comma-separated or globs), one per pose file, same order.
        behaviors: comma-separated behaviour names (classes; ``background`` is added first).
        fps: frames per second of the recordings (required unless the pose files state it).
        bodyparts: comma-separated points of the animal(s) to use (default: all in the first file).
        tail, head: the points defining the heading axis (default: last and first body part).
        arena: comma-separated static arena corner points, in polygon order (optional).
        mirror_pairs: left/right point pairs for ``mirror``, e.g. ``earl:earr,hipl:hipr``.
        unit: annotation times in ``seconds`` or ``frames``.
        overlap: overlapping bouts of different behaviours: ``error`` or ``ignore`` (unlabelled).
        test_videos, val_videos: files held out for test / validation.
        **kwargs: see :class:`PoseBehaviorDataModule`.
    """

    def __init__(self, pose: str = "", labels: str = "", behaviors: str = "", fps: float = 0.0,
                 bodyparts: str = "", tail: str = "", head: str = "", arena: str = "", mirror_pairs: str = "",
                 unit: Literal["seconds", "frames"] = "seconds", overlap: Literal["error", "ignore"] = "error",
                 test_videos: int = 1, val_videos: int = 1, window: int = 64, margin: int = 16, stride: int = 16,
                 min_likelihood: float = 0.6, features: str = "ego+speed+pairwise+wall+social",
                 mirror: bool = False, min_bout: int = 0, batch_size: int = 32, num_workers: int = 0,
                 split_seed: int = 0) -> None:
        super().__init__(window=window, margin=margin, stride=stride, min_likelihood=min_likelihood,
                         batch_size=batch_size, num_workers=num_workers, split_seed=split_seed, features=features,
                         mirror=mirror, min_bout=min_bout)
        names = [b.strip() for b in behaviors.split(",") if b.strip()]
        self.class_names = ("background", *names)
        self.primary = (f"f1/{names[0]}", "max") if len(names) == 1 else ("macro_f1", "max")
        self.pose, self.labels, self.fps = pose, labels, float(fps)
        self.bodyparts = tuple(b.strip() for b in bodyparts.split(",") if b.strip())
        self.tail, self.head = tail.strip(), head.strip()
        self.arena = tuple(b.strip() for b in arena.split(",") if b.strip())
        try:
            self.mirror_pairs = tuple((a.strip(), b.strip()) for a, b in
                                      (p.split(":") for p in mirror_pairs.split(",") if p.strip()))
        except ValueError:
            raise ConfigError("data.mirror_pairs: write left:right pairs separated by commas") from None
        self.unit, self.overlap = unit, overlap
        self.test_videos, self.val_videos = int(test_videos), int(val_videos)
        self._config: FeatureConfig | None = None

    def feature_config(self) -> FeatureConfig:
        if self._config is None:
            raise RuntimeError("feature_config() before load()")
        return self._config

    @classmethod
    def contract_overrides(cls, tmp_dir: Path) -> list[str]:
        """Tiny demo files for the plugin contract run (:func:`dltk_video.datasets.demo_pose_files`)."""
        poses, tables = datasets.demo_pose_files(Path(tmp_dir) / "pose_demo", n_files=3, n_frames=150)
        return ["--data.pose", ",".join(map(str, poses)), "--data.labels", ",".join(map(str, tables)),
                "--data.behaviors", "run", "--data.fps", "30"]

    def load(self) -> None:
        if not self.pose or not self.labels:
            raise ConfigError("data.pose and data.labels are required (comma-separated files or glob patterns)")
        if len(self.class_names) < 2:
            raise ConfigError("data.behaviors is required (comma-separated behaviour names)")
        poses, labels = expand_paths(self.pose, "pose"), expand_paths(self.labels, "labels")
        if len(poses) != len(labels):
            raise ConfigError(f"{len(poses)} pose files but {len(labels)} annotation files")
        tracks = [read_pose(p) for p in poses]
        first = tracks[0]
        parts = self.bodyparts or tuple(first.bodyparts)
        fps_values = {t.fps for t in tracks if t.fps}
        if len(fps_values) > 1:
            raise DataError(poses[0], f"the pose files state different frame rates: {sorted(fps_values)}")
        fps = self.fps or (fps_values.pop() if fps_values else 0.0)
        if not fps:
            raise ConfigError("data.fps is required: the pose files do not state their frame rate")
        self._config = FeatureConfig(parts, self.tail or parts[-1], self.head or parts[0], self.arena, fps, self.groups)
        self._sessions: list[Session] = []
        for path, track, label in zip(poses, tracks, labels):
            if track.individuals != first.individuals:
                raise DataError(path, f"animals {track.individuals} differ from {first.individuals} in {poses[0].name}")
            missing = [b for b in (*parts, *self.arena) if b not in track.bodyparts]
            if missing:
                raise DataError(path, f"body parts {missing} are not in this file (it has {track.bodyparts})",
                                field="bodyparts")
            bouts, label_fps = read_annotations(label)
            if label_fps is not None and abs(label_fps - fps) > 0.01 * fps:
                raise DataError(label, f"annotation fps {label_fps:g} differs from the tracking fps {fps:g}",
                                field="FPS")
            y, counts = bouts_to_frames(bouts, track.n_frames, list(self.class_names), fps=fps, unit=self.unit,
                                        overlap=self.overlap, path=label)
            if counts["overlap_frames"]:
                print(f"dltk video: {label}: {counts['overlap_frames']} frames with overlapping bouts left unlabelled")
            track.fps = fps
            self._sessions.append(Session(path.stem, track, {"annotation": y}, "annotation", fps))
        super().load()

    def load_sessions(self) -> list[Session]:
        return self._sessions

    def split(self, sessions: list[Session]) -> dict[str, list[Segment]]:
        n = len(sessions)
        if n >= self.test_videos + self.val_videos + 1:
            test = list(range(n - self.test_videos, n))
            val = list(range(n - self.test_videos - self.val_videos, n - self.test_videos))
            train = [i for i in range(n) if i not in test and i not in val]
            return {part: [Segment(i, 0, sessions[i].n_frames) for i in idx]
                    for part, idx in (("train", train), ("val", val), ("test", test))}
        out: dict[str, list[Segment]] = {"train": [], "val": [], "test": []}
        for i, s in enumerate(sessions):
            a, b = round(0.6 * s.n_frames), round(0.8 * s.n_frames)
            out["train"].append(Segment(i, 0, a))
            out["val"].append(Segment(i, a, b))
            out["test"].append(Segment(i, b, s.n_frames))
        return out
