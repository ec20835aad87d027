"""Instance maps -> foreground/distance targets -> watershed instances, and the Otsu baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from dltk_imaging.seg_metrics import image_metrics
from dltk_imaging.seg_targets import decode_instances, encode_targets, instance_distance, otsu_instances


def _touching_squares() -> np.ndarray:
    labels = np.zeros((16, 24), np.int32)
    labels[4:11, 2:9] = 1
    labels[4:11, 9:16] = 2  # 7x7, shares an edge with 1
    return labels


def test_distance_is_per_nucleus_and_normalised() -> None:
    labels = _touching_squares()
    d = instance_distance(labels)
    # a 7x7 square: distance to its outside is 1 on the rim ... 4 at the centre; scaled by 1/4
    np.testing.assert_allclose(d[7, 2:9], [0.25, 0.5, 0.75, 1.0, 0.75, 0.5, 0.25])
    np.testing.assert_allclose(d[7, 9:16], [0.25, 0.5, 0.75, 1.0, 0.75, 0.5, 0.25])  # not merged with 1
    assert d[labels == 0].max() == 0.0
    t = encode_targets(labels)
    assert t.shape == (2, 16, 24) and t.dtype == np.float32
    assert t[0].sum() == 98 and np.array_equal(t[1], d)


def test_decode_of_perfect_maps_recovers_touching_nuclei() -> None:
    labels = _touching_squares()
    t = encode_targets(labels)
    pred = decode_instances(t[0], t[1], min_size=1)
    assert pred.max() == 2
    assert image_metrics(labels, pred)["dsb_score"] == 1.0


def test_representation_is_near_lossless_on_dsb2018(data_root: Path) -> None:
    from dltk_imaging.seg_data import load_dsb2018

    scores = []
    for s in load_dsb2018()[:20]:
        t = encode_targets(s.labels)
        scores.append(image_metrics(s.labels, decode_instances(t[0], t[1], min_size=1))["dsb_score"])
    assert np.mean(scores) > 0.97 and min(scores) > 0.9


def test_decode_keeps_unseeded_small_nuclei_and_drops_specks() -> None:
    fg = np.zeros((20, 20), np.float32)
    dist = np.zeros_like(fg)
    fg[2:5, 2:5] = 1.0  # no distance peak: no seed, kept as an orphan component (9 px)
    fg[10:16, 10:16] = 1.0  # an ordinary nucleus
    dist[12:14, 12:14] = 1.0
    fg[18, 18] = 1.0  # a one-pixel speck
    out = decode_instances(fg, dist, min_size=4)
    assert out.max() == 2
    assert sorted(np.bincount(out.ravel())[1:].tolist()) == [9, 36]


def test_decode_empty() -> None:
    z = np.zeros((8, 8), np.float32)
    assert decode_instances(z, z).max() == 0


def test_otsu_baseline_counts_separate_discs() -> None:
    yy, xx = np.mgrid[:64, :64]
    image = np.zeros((64, 64), np.float32)
    for cy, cx in [(15, 15), (15, 45), (45, 30)]:
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= 36] = 1.0
    image += np.random.default_rng(0).normal(0, 0.05, image.shape).astype(np.float32)
    assert otsu_instances(image).max() == 3
    assert otsu_instances(np.zeros((8, 8), np.float32)).max() == 0
