"""Egocentric features, window planning/stitching and behaviour scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from dltk_video.features import (
    FeatureConfig,
    eval_windows,
    plan_windows,
    pose_features,
    stitch,
    training_windows,
)
from dltk_video.models import PoseSequenceClassifier
from dltk_video.readers import PoseTrack
from dltk_video.scoring import behavior_metrics, bout_scores, frame_f1
from hypothesis import given, settings
from hypothesis import strategies as st

PARTS = ("nose", "left", "right", "tail")


def _track(T: int = 40, animals: int = 2, seed: int = 0) -> PoseTrack:
    rng = np.random.default_rng(seed)
    base = np.array([[2.0, 0.0], [0.5, 0.7], [0.5, -0.7], [-2.0, 0.0]])
    coords = np.zeros((T, animals, len(PARTS), 2))
    for i in range(animals):
        pos = rng.uniform(0, 50, 2) + np.cumsum(rng.normal(0, 1, (T, 2)), axis=0)
        angle = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.1, T))
        rot = np.stack([np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)], -1).reshape(T, 2, 2)
        wobble = base[None] + rng.normal(0, 0.05, (T, len(PARTS), 2))
        coords[:, i] = pos[:, None, :] + np.einsum("tij,tkj->tki", rot, wobble)
    return PoseTrack(coords.astype(np.float32), np.ones((T, animals, len(PARTS)), np.float32),
                     [f"m{i}" for i in range(animals)], list(PARTS), np.arange(T))


def test_features_invariant_to_camera_similarity() -> None:
    """Rotating, scaling and shifting the whole scene (another camera placement) leaves every
    egocentric, scale-normalised feature unchanged."""
    track = _track()
    config = FeatureConfig(PARTS, "tail", "nose", (), 30.0)
    X, names = pose_features(track, config)
    theta, scale, shift = 0.7, 3.0, np.array([100.0, -40.0])
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    moved = PoseTrack((track.coords.astype(np.float64) @ R.T * scale + shift).astype(np.float32),
                      track.likelihood, track.individuals, track.bodyparts, track.frames)
    X2, names2 = pose_features(moved, config)
    assert names == names2 and X.shape == (40, len(names))
    assert np.allclose(X, X2, atol=2e-3)
    # the heading points along +x: the nose's egocentric y is ~0 and x > 0
    col = names.index("m0/nose/ego_y")
    assert np.abs(X[:, col]).max() < 0.2 and (X[:, names.index("m0/nose/ego_x")] > 0).all()
    assert "m0/nose-m1/nose/dist" in names and "m1/tail-m0/nearest" in names


def test_features_wall_distance() -> None:
    T = 3
    coords = np.zeros((T, 1, 6, 2), np.float32)
    coords[:, 0, :4] = [[0, 0], [100, 0], [100, 100], [0, 100]]  # arena corners
    coords[:, 0, 4] = [[10, 50], [20, 50], [30, 50]]  # tail
    coords[:, 0, 5] = [[20, 50], [30, 50], [40, 50]]  # head: 20, 30, 40 px from the left wall
    track = PoseTrack(coords, np.ones((T, 1, 6), np.float32), ["m"], ["a", "b", "c", "d", "tail", "head"],
                      np.arange(T))
    X, names = pose_features(track, FeatureConfig(("tail", "head"), "tail", "head", ("a", "b", "c", "d"), 25.0))
    # body length 10 px: wall distances in body lengths
    assert X[:, names.index("m/head/wall")].tolist() == pytest.approx([2.0, 3.0, 4.0])
    assert X[1:, names.index("m/head/speed")].tolist() == pytest.approx([25.0, 25.0])  # 10 px/frame at 25 fps


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 400), length=st.integers(8, 96), margin_frac=st.floats(0.0, 0.45))
def test_every_frame_predicted_exactly_once(n: int, length: int, margin_frac: float) -> None:
    margin = int(length * margin_frac)
    plan = plan_windows(n, length, margin)
    owner = np.zeros(n, int)
    idx = plan.frame_index()
    for w in range(len(plan.starts)):
        core = idx[w][plan.core_mask()[w]]
        np.add.at(owner, core, 1)
    assert (owner == 1).all()
    # stitching window predictions that echo their frame index returns 0..n-1 in order
    echo = idx[..., None].astype(float)
    assert stitch(echo, plan)[:, 0].tolist() == list(range(n))
    labels = np.arange(n) % 3
    _, y = eval_windows(np.zeros((n, 1), np.float32), labels.astype(float), plan)
    assert int((~np.isnan(y)).sum()) == n  # each frame scored once


def test_training_windows_cover_range() -> None:
    idx = training_windows(100, 32, 16)
    assert idx[0, 0] == 0 and idx[-1, -1] == 99 and idx.shape[1] == 32
    assert set(idx.ravel()) == set(range(100))
    short = training_windows(10, 32, 16)
    assert short.shape == (1, 32) and short[0, -1] == 9  # edge-padded


def test_frame_and_bout_scores_hand_computed() -> None:
    ref = np.array([0, 1, 1, 1, 0, 0, 1, 1, 0, 0], float)
    pred = np.array([0, 1, 1, 0, 0, 0, 0, 1, 1, 1], float)
    # class 1: tp = 3 (frames 1, 2, 7), 5 reference and 5 predicted frames -> F1 = 6 / 10
    assert frame_f1(ref, pred, 1) == pytest.approx(6 / 10)
    b = bout_scores(ref, pred, 1)
    # ref bouts [1-3], [6-7]; pred bouts [1-2] (IoU 2/3: match), [7-9] (IoU 1/4: no)
    assert (b["precision"], b["recall"]) == (0.5, 0.5)
    m = behavior_metrics(ref, pred, ["background", "x"])
    assert m["frame_f1/x"] == pytest.approx(6 / 10) and m["bout_recall/x"] == 0.5
    nan_ref = ref.copy()
    nan_ref[3] = np.nan  # unlabelled frames are skipped
    assert frame_f1(nan_ref, pred, 1) == pytest.approx(6 / 9)
    assert math.isnan(frame_f1(np.zeros(4), np.zeros(4), 1))


@pytest.mark.parametrize("arch", ["gru", "lstm", "tcn"])
def test_models_forward_backward(arch: str) -> None:
    kwargs, info, batch = PoseSequenceClassifier.example()
    model = PoseSequenceClassifier(**{**kwargs, "arch": arch, "num_layers": 2}, data_info=info)
    out = model(batch)
    assert out.shape == (2, 4, 3)
    loss = model.training_step(batch, 0)
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    # the NaN target position does not contribute: changing its logits leaves the loss unchanged
    with torch.no_grad():
        probs = model.postprocess(out)
    assert torch.allclose(probs.sum(-1), torch.ones(2, 4))


def test_minimum_bout_smoothing() -> None:
    from dltk_video.scoring import label_metrics, smooth_labels

    labels = np.array([0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 2, 0, 0, 2, 2, 2, 2])
    # gaps shorter than 3 frames inside a behaviour are filled first (1 frame in "1", 2 frames in "2")
    assert smooth_labels(labels, 3).tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 2, 2, 2, 2, 2, 2, 2]
    # then short bouts are dropped
    assert smooth_labels(np.array([0, 2, 0, 0, 0, 1, 1, 1, 0]), 3).tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 0]
    assert smooth_labels(labels, 0).tolist() == labels.tolist()
    m = label_metrics(labels.astype(float), smooth_labels(labels, 3), ["bg", "a", "b"])
    assert m["f1/a"] == pytest.approx(2 * 6 / (6 + 7)) and m["f1/b"] == pytest.approx(2 * 5 / (5 + 7))
