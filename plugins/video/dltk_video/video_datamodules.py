"""video_behavior: per-frame behaviour from raw video files and bout annotations.

Each video is decoded with PyAV and embedded frame by frame with a frozen timm encoder
(:mod:`dltk_video.video`; embeddings cached on disk); the sequence model
(:class:`~dltk_video.models.PoseSequenceClassifier`) then labels every frame from windows of
embeddings, exactly as pose_behavior does from pose features. Videos are split whole (never
frames): the last ``test_videos`` files (in the given order) are the test set, the
``val_videos`` before them validation, the rest training.

This source lives beside the :mod:`dltk_video.datamodules` package rather than in it because
every run's ``config.yaml`` records its class as ``dltk_video.video_datamodules.VideoBehaviorDataModule``.
"""

from __future__ import annotations

from typing import Any, Literal

from dltk.errors import ConfigError, DataError

from dltk_video.datamodules.base import FrameWindowDataModule, Segment, expand_paths
from dltk_video.datasets import Session
from dltk_video.options import FramePredictOptions
from dltk_video.readers import bouts_to_frames, read_annotations
from dltk_video.video import EncoderConfig, encode_video, video_info, with_deltas

__all__ = ["VideoBehaviorDataModule", "with_deltas"]


class VideoBehaviorDataModule(FrameWindowDataModule):
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
        **kwargs: see :class:`dltk_video.datamodules.base.FrameWindowDataModule`.
    """

    def __init__(self, videos: str = "", labels: str = "", behaviors: str = "",
                 unit: Literal["seconds", "frames"] = "seconds", overlap: Literal["error", "ignore"] = "error",
                 test_videos: int = 1, val_videos: int = 1, encoder: str = "resnet18",
                 image_size: int = 112, pretrained: bool = False, encoder_seed: int = 0, gray: bool = False,
                 pool: int = 1, deltas: Literal["off", "append", "only"] = "append", center: bool = True,
                 chunk: int = 64, **kwargs: Any) -> None:
        super().__init__(**kwargs)
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
        return {**super().extra_info(), "encoder": {**self.encoder_config.__dict__}, "chunk": self.chunk,
                "deltas": self.deltas, "center": self.center}

    @classmethod
    def request_schema(cls) -> None:
        """Raw videos are not served (``dltk serve`` takes pose files; predict videos with ``dltk predict``)."""
        return None

    def predict_file(self, input_path: str, output_path: str, models: list[Any],
                     options: FramePredictOptions | None = None) -> dict[str, int] | None:
        from dltk_video.prediction import prediction_min_bout, predict_video_file

        return predict_video_file(input_path, output_path, models, options or FramePredictOptions(),
                                  prediction_min_bout(self, models))
