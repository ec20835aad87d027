"""How molecules become model inputs: the representation strategy of a
:class:`~dltk_chem.molecule_datamodule.MoleculeDataModule`.

A representation turns the train/validation/test :class:`~dltk_chem.tables.MolTable`\\ s into datasets
(fitting what it needs, e.g. a descriptor scaler, on the training split only), describes itself to the
model (``data_info`` entries) and featurizes the SMILES of ``dltk predict`` input chunk by chunk.
Two exist: :class:`~dltk_chem.fingerprints.Fingerprints` (fixed-length vectors) and
:class:`~dltk_chem.graphs.Graphs` (molecular graphs).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset

from dltk.errors import DataError
from dltk_chem.tables import MolTable

Parts = dict[str, tuple[Dataset, MolTable]]
"""Split name (``train``, ``val``, ``test``) -> (dataset, the table of the records it holds)."""

ChunkFeaturizer = Callable[[list[str], int], tuple[Any, DataLoader | None]]
"""``(smiles, n_tasks) -> (one error per SMILES, "" when usable; a loader over the usable ones, in
order, or None when there are none)``."""


class Representation(ABC):
    """The strategy interface."""

    collate_fn: Any = None
    """How a list of dataset items becomes a batch (None: torch's default stacking)."""

    @abstractmethod
    def build(self, tables: dict[str, MolTable], n_jobs: int | None) -> Parts:
        """Featurize the ``train``, ``val`` and ``test`` tables; records that cannot be featurized
        are dropped (and logged); fitted statistics come from ``train`` only."""

    @abstractmethod
    def summary(self, parts: Parts) -> str:
        """One log line on the features built."""

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """The ``data_info`` entries a model needs to rebuild itself and featurize new input."""

    @abstractmethod
    def predicting(self, data_info: Mapping[str, Any], n_jobs: int | None,
                   batch_size: int) -> AbstractContextManager[ChunkFeaturizer]:
        """A featurizer of prediction chunks, set up from the model's ``data_info`` (e.g. its
        descriptor scaler) for the duration of one ``dltk predict``; ``batch_size`` is the
        datamodule's."""


def require_valid(valid: np.ndarray, table: MolTable, part: str) -> None:
    """A DataError when no record of ``table`` could be featurized (one line for the user)."""
    if not valid.any():
        raise DataError(table.source, f"no valid SMILES among {len(table)} rows ({part} split)")
