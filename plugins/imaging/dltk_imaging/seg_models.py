"""U-Net (segmentation_models_pytorch) for nuclei: foreground + distance maps, watershed instances.

The network sees one grey channel (the image policy of :mod:`dltk_imaging.seg_data`) and predicts
two logit maps: foreground and the per-nucleus normalised distance (:mod:`dltk_imaging.seg_targets`). Images larger
than the inference tile are predicted tile by tile with overlap; each tile keeps only its central
part (the seams sit in the middle of the overlaps), so with an overlap wider than the network's
effective context the stitched map equals the whole-image map (tested).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from dltk.base import INPUT, TARGET, BaseTask
from dltk.errors import ConfigError
from torch import Tensor, nn

from dltk_imaging.seg_data import VALID, SegSample, nucleus_radius, pad_to, rescale_pair, scale_for, to_grey
from dltk_imaging.seg_plots import overlay_panel, write_rows
from dltk_imaging.seg_metrics import image_metrics
from dltk_imaging.seg_targets import decode_instances, otsu_instances

# ------------------------------------------------------------------------------------------
# tiled inference


def _starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step)) + [length - tile]
    return sorted(set(starts))


def _kept(starts: list[int], tile: int, length: int) -> list[tuple[int, int]]:
    """Per tile, the [lo, hi) range it writes: seams at the middle of each overlap."""
    out = []
    for i, s in enumerate(starts):
        lo = 0 if i == 0 else (s + starts[i - 1] + tile) // 2
        hi = length if i == len(starts) - 1 else (starts[i + 1] + s + tile) // 2
        out.append((lo, hi))
    return out


@torch.no_grad()
def tiled_predict(fn: Callable[[Tensor], Tensor], image: np.ndarray, tile: int, overlap: int,
                  divisor: int = 32, batch_tiles: int = 4) -> np.ndarray:
    """Apply ``fn`` ((B, 1, h, w) -> (B, C, h, w)) to an (H, W) image tile by tile; (C, H, W) out.

    An image no larger than ``tile`` is run whole (mirror-padded to a multiple of ``divisor``).
    Otherwise tiles of ``tile`` x ``tile`` step by ``tile - overlap``; each writes the part of its
    output nearest its centre (seams in the middle of the overlaps).
    """
    if overlap < 0 or overlap >= tile:
        raise ConfigError(f"tile overlap must be in [0, tile) (tile {tile}, overlap {overlap})")
    h, w = image.shape
    if h <= tile and w <= tile:
        H, W = math.ceil(h / divisor) * divisor, math.ceil(w / divisor) * divisor
        x = torch.from_numpy(np.ascontiguousarray(pad_to(image, H, W)))[None, None]
        return fn(x)[0, :, :h, :w].float().cpu().numpy()
    H, W = max(h, tile), max(w, tile)
    padded = pad_to(image, H, W)
    ys, xs = _starts(H, tile, tile - overlap), _starts(W, tile, tile - overlap)
    ky, kx = _kept(ys, tile, H), _kept(xs, tile, W)
    jobs = [(iy, ix) for iy in range(len(ys)) for ix in range(len(xs))]
    out: np.ndarray | None = None
    for b in range(0, len(jobs), batch_tiles):
        chunk = jobs[b:b + batch_tiles]
        x = torch.from_numpy(np.stack([padded[ys[iy]:ys[iy] + tile, xs[ix]:xs[ix] + tile] for iy, ix in chunk]))
        y = fn(x[:, None].contiguous()).float().cpu().numpy()
        if out is None:
            out = np.zeros((y.shape[1], H, W), dtype=np.float32)
        for (iy, ix), pred in zip(chunk, y):
            (y0, y1), (x0, x1) = ky[iy], kx[ix]
            out[:, y0:y1, x0:x1] = pred[:, y0 - ys[iy]:y1 - ys[iy], x0 - xs[ix]:x1 - xs[ix]]
    assert out is not None
    return out[:, :h, :w]


def ensemble_probs(models: Sequence[NucleiUNet], grey: np.ndarray) -> np.ndarray:
    """(2, H, W) foreground/distance maps of ``grey``, averaged over ``models``."""
    total = None
    for model in models:
        probs = model.predict_image(grey)
        total = probs if total is None else total + probs
    assert total is not None
    return total / len(models)


# ------------------------------------------------------------------------------------------
# the model


class NucleiUNet(BaseTask):
    """U-Net (segmentation_models_pytorch, timm/torchvision encoder) predicting foreground + distance.

    Args:
        encoder: smp encoder name (``resnet18``, ``resnet34``, ``efficientnet-b0``, ``tu-<timm name>``).
        encoder_weights_path: optional local state-dict file for the encoder (no downloads here);
            the default trains from scratch.
        decoder_width: channels of the last decoder block; the five blocks use 16x, 8x, 4x, 2x, 1x.
        distance_weight: weight of the distance term (loss = BCE_fg + w * BCE_distance + soft Dice_fg;
            BCE with the soft distance targets).
        tile_overlap: overlap in pixels between inference tiles (at most half a tile is used).
        inference_tile: side of the inference tiles (a multiple of 32; 0 = the training crop).
            Larger tiles waste less on overlaps and see more context.
        fg_threshold, seed_threshold, min_size: watershed decoding (:func:`decode_instances`).
        lr, weight_decay, optimizer, scheduler: as in :class:`dltk.base.BaseTask`.
    """

    def __init__(self, encoder: str = "resnet18", encoder_weights_path: str = "", decoder_width: int = 16,
                 distance_weight: float = 1.0, tile_overlap: int = 64, inference_tile: int = 512,
                 fg_threshold: float = 0.5,
                 seed_threshold: float = 0.5, min_size: int = 10, lr: float = 1e-3,
                 weight_decay: float = 1e-4, optimizer: str = "adamw", scheduler: str = "cosine",
                 data_info: dict[str, Any] | None = None) -> None:
        super().__init__(lr=lr, weight_decay=weight_decay, optimizer=optimizer,  # type: ignore[arg-type]
                         scheduler=scheduler, data_info=data_info)  # type: ignore[arg-type]

    # -- building ----------------------------------------------------------------------------
    def configure_models(self) -> None:
        import segmentation_models_pytorch as smp

        hp = self.hparams
        width = int(hp.decoder_width)
        try:
            self.net = smp.Unet(encoder_name=hp.encoder, encoder_weights=None,
                                in_channels=int(self.data_info.get("in_channels", 1)), classes=2,
                                decoder_channels=[16 * width, 8 * width, 4 * width, 2 * width, width])
        except (KeyError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"model.encoder {hp.encoder!r} is not a segmentation_models_pytorch "
                              f"encoder ({exc})") from exc
        if hp.encoder_weights_path:
            path = Path(hp.encoder_weights_path)
            if not path.is_file():
                raise ConfigError(f"model.encoder_weights_path: no such file {path}")
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = state.get("state_dict", state)
            if self.net.encoder.conv1.weight.shape[1] == 1 and "conv1.weight" in state:
                w = state["conv1.weight"]
                state["conv1.weight"] = w.sum(dim=1, keepdim=True) if w.shape[1] != 1 else w
            own = self.net.encoder.state_dict()
            fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
            if not fitting:
                raise ConfigError(f"model.encoder_weights_path: no tensor of {path} fits encoder {hp.encoder}")
            own.update(fitting)
            nn.Module.load_state_dict(self.net.encoder, own)

    def configure_losses(self) -> None:
        """The segmentation loss is :meth:`seg_loss` (no class weights)."""

    def configure_metrics(self) -> None:
        self._val_sums = torch.zeros(3, dtype=torch.float64)
        self._val_dsb: list[float] = []

    @classmethod
    def example(cls) -> tuple[dict, dict, dict[str, Tensor]]:
        """Tiny model, data_info and fake batch for the plugin contract test."""
        g = torch.Generator().manual_seed(0)
        labels = torch.zeros(2, 2, 64, 64)
        labels[:, 0, 10:30, 12:40] = 1
        labels[:, 1, 15:25, 20:32] = 0.5
        batch = {INPUT: torch.rand(2, 1, 64, 64, generator=g), TARGET: labels}
        info = {"task_names": ["nucleus"], "task_type": "classification", "in_channels": 1, "crop_size": 64,
                "primary_metric": ["dice", "max"]}
        return {"encoder": "resnet18", "decoder_width": 4}, info, batch

    # -- training ----------------------------------------------------------------------------
    def forward(self, batch: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        return self.net(batch[INPUT])

    def seg_loss(self, logits: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
        bce = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
        weight = torch.ones_like(bce) if valid is None else valid.expand_as(bce)
        denom = weight[:, 0].sum().clamp_min(1.0)
        loss = (bce[:, 0] * weight[:, 0]).sum() / denom
        loss = loss + float(self.hparams.distance_weight) * (bce[:, 1] * weight[:, 1]).sum() / denom
        p = torch.sigmoid(logits[:, 0]) * weight[:, 0]
        t = target[:, 0] * weight[:, 0]
        soft_dice = (2 * (p * t).sum() + 1.0) / (p.sum() + t.sum() + 1.0)
        return loss + (1.0 - soft_dice)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.seg_loss(self(batch), batch[TARGET], batch.get(VALID))
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch[INPUT]))
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        logits = self(batch)
        valid = batch.get(VALID)
        self.log("val/loss", self.seg_loss(logits, batch[TARGET], valid), on_epoch=True,
                 batch_size=len(batch[INPUT]), sync_dist=True)
        pred = (logits[:, 0] > 0).float()
        true = batch[TARGET][:, 0]
        if valid is not None:
            pred, true = pred * valid[:, 0], true * valid[:, 0]
        sums = torch.stack([(pred * true).sum(), pred.sum(), true.sum()]).double()
        self._val_sums = self._val_sums.to(sums.device) + sums  # summed on the device, read once per epoch
        # DSB score of the watershed instances; the true instances are decoded from the targets
        # (near lossless: decoding the encoded DSB2018 maps scores 0.98)
        probs = torch.sigmoid(logits).float().cpu().numpy()
        target = batch[TARGET].float().cpu().numpy()
        for i in range(len(probs)):
            h = w = None
            if valid is not None:
                v = valid[i, 0].cpu().numpy() > 0
                h, w = int(v.any(axis=1).sum()), int(v.any(axis=0).sum())
            true = decode_instances(target[i, 0, :h, :w], target[i, 1, :h, :w], min_size=1)
            self._val_dsb.append(image_metrics(true, self.instances(probs[i, :, :h, :w]))["dsb_score"])

    def on_validation_epoch_end(self) -> None:
        inter, p, t = self._val_sums.tolist()
        self._val_sums = torch.zeros(3, dtype=torch.float64)
        if self._val_dsb:
            self.log("val/dsb_score", float(np.mean(self._val_dsb)))
        self._val_dsb = []
        self.log("val/dice", 2 * inter / (p + t) if p + t else 1.0, prog_bar=True)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        self.on_validation_epoch_end()

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int = 0, dataloader_idx: int = 0) -> Tensor:
        return torch.sigmoid(self(batch))

    # -- inference -----------------------------------------------------------------------------
    def predict_image(self, grey: np.ndarray) -> np.ndarray:
        """(2, H, W) foreground/distance maps of one preprocessed (H, W) image, tiled."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        tile = int(self.hparams.get("inference_tile", 0)) or int(self.data_info.get("crop_size", 256))

        overlap = min(int(self.hparams.tile_overlap), tile // 2)

        def fn(x: Tensor) -> Tensor:
            return torch.sigmoid(self.net(x.to(device)))

        try:
            probs = tiled_predict(fn, grey, tile, overlap)
            target = float(self.data_info.get("nucleus_radius", 0.0))
            scale = scale_for(nucleus_radius(probs[0] > 0.5), target)
            if scale < 1.0:  # nuclei larger than in training: predict again at the training scale
                from skimage.transform import resize

                small, _ = rescale_pair(grey, None, scale)
                probs = resize(tiled_predict(fn, small, tile, overlap), probs.shape, order=1,
                               preserve_range=True).astype(np.float32)
            return probs
        finally:
            self.train(was_training)

    def instances(self, probs: np.ndarray) -> np.ndarray:
        """Instance map from (2, H, W) probabilities with this model's watershed settings."""
        hp = self.hparams
        return decode_instances(probs[0], probs[1], fg_threshold=float(hp.fg_threshold),
                                seed_threshold=float(hp.seed_threshold), min_size=int(hp.min_size))

    def evaluate_run(self, datamodule: Any, models: list, run_dir: Path | None) -> dict[str, float]:
        """Test evaluation: tiled inference, watershed, DSB score / AP@0.5 / Dice, and on the same
        images the Otsu baseline and the classical pipeline (:mod:`dltk_imaging.seg_classical`)."""
        from tqdm.auto import tqdm

        from dltk.inference import device
        from dltk_imaging.seg_classical import classical_instances

        models = [m.to(device()) for m in (list(models) or [self])]
        samples: list[SegSample] = datamodule.test_samples()
        rows, preds = [], []
        start = time.perf_counter()
        for s in tqdm(samples, desc="segmenting test images", leave=False):
            grey = to_grey(s.image)
            pred = models[0].instances(ensemble_probs(models, grey))
            m = image_metrics(s.labels, pred)
            base = image_metrics(s.labels, otsu_instances(grey))
            classical = image_metrics(s.labels, classical_instances(grey))
            rows.append({"id": s.id, "kind": s.kind, "height": s.image.shape[0], "width": s.image.shape[1],
                         "true_nuclei": int(len(np.unique(s.labels)) - 1), "pred_nuclei": int(pred.max()),
                         **m, **{f"baseline_otsu_{k}": v for k, v in base.items()},
                         **{f"baseline_classical_{k}": v for k, v in classical.items()}})
            preds.append(pred)
        seconds = time.perf_counter() - start
        metrics = _summary(rows)
        metrics["seconds_per_image"] = seconds / max(1, len(rows))
        if run_dir is not None:
            write_rows(Path(run_dir) / "predictions" / "test.csv", rows)
            overlay_panel(samples[:8], preds[:8], rows[:8], Path(run_dir) / "plots" / "test_overlays.png")
        return metrics


def _summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Means over test images of the model's and the baselines' metrics, overall and per kind."""
    metrics: dict[str, float] = {}
    for prefix in ("", "baseline_otsu_", "baseline_classical_"):
        for k in ("dsb_score", "ap50", "dice"):
            metrics[prefix + k] = float(np.mean([r[prefix + k] for r in rows]))
        for kind in sorted({r["kind"] for r in rows}):
            metrics[f"{prefix}dsb_score/{kind}"] = float(np.mean([r[prefix + "dsb_score"] for r in rows
                                                                  if r["kind"] == kind]))
    metrics["test_images"] = float(len(rows))
    return metrics
