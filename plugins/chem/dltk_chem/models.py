"""Chem models."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from dltk.base import INPUT, TARGET, BaseTask


class FingerprintMLP(BaseTask):
    """DeepTox-style multitask feed-forward network on fingerprints, one output per task.

    Args:
        hidden_dim: width of each hidden layer.
        num_layers: number of hidden layers.
        dropout: dropout after each hidden layer.
        input_dropout: dropout on the input fingerprint.
        activation: ``relu`` (with batch norm when ``batch_norm``) or ``selu`` (self-normalising:
            LeCun-normal init and alpha dropout, no batch norm; Klambauer et al. 2017).
        batch_norm: batch normalisation before the activation (``relu`` only).
        **kwargs: optimiser settings, see :class:`dltk.base.BaseTask`.
    """

    def __init__(self, hidden_dim: int = 2048, num_layers: int = 2, dropout: float = 0.5, input_dropout: float = 0.2,
                 activation: Literal["relu", "selu"] = "relu", batch_norm: bool = True, weight_decay: float = 1e-5,
                 **kwargs: Any) -> None:
        super().__init__(weight_decay=weight_decay, **kwargs)

    def configure_models(self) -> None:
        hp = self.hparams
        selu = hp.activation == "selu"
        drop = nn.AlphaDropout if selu else nn.Dropout
        layers: list[nn.Module] = [drop(hp.input_dropout)] if hp.input_dropout > 0 else []
        width = int(self.data_info["in_features"])
        for _ in range(hp.num_layers):
            layers.append(nn.Linear(width, hp.hidden_dim))
            if not selu and hp.batch_norm:
                layers.append(nn.BatchNorm1d(hp.hidden_dim))
            layers.append(nn.SELU() if selu else nn.ReLU())
            if hp.dropout > 0:
                layers.append(drop(hp.dropout))
            width = hp.hidden_dim
        layers.append(nn.Linear(width, self.num_tasks))
        self.net = nn.Sequential(*layers)
        if selu:
            for module in self.net:
                if isinstance(module, nn.Linear):
                    nn.init.kaiming_normal_(module.weight, nonlinearity="linear")
                    nn.init.zeros_(module.bias)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        return self.net(batch[INPUT].float())

    @classmethod
    def example(cls) -> tuple[dict[str, Any], dict[str, Any], dict[str, Tensor]]:
        """Plugin contract: tiny init kwargs, data_info and a fake batch of 4 fingerprints (3 tasks,
        one label missing)."""
        kwargs = {"hidden_dim": 16, "num_layers": 1, "dropout": 0.1, "input_dropout": 0.0}
        return (kwargs, *example_fingerprint_batch())


def example_fingerprint_batch() -> tuple[dict[str, Any], dict[str, Tensor]]:
    """data_info and a fake batch of 4 random 32-bit fingerprints, 3 tasks, one label missing, for
    the plugin contract of the fingerprint models."""
    info = {"task_names": ["a", "b", "c"], "task_type": "classification", "in_features": 32,
            "pos_fraction": [0.5, 0.25, 0.5]}
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(4, 32, generator=gen) < 0.2).float()
    y = torch.tensor([[1, 0, 1], [0, 0, float("nan")], [1, 1, 0], [0, 0, 1]], dtype=torch.float32)
    return info, {INPUT: x, TARGET: y}
