"""Cell-level genomics models: DeepCpG (CpG + optional DNA module) and an expression MLP."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from dltk.base import INPUT, TARGET, BaseTask
from torch import Tensor, nn

DNA = "dna"


class DeepCpG(BaseTask):
    """DeepCpG (Angermueller et al. 2017, Genome Biol 18:67): CpG module, optional DNA module, joint
    module predicting every cell's CpG state at once (multi-output, NaN = unobserved in that cell).

    CpG module (DeepCpG ``RnnL1``): each cell's neighbour vector (states and scaled distances of the
    ``k`` nearest observed CpGs on each side) goes through a dense layer shared by all cells, then a
    bidirectional GRU runs over the cells and its two final states summarise them. With
    ``neighbour_rnn`` a bidirectional GRU first reads each cell's ``2k`` neighbours in genomic order
    (instead of the flat dense layer).

    DNA module (DeepCpG ``CnnL2h128``, used when the data has a ``dna`` window): two convolution +
    max-pooling blocks on the one-hot window, then a dense layer.

    Joint module: dense layers on the concatenated module outputs, one logit per cell.

    Args:
        cpg_hidden: units of the per-cell dense layer (DeepCpG: 256).
        gru_hidden: units of each direction of the GRU over cells (DeepCpG: 256).
        neighbour_rnn: read each cell's neighbours with a bidirectional GRU (units ``cpg_hidden // 2``).
        dna_filters: filters of the first convolution (the second has twice as many).
        dna_kernel: width of the first convolution (DeepCpG: 11).
        dna_hidden: units of the DNA module's dense layer (DeepCpG: 128).
        joint_hidden: units of the joint module's hidden layer (0: logits straight from the modules).
        dropout: dropout on the module outputs.
        **kwargs: optimiser settings, see :class:`dltk.base.BaseTask`.
    """

    def __init__(self, cpg_hidden: int = 256, gru_hidden: int = 256, neighbour_rnn: bool = False,
                 dna_filters: int = 128, dna_kernel: int = 11, dna_hidden: int = 128, joint_hidden: int = 512,
                 dropout: float = 0.2, weight_decay: float = 1e-5, **kwargs: Any) -> None:
        super().__init__(weight_decay=weight_decay, **kwargs)

    def configure_models(self) -> None:
        hp = self.hparams
        k = int(self.data_info["k"])
        if hp.neighbour_rnn:
            self.neighbour_gru = nn.GRU(2, max(1, hp.cpg_hidden // 2), batch_first=True, bidirectional=True)
            cell_dim = 2 * max(1, hp.cpg_hidden // 2)
        else:
            self.cell_dense = nn.Sequential(nn.Linear(4 * k, hp.cpg_hidden), nn.ReLU())
            cell_dim = hp.cpg_hidden
        self.cell_gru = nn.GRU(cell_dim, hp.gru_hidden, batch_first=True, bidirectional=True)
        width = 2 * hp.gru_hidden
        window = int(self.data_info.get("dna_window") or 0)
        self.dna_net: nn.Module | None = None
        if window:
            from dltk_genomics.encoding import ONE_HOT

            self.register_buffer("one_hot_table", torch.from_numpy(ONE_HOT.copy()), persistent=False)
            f = hp.dna_filters
            conv = nn.Sequential(
                nn.Conv1d(4, f, hp.dna_kernel, padding=hp.dna_kernel // 2), nn.ReLU(), nn.MaxPool1d(4),
                nn.Conv1d(f, 2 * f, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten())
            with torch.no_grad():
                flat = conv(torch.zeros(1, 4, window)).shape[1]
            self.dna_net = nn.Sequential(conv, nn.Dropout(hp.dropout), nn.Linear(flat, hp.dna_hidden), nn.ReLU())
            width += hp.dna_hidden
        layers: list[nn.Module] = [nn.Dropout(hp.dropout)]
        if hp.joint_hidden:
            layers += [nn.Linear(width, hp.joint_hidden), nn.ReLU(), nn.Dropout(hp.dropout)]
            width = hp.joint_hidden
        layers.append(nn.Linear(width, self.num_tasks))
        self.joint = nn.Sequential(*layers)

    def cpg_module(self, x: Tensor) -> Tensor:
        """(B, cells, 2k, 2) neighbour encodings -> (B, 2 * gru_hidden)."""
        b, cells, n, c = x.shape
        if self.hparams.neighbour_rnn:
            _, h = self.neighbour_gru(x.reshape(b * cells, n, c))
            per_cell = torch.cat([h[0], h[1]], dim=-1).reshape(b, cells, -1)
        else:
            # DeepCpG concatenates each cell's states then distances
            per_cell = self.cell_dense(torch.cat([x[..., 0], x[..., 1]], dim=-1))
        _, h = self.cell_gru(per_cell)
        return torch.cat([h[0], h[1]], dim=-1)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        parts = [self.cpg_module(batch[INPUT].float())]
        if self.dna_net is not None:
            one_hot = self.one_hot_table[batch[DNA].long() & 15]  # (B, L, 4)
            parts.append(self.dna_net(one_hot.transpose(1, 2)))
        return self.joint(torch.cat(parts, dim=-1))

    def test_metrics(self, preds: np.ndarray, target: np.ndarray) -> dict[str, float]:
        """Per-cell AUROC/AUPRC plus the datamodule's neighbour-average baseline on the same test
        split (``baseline_auroc``, ``baseline_auroc/<cell>``), computed when the data was loaded."""
        values = super().test_metrics(preds, target)
        for name, value in (self.data_info.get("baseline_auroc") or {}).items():
            values["baseline_auroc" if name == "mean" else f"baseline_auroc/{name}"] = float(value)
        return values

    @classmethod
    def example(cls) -> tuple[dict[str, Any], dict[str, Any], dict[str, Tensor]]:
        k, window = 3, 24
        info = {"task_names": ["cell_a", "cell_b"], "task_type": "classification", "n_cells": 2, "k": k,
                "max_dist": 25000, "dna_window": window, "pos_fraction": [0.5, 0.5]}
        g = torch.Generator().manual_seed(0)
        x = torch.rand(4, 2, 2 * k, 2, generator=g)
        y = torch.tensor([[1.0, 0.0], [0.0, math.nan], [math.nan, 1.0], [1.0, 1.0]])
        dna = torch.randint(1, 16, (4, window), generator=g).to(torch.uint8)
        kwargs = {"cpg_hidden": 8, "gru_hidden": 4, "dna_filters": 4, "dna_kernel": 5, "dna_hidden": 4,
                  "joint_hidden": 8}
        return kwargs, info, {INPUT: x, DNA: dna, TARGET: y}


class ExpressionMLP(BaseTask):
    """Feed-forward network on expression profiles: cell types (multiclass) or D-GEX-style target
    genes from landmark genes (multi-output regression; Chen et al. 2016, Bioinformatics 32:1832).

    Args:
        hidden_dim: width of each hidden layer.
        num_layers: hidden layers.
        dropout: dropout after each hidden layer.
        input_dropout: dropout on the input genes.
        input_noise: standard deviation of Gaussian noise added to the (standardised) inputs during
            training, an augmentation.
        batch_norm: batch normalisation before each activation.
        **kwargs: optimiser settings, see :class:`dltk.base.BaseTask`.
    """

    def __init__(self, hidden_dim: int = 256, num_layers: int = 2, dropout: float = 0.3, input_dropout: float = 0.0,
                 input_noise: float = 0.0, batch_norm: bool = True, weight_decay: float = 1e-4, **kwargs: Any) -> None:
        super().__init__(weight_decay=weight_decay, **kwargs)

    def configure_models(self) -> None:
        hp = self.hparams
        width = int(self.data_info["in_features"])
        layers: list[nn.Module] = [nn.Dropout(hp.input_dropout)] if hp.input_dropout > 0 else []
        for _ in range(hp.num_layers):
            layers.append(nn.Linear(width, hp.hidden_dim))
            if hp.batch_norm:
                layers.append(nn.BatchNorm1d(hp.hidden_dim))
            layers.append(nn.ReLU())
            if hp.dropout > 0:
                layers.append(nn.Dropout(hp.dropout))
            width = hp.hidden_dim
        out = self.num_classes if self.task_type == "multiclass" else self.num_tasks
        layers.append(nn.Linear(width, out))
        self.net = nn.Sequential(*layers)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        x = batch[INPUT].float()
        if self.training and self.hparams.input_noise > 0:
            x = x + self.hparams.input_noise * torch.randn_like(x)
        return self.net(x)

    def test_metrics(self, preds: np.ndarray, target: np.ndarray) -> dict[str, float]:
        """The standard metrics plus the datamodule's baseline (logistic / linear regression fitted on
        the same training split when the data was loaded), as ``baseline_<metric>``."""
        values = super().test_metrics(preds, target)
        for name, value in (self.data_info.get("baseline") or {}).items():
            values[f"baseline_{name}"] = float(value)
        return values

    def write_test_plots(self, plot_dir: Path, preds: np.ndarray, target: np.ndarray, title: str) -> list[Path]:
        """Core's plots, except for regression on many genes: one figure with all genes pooled
        (predicted vs measured, hexbin) and the distribution of per-gene test R^2, instead of one
        scatter panel per gene."""
        if self.task_type != "regression" or self.num_tasks <= 12:
            return super().write_test_plots(plot_dir, preds, target, title)
        import matplotlib.pyplot as plt
        from dltk.plots import save_figure

        mask = ~np.isnan(target)
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
        hb = ax1.hexbin(target[mask], preds[mask], gridsize=60, bins="log", cmap="viridis", mincnt=1)
        lo, hi = float(np.nanmin(target)), float(np.nanmax(target))
        ax1.plot([lo, hi], [lo, hi], color="0.6", lw=0.8, ls="--")
        ax1.set_xlabel("measured expression")
        ax1.set_ylabel("predicted expression")
        ax1.set_title(f"{self.num_tasks} target genes, all test cells pooled", fontsize=9)
        fig.colorbar(hb, ax=ax1, label="count")
        err = np.where(mask, preds - target, 0.0)
        centred = np.where(mask, target - np.nanmean(target, axis=0), 0.0)
        ss_tot = (centred ** 2).sum(axis=0)
        r2 = 1.0 - (err ** 2).sum(axis=0) / np.where(ss_tot > 0, ss_tot, np.nan)
        r2 = r2[np.isfinite(r2)]
        ax2.hist(np.clip(r2, -1.0, 1.0), bins=40, color="tab:blue")
        ax2.axvline(float(np.median(r2)) if len(r2) else 0.0, color="k", ls="--", lw=0.8,
                    label=f"median {np.median(r2) if len(r2) else float('nan'):.3f}")
        ax2.set_xlabel("per-gene test R$^2$ (clipped to [-1, 1])")
        ax2.set_ylabel("genes")
        ax2.legend(fontsize=8)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        return [save_figure(fig, plot_dir / "parity_pooled.png")]

    @classmethod
    def example(cls) -> tuple[dict[str, Any], dict[str, Any], dict[str, Tensor]]:
        info = {"task_names": ["cell_type"], "task_type": "multiclass", "class_names": ["B", "T", "NK"],
                "class_counts": [2, 1, 1], "in_features": 10}
        g = torch.Generator().manual_seed(0)
        batch = {INPUT: torch.randn(4, 10, generator=g), TARGET: torch.tensor([0.0, 1.0, 2.0, math.nan])}
        return {"hidden_dim": 8, "num_layers": 1}, info, batch
