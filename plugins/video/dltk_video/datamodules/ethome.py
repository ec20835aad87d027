"""ethome social interaction (adult + juvenile mouse, multi-animal DeepLabCut)."""

from __future__ import annotations

from typing import Any

import numpy as np
from dltk.errors import ConfigError

from dltk_video import datasets
from dltk_video.datamodules.base import Segment
from dltk_video.datamodules.pose import PoseBehaviorDataModule
from dltk_video.datasets import Session
from dltk_video.features import FeatureConfig
from dltk_video.readers import clean_track
from dltk_video.scoring import frame_f1


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
        **kwargs: see :class:`~dltk_video.datamodules.pose.PoseBehaviorDataModule`.
    """

    class_names = tuple(datasets.ETHOME_CLASSES)
    primary = ("f1/interact", "max")
    mirror_pairs = (("leftear", "rightear"), ("lefthip", "righthip"))

    def __init__(self, block_frames: int = 300, n_folds: int = 4, fold: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if block_frames < 2 * self.margin + 1 or n_folds < 3:
            raise ConfigError("data.block_frames must exceed 2*margin and data.n_folds must be >= 3")
        self.block_frames, self.n_folds = int(block_frames), int(n_folds)
        self.fold = (int(self.split_seed) if fold < 0 else int(fold)) % self.n_folds

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
