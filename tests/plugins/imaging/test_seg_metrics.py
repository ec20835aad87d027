"""The DSB2018 metric, AP@0.5 and Dice against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from dltk_imaging.seg_metrics import (
    DSB_THRESHOLDS,
    dataset_metrics,
    dice,
    dsb_image_score,
    image_metrics,
    iou_matrix,
    match_counts,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def _two_objects() -> tuple[np.ndarray, np.ndarray]:
    """True: A (4x4 = 16 px) and B (a 5x10 block = 50 px). Pred: A exactly, 31 px of B, one 4-px extra."""
    true = np.zeros((20, 20), np.int32)
    true[0:4, 0:4] = 1
    true[10:15, 5:15] = 2
    pred = np.zeros_like(true)
    pred[0:4, 0:4] = 7
    pred[10:13, 5:15] = 3  # 30 px of B
    pred[13, 5] = 3  # 31 px -> IoU 31/50 = 0.62
    pred[18:20, 18:20] = 9  # false positive
    return true, pred


def test_thresholds_are_the_official_ten() -> None:
    assert DSB_THRESHOLDS.tolist() == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]


def test_iou_matrix_hand_computed() -> None:
    true, pred = _two_objects()
    iou = iou_matrix(true, pred)
    # rows: true 1, 2; columns: pred 3, 7, 9 (sorted ids)
    np.testing.assert_allclose(iou, [[0.0, 1.0, 0.0], [0.62, 0.0, 0.0]])


def test_dsb_score_hand_computed() -> None:
    true, pred = _two_objects()
    # t in {0.50, 0.55, 0.60}: TP 2 (A, B), FP 1, FN 0 -> 2/3; the 7 other thresholds: TP 1, FP 2, FN 1 -> 1/4
    expected = (3 * 2 / 3 + 7 * 1 / 4) / 10
    assert dsb_image_score(true, pred) == pytest.approx(expected)
    m = image_metrics(true, pred)
    assert m["dsb_score"] == pytest.approx(expected)
    assert m["ap50"] == pytest.approx(2 / 3)
    # Dice: |true| 66, |pred| 16 + 31 + 4 = 51, overlap 47
    assert m["dice"] == pytest.approx(2 * 47 / (66 + 51))


def test_iou_exactly_at_threshold_is_not_a_match() -> None:
    """The official rule counts IoU > t; two 4-px objects under one 8-px prediction are IoU 0.5 each."""
    true = np.zeros((4, 8), np.int32)
    true[0, 0:4], true[0, 4:8] = 1, 2
    pred = (true > 0).astype(np.int32)
    assert iou_matrix(true, pred)[:, 0].tolist() == [0.5, 0.5]
    assert image_metrics(true, pred)["ap50"] == 0.0  # TP 0, FP 1, FN 2
    assert dsb_image_score(true, pred) == 0.0


def test_one_to_one_matching_below_half() -> None:
    """At a low threshold one prediction may overlap two true objects; each is matched once (greedy by IoU)."""
    iou = np.array([[0.3, 0.2], [0.25, 0.0]])
    assert match_counts(iou, 0.1) == (1, 1, 1)
    assert match_counts(np.array([[0.9, 0.0], [0.0, 0.8]]), 0.5) == (2, 0, 0)


def test_empty_cases() -> None:
    empty = np.zeros((8, 8), np.int32)
    one = empty.copy()
    one[2:4, 2:4] = 1
    assert dsb_image_score(empty, empty) == 1.0
    assert dsb_image_score(one, empty) == 0.0
    assert dsb_image_score(empty, one) == 0.0
    assert dice(empty, empty) == 1.0
    assert dice(one, empty) == 0.0


def test_dice_hand_computed() -> None:
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[0, 0:4] = True
    b[0, 1:4] = True
    b[1, 0:3] = True
    assert dice(a, b) == pytest.approx(2 * 3 / (4 + 6))


def test_dataset_metrics_average_images() -> None:
    true, pred = _two_objects()
    out = dataset_metrics([(true, pred), (true, true)])
    assert out["dsb_score"] == pytest.approx(((3 * 2 / 3 + 7 / 4) / 10 + 1.0) / 2)
    with pytest.raises(ValueError):
        dataset_metrics([])


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        iou_matrix(np.zeros((4, 4), np.int32), np.zeros((4, 5), np.int32))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(1, 5), st.integers(1, 5)),
                min_size=1, max_size=6), st.integers(0, 1000))
def test_perfect_prediction_scores_one_under_any_relabelling(boxes: list, seed: int) -> None:
    true = np.zeros((18, 18), np.int32)
    for i, (y, x, h, w) in enumerate(boxes, start=1):
        true[y:y + h, x:x + w] = i
    ids = np.unique(true)[1:]
    perm = np.random.default_rng(seed).permutation(len(ids)) + 100
    lut = np.zeros(int(true.max()) + 1, np.int32)
    lut[ids] = perm
    pred = lut[true]
    m = image_metrics(true, pred)
    assert m["dsb_score"] == 1.0 and m["ap50"] == 1.0 and m["dice"] == 1.0
