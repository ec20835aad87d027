"""Per-channel robust intensity normalisation fitted on the training split.

Microscopy intensities are unbounded (16-bit cameras, varying exposure) and dominated by a few very
bright pixels, so min/max scaling is fragile. Each channel is mapped with two percentiles of its
training-split pixel distribution::

    x' = (x - p_low[c]) / (p_high[c] - p_low[c])

(1st and 99.5th by default): background lands near 0 and bright structures near 1, without
clipping (out-of-range values keep their information). The percentiles are stored in the model's
``data_info``, so ``dltk predict`` applies exactly the training-set mapping to new images; the
model normalises inside ``forward`` (on the GPU when present) and is fed raw intensities.
"""

from __future__ import annotations

import numpy as np

MAX_PIXELS = 2_000_000
"""Pixels sampled per channel to estimate the percentiles (deterministic; exact below this count)."""


def fit_percentiles(images: np.ndarray, low: float = 1.0, high: float = 99.5, seed: int = 0,
                    max_pixels: int = MAX_PIXELS) -> tuple[list[float], list[float]]:
    """Per-channel ``(p_low, p_high)`` of a ``(N, C, H, W)`` stack (the training split only).

    When a channel holds more than ``max_pixels`` pixels a fixed random sample of images is used.
    A channel whose two percentiles coincide (constant) gets ``p_high = p_low + 1``.
    """
    if images.ndim != 4:
        raise ValueError(f"expected (N, C, H, W), got shape {images.shape}")
    if not 0 <= low < high <= 100:
        raise ValueError(f"need 0 <= low < high <= 100, got {low}, {high}")
    n, c, h, w = images.shape
    per_image = h * w
    if n * per_image > max_pixels:
        take = max(1, max_pixels // per_image)
        images = images[np.sort(np.random.default_rng(seed).choice(n, size=take, replace=False))]
    lows, highs = [], []
    for ch in range(c):
        values = images[:, ch].astype(np.float64).ravel()
        lo, hi = np.percentile(values, [low, high])
        if not hi > lo:
            hi = lo + 1.0
        lows.append(float(lo))
        highs.append(float(hi))
    return lows, highs


def apply_numpy(images: np.ndarray, lows: list[float], highs: list[float]) -> np.ndarray:
    """``(N, C, H, W)`` raw -> float32 normalised (the same mapping as :func:`apply_torch`)."""
    lo = np.asarray(lows, dtype=np.float32)[None, :, None, None]
    hi = np.asarray(highs, dtype=np.float32)[None, :, None, None]
    return (images.astype(np.float32) - lo) / (hi - lo)


def apply_torch(x, low, high):  # type: ignore[no-untyped-def]
    """Tensor version: ``x`` (B, C, H, W) any dtype, ``low``/``high`` (C,) float tensors."""
    x = x.float()
    return (x - low[None, :, None, None]) / (high - low)[None, :, None, None]
