"""Instance maps to training targets (foreground + normalised distance) and back (seeded watershed).

Encoding: ``foreground = labels > 0``; ``distance`` = each pixel's Euclidean distance to the
outside of *its own* nucleus, divided by that nucleus's largest distance (1 at the centre, small
at the rim, 0 on the background), so touching nuclei get a valley between two peaks. Decoding:
seeds are the connected components of ``p_distance > seed_threshold`` inside the foreground mask
(``p_fg > fg_threshold``); a watershed on ``-p_distance`` grows them inside the mask; foreground
components that received no seed (tiny nuclei) become objects of their own; objects smaller than
``min_size`` pixels are dropped. Decoding the encoded maps of the 65 DSB2018 images scores 0.99+
(tested), so the representation loses nothing the metric sees.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import label as cc_label
from skimage.segmentation import watershed


def instance_distance(labels: np.ndarray) -> np.ndarray:
    """(H, W) float32: per-nucleus distance to its own outside, scaled to 1 at each nucleus's centre."""
    labels = np.asarray(labels)
    out = np.zeros(labels.shape, dtype=np.float32)
    for i, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        sl = tuple(slice(max(0, s.start - 1), s.stop + 1) for s in sl)
        inside = labels[sl] == i
        d = ndi.distance_transform_edt(np.pad(inside, 1))[1:-1, 1:-1]
        peak = float(d.max())
        if peak > 0:
            out[sl][inside] = (d[inside] / peak).astype(np.float32)
    return out


def encode_targets(labels: np.ndarray) -> np.ndarray:
    """(2, H, W) float32 targets of an (H, W) instance map: channel 0 foreground, 1 normalised distance."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"instance map must be 2-D, got shape {labels.shape}")
    return np.stack([(labels > 0).astype(np.float32), instance_distance(labels)])


def decode_instances(fg_prob: np.ndarray, dist_prob: np.ndarray, *, fg_threshold: float = 0.5,
                     seed_threshold: float = 0.5, min_seed_size: int = 3, min_size: int = 10) -> np.ndarray:
    """(H, W) int32 instance map from foreground and distance maps (seeded watershed)."""
    fg_prob = np.asarray(fg_prob, dtype=np.float32)
    dist_prob = np.asarray(dist_prob, dtype=np.float32)
    mask = fg_prob > fg_threshold
    if not mask.any():
        return np.zeros(fg_prob.shape, dtype=np.int32)
    seeds = cc_label((dist_prob > seed_threshold) & mask, connectivity=1)
    if min_seed_size > 1 and seeds.max():
        sizes = np.bincount(seeds.ravel())
        small = sizes < min_seed_size
        small[0] = False
        seeds[small[seeds]] = 0
    labels = watershed(-dist_prob, markers=seeds, mask=mask) if seeds.max() else np.zeros_like(seeds)
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
