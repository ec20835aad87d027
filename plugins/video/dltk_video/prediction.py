"""``dltk predict`` on a video-plugin run: one label per frame of a whole pose file or video.

The recording's per-frame features are standardised with the run's training statistics, cut into
the run's overlapping windows, averaged over the run's models and stitched back so that every frame
is predicted once; a CSV (``frame, time_s, behavior, prob_<class>...``) and an ethogram PNG are
written beside each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from dltk.base import INPUT, TARGET, TensorDictDataset
from dltk.errors import DataError

from dltk_video.datamodules.base import TARGET_NAME, FrameWindowDataModule
from dltk_video.evaluation import choose_min_bout
from dltk_video.features import FeatureConfig, eval_windows, plan_windows, pose_features, stitch
from dltk_video.options import FramePredictOptions
from dltk_video.readers import PoseTrack, clean_track, read_pose
from dltk_video.scoring import smooth_labels
from dltk_video.video import VIDEO_SUFFIXES, EncoderConfig, encode_video, video_info, with_deltas


def prediction_min_bout(dm: FrameWindowDataModule, models: list[Any]) -> int:
    """The minimum bout length used at test time: configured, or re-chosen on the validation
    frames with these models (the same choice as the run's test; 0 if the training data are
    not available here)."""
    if dm.min_bout >= 0:
        return dm.min_bout
    from dltk.inference import ensemble_inference

    try:
        dm.setup()
    except DataError as exc:
        print(f"dltk video: no minimum-bout smoothing (validation data unavailable: {exc})")
        return 0
    val_preds, _, _ = ensemble_inference(models, dm.val_dataloader())
    return choose_min_bout(dm, val_preds)


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


def write_frame_labels(out: Path, frames: np.ndarray, fps: float, class_names: list[str], probs: np.ndarray,
                       labels: np.ndarray, spread: np.ndarray | None, plot: bool, title: str) -> Path | None:
    """The per-frame CSV at ``out`` and, with ``plot``, an ethogram PNG beside it (its path)."""
    from dltk.io import atomic_path

    from dltk_video.ethogram import ethogram

    names = np.asarray(class_names, dtype=object)
    table = pd.DataFrame({"frame": frames, "time_s": np.arange(len(probs)) / fps, TARGET_NAME: names[labels]})
    for c, cname in enumerate(class_names):
        table[f"prob_{cname}"] = probs[:, c]
        if spread is not None:
            table[f"prob_{cname}_std"] = spread[:, c]
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    if not plot:
        return None
    return ethogram({"model": labels.astype(float)}, class_names, fps, out.with_suffix(".png"), title,
                    probabilities=probs)


def training_track(path: Path, info: dict[str, Any], options: FramePredictOptions) -> tuple[PoseTrack, FeatureConfig]:
    """The pose file read and checked against the run's training configuration (frame rate,
    animals, body parts), with its low-likelihood points cleaned as at training."""
    fc = dict(info["feature_config"])
    config = FeatureConfig(tuple(fc["bodyparts"]), fc["tail"], fc["head"], tuple(fc.get("arena", ())),
                           float(options.fps or fc["fps"]), tuple(fc.get("groups", FeatureConfig.groups)))
    track = read_pose(path)
    if track.fps is not None and options.fps is None and abs(track.fps - config.fps) > 1e-3:
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
    missing = [b for b in (*config.bodyparts, *config.arena) if b not in track.bodyparts]
    if missing:
        raise DataError(path, f"body parts {missing} of the training configuration are not in the file "
                        f"(it has {track.bodyparts})", field="bodyparts")
    min_likelihood = options.min_likelihood
    track, report = clean_track(track, min_likelihood if min_likelihood is not None else
                                float(info.get("min_likelihood", 0.6)))
    print(report.line(str(path)))
    return track, config


def predict_pose_file(input_path: str, output_path: str, models: list[Any], options: FramePredictOptions,
                      min_bout: int = 0) -> dict[str, int]:
    """Label every frame of a pose file (DeepLabCut CSV or SLEAP HDF5) with a trained run.

    Writes ``output_path`` (``frame, time_s, behavior, prob_<class>...``) and an ethogram PNG
    beside it; the file's body parts and animals must match the training configuration.
    """
    path = Path(input_path)
    if path.suffix.lower() in (".mp4", ".avi", ".mov", ".mkv"):
        raise DataError(path, "this run predicts from pose files (DeepLabCut .csv, SLEAP .h5); "
                        "use a video_behavior run for raw video")
    info = models[0].data_info
    track, config = training_track(path, info, options)
    X, _ = pose_features(track, config)
    probs, labels, spread = frame_predictions(X, info, models, min_bout, path, "features from this file")
    class_names = list(info["class_names"])
    frames = track.frames if len(track.frames) == len(probs) else np.arange(len(probs))
    png = write_frame_labels(Path(output_path), frames, config.fps, class_names, probs, labels, spread,
                             options.plot, f"{path.name}: predicted behaviour")
    if png is not None:
        print(f"dltk predict: ethogram -> {png}")
    counts = {"frames": len(probs), "min_bout": min_bout}
    for c, cname in enumerate(class_names[1:], start=1):
        counts[f"{cname}_frames"] = int((labels == c).sum())
    return counts


def predict_video_file(input_path: str, output_path: str, models: list[Any], options: FramePredictOptions,
                       min_bout: int = 0) -> dict[str, int]:
    """Label every frame of a video with a video_behavior run (CSV + ethogram PNG beside it)."""
    path = Path(input_path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise DataError(path, f"this run predicts from video files ({', '.join(VIDEO_SUFFIXES)})")
    info = models[0].data_info
    fps, _ = video_info(path)
    fps = float(options.fps or fps)
    if not fps:
        raise DataError(path, "the video states no frame rate; pass --fps")
    X = with_deltas(encode_video(path, EncoderConfig(**info["encoder"]), chunk=int(info.get("chunk", 64))),
                    str(info.get("deltas", "off")), bool(info.get("center", False)))
    probs, labels, _ = frame_predictions(X, info, models, min_bout, path, "features per frame")
    write_frame_labels(Path(output_path), np.arange(len(probs)), fps, list(info["class_names"]), probs, labels,
                       None, options.plot, f"{path.name}: predicted behaviour")
    return {"frames": len(probs), "min_bout": min_bout}
