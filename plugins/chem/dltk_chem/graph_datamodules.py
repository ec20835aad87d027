"""Chem datamodules on molecular graphs: the same sources, data and splits as
:mod:`dltk_chem.datamodules`, combined with :class:`GraphDataModule`, the molecule datamodule whose
representation is :class:`~dltk_chem.graphs.Graphs` (for the D-MPNN, :mod:`dltk_chem.graph_models`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dltk_chem.graphs import Graphs, MolFeatures
from dltk_chem.molecule_datamodule import MoleculeDataModule
from dltk_chem.sources import ESOLSource, MoleculeNetTox21Source, SmilesCsvSource, Tox21ChallengeSource


class GraphDataModule(MoleculeDataModule):
    """A molecule datamodule featurized as molecular graphs.

    Args:
        mol_features: ``none`` or ``rdkit2d`` (scaled RDKit 2D descriptors beside the graph).
        batch_size: molecules per batch (50 for graphs, as in chemprop).
        **kwargs: see :class:`~dltk_chem.molecule_datamodule.MoleculeDataModule` (``num_workers``,
            ``split_seed``, ``n_jobs``).
    """

    representation: Graphs

    def __init__(self, mol_features: MolFeatures = "none", batch_size: int = 50, **kwargs: Any) -> None:
        super().__init__(representation=Graphs(mol_features), batch_size=batch_size, **kwargs)

    @classmethod
    def contract_overrides(cls, tmp_dir: Path) -> list[str]:
        """Plugin contract runs: graphs alone (no descriptors)."""
        return ["--data.mol_features", "none"]


class Tox21ChallengeGraphDataModule(Tox21ChallengeSource, GraphDataModule):
    """The Tox21 Data Challenge 2014 (:class:`~dltk_chem.sources.Tox21ChallengeSource`) as graphs."""


class MoleculeNetTox21GraphDataModule(MoleculeNetTox21Source, GraphDataModule):
    """MoleculeNet's Tox21 csv (:class:`~dltk_chem.sources.MoleculeNetTox21Source`) as graphs."""


class ESOLGraphDataModule(ESOLSource, GraphDataModule):
    """ESOL aqueous solubility (:class:`~dltk_chem.sources.ESOLSource`) as graphs."""


class SmilesCsvGraphDataModule(SmilesCsvSource, GraphDataModule):
    """Any SMILES CSV (:class:`~dltk_chem.sources.SmilesCsvSource`) as graphs."""
