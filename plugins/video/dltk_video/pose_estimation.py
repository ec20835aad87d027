"""pose_estimation: keypoints from frames with a timm backbone and heatmaps, trained on the 116
labelled frames of the DeepLabCut open-field example; predicts tracks for a video as a
DeepLabCut CSV that pose_behavior reads.

The network is a timm backbone (``features_only``, the stride-8 feature map) with a small
convolutional head giving one heatmap per body part. Training minimises the cross-entropy between
each heatmap's spatial softmax and a Gaussian around the labelled point (sigma in heatmap cells);
the prediction is the soft-argmax (expected position) of the softmax, in input pixels, and the
likelihood its peak probability mass within one cell. Frames are grey, resized to
``width`` x ``height``.

Split (fixed, by frame index): frame i is test when i % 5 == 0 (24 frames), validation when
i % 10 == 1 (12 frames), training otherwise (80). The frames come from one session, so held-out
frames are close to training ones (DeepLabCut's own protocol is a random 95/5 split of the labelled
frames); the figures measure fit to this mouse and camera, not transfer to new sessions.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from dltk.base import INPUT, TARGET, BaseDataModule, BaseTask, TensorDictDataset
from dltk.data.registry import RemoteFile, fetch
from dltk.errors import ConfigError, DataError
from torch import Tensor, nn

from dltk_video import datasets
from dltk_video.readers import read_dlc_csv

_FRAMES_URL = ("https://raw.githubusercontent.com/DeepLabCut/DeepLabCut/main/examples/"
               "openfield-Pranav-2018-10-30/labeled-data/m4s1/")


def frame_files() -> dict[str, RemoteFile]:
    """The 116 labelled frames as registered files (sha256 of the mirrored grey JPEG repacks; the
    URL serves the original PNGs, so a download would not match: use the mirror)."""
    table = yaml.safe_load((Path(__file__).parent / "dlc_openfield_frames.yaml").read_text())
    return {name: RemoteFile(f"video/dlc-openfield/frames/{name}", _FRAMES_URL + name.replace(".jpg", ".png"), sha)
            for name, sha in table.items()}


class DLCFramesDataModule(BaseDataModule):
    """The 116 labelled DeepLabCut open-field frames (snout, leftear, rightear, tailbase).

    Args:
        width, height: frames are resized to this size (the labels scaled with them).
        batch_size, num_workers, split_seed: see :class:`dltk.base.BaseDataModule`.
    """

    def __init__(self, width: int = 320, height: int = 240, batch_size: int = 8, num_workers: int = 0,
                 split_seed: int = 0) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, split_seed=split_seed)
        if width % 8 or height % 8:
            raise ConfigError("data.width and data.height must be multiples of 8")
        self.width, self.height = int(width), int(height)
        self.task_type = "regression"
        self.bodyparts: list[str] = []
        self.scale = (1.0, 1.0)
        self._baseline = math.nan

    def load(self) -> None:
        from PIL import Image

        track = read_dlc_csv(fetch(datasets.FILES["dlc_openfield/labels"]))
        files = frame_files()
        images, coords = [], []
        for i, name in enumerate(track.index):
            jpg = Path(name).with_suffix(".jpg").name
            if jpg not in files:
                raise DataError(track.path, f"no frame file for {name!r}", row=i + 4)
            with Image.open(fetch(files[jpg])) as im:
                self.scale = (im.width / self.width, im.height / self.height)
                images.append(np.asarray(im.convert("L").resize((self.width, self.height), Image.BILINEAR)))
            coords.append(track.coords[i, 0] / np.array(self.scale, dtype=np.float32))
        self.bodyparts = list(track.bodyparts)
        self.task_names = [f"{bp}_{c}" for bp in self.bodyparts for c in "xy"]
        x = np.stack(images)[:, None]  # (N, 1, H, W) uint8
        y = np.stack(coords).reshape(len(coords), -1).astype(np.float32)
        idx = np.arange(len(x))
        test, val = idx % 5 == 0, idx % 10 == 1
        train = ~test & ~val
        mean = y[train].reshape(-1, len(self.bodyparts), 2).mean(axis=0).reshape(-1)
        err = np.linalg.norm(((y[test] - mean).reshape(-1, len(self.bodyparts), 2)) * np.array(self.scale), axis=-1)
        self._baseline = float(err.mean())
        self.train_dataset = TensorDictDataset(**{INPUT: x[train], TARGET: y[train]})
        self.val_dataset = TensorDictDataset(**{INPUT: x[val], TARGET: y[val]})
        self.test_dataset = TensorDictDataset(**{INPUT: x[test], TARGET: y[test]})
        import pandas as pd

        self._test_records = pd.DataFrame({"frame": [track.index[i] for i in idx[test]]})
        print(f"dltk video: {int(train.sum())} training, {int(val.sum())} validation, {int(test.sum())} test frames")

    def extra_info(self) -> dict[str, Any]:
        return {"bodyparts": self.bodyparts, "width": self.width, "height": self.height,
                "scale": list(self.scale), "baseline_mean_px_error": self._baseline}

    def predict_file(self, input_path: str, output_path: str, models: list[Any],
                     options: object = None) -> dict[str, int] | None:
        return predict_tracks(input_path, output_path, models)


class KeypointHeatmapNet(BaseTask):
    """Heatmap keypoint detector on a timm backbone (see the module docstring).

    Args:
        backbone: timm model name (``features_only``; the stride-8 feature map is used).
        pretrained: timm's pretrained weights (from the local Hugging Face cache).
        head_channels: width of the heatmap head.
        sigma: Gaussian target width in heatmap cells.
        **kwargs: optimiser settings, see :class:`dltk.base.BaseTask`.
    """

    def __init__(self, backbone: str = "resnet18", pretrained: bool = False, head_channels: int = 64,
                 sigma: float = 1.5, weight_decay: float = 1e-4, **kwargs: Any) -> None:
        super().__init__(weight_decay=weight_decay, **kwargs)

    def configure_models(self) -> None:
        import timm

        hp = self.hparams
        self.backbone = timm.create_model(hp.backbone, pretrained=hp.pretrained, features_only=True, in_chans=1)
        reductions = self.backbone.feature_info.reduction()
        self.level = reductions.index(8) if 8 in reductions else len(reductions) - 1
        self.stride = reductions[self.level]
        channels = self.backbone.feature_info.channels()[self.level]
        k = len(self.data_info["bodyparts"])
        self.head = nn.Sequential(nn.Conv2d(channels, hp.head_channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(hp.head_channels, k, 1))

    def forward(self, batch: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        x = (batch[INPUT].float() / 255.0 - 0.45) / 0.25
        return self.head(self.backbone(x)[self.level])  # (B, K, h, w) logits

    def _grid(self, out: Tensor) -> tuple[Tensor, Tensor]:
        h, w = out.shape[-2:]
        ys = (torch.arange(h, device=out.device, dtype=out.dtype) + 0.5) * self.stride - 0.5
        xs = (torch.arange(w, device=out.device, dtype=out.dtype) + 0.5) * self.stride - 0.5
        return xs, ys

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        B, K, h, w = output.shape
        xs, ys = self._grid(output)
        t = target.view(B, K, 2)
        ok = torch.isfinite(t).all(-1)
        t = torch.nan_to_num(t)
        d2 = ((xs.view(1, 1, 1, w) - t[..., 0, None, None]) ** 2 + (ys.view(1, 1, h, 1) - t[..., 1, None, None]) ** 2)
        gauss = torch.exp(-d2 / (2 * (self.hparams.sigma * self.stride) ** 2)).view(B, K, -1)
        gauss = gauss / gauss.sum(-1, keepdim=True).clamp_min(1e-12)
        logp = torch.log_softmax(output.view(B, K, -1), dim=-1)
        ce = -(gauss * logp).sum(-1)
        return ce[ok].mean() if ok.any() else output.sum() * 0.0

    def locate(self, output: Tensor) -> tuple[Tensor, Tensor]:
        """Soft-argmax positions ``(B, K, 2)`` in input pixels and peak likelihoods ``(B, K)``."""
        B, K, h, w = output.shape
        xs, ys = self._grid(output)
        p = torch.softmax(output.view(B, K, -1), dim=-1).view(B, K, h, w)
        x = (p.sum(2) * xs).sum(-1)
        y = (p.sum(3) * ys).sum(-1)
        peak = torch.nn.functional.avg_pool2d(p, 3, stride=1, padding=1).view(B, K, -1).amax(-1) * 9
        return torch.stack([x, y], -1), peak.clamp(0, 1)

    def postprocess(self, output: Tensor) -> Tensor:
        return self.locate(output)[0].reshape(output.shape[0], -1)

    def test_metrics(self, preds: np.ndarray, target: np.ndarray) -> dict[str, float]:
        out = super().test_metrics(preds, target)
        scale = np.asarray(self.data_info.get("scale", [1.0, 1.0]))
        K = len(self.data_info["bodyparts"])
        err = np.linalg.norm((preds - target).reshape(-1, K, 2) * scale, axis=-1)
        out["mean_px_error"] = float(np.nanmean(err))
        for k, bp in enumerate(self.data_info["bodyparts"]):
            out[f"px_error/{bp}"] = float(np.nanmean(err[:, k]))
        out["pck@10px"] = float(np.nanmean(err < 10))
        out["pck@20px"] = float(np.nanmean(err < 20))
        out["baseline_mean_px_error"] = float(self.data_info.get("baseline_mean_px_error", math.nan))
        return out

    @classmethod
    def example(cls) -> tuple[dict[str, Any], dict[str, Any], dict[str, Tensor]]:
        info = {"task_names": ["a_x", "a_y", "b_x", "b_y"], "task_type": "regression", "bodyparts": ["a", "b"],
                "scale": [1.0, 1.0]}
        target = torch.tensor([[10.0, 12.0, 30.0, 20.0], [5.0, 6.0, float("nan"), float("nan")]])
        return {"backbone": "resnet10t", "head_channels": 8}, info, {INPUT: torch.randint(0, 255, (2, 1, 32, 48)),
                                                                      TARGET: target}


def predict_tracks(input_path: str, output_path: str, models: list[Any]) -> dict[str, int]:
    """Track a video with a pose_estimation run: a DeepLabCut CSV (x, y, likelihood per body part,
    in the video's pixels) that pose_behavior and ``dltk_video.readers.read_dlc_csv`` read."""
    from dltk.inference import device
    from dltk.io import atomic_write

    from dltk_video.video import iter_frames, video_info

    path = Path(input_path)
    info = models[0].data_info
    width, height = int(info["width"]), int(info["height"])
    video_info(path)
    dev = device()
    for m in models:
        m.to(dev).eval()
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        sx, sy = stream.width / width, stream.height / height
    bodyparts = list(info["bodyparts"])
    n = 0
    with atomic_write(output_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["scorer"] + ["dltk"] * 3 * len(bodyparts))
        writer.writerow(["bodyparts"] + [bp for bp in bodyparts for _ in range(3)])
        writer.writerow(["coords"] + ["x", "y", "likelihood"] * len(bodyparts))
        for chunk in iter_frames(path, width, chunk=32, height=height):
            grey = chunk.astype(np.float32).mean(axis=-1, keepdims=True).round().astype(np.uint8)
            x = torch.from_numpy(grey).permute(0, 3, 1, 2).to(dev)
            with torch.inference_mode():
                outs = [m({INPUT: x}) for m in models]
                pos = torch.stack([m.locate(o)[0] for m, o in zip(models, outs)]).mean(0).cpu().numpy()
                lik = torch.stack([m.locate(o)[1] for m, o in zip(models, outs)]).mean(0).cpu().numpy()
            pos = pos * np.array([sx, sy])
            for b in range(len(pos)):
                row: list[Any] = [n]
                for k in range(len(bodyparts)):
                    row += [f"{pos[b, k, 0]:.2f}", f"{pos[b, k, 1]:.2f}", f"{lik[b, k]:.4f}"]
                writer.writerow(row)
                n += 1
    return {"frames": n}
