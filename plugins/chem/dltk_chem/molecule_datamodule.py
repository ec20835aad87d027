"""The one chem datamodule: a source of molecule tables, featurized by a representation.

:class:`MoleculeDataModule` holds everything a chem datamodule does: it loads the train/validation/test
tables of its source (:meth:`~MoleculeDataModule.load_tables`, implemented by the sources in
:mod:`dltk_chem.sources`), has its representation (:class:`~dltk_chem.representation.Representation`:
fingerprint vectors or molecular graphs) featurize them, fits the training-label statistics, and
streams ``dltk predict`` input through the same representation. A concrete datamodule is a source
combined with a representation datamodule, :class:`~dltk_chem.datamodules.FingerprintDataModule` or
:class:`~dltk_chem.graph_datamodules.GraphDataModule`, each of which only builds its representation
from its own settings; every other argument passes through ``**kwargs``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from dltk.base import BaseDataModule
from dltk.errors import DataError
from dltk.serving import RequestRows
from dltk_chem import serving
from dltk_chem.representation import Representation
from dltk_chem.smiles_files import read_smiles_file
from dltk_chem.tables import MolTable, infer_task_type

log = logging.getLogger("dltk.chem")

POOL_MIN_BYTES = 100_000
"""Prediction files smaller than this (about MIN_PARALLEL SMILES, e.g. one `dltk serve` batch) are
featurized in-process: starting worker processes costs more than it saves (the result is the same)."""


class MoleculeDataModule(BaseDataModule):
    """Molecule tables featurized by a representation (subclasses implement :meth:`load_tables`).

    Args:
        representation: how molecules become model inputs (given by the representation
            datamodule, never set in a config).
        batch_size: molecules per batch.
        num_workers: DataLoader workers.
        split_seed: seed of the data split.
        n_jobs: featurization processes (default: all cores, up to 8).
    """

    def __init__(self, representation: Representation, batch_size: int = 128, num_workers: int = 0,
                 split_seed: int = 0, n_jobs: int | None = None) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, split_seed=split_seed)
        self.representation = representation
        self.collate_fn = representation.collate_fn
        self.n_jobs = n_jobs
        self.dropped: dict[str, int] = {}
        self._pos_fraction: list[float] = []
        self._target_stats: tuple[list[float], list[float]] | None = None

    def load_tables(self) -> tuple[MolTable, MolTable, MolTable]:
        """Return the (train, validation, test) tables."""
        raise NotImplementedError

    def resolve_task_type(self, y: np.ndarray) -> Literal["classification", "regression"]:
        """The task type of the training labels ``y``: classification when every label is 0/1."""
        return infer_task_type(y)

    def load(self) -> None:
        train, val, test = self.load_tables()
        tables = {"train": train, "val": val, "test": test}
        for part, table in tables.items():
            if len(table) == 0:
                total = len(train) + len(val) + len(test)
                raise DataError(train.source, f"the {part} split is empty: {total} rows are too few "
                                "to split into train/validation/test")
        parts = self.representation.build(tables, self.n_jobs)
        self.dropped = {part: len(tables[part]) - len(kept) for part, (_, kept) in parts.items()}
        self.task_names = list(train.tasks)
        y_train = parts["train"][1].y
        self.task_type = self.resolve_task_type(y_train)
        self.train_dataset, self.val_dataset, self.test_dataset = (d for d, _ in parts.values())
        test_table = parts["test"][1]
        self._test_records = pd.DataFrame({"id": test_table.ids, "smiles": test_table.smiles})
        self.fit_label_stats(y_train)
        log.info("%s; splits %s; dropped %s; %d tasks (%s)", self.representation.summary(parts),
                 {p: len(t) for p, (_, t) in parts.items()}, self.dropped, len(self.task_names), self.task_type)

    def fit_label_stats(self, y_train: np.ndarray) -> None:
        """Training-split label statistics for the model: positive fraction per task
        (classification, for class weighting) or target mean/std (regression, for scaling)."""
        labelled = ~np.isnan(y_train)
        if self.task_type == "classification":
            pos = np.where(labelled, y_train, 0).sum(0)
            self._pos_fraction = (pos / np.maximum(labelled.sum(0), 1)).round(6).tolist()
        else:
            mean = np.nanmean(y_train, axis=0)
            std = np.nanstd(y_train, axis=0)
            self._target_stats = (mean.round(6).tolist(), np.where(std > 0, std, 1.0).round(6).tolist())

    def label_info(self) -> dict[str, Any]:
        """The training-label statistics from :meth:`fit_label_stats`, as data_info entries."""
        if self.task_type == "classification":
            return {"pos_fraction": self._pos_fraction}
        if self._target_stats is not None:
            return {"target_mean": self._target_stats[0], "target_std": self._target_stats[1]}
        return {}

    def extra_info(self) -> dict[str, Any]:
        return {**self.representation.info(), **self.label_info()}

    def predict_chunks(self, path: str, data_info: dict[str, Any] | None = None,
                       smiles_column: str | None = None, chunk_size: int = 10_000,
                       **kwargs: Any) -> Iterator[tuple[pd.DataFrame, DataLoader | None]]:
        """Stream a CSV (with a ``smiles`` column) or ``.smi`` file; invalid rows keep their error."""
        info = data_info or {}
        n_tasks = len(info.get("task_names", self.task_names)) or 1
        small = not Path(path).is_file() or Path(path).stat().st_size < POOL_MIN_BYTES
        n_jobs = 1 if small else self.n_jobs
        with self.representation.predicting(info, n_jobs, self.batch_size) as featurize_chunk:
            for chunk in read_smiles_file(path, smiles_column=smiles_column, chunk_size=chunk_size):
                smiles = [c[1] for c in chunk]
                errors, loader = featurize_chunk(smiles, n_tasks)
                records = pd.DataFrame({"line": [c[0] for c in chunk], "id": [c[2] for c in chunk],
                                        "smiles": smiles, "error": errors})
                yield records, loader

    @classmethod
    def request_schema(cls) -> dict[str, Any]:
        """``dltk serve``: ``{"smiles": [...]}`` (:mod:`dltk_chem.serving`)."""
        return serving.SCHEMA

    @classmethod
    def decode_request(cls, payload: dict[str, Any]) -> RequestRows:
        return serving.decode(payload)
