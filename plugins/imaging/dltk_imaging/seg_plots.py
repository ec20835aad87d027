"""Nucleus segmentation outputs: per-image tables and overlay panels (test and predict)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
from dltk.io import atomic_path, atomic_write

from dltk_imaging.seg_data import SegSample, to_grey



def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """A CSV of ``rows`` (floats to 4 decimals), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    return path


def _outline_rgb(image: np.ndarray, labels: np.ndarray, true: np.ndarray | None) -> np.ndarray:
    from skimage.color import label2rgb
    from skimage.segmentation import find_boundaries

    grey = to_grey(image, invert="never")
    colour = image.ndim == 3 and image.shape[-1] in (3, 4) and image.shape[0] > 4
    base = np.clip(image[..., :3].astype(np.float32) / max(1.0, float(image[..., :3].max())), 0, 1) if colour \
        else np.repeat(grey[..., None], 3, axis=-1)
    rgb = label2rgb(labels, image=base, alpha=0.25, bg_label=0, image_alpha=1.0) if labels.max() else base
    rgb = rgb.copy()
    rgb[find_boundaries(labels, mode="inner")] = (1.0, 1.0, 0.0)
    if true is not None:
        rgb[find_boundaries(true, mode="inner") & ~find_boundaries(labels, mode="inner")] = (0.0, 1.0, 1.0)
    return rgb


def overlay_panel(samples: list[SegSample], preds: list[np.ndarray], rows: list[dict[str, Any]],
                  path: Path) -> Path:
    """PNG of predicted instances (coloured, yellow outlines; true outlines cyan) over test images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(samples)
    cols = min(4, n)
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 4.0 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, s, pred, r in zip(axes.flat, samples, preds, rows):
        ax.imshow(_outline_rgb(s.image, pred, s.labels))
        if s.labels is None:
            ax.set_title(f"{s.id[:24]}: {r['pred_nuclei']} nuclei", fontsize=8)
        else:
            ax.set_title(f"{s.id[:10]} ({s.kind})\nDSB {r['dsb_score']:.2f}  AP50 {r['ap50']:.2f}  "
                         f"{r['pred_nuclei']}/{r['true_nuclei']} nuclei", fontsize=8)
    fig.suptitle("predicted nuclei (fill, yellow outline)"
                 + ("; true outlines cyan where they differ" if samples[0].labels is not None else ""),
                 fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    plt.close(fig)
    return path
