"""pose_estimation: the 116 labelled DeepLabCut frames, the heatmap model's loss and decoding, and
tracks written as a DeepLabCut CSV that the pose readers read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from dltk.base import INPUT, TARGET
from dltk_video.pose_estimation import DLCFramesDataModule, KeypointHeatmapNet, frame_files, predict_tracks
from dltk_video.readers import read_dlc_csv
from dltk_video.video import write_video


def test_labelled_frames(data_root: Path) -> None:
    assert len(frame_files()) == 116
    dm = DLCFramesDataModule(width=160, height=120)
    dm.setup()
    sizes = [len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset)]
    assert sizes == [80, 12, 24] and sum(sizes) == 116
    item = dm.test_dataset[0]
    assert item[INPUT].shape == (1, 120, 160) and item[INPUT].dtype == torch.uint8
    # frame 0's snout at (21.521, 265.428) in 640x480, scaled by 1/4
    assert item[TARGET][:2].tolist() == pytest.approx([21.521 / 4, 265.428 / 4], abs=1e-4)
    assert dm.task_names == ["snout_x", "snout_y", "leftear_x", "leftear_y", "rightear_x", "rightear_y",
                             "tailbase_x", "tailbase_y"]
    assert 50 < dm.extra_info()["baseline_mean_px_error"] < 300  # predicting the mean training position


def test_heatmap_loss_and_soft_argmax() -> None:
    kwargs, info, batch = KeypointHeatmapNet.example()
    model = KeypointHeatmapNet(**kwargs, data_info=info)
    out = model(batch)
    assert out.shape == (2, 2, 4, 6)  # stride 8 on 32 x 48
    loss = model.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss)
    # a heatmap peaked at one cell decodes to that cell's centre in input pixels
    logits = torch.full((1, 1, 4, 6), -30.0)
    logits[0, 0, 2, 3] = 30.0
    pos, peak = model.locate(logits)
    assert pos[0, 0].tolist() == pytest.approx([3.5 * 8 - 0.5, 2.5 * 8 - 0.5]) and peak[0, 0] > 0.99
    # the loss is lowest when the heatmap peaks at the target
    target = torch.tensor([[27.5, 19.5, float("nan"), float("nan")]])
    good = torch.full((1, 2, 4, 6), -5.0)
    good[0, 0, 2, 3] = 5.0
    bad = torch.full((1, 2, 4, 6), -5.0)
    bad[0, 0, 0, 0] = 5.0
    assert model.loss(good, target) < model.loss(bad, target)


def test_tracks_written_as_dlc_csv(tmp_path: Path) -> None:
    kwargs, info, _ = KeypointHeatmapNet.example()
    model = KeypointHeatmapNet(**kwargs, data_info={**info, "width": 48, "height": 32})
    video = write_video(tmp_path / "v.mp4", np.zeros((5, 64, 96, 3), np.uint8), fps=10)
    counts = predict_tracks(str(video), str(tmp_path / "tracks.csv"), [model])
    assert counts == {"frames": 5}
    track = read_dlc_csv(tmp_path / "tracks.csv")
    assert track.coords.shape == (5, 1, 2, 2) and track.bodyparts == ["a", "b"]
    assert ((track.coords >= -1) & (track.coords <= 96)).all()  # in the video's pixels (2x the input)
    assert ((track.likelihood >= 0) & (track.likelihood <= 1)).all()
