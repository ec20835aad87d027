"""Sequence models for binding: a DeepBind-style CNN and a DanQ-style CNN + BiLSTM.

Inputs are batches of uint8 IUPAC codes ``x`` of shape (B, L) (:mod:`dltk_genomics.encoding`); the
model expands them to one-hot (B, 4, L) on its own device with a 16 x 4 lookup table, so loaders
move one byte per base.

Reverse complement (``reverse_complement``):

* ``none``: the forward strand only;
* ``augment``: during training each sequence is replaced by its reverse complement with
  probability 1/2; at evaluation both strands are scored and their logits averaged;
* ``both`` (default): both strands go through the same weights, in training and evaluation, and the
  logits are averaged -- weight sharing across strands, as DeepBind scans both strands with the
  same motif detectors.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from dltk.base import INPUT, TARGET, BaseTask
from torch import Tensor, nn

from dltk_genomics import encoding

RC = Literal["none", "augment", "both"]


class SequenceModel(BaseTask):
    """Shared behaviour: code -> one-hot lookup, strand handling, a tiny example for the contract test.

    Subclasses implement :meth:`build` (layers from ``self.hparams`` and ``self.data_info``) and
    :meth:`body` (one-hot (B, 4, L) -> logits (B, T)).
    """

    def configure_models(self) -> None:
        self.register_buffer("one_hot_table", torch.from_numpy(encoding.ONE_HOT.copy()), persistent=False)
        self.register_buffer("complement_table", torch.from_numpy(encoding.COMPLEMENT[:16].astype("int64")),
                             persistent=False)
        self.build()

    def build(self) -> None:
        raise NotImplementedError

    def body(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    @property
    def seq_length(self) -> int:
        return int(self.data_info.get("seq_length", 101))

    def one_hot(self, codes: Tensor) -> Tensor:
        """(B, L) codes -> (B, 4, L) float one-hot."""
        return self.one_hot_table[codes.long() & 15].transpose(1, 2)

    def reverse_complement(self, codes: Tensor) -> Tensor:
        return self.complement_table[codes.long() & 15].flip(-1)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        codes = batch[INPUT]
        mode = self.hparams.reverse_complement
        if mode == "augment" and self.training:
            flip = torch.rand(codes.shape[0], device=codes.device) < 0.5
            codes = torch.where(flip[:, None], self.reverse_complement(codes), codes.long())
            return self.body(self.one_hot(codes))
        if mode == "none":
            return self.body(self.one_hot(codes))
        both = torch.cat([codes.long(), self.reverse_complement(codes)])
        out = self.body(self.one_hot(both))
        return 0.5 * (out[: len(codes)] + out[len(codes):])

    def first_layer(self) -> nn.Conv1d:
        """The motif-scanning convolution (for filter logos)."""
        raise NotImplementedError

    @classmethod
    def example_data(cls, length: int = 40) -> tuple[dict[str, Any], dict[str, Tensor]]:
        info = {"task_names": ["bound"], "task_type": "classification", "seq_length": length,
                "pos_fraction": [0.5]}
        g = torch.Generator().manual_seed(0)
        codes = torch.tensor([1, 2, 4, 8], dtype=torch.uint8)[torch.randint(0, 4, (4, length), generator=g)]
        return info, {INPUT: codes, TARGET: torch.tensor([[1.0], [0.0], [1.0], [float("nan")]])}


class DeepBindCNN(SequenceModel):
    """DeepBind (Alipanahi et al. 2015, Nat Biotechnol 33:831): motif-detector convolution, ReLU,
    global max pooling (or max and average), an optional hidden layer, one logit per task.

    Args:
        num_filters: motif detectors.
        filter_size: motif length (DeepBind: 24 for ChIP-seq).
        pooling: ``max`` (global max) or ``maxavg`` (max and average concatenated).
        pool_bins: pool over this many equal stretches of the sequence instead of the whole of it
            (1 = global pooling, DeepBind); more bins keep coarse position, useful when sites are
            centred (CLIP peaks).
        hidden_dim: hidden units after pooling (0: none, linear read-out as in DeepBind's simplest).
        dropout: dropout before the read-out.
        reverse_complement: ``none``, ``augment`` or ``both`` (see the module docstring).
        **kwargs: optimiser settings, see :class:`dltk.base.BaseTask`.
    """

    def __init__(self, num_filters: int = 128, filter_size: int = 24, pooling: Literal["max", "maxavg"] = "max",
                 pool_bins: int = 1, hidden_dim: int = 32, dropout: float = 0.5, reverse_complement: RC = "both",
                 weight_decay: float = 1e-4, **kwargs: Any) -> None:
        super().__init__(weight_decay=weight_decay, **kwargs)

    def build(self) -> None:
        hp = self.hparams
        # DeepBind pads each side with filter_size - 1 "no base" columns so edge motifs are seen
        self.conv = nn.Conv1d(4, hp.num_filters, hp.filter_size, padding=hp.filter_size - 1)
        width = hp.num_filters * (2 if hp.pooling == "maxavg" else 1) * max(1, hp.pool_bins)
        layers: list[nn.Module] = [nn.Dropout(hp.dropout)]
        if hp.hidden_dim > 0:
            layers += [nn.Linear(width, hp.hidden_dim), nn.ReLU(), nn.Dropout(hp.dropout)]
            width = hp.hidden_dim
        layers.append(nn.Linear(width, self.num_tasks))
        self.head = nn.Sequential(*layers)

    def body(self, x: Tensor) -> Tensor:
        h = torch.relu(self.conv(x))
        bins = max(1, self.hparams.pool_bins)
        if bins == 1:
            pooled = h.amax(-1)
            if self.hparams.pooling == "maxavg":
                pooled = torch.cat([pooled, h.mean(-1)], dim=1)
        else:
            pooled = nn.functional.adaptive_max_pool1d(h, bins).flatten(1)
            if self.hparams.pooling == "maxavg":
                pooled = torch.cat([pooled, nn.functional.adaptive_avg_pool1d(h, bins).flatten(1)], dim=1)
        return self.head(pooled)

    def first_layer(self) -> nn.Conv1d:
        return self.conv

    @classmethod
    def example(cls) -> tuple[dict, dict, dict[str, Tensor]]:
        info, batch = cls.example_data()
        return {"num_filters": 4, "filter_size": 5, "hidden_dim": 4}, info, batch


class DanQ(SequenceModel):
    """DanQ (Quang & Xie 2016, Nucleic Acids Res 44:e107): convolution, max pooling, a bidirectional
    LSTM over the pooled motif track, a dense layer, one logit per task.

    Args:
        num_filters: convolution filters (DanQ: 320).
        filter_size: filter width (DanQ: 26).
        pool_size: max-pooling window and stride (DanQ: 13).
        lstm_dim: LSTM units per direction (DanQ: 320).
        hidden_dim: dense units (DanQ: 925).
        dropout_conv: dropout after pooling (DanQ: 0.2).
        dropout: dropout after the LSTM (DanQ: 0.5).
        reverse_complement: ``none``, ``augment`` or ``both``.
        **kwargs: optimiser settings, see :class:`dltk.base.BaseTask`.
    """

    def __init__(self, num_filters: int = 128, filter_size: int = 26, pool_size: int = 13, lstm_dim: int = 64,
                 hidden_dim: int = 128, dropout_conv: float = 0.2, dropout: float = 0.5,
                 reverse_complement: RC = "both", weight_decay: float = 1e-4, **kwargs: Any) -> None:
        super().__init__(weight_decay=weight_decay, **kwargs)

    def build(self) -> None:
        hp = self.hparams
        self.conv = nn.Conv1d(4, hp.num_filters, hp.filter_size)
        self.pool = nn.MaxPool1d(hp.pool_size, hp.pool_size)
        self.drop_conv = nn.Dropout(hp.dropout_conv)
        self.lstm = nn.LSTM(hp.num_filters, hp.lstm_dim, batch_first=True, bidirectional=True)
        steps = max(1, (self.seq_length - hp.filter_size + 1) // hp.pool_size)
        self.head = nn.Sequential(nn.Dropout(hp.dropout), nn.Flatten(),
                                  nn.Linear(steps * 2 * hp.lstm_dim, hp.hidden_dim), nn.ReLU(),
                                  nn.Linear(hp.hidden_dim, self.num_tasks))

    def body(self, x: Tensor) -> Tensor:
        hp = self.hparams
        if x.shape[-1] < hp.filter_size + hp.pool_size - 1:  # too short for one pooled step: pad
            x = nn.functional.pad(x, (0, hp.filter_size + hp.pool_size - 1 - x.shape[-1]))
        h = self.drop_conv(self.pool(torch.relu(self.conv(x))))
        out, _ = self.lstm(h.transpose(1, 2))
        return self.head(out)

    def first_layer(self) -> nn.Conv1d:
        return self.conv

    @classmethod
    def example(cls) -> tuple[dict, dict, dict[str, Tensor]]:
        info, batch = cls.example_data()
        return ({"num_filters": 4, "filter_size": 5, "pool_size": 4, "lstm_dim": 4, "hidden_dim": 4}, info,
                batch)
