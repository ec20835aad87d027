"""Your own pose files (DeepLabCut CSV or SLEAP HDF5) with bout annotations."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from dltk.errors import ConfigError, DataError

from dltk_video import datasets
from dltk_video.datamodules.base import Segment, expand_paths
from dltk_video.datamodules.pose import PoseBehaviorDataModule
from dltk_video.datasets import Session
from dltk_video.features import FeatureConfig
from dltk_video.readers import PoseTrack, bouts_to_frames, read_annotations, read_pose


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
        **kwargs: see :class:`~dltk_video.datamodules.pose.PoseBehaviorDataModule`.
    """

    def __init__(self, pose: str = "", labels: str = "", behaviors: str = "", fps: float = 0.0,
                 bodyparts: str = "", tail: str = "", head: str = "", arena: str = "", mirror_pairs: str = "",
                 unit: Literal["seconds", "frames"] = "seconds", overlap: Literal["error", "ignore"] = "error",
                 test_videos: int = 1, val_videos: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
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
        self._sessions = [self._session(path, track, label, poses[0], first)
                          for path, track, label in zip(poses, tracks, labels)]
        super().load()

    def _session(self, path: Path, track: PoseTrack, label: Path, first_path: Path, first: PoseTrack) -> Session:
        """One pose file and its annotations, checked against the first file and the configuration."""
        config = self.feature_config()
        if track.individuals != first.individuals:
            raise DataError(path, f"animals {track.individuals} differ from {first.individuals} in {first_path.name}")
        missing = [b for b in (*config.bodyparts, *self.arena) if b not in track.bodyparts]
        if missing:
            raise DataError(path, f"body parts {missing} are not in this file (it has {track.bodyparts})",
                            field="bodyparts")
        bouts, label_fps = read_annotations(label)
        fps = config.fps
        if label_fps is not None and abs(label_fps - fps) > 0.01 * fps:
            raise DataError(label, f"annotation fps {label_fps:g} differs from the tracking fps {fps:g}",
                            field="FPS")
        y, counts = bouts_to_frames(bouts, track.n_frames, list(self.class_names), fps=fps, unit=self.unit,
                                    overlap=self.overlap, path=label)
        if counts["overlap_frames"]:
            print(f"dltk video: {label}: {counts['overlap_frames']} frames with overlapping bouts left unlabelled")
        track.fps = fps
        return Session(path.stem, track, {"annotation": y}, "annotation", fps)

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
