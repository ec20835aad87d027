"""Chem datamodules for graph models: the same data and splits as :mod:`dltk_chem.datamodules`,
featurized as molecular graphs (:mod:`dltk_chem.graph`) instead of fingerprints.

Each class reuses its fingerprint counterpart's ``load_tables()`` (files, labels, splits) through
:class:`GraphMixin`, which replaces featurization, dataset construction, loaders and prediction.
Graphs are built once at load, in memory (nothing is cached on disk). Optional molecule-level
features (``mol_features: rdkit2d``: RDKit 2D descriptors, robust-scaled with training-split
statistics stored in the model's ``data_info``) are concatenated to the learned embedding.

Batches are the dicts of :func:`dltk_chem.graph.collate_graphs` (``atom_x``, ``bond_x``,
``edge_src``, ``edge_dst``, ``edge_rev``, ``atom_batch``, ``num_atoms``, ``y`` and ``mol_x``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader, Dataset

from dltk.errors import ConfigError, DataError
from dltk_chem import graph
from dltk_chem.datamodules import (ESOLDataModule, MoleculeNetTox21DataModule, SmilesCsvDataModule,
                                   Tox21ChallengeDataModule)
from dltk_chem.featurize import DescriptorScaler, RDKitDescriptors, featurize, featurize_cached
from dltk_chem.smiles_files import read_smiles_file
from dltk_chem.tables import MolTable

log = logging.getLogger("dltk.chem")

MolFeatures = Literal["none", "rdkit2d"]


class GraphMixin:
    """Graph featurization for a :class:`~dltk_chem.datamodules.MoleculeDataModule` subclass.

    Put it first in the bases (``class X(GraphMixin, SomeMoleculeDataModule)``) and call
    :meth:`_init_graph` from ``__init__``. Uses the host's ``load_tables()``, ``resolve_task_type()``,
    ``batch_size``, ``num_workers`` and ``n_jobs``.
    """

    mol_features: str
    descriptor_scaler: DescriptorScaler | None
    # provided by the host datamodule
    batch_size: int
    num_workers: int
    n_jobs: int | None
    task_names: list[str]
    task_type: Literal["classification", "regression"]
    train_dataset: Dataset | None
    val_dataset: Dataset | None
    test_dataset: Dataset | None
    _test_records: pd.DataFrame | None

    @classmethod
    def contract_overrides(cls, tmp_dir: Path) -> list[str]:
        """Plugin contract runs: graphs alone (no descriptors); a generated CSV for the csv task."""
        from dltk_chem.datamodules import SmilesCsvDataModule, tiny_smiles_csv

        args = ["--data.mol_features", "none"]
        if issubclass(cls, SmilesCsvDataModule):
            args += ["--data.path", str(tiny_smiles_csv(tmp_dir)), "--data.target_columns", "heavy_atoms",
                     "--data.batch_size", "8"]
        return args

    def _init_graph(self, mol_features: str) -> None:
        if mol_features not in ("none", "rdkit2d"):
            raise ConfigError(f"data.mol_features: expected 'none' or 'rdkit2d', got {mol_features!r}")
        self.mol_features = mol_features
        self.descriptor_scaler = None
        self._descriptors = RDKitDescriptors() if mol_features == "rdkit2d" else None

    # -- load -------------------------------------------------------------------------------
    def _featurize_part(self, table: MolTable, part: str
                        ) -> tuple[graph.MolGraphs, np.ndarray | None, MolTable]:
        graphs = graph.featurize_graphs(table.smiles, n_jobs=self.n_jobs)
        valid = graphs.valid
        errors = list(graphs.errors)
        desc = None
        if self._descriptors is not None:
            desc, ok, _ = featurize_cached(self._descriptors, table.smiles, n_jobs=self.n_jobs,
                                           progress=False)
            for i in np.flatnonzero(valid & ~ok):
                errors[i] = "RDKit descriptors failed"
            valid = valid & ok
        if not valid.any():
            raise DataError(table.source, f"no valid SMILES among {len(table)} rows ({part} split)")
        dropped = int((~valid).sum())
        if dropped:
            bad = np.flatnonzero(~valid)
            reasons = Counter(e.split(":")[0].split(" (")[0] for e in (errors[i] for i in bad))
            log.warning("%s: dropped %d of %d structures RDKit cannot parse or sanitize (%s; e.g. %s)",
                        part, dropped, len(table), ", ".join(f"{k}: {v}" for k, v in reasons.items()),
                        ", ".join(str(table.ids[i]) for i in bad[:5]))
        self.dropped[part] = dropped
        return graphs.subset(valid), (None if desc is None else desc[valid]), table.subset(valid)

    def load(self) -> None:
        train, val, test = self.load_tables()  # type: ignore[attr-defined]
        self.dropped: dict[str, int] = {}
        parts = {}
        for part, table in (("train", train), ("val", val), ("test", test)):
            if len(table) == 0:
                total = len(train) + len(val) + len(test)
                raise DataError(train.source, f"the {part} split is empty: {total} rows are too few "
                                "to split into train/validation/test")
            parts[part] = self._featurize_part(table, part)
        if self._descriptors is not None:
            self.descriptor_scaler = DescriptorScaler.fit(parts["train"][1])
        built = {}
        for part, (graphs, desc, table) in parts.items():
            mol_x = None
            if desc is not None:
                assert self.descriptor_scaler is not None
                mol_x, imputed = self.descriptor_scaler.transform(desc)
                if imputed:
                    log.info("%s: imputed %d NaN/inf descriptor values with training medians", part, imputed)
            built[part] = (graph.GraphDataset(graphs, table.y, mol_x), table)
        self.task_names = list(train.tasks)
        y_train = built["train"][1].y
        self.task_type = self.resolve_task_type(y_train)  # type: ignore[attr-defined]
        self.train_dataset, self.val_dataset, self.test_dataset = (d for d, _ in built.values())
        test_table = built["test"][1]
        self._test_records = pd.DataFrame({"id": test_table.ids, "smiles": test_table.smiles})
        self.fit_label_stats(y_train)  # type: ignore[attr-defined]
        g = built["train"][0].graphs
        log.info("graphs: %d atom / %d bond features, %.1f atoms and %.1f bonds per training molecule, "
                 "mol_features=%s; splits %s; dropped %s; %d tasks (%s)",
                 graph.ATOM_FDIM, graph.BOND_FDIM, np.diff(g.atom_ptr).mean(), np.diff(g.bond_ptr).mean(),
                 self.mol_features,
                 {p: len(t) for p, (_, t) in built.items()}, self.dropped, len(self.task_names),
                 self.task_type)

    def extra_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"graph": graph.settings(), "atom_fdim": graph.ATOM_FDIM,
                                "bond_fdim": graph.BOND_FDIM, "mol_features": self.mol_features,
                                "mol_fdim": self._descriptors.n_features if self._descriptors else 0}
        if self.descriptor_scaler is not None:
            info["descriptor_scaler"] = self.descriptor_scaler.state()
        info.update(self.label_info())  # type: ignore[attr-defined]
        return info

    # -- loaders: the base class's, batching graphs with collate_graphs -----------------------
    collate_fn = staticmethod(graph.collate_graphs)

    # -- prediction on new files ------------------------------------------------------------
    def predict_chunks(self, path: str, data_info: dict[str, Any] | None = None,
                       smiles_column: str | None = None, chunk_size: int = 10_000,
                       **kwargs: Any) -> Iterator[tuple[pd.DataFrame, DataLoader | None]]:
        """Stream a CSV (``smiles`` column) or ``.smi`` file; invalid rows keep their error."""
        info = data_info or {}
        if info.get("graph", graph.settings()) != graph.settings():
            raise ConfigError(f"the model was trained on graph features {info['graph']}, this dltk_chem "
                              f"builds {graph.settings()}; retrain the model")
        mol_features = info.get("mol_features", self.mol_features)
        scaler = self.descriptor_scaler
        if mol_features == "rdkit2d" and "descriptor_scaler" in info:
            st = info["descriptor_scaler"]
            scaler = DescriptorScaler(st["median"], st["scale"], st["clip"])
        if mol_features == "rdkit2d" and scaler is None:
            raise ConfigError("the model uses rdkit2d molecule features but has no descriptor scaler")
        n_tasks = len(info.get("task_names", self.task_names)) or 1
        for chunk in read_smiles_file(path, smiles_column=smiles_column, chunk_size=chunk_size):
            lines = [c[0] for c in chunk]
            smiles = [c[1] for c in chunk]
            ids = [c[2] for c in chunk]
            graphs = graph.featurize_graphs(smiles, n_jobs=self.n_jobs)
            errors = list(graphs.errors)
            valid = graphs.valid
            mol_x = None
            if mol_features == "rdkit2d":
                assert scaler is not None
                desc, ok = featurize(RDKitDescriptors(), smiles, n_jobs=self.n_jobs, progress=False)
                for i in np.flatnonzero(valid & ~ok):
                    errors[i] = "RDKit descriptors failed"
                valid = valid & ok
                mol_x = scaler.transform(desc[valid])[0]
            records = pd.DataFrame({"line": lines, "id": ids, "smiles": smiles, "error": errors})
            loader = None
            if valid.any():
                y = np.full((int(valid.sum()), n_tasks), np.nan, dtype=np.float32)
                dataset = graph.GraphDataset(graphs.subset(valid), y, mol_x)
                loader = DataLoader(dataset, batch_size=max(self.batch_size, 256), shuffle=False,
                                    collate_fn=graph.collate_graphs)
            yield records, loader


class Tox21ChallengeGraphDataModule(GraphMixin, Tox21ChallengeDataModule):
    """Tox21 Challenge 2014 as molecular graphs (same split and test set as
    :class:`~dltk_chem.datamodules.Tox21ChallengeDataModule`).

    Args:
        mol_features: ``none`` or ``rdkit2d`` (scaled RDKit 2D descriptors beside the graph).
        val_fraction: fraction of train+leaderboard records held out for validation (grouped by
            structure).
        batch_size: molecules per batch.
        num_workers: DataLoader workers.
        split_seed: seed of the validation split.
        n_jobs: featurization processes (default: all cores, up to 8).
    """

    def __init__(self, mol_features: MolFeatures = "none", val_fraction: float = 0.1,
                 batch_size: int = 50, num_workers: int = 0, split_seed: int = 0,
                 n_jobs: int | None = None) -> None:
        Tox21ChallengeDataModule.__init__(self, val_fraction=val_fraction, batch_size=batch_size,
                                          num_workers=num_workers, split_seed=split_seed, n_jobs=n_jobs)
        self._init_graph(mol_features)


class MoleculeNetTox21GraphDataModule(GraphMixin, MoleculeNetTox21DataModule):
    """MoleculeNet Tox21 as molecular graphs.

    Args:
        mol_features: ``none`` or ``rdkit2d``.
        split: ``random`` or ``scaffold`` 80/10/10.
        batch_size: molecules per batch.
        num_workers: DataLoader workers.
        split_seed: seed of the split.
        n_jobs: featurization processes.
    """

    def __init__(self, mol_features: MolFeatures = "none",
                 split: Literal["random", "scaffold"] = "random", batch_size: int = 50,
                 num_workers: int = 0, split_seed: int = 0, n_jobs: int | None = None) -> None:
        MoleculeNetTox21DataModule.__init__(self, split=split, batch_size=batch_size, num_workers=num_workers,
                                            split_seed=split_seed, n_jobs=n_jobs)
        self._init_graph(mol_features)


class ESOLGraphDataModule(GraphMixin, ESOLDataModule):
    """ESOL solubility (regression) as molecular graphs.

    Args:
        mol_features: ``none`` or ``rdkit2d``.
        split: ``random`` or ``scaffold`` 80/10/10.
        batch_size: molecules per batch.
        num_workers: DataLoader workers.
        split_seed: seed of the split.
        n_jobs: featurization processes.
    """

    def __init__(self, mol_features: MolFeatures = "none",
                 split: Literal["random", "scaffold"] = "random", batch_size: int = 50,
                 num_workers: int = 0, split_seed: int = 0, n_jobs: int | None = None) -> None:
        ESOLDataModule.__init__(self, split=split, batch_size=batch_size, num_workers=num_workers,
                                split_seed=split_seed, n_jobs=n_jobs)
        self._init_graph(mol_features)


class SmilesCsvGraphDataModule(GraphMixin, SmilesCsvDataModule):
    """Any SMILES CSV as molecular graphs.

    Args:
        path: the CSV file.
        smiles_column: name of the SMILES column.
        target_columns: label columns, comma-separated or a list (default: every other column).
        id_column: optional identifier column.
        task_type: ``auto``, ``classification`` or ``regression``.
        mol_features: ``none`` or ``rdkit2d``.
        split: ``random`` or ``scaffold`` 80/10/10.
        batch_size: molecules per batch.
        num_workers: DataLoader workers.
        split_seed: seed of the split.
        n_jobs: featurization processes.
    """

    def __init__(self, path: str = "", smiles_column: str = "smiles",
                 target_columns: list[str] | str | None = None, id_column: str | None = None,
                 task_type: Literal["auto", "classification", "regression"] = "auto",
                 mol_features: MolFeatures = "none", split: Literal["random", "scaffold"] = "random",
                 batch_size: int = 50, num_workers: int = 0, split_seed: int = 0,
                 n_jobs: int | None = None) -> None:
        SmilesCsvDataModule.__init__(self, path=path, smiles_column=smiles_column,
                                     target_columns=target_columns, id_column=id_column,
                                     task_type=task_type, split=split, batch_size=batch_size,
                                     num_workers=num_workers,
                                     split_seed=split_seed, n_jobs=n_jobs)
        self._init_graph(mol_features)
