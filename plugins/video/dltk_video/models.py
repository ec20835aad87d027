"""Sequence models that label every frame: bidirectional GRU/LSTM or a temporal convolution network.

Input ``x``: ``(B, T, F)`` per-frame features (pose features or frozen CNN frame embeddings);
output: logits ``(B, T, C)``. Core trains them with cross-entropy over labelled frames
(``task_type = "multiclass"``); the test of a
:class:`~dltk_video.datamodules.base.FrameWindowDataModule` is done per frame
(:func:`dltk_video.evaluation.evaluate_frames`), windows stitched back into one prediction per frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from dltk.base import INPUT, TARGET, BaseTask
from torch import Tensor, nn


class TemporalBlock(nn.Module):
    """Residual non-causal dilated convolution block (Bai et al. 2018, TCN; as in MS-TCN)."""

    def __init__(self, channels: int, dilation: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=pad, dilation=dilation)
        self.out = nn.Conv1d(channels, channels, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.out(self.drop(torch.relu(self.conv(x))))


class PoseSequenceClassifier(BaseTask):
    """Per-frame behaviour classifier over a window of per-frame features.

    Args:
        arch: ``gru`` / ``lstm`` (bidirectional recurrent network) or ``tcn`` (dilated temporal
            convolutions, dilation doubling per layer).
        hidden_dim: width of the input projection and of each direction of the recurrent layers.
        num_layers: recurrent layers (``tcn``: residual blocks).
        dropout: dropout on the projected input and between layers.
        input_dropout: dropout on the raw features.
        kernel_size: ``tcn`` kernel size.
        feature_noise: standard deviation of Gaussian noise added to the (standardised) input
            features during training only (augmentation for small annotated sets).
        **kwargs: optimiser settings, see :class:`dltk.base.BaseTask`.
    """

    def __init__(self, arch: Literal["gru", "lstm", "tcn"] = "gru", hidden_dim: int = 64, num_layers: int = 2,
                 dropout: float = 0.3, input_dropout: float = 0.1, kernel_size: int = 3, feature_noise: float = 0.0,
                 weight_decay: float = 1e-4, **kwargs: Any) -> None:
        super().__init__(weight_decay=weight_decay, **kwargs)

    def configure_models(self) -> None:
        hp = self.hparams
        n_in = int(self.data_info["in_features"])
        n_out = len(self.data_info["class_names"])
        self.input_drop = nn.Dropout(hp.input_dropout)
        self.proj = nn.Sequential(nn.Linear(n_in, hp.hidden_dim), nn.LayerNorm(hp.hidden_dim), nn.GELU(),
                                  nn.Dropout(hp.dropout))
        if hp.arch == "tcn":
            self.temporal = nn.ModuleList(TemporalBlock(hp.hidden_dim, 2 ** i, hp.kernel_size, hp.dropout)
                                          for i in range(hp.num_layers))
            width = hp.hidden_dim
        else:
            rnn = nn.GRU if hp.arch == "gru" else nn.LSTM
            self.rnn = rnn(hp.hidden_dim, hp.hidden_dim, num_layers=hp.num_layers, batch_first=True,
                           bidirectional=True, dropout=hp.dropout if hp.num_layers > 1 else 0.0)
            width = 2 * hp.hidden_dim
        self.head = nn.Sequential(nn.Dropout(hp.dropout), nn.Linear(width, n_out))

    def forward(self, batch: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        x = batch[INPUT].float()
        if self.training and self.hparams.feature_noise > 0:
            x = x + self.hparams.feature_noise * torch.randn_like(x)
        h = self.proj(self.input_drop(x))
        if self.hparams.arch == "tcn":
            h = h.transpose(1, 2)
            for block in self.temporal:
                h = block(h)
            h = h.transpose(1, 2)
        else:
            h, _ = self.rnn(h)
        return self.head(h)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], dict[str, Any], dict[str, Tensor]]:
        info = {"task_names": ["behavior"], "task_type": "multiclass", "in_features": 6,
                "class_names": ["background", "a", "b"], "class_counts": [10, 5, 5]}
        target = torch.tensor([[0, 1, 2, float("nan")], [1, 1, 0, 2]])
        batch = {INPUT: torch.randn(2, 4, 6), TARGET: target}
        return {"hidden_dim": 8, "num_layers": 1}, info, batch

    def evaluate_run(self, datamodule: Any, models: list[BaseTask], run_dir: Path | None) -> dict[str, float] | None:
        """Frame-level evaluation of a :class:`~dltk_video.datamodules.base.FrameWindowDataModule`
        (windows stitched: every frame scored once); core's standard test for any other datamodule."""
        from dltk_video.datamodules.base import FrameWindowDataModule

        if not isinstance(datamodule, FrameWindowDataModule):
            return None
        from dltk.inference import ensemble_inference

        from dltk_video.evaluation import evaluate_frames

        datamodule.setup("test")
        preds, std, _ = ensemble_inference(models, datamodule.test_dataloader())
        val_preds, _, _ = ensemble_inference(models, datamodule.val_dataloader())
        return evaluate_frames(datamodule, self, preds, std, run_dir, val_preds=val_preds)
