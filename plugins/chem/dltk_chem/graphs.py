"""The graph representation: each molecule as a molecular graph (:mod:`dltk_chem.graph`).

Graphs are built once at load, in memory (nothing is cached on disk). Optional molecule-level
features (``mol_features: rdkit2d``: RDKit 2D descriptors, robust-scaled with training-split
statistics stored in the model's ``data_info``) are concatenated to the learned embedding.

Batches are the dicts of :func:`dltk_chem.graph.collate_graphs` (``atom_x``, ``bond_x``,
``edge_src``, ``edge_dst``, ``edge_rev``, ``atom_batch``, ``num_atoms``, ``y`` and ``mol_x``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
from torch.utils.data import DataLoader

from dltk.errors import ConfigError
from dltk_chem import graph
from dltk_chem.featurize import DescriptorScaler, RDKitDescriptors, featurize, featurize_cached
from dltk_chem.representation import ChunkFeaturizer, Parts, Representation, require_valid
from dltk_chem.tables import MolTable

log = logging.getLogger("dltk.chem")

MolFeatures = Literal["none", "rdkit2d"]


class Graphs(Representation):
    """Molecular graphs, optionally with scaled RDKit 2D descriptors beside them.

    Args:
        mol_features: ``none`` or ``rdkit2d`` (scaled RDKit 2D descriptors beside the graph).
    """

    collate_fn = staticmethod(graph.collate_graphs)

    def __init__(self, mol_features: str = "none") -> None:
        if mol_features not in ("none", "rdkit2d"):
            raise ConfigError(f"data.mol_features: expected 'none' or 'rdkit2d', got {mol_features!r}")
        self.mol_features = mol_features
        self.descriptor_scaler: DescriptorScaler | None = None
        self._descriptors = RDKitDescriptors() if mol_features == "rdkit2d" else None

    def _featurize_part(self, table: MolTable, part: str,
                        n_jobs: int | None) -> tuple[graph.MolGraphs, np.ndarray | None, MolTable]:
        graphs = graph.featurize_graphs(table.smiles, n_jobs=n_jobs)
        valid = graphs.valid
        errors = list(graphs.errors)
        desc = None
        if self._descriptors is not None:
            desc, ok, _ = featurize_cached(self._descriptors, table.smiles, n_jobs=n_jobs, progress=False)
            for i in np.flatnonzero(valid & ~ok):
                errors[i] = "RDKit descriptors failed"
            valid = valid & ok
        require_valid(valid, table, part)
        dropped = int((~valid).sum())
        if dropped:
            bad = np.flatnonzero(~valid)
            reasons = Counter(e.split(":")[0].split(" (")[0] for e in (errors[i] for i in bad))
            log.warning("%s: dropped %d of %d structures RDKit cannot parse or sanitize (%s; e.g. %s)",
                        part, dropped, len(table), ", ".join(f"{k}: {v}" for k, v in reasons.items()),
                        ", ".join(str(table.ids[i]) for i in bad[:5]))
        return graphs.subset(valid), (None if desc is None else desc[valid]), table.subset(valid)

    def build(self, tables: dict[str, MolTable], n_jobs: int | None) -> Parts:
        featurized = {part: self._featurize_part(table, part, n_jobs) for part, table in tables.items()}
        if self._descriptors is not None:
            self.descriptor_scaler = DescriptorScaler.fit(featurized["train"][1])
        parts: Parts = {}
        for part, (graphs, desc, table) in featurized.items():
            mol_x = None
            if desc is not None:
                assert self.descriptor_scaler is not None
                mol_x, imputed = self.descriptor_scaler.transform(desc)
                if imputed:
                    log.info("%s: imputed %d NaN/inf descriptor values with training medians", part, imputed)
            parts[part] = (graph.GraphDataset(graphs, table.y, mol_x), table)
        return parts

    def summary(self, parts: Parts) -> str:
        train = parts["train"][0]
        assert isinstance(train, graph.GraphDataset)
        g = train.graphs
        return (f"graphs: {graph.ATOM_FDIM} atom / {graph.BOND_FDIM} bond features, "
                f"{np.diff(g.atom_ptr).mean():.1f} atoms and {np.diff(g.bond_ptr).mean():.1f} bonds per "
                f"training molecule, mol_features={self.mol_features}")

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"graph": graph.settings(), "atom_fdim": graph.ATOM_FDIM,
                                "bond_fdim": graph.BOND_FDIM, "mol_features": self.mol_features,
                                "mol_fdim": self._descriptors.n_features if self._descriptors else 0}
        if self.descriptor_scaler is not None:
            info["descriptor_scaler"] = self.descriptor_scaler.state()
        return info

    def _prediction_scaler(self, info: Mapping[str, Any]) -> tuple[str, DescriptorScaler | None]:
        """The molecule features and descriptor scaler the model was trained with."""
        if info.get("graph", graph.settings()) != graph.settings():
            raise ConfigError(f"the model was trained on graph features {info['graph']}, this dltk_chem "
                              f"builds {graph.settings()}; retrain the model")
        mol_features = info.get("mol_features", self.mol_features)
        scaler = self.descriptor_scaler
        if mol_features == "rdkit2d" and "descriptor_scaler" in info:
            st = info["descriptor_scaler"]
            scaler = DescriptorScaler.from_state(st)
        if mol_features == "rdkit2d" and scaler is None:
            raise ConfigError("the model uses rdkit2d molecule features but has no descriptor scaler")
        return mol_features, scaler

    @contextmanager
    def predicting(self, data_info: Mapping[str, Any], n_jobs: int | None,
                   batch_size: int) -> Iterator[ChunkFeaturizer]:
        mol_features, scaler = self._prediction_scaler(data_info)

        def featurize_chunk(smiles: list[str], n_tasks: int) -> tuple[Any, DataLoader | None]:
            graphs = graph.featurize_graphs(smiles, n_jobs=n_jobs)
            errors = list(graphs.errors)
            valid = graphs.valid
            mol_x = None
            if mol_features == "rdkit2d":
                assert scaler is not None
                desc, ok = featurize(RDKitDescriptors(), smiles, n_jobs=n_jobs, progress=False)
                for i in np.flatnonzero(valid & ~ok):
                    errors[i] = "RDKit descriptors failed"
                valid = valid & ok
                mol_x = scaler.transform(desc[valid])[0]
            if not valid.any():
                return errors, None
            y = np.full((int(valid.sum()), n_tasks), np.nan, dtype=np.float32)
            dataset = graph.GraphDataset(graphs.subset(valid), y, mol_x)
            return errors, DataLoader(dataset, batch_size=max(batch_size, 256), shuffle=False,
                                      collate_fn=graph.collate_graphs)

        yield featurize_chunk
