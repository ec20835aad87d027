"""Batched augmentations for microscopy and histology, as tensor ops on the batch's device.

Cells and tissue have no preferred orientation, so the dihedral group (flips and 90-degree
rotations: 8 orientations) is label-preserving; intensities vary between acquisitions, so each
sample gets a small random per-channel gain and offset. Everything is done for the whole batch at
once with ``torch.where``/indexing (no Python loop over samples), so on a GPU it costs a few
kernels per batch; the model calls :func:`augment_batch` in ``forward`` while training, i.e. after
the batch was moved to the device.
"""

from __future__ import annotations

import torch
from torch import Tensor


def dihedral(x: Tensor, flip: Tensor, k: Tensor) -> Tensor:
    """Apply per-sample flips (``flip``: bool (B,)) then ``k`` (B,) quarter turns to ``x`` (B, C, H, W).

    Non-square images only get half turns (``k`` is rounded to 0 or 2) so the shape is kept.
    """
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    square = x.shape[-1] == x.shape[-2]
    if not square:
        k = (k // 2) * 2
    out = x
    for turns in (1, 2, 3) if square else (2,):  # no host-side test of which turns occur: a GPU sync
        out = torch.where((k == turns)[:, None, None, None], torch.rot90(x, turns, (-2, -1)), out)
    return out


def intensity_jitter(x: Tensor, gain: float, offset: float, generator: torch.Generator | None = None) -> Tensor:
    """``x * (1 + gain * N(0,1)) + offset * N(0,1)``, one draw per sample and channel (normalised units)."""
    b, c = x.shape[:2]
    g = torch.randn(b, c, 1, 1, device=x.device, generator=generator, dtype=x.dtype)
    o = torch.randn(b, c, 1, 1, device=x.device, generator=generator, dtype=x.dtype)
    return x * (1 + gain * g) + offset * o


def augment_batch(x: Tensor, *, flips: bool = True, rotations: bool = True, gain: float = 0.1,
                  offset: float = 0.05, generator: torch.Generator | None = None) -> Tensor:
    """Random dihedral transform and intensity jitter for a normalised batch ``x`` (B, C, H, W)."""
    b = x.shape[0]
    if flips or rotations:
        flip = (torch.rand(b, device=x.device, generator=generator) < 0.5) if flips else \
            torch.zeros(b, dtype=torch.bool, device=x.device)
        k = torch.randint(0, 4, (b,), device=x.device, generator=generator) if rotations else \
            torch.zeros(b, dtype=torch.long, device=x.device)
        if flips and not rotations:  # vertical flips too: flip + half turn = vertical flip
            k = torch.where(torch.rand(b, device=x.device, generator=generator) < 0.5, 2, 0)
        x = dihedral(x, flip, k)
    if gain > 0 or offset > 0:
        x = intensity_jitter(x, gain, offset, generator)
    return x
