"""Sturman et al. 2020 open-field test (rearing from DeepLabCut tracks)."""

from __future__ import annotations

from typing import Any, Literal

from dltk.errors import ConfigError

from dltk_video import datasets
from dltk_video.datamodules.base import Segment
from dltk_video.datamodules.pose import PoseBehaviorDataModule
from dltk_video.datasets import Session
from dltk_video.features import FeatureConfig


class SturmanOFTDataModule(PoseBehaviorDataModule):
    """Sturman et al. 2020 open-field test: rearing (Supported / Unsupported) from DeepLabCut
    tracks, 25 fps, two sessions of 1,998 frames; one whole session is held out for testing.

    Args:
        test_session: the held-out session (``12_01`` or ``8_01``); the other one trains, its last
            ``val_fraction`` of frames (a contiguous block) validates.
        reference: the annotator whose labels are the target (default Oliver: the highest mean
            agreement with the other two on both sessions); the other two give the human ceiling.
        val_fraction: fraction of the training session held out (at its end) for validation.
        **kwargs: see :class:`~dltk_video.datamodules.pose.PoseBehaviorDataModule`.
    """

    class_names = tuple(datasets.STURMAN_CLASSES)
    primary = ("f1/Supported", "max")
    mirror_pairs = (("earl", "earr"), ("bcl", "bcr"), ("hipl", "hipr"), ("tl", "tr"), ("bl", "br"))

    def __init__(self, test_session: Literal["12_01", "8_01"] = "12_01",
                 reference: Literal["Oliver", "Jin", "Furkan"] = "Oliver", val_fraction: float = 0.25,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
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
