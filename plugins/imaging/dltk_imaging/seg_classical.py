"""The classical nucleus pipeline: smoothing, threshold, hole filling, distance-transform watershed.

What CellProfiler's IdentifyPrimaryObjects does with its default "shape" declumping: the grey image
(the plugin's image policy, nuclei bright) is smoothed with a Gaussian of ``sigma`` pixels and
thresholded (``threshold`` on the [0, 1] policy scale, or Otsu's threshold of the image when 0);
holes are filled; the Euclidean distance transform of the mask has one seed per local maximum at
least ``min_distance`` pixels apart; a watershed of the negative distance inside the mask splits
touching nuclei; objects under ``min_size`` pixels are dropped.

Every step but Otsu's threshold is local (a pixel's label depends only on its own foreground
component and a ``4 sigma`` neighbourhood), so with a fixed threshold the pipeline segments an image
block by block exactly as it segments the whole (:mod:`dltk_imaging.seg_blocks`, tested).
:func:`tune_classical` picks the parameters on labelled training images by the DSB score.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassicalParams:
    """Parameters of :func:`classical_instances`. Defaults: :func:`tune_classical` on 60 DSB2018
    stage-1 training images, two grids: threshold {Otsu, 0.2} x sigma {1, 2} x min_distance {3, 5, 8},
    then min_distance {8, 12, 16} at (Otsu, 1): best mean DSB 0.450 (docs/imaging.md)."""

    threshold: float = 0.0
    sigma: float = 1.0
    min_distance: int = 16
    min_size: int = 15


def otsu_threshold(grey: np.ndarray, sigma: float) -> float:
    """Otsu's threshold of the smoothed image (1.0, i.e. no foreground, for a constant image)."""
    from skimage.filters import threshold_otsu

    smooth = _smooth(np.asarray(grey, dtype=np.float32), sigma)
    if float(smooth.max()) <= float(smooth.min()):
        return 1.0
    return float(threshold_otsu(smooth))


def _smooth(grey: np.ndarray, sigma: float) -> np.ndarray:
    from scipy import ndimage as ndi

    return ndi.gaussian_filter(grey, sigma, mode="reflect", truncate=4.0) if sigma > 0 else grey


def classical_instances(grey: np.ndarray, params: ClassicalParams = ClassicalParams(),
                        threshold: float | None = None) -> np.ndarray:
    """(H, W) int32 instance map of a policy-scaled grey image (nuclei bright).

    Args:
        grey: (H, W) float image in [0, 1].
        params: the pipeline's parameters.
        threshold: overrides ``params.threshold`` (a block of a large image passes the whole
            image's threshold so that every block uses the same one).
    """
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.measure import label as cc_label
    from skimage.segmentation import watershed

    grey = np.asarray(grey, dtype=np.float32)
    t = threshold if threshold is not None else (params.threshold or otsu_threshold(grey, params.sigma))
    mask = ndi.binary_fill_holes(_smooth(grey, params.sigma) > t)
    if not mask.any():
        return np.zeros(grey.shape, dtype=np.int32)
    components = cc_label(mask, connectivity=1)
    dist = ndi.distance_transform_edt(mask)
    peaks = peak_local_max(dist, min_distance=max(1, int(params.min_distance)), labels=components,
                           exclude_border=False)
    seeds = np.zeros(grey.shape, dtype=bool)
    seeds[tuple(peaks.T)] = True
    markers = cc_label(ndi.binary_dilation(seeds, iterations=1) & mask, connectivity=2)
    labels = watershed(-dist, markers=markers, mask=mask)
    sizes = np.bincount(labels.ravel())
    small = sizes < params.min_size
    small[0] = False
    labels[small[labels]] = 0
    return _relabel_raster(labels)


def _relabel_raster(labels: np.ndarray) -> np.ndarray:
    """Ids 1..n in raster order of each object's first pixel (0 stays background)."""
    flat = labels.ravel()
    ids, first = np.unique(flat, return_index=True)
    keep = ids > 0
    ids, first = ids[keep], first[keep]
    lut = np.zeros(int(labels.max()) + 1, dtype=np.int32)
    lut[ids[np.argsort(first, kind="stable")]] = np.arange(1, len(ids) + 1, dtype=np.int32)
    return lut[labels]


class ClassicalSegmenter:
    """:func:`classical_instances` as a block segmenter (:mod:`dltk_imaging.seg_blocks`): Otsu's
    threshold (when ``params.threshold`` is 0) is taken once, from the whole image."""

    def __init__(self, params: ClassicalParams = ClassicalParams()) -> None:
        self.params = params
        self.context = int(math.ceil(4 * params.sigma)) + 2
        self.threshold = params.threshold or None

    def fit(self, grey_sample: np.ndarray) -> None:
        if not self.params.threshold:
            self.threshold = otsu_threshold(grey_sample, self.params.sigma)

    def __call__(self, grey: np.ndarray) -> np.ndarray:
        return classical_instances(grey, self.params, self.threshold)


DEFAULT_GRID: dict[str, Sequence[float]] = {
    "threshold": (0.0, 0.2), "sigma": (1.0, 2.0), "min_distance": (3, 5, 8, 12, 16), "min_size": (15,),
}


def tune_classical(samples: Sequence, grid: dict[str, Sequence[float]] | None = None
                   ) -> tuple[ClassicalParams, float, list[dict]]:
    """Grid search of :class:`ClassicalParams` by the mean DSB score on labelled ``samples``.

    Args:
        samples: objects with ``image`` and ``labels`` (:class:`~dltk_imaging.seg_data.SegSample`).
        grid: candidate values per parameter (default :data:`DEFAULT_GRID`).

    Returns:
        The best parameters, their mean DSB score, and one row per candidate.
    """
    from dltk_imaging.seg_data import to_grey
    from dltk_imaging.seg_metrics import image_metrics

    grid = grid or DEFAULT_GRID
    greys = [to_grey(s.image) for s in samples]
    rows = []
    for values in itertools.product(*grid.values()):
        params = ClassicalParams(**{k: type(getattr(ClassicalParams(), k))(v) for k, v in zip(grid, values)})
        score = float(np.mean([image_metrics(s.labels, classical_instances(g, params))["dsb_score"]
                               for s, g in zip(samples, greys)]))
        rows.append({**params.__dict__, "dsb_score": score})
    best = max(rows, key=lambda r: r["dsb_score"])
    return ClassicalParams(**{k: v for k, v in best.items() if k != "dsb_score"}), best["dsb_score"], rows
