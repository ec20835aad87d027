"""Pose-behaviour datamodules: pose tracks + bouts -> per-frame pose features -> windows
(:class:`~dltk_video.datamodules.base.FrameWindowDataModule`); the sources subclass
:class:`PoseBehaviorDataModule`."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import numpy as np
from dltk.errors import ConfigError

from dltk_video.datamodules.base import FrameWindowDataModule
from dltk_video.datasets import Session
from dltk_video.features import FEATURE_GROUPS, FeatureConfig, pose_features
from dltk_video.options import FramePredictOptions
from dltk_video.readers import PoseTrack, clean_track
from dltk_video.serving import PoseServing

log = logging.getLogger("dltk.video")


class PoseBehaviorDataModule(PoseServing, FrameWindowDataModule):
    """Shared behaviour of the pose datamodules; subclasses give sessions, classes, the split and
    the body parts (:meth:`feature_config`).

    ``window``, ``margin`` and ``stride`` are named here only so that resolved configs keep
    listing them first, as they always have; they go to the base unchanged.

    Args:
        min_likelihood: keypoints below this likelihood are masked and interpolated.
        features: ``+``-separated feature groups (``ego``, ``speed``, ``pairwise``, ``wall``,
            ``social``; see :mod:`dltk_video.features`).
        mirror: add a left-right mirrored copy of the training tracks (x -> -x, left/right body
            parts swapped) as augmentation.
        min_bout: minimum bout length in frames (post-processing of the predicted labels: shorter
            gaps inside a behaviour are filled, shorter bouts dropped); 0 = none (default); -1 =
            chosen on the validation frames from :data:`dltk_video.evaluation.MIN_BOUT_GRID` by
            the primary F1.
        window, margin, stride, **kwargs: see :class:`FrameWindowDataModule`.
    """

    mirror_pairs: tuple[tuple[str, str], ...] = ()

    def __init__(self, window: int = 64, margin: int = 16, stride: int = 16, min_likelihood: float = 0.6,
                 features: str = "ego+speed+pairwise+wall+social", mirror: bool = False, min_bout: int = 0,
                 **kwargs: Any) -> None:
        groups = tuple(g.strip() for g in features.split("+") if g.strip())
        if not groups or set(groups) - set(FEATURE_GROUPS):
            raise ConfigError(f"data.features: choose groups from {', '.join(FEATURE_GROUPS)} joined by '+'")
        super().__init__(window=window, margin=margin, stride=stride, **kwargs)
        self.groups = groups
        self.mirror = bool(mirror)
        self.min_bout = int(min_bout)
        self.min_likelihood = float(min_likelihood)

    def feature_config(self) -> FeatureConfig:
        raise NotImplementedError

    def session_features(self, session: Session) -> tuple[np.ndarray, np.ndarray | None]:
        if session.features is not None:
            return session.features, None
        assert session.track is not None
        config = self.feature_config()
        track, report = clean_track(session.track, self.min_likelihood)
        if report.masked or report.empty_parts:
            log.warning(report.line(session.name))
        X, _ = pose_features(track, config)
        mirrored = pose_features(mirror_track(track, self.mirror_pairs), config)[0] if self.mirror else None
        return X, mirrored

    def extra_info(self) -> dict[str, Any]:
        info = super().extra_info()
        config = self.feature_config()
        first = self.sessions_[0].track if self.sessions_ else None
        return {**info, "feature_config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
                "individuals": list(first.individuals) if first is not None else [],
                "min_likelihood": self.min_likelihood}

    def predict_file(self, input_path: str, output_path: str, models: list[Any],
                     options: FramePredictOptions | None = None) -> dict[str, int] | None:
        from dltk_video.prediction import prediction_min_bout, predict_pose_file

        return predict_pose_file(input_path, output_path, models, options or FramePredictOptions(),
                                 prediction_min_bout(self, models))


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
