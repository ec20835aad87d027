"""Sequence models: contract examples (forward/backward), on-device one-hot, strand handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dltk.base import INPUT
from dltk_genomics import encoding
from dltk_genomics.seq_models import DanQ, DeepBindCNN


@pytest.mark.parametrize("cls", [DeepBindCNN, DanQ])
def test_example_trains(cls: type) -> None:
    kwargs, info, batch = cls.example()
    torch.manual_seed(0)
    model = cls(**kwargs, data_info=info)
    loss = model.training_step(batch, 0)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert model.first_layer().weight.grad is not None and model.first_layer().weight.grad.abs().sum() > 0
    model.eval()
    assert model(batch).shape == (4, 1)


def test_one_hot_on_device_matches_numpy() -> None:
    kwargs, info, _ = DeepBindCNN.example()
    model = DeepBindCNN(**kwargs, data_info=info)
    codes = encoding.encode_batch(["ACGTNRY", "acguNNNN"], 8)  # the first is padded
    got = model.one_hot(torch.from_numpy(codes)).numpy()
    assert np.array_equal(got, encoding.one_hot(codes).transpose(0, 2, 1))
    rc = model.reverse_complement(torch.from_numpy(codes)).numpy()
    assert np.array_equal(rc, encoding.reverse_complement(codes))


@pytest.mark.parametrize("cls", [DeepBindCNN, DanQ])
def test_both_strands_gives_strand_invariant_scores(cls: type) -> None:
    kwargs, info, batch = cls.example()
    torch.manual_seed(0)
    model = cls(**kwargs, reverse_complement="both", data_info=info).eval()
    rc = {INPUT: torch.from_numpy(encoding.reverse_complement(batch[INPUT].numpy()))}
    assert torch.allclose(model(batch), model(rc), atol=1e-5)
    single = cls(**kwargs, reverse_complement="none", data_info=info).eval()
    single.load_state_dict(model.state_dict())
    assert not torch.allclose(single(batch), single(rc), atol=1e-5)


def test_augment_flips_only_in_training() -> None:
    kwargs, info, batch = DeepBindCNN.example()
    torch.manual_seed(0)
    model = DeepBindCNN(**kwargs, reverse_complement="augment", dropout=0.0, data_info=info)
    model.eval()
    a = model(batch)
    assert torch.equal(a, model(batch))  # evaluation: deterministic, both strands averaged
    rc = {INPUT: torch.from_numpy(encoding.reverse_complement(batch[INPUT].numpy()))}
    assert torch.allclose(a, model(rc), atol=1e-5)


def test_binned_pooling_keeps_coarse_position() -> None:
    kwargs, info, batch = DeepBindCNN.example()
    torch.manual_seed(0)
    model = DeepBindCNN(**kwargs, pool_bins=4, pooling="maxavg", reverse_complement="none", data_info=info).eval()
    assert model.head[1].in_features == 4 * 2 * 4  # filters x (max, mean) x bins
    codes = batch[INPUT].clone()
    shifted = {INPUT: torch.roll(codes, 20, dims=1)}  # same content, motifs moved to other bins
    assert not torch.allclose(model(batch), model(shifted), atol=1e-6)
    loss = model.train().training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss)
