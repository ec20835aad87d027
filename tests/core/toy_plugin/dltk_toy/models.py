"""A small MLP on dltk.base.BaseTask."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from dltk.base import INPUT, TARGET, BaseTask


class ToyMLP(BaseTask):
    """One hidden layer MLP, one output per task.

    Args:
        hidden_dim: width of the hidden layer.
        dropout: dropout after the hidden layer (consumes random numbers: the resume tests use it).
        **kwargs: optimiser settings, see :class:`dltk.base.BaseTask`.
    """

    def __init__(self, hidden_dim: int = 32, dropout: float = 0.0, lr: float = 0.01, **kwargs: Any) -> None:
        super().__init__(lr=lr, **kwargs)

    def configure_models(self) -> None:
        width = int(self.data_info["in_features"])
        self.net = nn.Sequential(nn.Linear(width, self.hparams.hidden_dim), nn.ReLU(), nn.Dropout(self.hparams.dropout),
                                 nn.Linear(self.hparams.hidden_dim, self.num_classes or self.num_tasks))

    def forward(self, batch: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        return self.net(batch[INPUT].float())

    @classmethod
    def example(cls) -> tuple[dict[str, Any], dict[str, Any], dict[str, Tensor]]:
        """Plugin contract: tiny init kwargs, data_info and a fake batch (4 samples, 2 tasks)."""
        gen = torch.Generator().manual_seed(0)
        batch = {INPUT: torch.randn(4, 8, generator=gen),
                 TARGET: torch.tensor([[1, 0], [0, float("nan")], [1, 1], [0, 0]], dtype=torch.float32)}
        return {"hidden_dim": 4}, {"task_names": ["alpha", "beta"], "task_type": "classification",
                                   "in_features": 8}, batch
