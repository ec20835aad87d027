"""Percentile normalisation, batched augmentations, the stratified split and the multiclass metrics
against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dltk.metrics import compute_metrics
from dltk_imaging.augment import augment_batch, dihedral
from dltk_imaging.cls_datamodules import stratified_split
from dltk_imaging.normalize import apply_numpy, apply_torch, fit_percentiles


def test_percentiles_hand_computed() -> None:
    # channel 0 holds 0..99 (percentiles 1 and 99.5 by linear interpolation: 0.99 and 98.505);
    # channel 1 is constant 7 -> high = low + 1
    images = np.stack([np.arange(100, dtype=np.uint16).reshape(10, 10), np.full((10, 10), 7, np.uint16)])[None]
    low, high = fit_percentiles(images, 1.0, 99.5)
    assert low == pytest.approx([0.99, 7.0]) and high == pytest.approx([98.505, 8.0])
    out = apply_numpy(images, low, high)
    assert out[0, 0, 0, 0] == pytest.approx(-0.99 / 97.515, rel=1e-6)
    assert out[0, 1].max() == out[0, 1].min() == 0.0
    torch_out = apply_torch(torch.from_numpy(images.astype(np.float32)), torch.tensor(low), torch.tensor(high))
    assert np.allclose(torch_out.numpy(), out, atol=1e-6)


def test_percentiles_use_a_fixed_sample_of_large_stacks() -> None:
    images = np.random.default_rng(0).integers(0, 1000, (200, 2, 20, 20)).astype(np.uint16)
    a = fit_percentiles(images, max_pixels=8000, seed=3)
    b = fit_percentiles(images, max_pixels=8000, seed=3)
    exact = fit_percentiles(images)
    assert a == b and np.allclose(a[1], exact[1], rtol=0.05)


def test_dihedral_matches_per_sample_ops() -> None:
    x = torch.arange(4 * 2 * 5 * 5, dtype=torch.float32).reshape(4, 2, 5, 5)
    flip = torch.tensor([False, True, False, True])
    k = torch.tensor([0, 1, 2, 3])
    out = dihedral(x, flip, k)
    for i in range(4):
        ref = x[i].flip(-1) if flip[i] else x[i]
        assert torch.equal(out[i], torch.rot90(ref, int(k[i]), (-2, -1)))
    rect = torch.randn(2, 1, 4, 6)  # non-square: quarter turns are rounded down to half turns
    out = dihedral(rect, torch.tensor([False, False]), torch.tensor([1, 3]))
    assert out.shape == rect.shape and torch.equal(out[0], rect[0]) and torch.equal(out[1], rect[1].rot90(2, (-2, -1)))


def test_augment_keeps_pixel_multiset_and_jitters_per_channel() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 8, 8, generator=gen)
    geo = augment_batch(x, gain=0.0, offset=0.0, generator=gen)
    assert torch.equal(geo.flatten(1).sort(dim=1).values, x.flatten(1).sort(dim=1).values)
    assert not torch.equal(geo, x)
    ones = torch.ones(4000, 2, 2, 2)
    jit = augment_batch(ones, flips=False, rotations=False, gain=0.1, offset=0.05, generator=gen)
    per = jit[:, :, 0, 0]
    assert torch.allclose(jit, per[:, :, None, None].expand_as(jit))  # one draw per sample and channel
    assert float(per.std()) == pytest.approx((0.1**2 + 0.05**2) ** 0.5, rel=0.1)


def test_stratified_split_bbbc048_counts() -> None:
    counts = [900, 900, 900, 606, 69, 15, 28]
    labels = np.repeat(np.arange(7), counts)
    train, val, test = stratified_split(labels, (0.7, 0.1, 0.2), seed=0)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(val) + len(test) == 3418
    assert np.bincount(labels[test]).tolist() == [180, 180, 180, 121, 14, 3, 6]
    assert np.bincount(labels[val]).tolist() == [90, 90, 90, 61, 7, 2, 3]
    again = stratified_split(labels, (0.7, 0.1, 0.2), seed=0)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    other = stratified_split(labels, (0.7, 0.1, 0.2), seed=1)
    assert not np.array_equal(test, other[2])


def test_multiclass_metrics_hand_computed() -> None:
    # 3 classes; true 0,0,0,1,1,2 ; predicted 0,0,1,1,1,0
    target = torch.tensor([0, 0, 0, 1, 1, 2, float("nan")])
    pred_idx = [0, 0, 1, 1, 1, 0, 2]
    probs = torch.full((7, 3), 0.1)
    probs[torch.arange(7), torch.tensor(pred_idx)] = 0.8
    m = compute_metrics(probs, target, "multiclass", ["phase"], class_names=["G1", "S", "M"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    # F1: G1 precision 2/3 recall 2/3 -> 2/3; S precision 2/3 recall 1 -> 0.8; M 0
    assert m["f1/G1"] == pytest.approx(2 / 3) and m["f1/S"] == pytest.approx(0.8) and m["f1/M"] == 0.0
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 3)
