"""Instance maps to training targets (foreground + boundary) and back (seeded watershed).

Encoding: ``foreground = labels > 0``; ``boundary`` = the pixels of each nucleus that touch another
label or the background (``skimage.segmentation.find_boundaries(mode="inner")``), so two touching
nuclei are separated by a two-pixel band. Decoding: seeds are the connected components where the
network is confident about the interior (``p_fg - p_boundary > seed_threshold``); a watershed on
``-(p_fg - p_boundary)`` grows them inside the foreground mask (``p_fg > fg_threshold``);
foreground components that received no seed (nuclei so small that they are all boundary) become
objects of their own; objects smaller than ``min_size`` pixels are dropped.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import label as cc_label
from skimage.segmentation import find_boundaries, watershed


def encode_targets(labels: np.ndarray) -> np.ndarray:
    """(2, H, W) float32 targets of an (H, W) instance map: channel 0 foreground, 1 boundary."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"instance map must be 2-D, got shape {labels.shape}")
    fg = labels > 0
    boundary = find_boundaries(labels, connectivity=1, mode="inner") & fg
    return np.stack([fg, boundary]).astype(np.float32)


def decode_instances(fg_prob: np.ndarray, boundary_prob: np.ndarray, *, fg_threshold: float = 0.5,
                     seed_threshold: float = 0.5, min_seed_size: int = 3, min_size: int = 10) -> np.ndarray:
    """(H, W) uint16/int32 instance map from foreground and boundary probabilities (seeded watershed)."""
    fg_prob = np.asarray(fg_prob, dtype=np.float32)
    boundary_prob = np.asarray(boundary_prob, dtype=np.float32)
    mask = fg_prob > fg_threshold
    if not mask.any():
        return np.zeros(fg_prob.shape, dtype=np.int32)
    interior = fg_prob - boundary_prob
    seeds = cc_label((interior > seed_threshold) & mask, connectivity=1)
    if min_seed_size > 1 and seeds.max():
        sizes = np.bincount(seeds.ravel())
        small = sizes < min_seed_size
        small[0] = False
        seeds[small[seeds]] = 0
    labels = watershed(-interior, markers=seeds, mask=mask) if seeds.max() else np.zeros_like(seeds)
    orphans = cc_label(mask & (labels == 0), connectivity=1)
    if orphans.max():
        labels = np.where(orphans > 0, orphans + labels.max(), labels)
    if min_size > 1 and labels.max():
        sizes = np.bincount(labels.ravel())
        small = sizes < min_size
        small[0] = False
        labels[small[labels]] = 0
    out, _, _ = _relabel_sequential(labels)
    return out


def _relabel_sequential(labels: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    ids = np.unique(labels)
    ids = ids[ids > 0]
    lut = np.zeros(int(labels.max()) + 1, dtype=np.int32)
    lut[ids] = np.arange(1, len(ids) + 1, dtype=np.int32)
    return lut[labels], len(ids), ids


def otsu_instances(grey: np.ndarray) -> np.ndarray:
    """The classic baseline: Otsu threshold, hole filling, 8-connected components.

    ``grey`` is the preprocessed image (nuclei bright, see :func:`dltk_imaging.seg_data.to_grey`).
    """
    from skimage.filters import threshold_otsu

    grey = np.asarray(grey, dtype=np.float32)
    if float(grey.max()) <= float(grey.min()):
        return np.zeros(grey.shape, dtype=np.int32)
    mask = ndi.binary_fill_holes(grey > threshold_otsu(grey))
    return cc_label(mask, connectivity=2).astype(np.int32)
