"""Explanations of imaging predictions: ``dltk explain --run DIR [--method gradcam|saliency] [--per-class N]``.

For a classification run (``cell_phenotype``, ``tissue_tiles``, ``images``) a few test images per
class are drawn (seeded), and one PNG is written per run (``RUN/explain/<method>.png``): one row per
image with each channel as a grey panel and the attribution map over a composite, titled with the
true class, the predicted class and its probability.

- ``gradcam`` (default; Selvaraju et al. 2017, ICCV): the gradients of the predicted class's logit
  with respect to the backbone's last feature map (timm ``forward_features``), averaged over space,
  weight that map's channels; the ReLU of the weighted sum, upsampled to the image, shows *where*
  the evidence is. Coarse by construction (a 40-pixel cell gives a 2x2 map with a ResNet-18).
- ``saliency`` (gradient x input; Simonyan et al. 2014, Shrikumar et al. 2016): per-pixel,
  per-channel attribution of the normalised input; its per-channel sums are printed in each row's
  title, showing *which channel* carries the decision (e.g. the fluorescence channel for mitotic
  phases).

Segmentation (``nuclei``) runs are delegated to ``dltk_imaging.segment_explain`` when that module
exists.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch
from dltk.errors import ConfigError

from dltk_imaging.options import ExplainOptions


def gradcam(model: Any, x: torch.Tensor, target: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM maps ``(B, H, W)`` in [0, 1] for raw images ``x`` (B, C, H, W) and the probabilities.

    ``target``: class per image (default: the predicted class).
    """
    net = model.net
    inputs = model.prepare(x)
    feats = net.forward_features(inputs)
    feats.retain_grad()
    logits = net.forward_head(feats)
    cls = logits.argmax(dim=1) if target is None else target
    logits.gather(1, cls[:, None]).sum().backward()
    weights = feats.grad.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * feats).sum(dim=1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).max(dim=1).values.clamp_min(1e-12)[:, None, None]
    return (cam / peak).detach(), logits.softmax(dim=1).detach()


def saliency(model: Any, x: torch.Tensor, target: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient x input ``(B, C, H, W)`` of the (predicted) class logit w.r.t. the normalised input."""
    inputs = model.prepare(x).detach().requires_grad_(True)
    logits = model.net(inputs)
    cls = logits.argmax(dim=1) if target is None else target
    logits.gather(1, cls[:, None]).sum().backward()
    return (inputs.grad * inputs).detach(), logits.softmax(dim=1).detach()


def _display(channel: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(channel, [1, 99.5])
    return np.clip((channel - lo) / max(hi - lo, 1e-6), 0, 1)


def _composite(image: np.ndarray) -> np.ndarray:
    """RGB uint8 images as they are; 2-3 other channels as false colour (channel 0 red, 1 green, 2
    blue, each display-scaled); 1 or more than 3 channels as grey (mean of the scaled channels)."""
    if image.shape[0] == 3 and image.dtype == np.uint8:
        return np.moveaxis(image, 0, -1)
    scaled = np.stack([_display(c) for c in image.astype(np.float32)], axis=-1)
    if scaled.shape[-1] in (2, 3):
        return np.concatenate([scaled, np.zeros(scaled.shape[:2] + (3 - scaled.shape[-1],))], axis=-1)
    return np.repeat(scaled.mean(axis=-1, keepdims=True), 3, axis=-1)


def pick_examples(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Up to ``per_class`` indices of each class present (seeded), in class order."""
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    for c in np.unique(labels[labels >= 0]):
        idx = np.flatnonzero(labels == c)
        picked += sorted(rng.choice(idx, size=min(per_class, len(idx)), replace=False).tolist())
    return np.asarray(picked, dtype=np.int64)


def _overlay(ax: Any, composite: np.ndarray, attribution: np.ndarray, method: str, channel_names: list[str]) -> str:
    """Draw the image with its Grad-CAM map or saliency heat on ``ax``; for saliency, the share of
    the attribution per channel (`` | DNA 60% ...``), else ''."""
    ax.imshow(composite)
    if method == "gradcam":
        ax.imshow(attribution, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        return ""
    heat = np.abs(attribution).sum(axis=0)
    ax.imshow(heat / max(heat.max(), 1e-12), cmap="inferno", alpha=0.6, vmin=0, vmax=1)
    share = np.abs(attribution).sum(axis=(1, 2))
    share = share / max(share.sum(), 1e-12)
    return " | " + " ".join(f"{channel_names[c][:6]} {share[c]:.0%}" for c in range(len(share)))


def explain(run_dir: Path, model: Any, datamodule: Any, options: ExplainOptions) -> list[Path]:
    """The plugin's explainer (``PluginSpec.explainer``): see the module docstring."""
    from dltk_imaging.cls_models import ImageClassifier

    if not isinstance(model, ImageClassifier):
        if importlib.util.find_spec("dltk_imaging.segment_explain") is not None:
            module = importlib.import_module("dltk_imaging.segment_explain")
            return module.explain(run_dir, model, datamodule, options)
        raise ConfigError(f"dltk explain: no explanation for {type(model).__name__} runs (classification runs "
                          "only: cell_phenotype, tissue_tiles, images)")
    ns = options
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from dltk.plots import save_figure

    images = datamodule.test_images()
    labels = datamodule.test_dataset.arrays["y"].numpy()
    labels = np.where(np.isnan(labels), -1, labels).astype(np.int64)
    chosen = pick_examples(labels, ns.per_class, ns.seed)
    if len(chosen) == 0:
        raise ConfigError("dltk explain: the test split has no labelled images")
    model = model.cpu().eval()
    x = torch.as_tensor(images[chosen]).float()
    method = gradcam if ns.method == "gradcam" else saliency
    with torch.enable_grad():
        maps, probs = method(model, x)
    maps_np, probs_np = maps.numpy(), probs.numpy()
    names = list(model.class_names)
    channel_names = list(model.data_info.get("channel_names") or [f"channel {c}" for c in range(x.shape[1])])
    n_ch = x.shape[1]
    show_channels = n_ch if n_ch != 3 or images.dtype != np.uint8 else 0
    cols = show_channels + 2
    fig, axes = plt.subplots(len(chosen), cols, figsize=(1.9 * cols, 1.9 * len(chosen) + 0.4), squeeze=False)
    for row, i in enumerate(chosen):
        image = images[i]
        pred = int(probs_np[row].argmax())
        for c in range(show_channels):
            axes[row, c].imshow(_display(image[c].astype(np.float32)), cmap="gray")
            if row == 0:
                axes[row, c].set_title(channel_names[c][:18], fontsize=8)
        comp = _composite(image)
        axes[row, show_channels].imshow(comp)
        if row == 0:
            axes[row, show_channels].set_title("image", fontsize=8)
        ax = axes[row, show_channels + 1]
        detail = _overlay(ax, comp, maps_np[row], ns.method, channel_names)
        ok = "ok" if pred == labels[i] else "WRONG"
        ax.set_title(f"true {names[labels[i]]}, pred {names[pred]} {probs_np[row, pred]:.2f} ({ok}){detail}",
                     fontsize=7, loc="left")
        for a in axes[row]:
            a.set_axis_off()
    fig.suptitle(f"{ns.method}: {len(chosen)} test images ({ns.per_class} per class)", fontsize=10)
    out_dir = Path(ns.output) if ns.output else Path(run_dir) / "explain"
    return [save_figure(fig, out_dir / f"{ns.method}.png")]
