"""The classical threshold + distance-transform watershed pipeline on generated nuclei."""

from __future__ import annotations

import numpy as np
from dltk_imaging.seg_classical import ClassicalParams, classical_instances, tune_classical
from dltk_imaging.seg_data import SegSample, to_grey
from dltk_imaging.seg_metrics import image_metrics
from dltk_imaging.seg_targets import otsu_instances


def _touching_pairs(n_pairs: int = 6, r: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of equal discs whose centres are 1.6 r apart (they overlap), on a dark background."""
    yy, xx = np.mgrid[:80, :60 * n_pairs]
    labels = np.zeros(yy.shape, np.int32)
    for k in range(n_pairs):
        for j, dx in enumerate((-0.8 * r, 0.8 * r)):
            cx = 30 + 60 * k + dx
            labels[((yy - 40) ** 2 + (xx - cx) ** 2 <= r * r) & (labels == 0)] = 2 * k + j + 1
    image = np.where(labels > 0, 180, 20).astype(np.uint8)
    return image, labels


def test_watershed_splits_touching_nuclei_that_otsu_merges() -> None:
    image, true = _touching_pairs()
    grey = to_grey(image)
    pred = classical_instances(grey, ClassicalParams(sigma=0.0, min_distance=4))
    assert pred.max() == 12 and otsu_instances(grey).max() == 6
    m = image_metrics(true, pred)
    assert m["ap50"] == 1.0 and m["dsb_score"] > 0.9
    # ids in raster order of each nucleus's first pixel
    firsts = [np.flatnonzero(pred.ravel() == i)[0] for i in range(1, 13)]
    assert firsts == sorted(firsts)


def test_empty_and_constant_images_give_no_nuclei() -> None:
    assert classical_instances(np.zeros((40, 50), np.float32)).max() == 0
    assert classical_instances(np.full((40, 50), 0.7, np.float32)).max() == 0


def test_tuning_prefers_the_declumping_distance() -> None:
    image, true = _touching_pairs()
    samples = [SegSample("a", image, true)]
    best, score, rows = tune_classical(samples, {"threshold": (0.0,), "sigma": (0.0,), "min_distance": (4, 30),
                                                 "min_size": (15,)})
    assert best.min_distance == 4 and len(rows) == 2 and score == max(r["dsb_score"] for r in rows)
    assert [r for r in rows if r["min_distance"] == 30][0]["dsb_score"] < score
