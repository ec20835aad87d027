"""Graph neural networks on molecules: the directed message-passing network (D-MPNN) of chemprop.

Yang et al. 2019, "Analyzing Learned Molecular Representations for Property Prediction",
J. Chem. Inf. Model. 59:3370. Hidden states live on *directed* bonds; a message to bond ``v->w``
sums the states of the bonds entering ``v`` except the reverse bond ``w->v``, which avoids
"tottering" back and forth. Implemented with ``index_add_`` on the batch tensors built by
:func:`dltk_chem.graph.collate_graphs` (no torch_geometric).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor, nn

from dltk.base import BaseTask

_ACTIVATIONS = {"relu": nn.ReLU, "leakyrelu": nn.LeakyReLU, "prelu": nn.PReLU, "tanh": nn.Tanh,
                "selu": nn.SELU, "elu": nn.ELU}


def _scatter_sum(values: Tensor, index: Tensor, size: int) -> Tensor:
    out = values.new_zeros((size, values.shape[1]))
    return out.index_add_(0, index, values)


def _counts(index: Tensor, size: int, dtype: torch.dtype) -> Tensor:
    ones = torch.ones(index.shape[0], dtype=dtype, device=index.device)
    return torch.zeros(size, dtype=dtype, device=index.device).index_add_(0, index, ones)


class DMPNN(BaseTask):
    """Directed message-passing neural network (chemprop's D-MPNN) with a feed-forward head.

    With atom features ``x_v``, bond features ``e_vw`` and ``W_i, W_h, W_o``:

    1. ``h0_vw = act(W_i [x_v, e_vw])`` for every directed bond ``v->w``;
    2. ``depth - 1`` times: ``m_vw = sum_{k->v} h_kv - h_wv``; ``h_vw = act(h0_vw + W_h m_vw)``;
    3. atoms: ``m_v = agg_{k->v} h_kv``; ``h_v = act(W_o [x_v, m_v])``;
    4. molecule: ``readout_v h_v`` (mean or sum over atoms), concatenated with the optional
       molecule-level features (``data.mol_features: rdkit2d``), then the FFN.

    ``depth`` counts as in chemprop (``depth=3``: the initial bond states plus two message updates,
    so information travels three bonds).

    Args:
        hidden_dim: width of the bond and atom hidden states.
        depth: message-passing depth (chemprop's ``--depth``).
        atom_aggregation: ``sum`` (chemprop) or ``mean`` of incoming bond states at an atom.
        readout: ``mean`` (chemprop's default) or ``sum`` of atom states per molecule.
        bias: biases in ``W_i`` and ``W_h`` (chemprop: none).
        activation: nonlinearity of the encoder and the head.
        mpnn_dropout: dropout on the hidden states during message passing.
        ffn_hidden_dim: width of the head's hidden layers.
        ffn_num_layers: layers of the head, the output layer included (1 = linear).
        dropout: dropout before each layer of the head.
        batch_norm: batch normalisation of the molecule embedding (chemprop v2's option).
        scheduler: ``noam`` is chemprop's: linear warm-up from ``lr/10`` to ``lr`` over
            ``warmup_epochs``, then exponential decay to ``lr/10`` at ``max_epochs`` (per step);
            the others as in :class:`dltk.base.BaseTask`.
        warmup_epochs: warm-up of the ``noam`` schedule.
        **kwargs: optimiser settings, see :class:`dltk.base.BaseTask`.
    """

    def __init__(self, hidden_dim: int = 300, depth: int = 3,
                 atom_aggregation: Literal["sum", "mean"] = "sum",
                 readout: Literal["mean", "sum"] = "mean", bias: bool = False,
                 activation: Literal["relu", "leakyrelu", "prelu", "tanh", "selu", "elu"] = "relu",
                 mpnn_dropout: float = 0.0, ffn_hidden_dim: int = 300, ffn_num_layers: int = 2,
                 dropout: float = 0.0, batch_norm: bool = False, lr: float = 1e-3,
                 weight_decay: float = 0.0, optimizer: Literal["adamw", "adam", "sgd"] = "adam",
                 scheduler: Literal["none", "cosine", "plateau", "noam"] = "noam",
                 warmup_epochs: float = 2.0, class_weight: Literal["none", "balanced"] = "none",
                 data_info: dict[str, Any] | None = None) -> None:
        if depth < 1 or hidden_dim < 1 or ffn_num_layers < 1:
            raise ValueError(f"DMPNN needs depth >= 1, hidden_dim >= 1, ffn_num_layers >= 1; got "
                             f"{depth}, {hidden_dim}, {ffn_num_layers}")
        super().__init__(lr=lr, weight_decay=weight_decay, optimizer=optimizer,
                         scheduler=scheduler,  # type: ignore[arg-type]  # "noam" is handled here
                         class_weight=class_weight, data_info=data_info)

    # -- network ----------------------------------------------------------------------------
    def configure_models(self) -> None:
        hp = self.hparams
        info = self.data_info
        atom_fdim, bond_fdim = int(info["atom_fdim"]), int(info["bond_fdim"])
        self.mol_fdim = int(info.get("mol_fdim", 0))
        act = _ACTIVATIONS[hp.activation]
        self.W_i = nn.Linear(atom_fdim + bond_fdim, hp.hidden_dim, bias=hp.bias)
        self.W_h = nn.Linear(hp.hidden_dim, hp.hidden_dim, bias=hp.bias)
        self.W_o = nn.Linear(atom_fdim + hp.hidden_dim, hp.hidden_dim)
        self.act = act()
        self.mpnn_dropout = nn.Dropout(hp.mpnn_dropout)
        self.embedding_norm = nn.BatchNorm1d(hp.hidden_dim) if hp.batch_norm else nn.Identity()
        layers: list[nn.Module] = []
        width = hp.hidden_dim + self.mol_fdim
        for _ in range(hp.ffn_num_layers - 1):
            layers += [nn.Dropout(hp.dropout), nn.Linear(width, hp.ffn_hidden_dim), act()]
            width = hp.ffn_hidden_dim
        layers += [nn.Dropout(hp.dropout), nn.Linear(width, self.num_tasks)]
        self.ffn = nn.Sequential(*layers)

    def encode_atoms(self, batch: dict[str, Tensor]) -> Tensor:
        """Atom hidden states ``(n_atoms, hidden_dim)`` after message passing."""
        atom_x, bond_x = batch["atom_x"], batch["bond_x"]
        src, dst, rev = batch["edge_src"], batch["edge_dst"], batch["edge_rev"]
        n_atoms = atom_x.shape[0]
        h0 = self.act(self.W_i(torch.cat([atom_x[src], bond_x], dim=1)))
        h = h0
        for _ in range(self.hparams.depth - 1):
            incoming = _scatter_sum(h, dst, n_atoms)        # sum_{k->v} h_kv, per atom v
            message = incoming[src] - h[rev]                # for v->w: minus h_wv
            h = self.mpnn_dropout(self.act(h0 + self.W_h(message)))
        incoming = _scatter_sum(h, dst, n_atoms)
        if self.hparams.atom_aggregation == "mean":
            incoming = incoming / _counts(dst, n_atoms, incoming.dtype).clamp_min(1).unsqueeze(1)
        return self.mpnn_dropout(self.act(self.W_o(torch.cat([atom_x, incoming], dim=1))))

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        """Learned molecule embedding ``(n_molecules, hidden_dim)`` (before extra features)."""
        atoms = self.encode_atoms(batch)
        n_mols = batch["num_atoms"].shape[0]
        mol = _scatter_sum(atoms, batch["atom_batch"], n_mols)
        if self.hparams.readout == "mean":
            mol = mol / batch["num_atoms"].clamp_min(1).to(mol.dtype).unsqueeze(1)
        return self.embedding_norm(mol)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        mol = self.embed(batch)
        if self.mol_fdim:
            mol = torch.cat([mol, batch["mol_x"].to(mol.dtype)], dim=1)
        return self.ffn(mol)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], dict[str, Any], dict[str, Tensor]]:
        """Plugin contract: tiny init kwargs, data_info and a real graph batch of 3 molecules
        (ethanol, benzene, acetic acid) with 4 molecule-level features and 2 tasks."""
        import numpy as np

        from dltk_chem import graph

        graphs = graph.featurize_graphs(["CCO", "c1ccccc1", "CC(=O)O"], n_jobs=1)
        y = np.array([[1, 0], [0, np.nan], [1, 1]], dtype=np.float32)
        mol_x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
        dataset = graph.GraphDataset(graphs, y, mol_x)
        batch = graph.collate_graphs([dataset[i] for i in range(len(dataset))])
        kwargs = {"hidden_dim": 16, "depth": 2, "ffn_hidden_dim": 16, "ffn_num_layers": 2, "scheduler": "none"}
        info = {"task_names": ["a", "b"], "task_type": "classification", "atom_fdim": graph.ATOM_FDIM,
                "bond_fdim": graph.BOND_FDIM, "mol_fdim": 4}
        return kwargs, info, batch

    # -- chemprop's learning-rate schedule --------------------------------------------------
    def configure_optimizers(self) -> Any:
        opt = super().configure_optimizers()  # the base class returns the bare optimiser for "noam"
        if self.hparams.scheduler != "noam":
            return opt
        steps = int(self.trainer.estimated_stepping_batches) if self._trainer else 1
        epochs = max(1, int(self.trainer.max_epochs or 1)) if self._trainer else 1
        per_epoch = max(1, steps // epochs)
        warmup = max(1, int(round(self.hparams.warmup_epochs * per_epoch)))
        total = max(warmup + 1, steps)
        gamma = math.log(0.1) / (total - warmup)  # lr -> lr/10 over the rest

        def factor(step: int) -> float:
            if step < warmup:
                return 0.1 + 0.9 * step / warmup
            return math.exp(gamma * min(step - warmup, total - warmup))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
