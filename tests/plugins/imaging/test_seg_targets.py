"""Instance maps -> foreground/boundary targets -> watershed instances, and the Otsu baseline."""

from __future__ import annotations

import numpy as np
from dltk_imaging.seg_metrics import image_metrics
from dltk_imaging.seg_targets import decode_instances, encode_targets, otsu_instances


def _touching_squares() -> np.ndarray:
    labels = np.zeros((16, 24), np.int32)
    labels[4:12, 2:10] = 1
    labels[4:12, 10:18] = 2  # shares an edge with 1
    return labels


def test_encode_foreground_and_inner_boundary() -> None:
    labels = _touching_squares()
    t = encode_targets(labels)
    assert t.shape == (2, 16, 24) and t.dtype == np.float32
    assert t[0].sum() == 128  # two 8x8 squares
    # inner boundary of each 8x8 square is its 28-pixel ring (the shared edge is marked on both sides)
    assert t[1].sum() == 56
    assert t[1, 8, 9] == 1 and t[1, 8, 10] == 1  # the two-pixel band between the touching nuclei
    assert t[1, 8, 5] == 0  # interior
    assert np.all(t[1] <= t[0])


def test_decode_of_perfect_maps_recovers_touching_nuclei() -> None:
    labels = _touching_squares()
    t = encode_targets(labels)
    pred = decode_instances(t[0], t[1], min_size=1)
    assert pred.max() == 2
    assert image_metrics(labels, pred)["dsb_score"] == 1.0


def test_decode_keeps_unseeded_small_nuclei_and_drops_specks() -> None:
    fg = np.zeros((20, 20), np.float32)
    bd = np.zeros_like(fg)
    fg[2:5, 2:5] = 1.0
    bd[2:5, 2:5] = 1.0  # all boundary: no seed, kept as an orphan component (9 px)
    fg[10:16, 10:16] = 1.0  # an ordinary nucleus
    fg[18, 18] = 1.0  # a one-pixel speck
    out = decode_instances(fg, bd, min_size=4)
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
