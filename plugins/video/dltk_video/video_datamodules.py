"""video_behavior: per-frame behaviour from raw video files and bout annotations.

Each video is decoded with PyAV and embedded frame by frame with a frozen timm encoder
(:mod:`dltk_video.video`; embeddings cached on disk); the sequence model
(:class:`~dltk_video.models.PoseSequenceClassifier`) then labels every frame from windows of
embeddings, exactly as pose_behavior does from pose features. Videos are split whole (never
frames): the last ``test_videos`` files (in the given order) are the test set, the
``val_videos`` before them validation, the rest training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from dltk.errors import ConfigError, DataError

from dltk_video.datamodules import (
    TARGET_NAME,
    PoseBehaviorDataModule,
    Segment,
    expand_paths,
    frame_predictions,
)
from dltk_video.datasets import Session
from dltk_video.features import FeatureConfig
from dltk_video.options import FramePredictOptions
from dltk_video.readers import bouts_to_frames, read_annotations
from dltk_video.video import VIDEO_SUFFIXES, EncoderConfig, encode_video, video_info


def with_deltas(X: np.ndarray, deltas: str, center: bool = False) -> np.ndarray:
    """Per-frame inputs from embeddings ``X``: minus the per-video mean with ``center`` (removes
    the static scene, which differs between recordings); ``deltas``: ``off`` (embeddings),
    ``append`` (embeddings + their frame-to-frame change) or ``only`` (the change alone: motion)."""
    if center:
        X = X - X.mean(axis=0, keepdims=True)
    if deltas in ("off", False):
        return X
    delta = np.diff(X, axis=0, prepend=X[:1])
    return delta if deltas == "only" else np.concatenate([X, delta], axis=1)


class VideoBehaviorDataModule(PoseBehaviorDataModule):
    """Videos + bout annotations -> frozen CNN frame embeddings -> windows.

    Args:
        videos: comma-separated video files or glob patterns (mp4, avi, ...), or ``synthetic``: six
            generated videos of a disc whose motion (rest / left-right / up-down) is the behaviour
            (:func:`dltk_video.datasets.synthetic_videos`; a demo and test of the whole path).
        labels: annotation files in the same order (BORIS export or ``start,stop,behavior``
            table), or empty: ``<video stem>.csv`` beside each video.
        behaviors: comma-separated behaviour names (the classes; ``background`` is added first).
        unit: bout times in ``seconds`` (converted at the video's fps) or ``frames``.
        overlap: overlapping bouts of different behaviours: ``error`` or ``ignore`` (unlabelled).
        test_videos, val_videos: how many of the last videos are test / validation.
        encoder, image_size, pretrained, encoder_seed, gray, pool: the frozen encoder, see
            :class:`dltk_video.video.EncoderConfig`.
        center: subtract each video's mean embedding (the static scene) before everything else.
        deltas: the frame-to-frame change of the embedding (motion): ``off``, ``append`` (to the
            embedding) or ``only`` (the change alone).
        chunk: frames decoded and encoded at a time (memory does not grow with video length).
        **kwargs: see :class:`dltk_video.datamodules.PoseBehaviorDataModule`.
    """

    primary = ("macro_f1", "max")

    def __init__(self, videos: str = "", labels: str = "", behaviors: str = "",
                 unit: Literal["seconds", "frames"] = "seconds", overlap: Literal["error", "ignore"] = "error",
                 test_videos: int = 1, val_videos: int = 1, encoder: str = "resnet18",
                 image_size: int = 112, pretrained: bool = False, encoder_seed: int = 0, gray: bool = False,
                 pool: int = 1, deltas: Literal["off", "append", "only"] = "append", center: bool = True,
                 chunk: int = 64, window: int = 64, margin: int = 16, stride: int = 16, batch_size: int = 32,
                 num_workers: int = 0, split_seed: int = 0) -> None:
        super().__init__(window=window, margin=margin, stride=stride, batch_size=batch_size,
                         num_workers=num_workers, split_seed=split_seed)
        if unit not in ("seconds", "frames") or overlap not in ("error", "ignore"):
            raise ConfigError("data.unit must be seconds|frames and data.overlap error|ignore")
        self.videos, self.labels, self.unit, self.overlap = videos, labels, unit, overlap
        names = [b.strip() for b in behaviors.split(",") if b.strip()]
        self.class_names = ("background", *names)
        self.primary = (f"f1/{names[0]}", "max") if len(names) == 1 else ("macro_f1", "max")
        self.test_videos, self.val_videos = int(test_videos), int(val_videos)
        self.encoder_config = EncoderConfig(encoder, int(image_size), bool(pretrained), int(encoder_seed), bool(gray),
                                            int(pool))
        self.chunk = int(chunk)
        if deltas not in ("off", "append", "only"):
            raise ConfigError("data.deltas must be off, append or only")
        self.deltas = str(deltas)
        self.center = bool(center)

    def feature_config(self) -> FeatureConfig:
        return FeatureConfig((), "", "", (), 0.0)

    def load_sessions(self) -> list[Session]:
        if not self.videos:
            raise ConfigError("data.videos is required (comma-separated video files or glob patterns)")
        if len(self.class_names) < 2:
            raise ConfigError("data.behaviors is required (comma-separated behaviour names)")
        if self.videos.strip() == "synthetic":
            from dltk_video.datasets import synthetic_videos

            videos = synthetic_videos()
        else:
            videos = expand_paths(self.videos, "videos")
        labels = expand_paths(self.labels, "labels") if self.labels else [v.with_suffix(".csv") for v in videos]
        if len(labels) != len(videos):
            raise ConfigError(f"data.labels has {len(labels)} files for {len(videos)} videos")
        if len(videos) < self.test_videos + self.val_videos + 1:
            raise ConfigError(f"{len(videos)} videos: need at least test_videos + val_videos + 1")
        rates = [video_info(v)[0] for v in videos]  # every file opens and has a video stream before any encoding
        sessions = []
        for video, label, fps in zip(videos, labels, rates):
            if not fps:
                raise DataError(video, "the video states no frame rate (fps); re-encode it with one")
            X = with_deltas(encode_video(video, self.encoder_config, chunk=self.chunk), self.deltas, self.center)
            bouts, label_fps = read_annotations(label)
            if label_fps is not None and abs(label_fps - fps) > 0.01 * fps:
                raise DataError(label, f"annotation fps {label_fps:g} differs from the video's {fps:g}", field="FPS")
            y, counts = bouts_to_frames(bouts, len(X), list(self.class_names), fps=fps, unit=self.unit,  # type: ignore[arg-type]
                                        overlap=self.overlap, path=label)  # type: ignore[arg-type]
            if counts["overlap_frames"]:
                print(f"dltk video: {label}: {counts['overlap_frames']} frames with overlapping bouts left unlabelled")
            sessions.append(Session(video.stem, None, {"annotation": y}, "annotation", fps, features=X))
        return sessions

    def split(self, sessions: list[Session]) -> dict[str, list[Segment]]:
        n = len(sessions)
        test = list(range(n - self.test_videos, n))
        val = list(range(n - self.test_videos - self.val_videos, n - self.test_videos))
        train = [i for i in range(n) if i not in test and i not in val]
        return {part: [Segment(i, 0, sessions[i].n_frames) for i in idx]
                for part, idx in (("train", train), ("val", val), ("test", test))}

    def extra_info(self) -> dict[str, Any]:
        info = super().extra_info()
        info.pop("feature_config", None)
        info["encoder"] = {**self.encoder_config.__dict__}
        info["chunk"] = self.chunk
        info["deltas"] = self.deltas
        info["center"] = self.center
        return info

    @classmethod
    def request_schema(cls) -> None:
        """Raw videos are not served (``dltk serve`` takes pose files; predict videos with ``dltk predict``)."""
        return None

    def predict_file(self, input_path: str, output_path: str, models: list[Any],
                     options: FramePredictOptions | None = None) -> dict[str, int] | None:
        return predict_video_file(input_path, output_path, models, options or FramePredictOptions(),
                                  self.prediction_min_bout(models))


def predict_video_file(input_path: str, output_path: str, models: list[Any], options: FramePredictOptions,
                       min_bout: int = 0) -> dict[str, int]:
    """Label every frame of a video with a video_behavior run (CSV + ethogram PNG beside it)."""
    from dltk.io import atomic_path

    from dltk_video.ethogram import ethogram

    ns = options
    path = Path(input_path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise DataError(path, f"this run predicts from video files ({', '.join(VIDEO_SUFFIXES)})")
    info = models[0].data_info
    fps, _ = video_info(path)
    fps = float(ns.fps or fps)
    if not fps:
        raise DataError(path, "the video states no frame rate; pass --fps")
    X = with_deltas(encode_video(path, EncoderConfig(**info["encoder"]), chunk=int(info.get("chunk", 64))),
                    str(info.get("deltas", "off")), bool(info.get("center", False)))
    probs, labels, _ = frame_predictions(X, info, models, min_bout, path, "features per frame")
    class_names = list(info["class_names"])
    names = np.asarray(class_names, dtype=object)
    table = pd.DataFrame({"frame": np.arange(len(probs)), "time_s": np.arange(len(probs)) / fps,
                          TARGET_NAME: names[labels]})
    for c, cname in enumerate(class_names):
        table[f"prob_{cname}"] = probs[:, c]
    out = Path(output_path)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    if ns.plot:
        ethogram({"model": labels.astype(float)}, class_names, fps, out.with_suffix(".png"),
                 f"{path.name}: predicted behaviour", probabilities=probs)
    return {"frames": len(probs), "min_bout": min_bout}
