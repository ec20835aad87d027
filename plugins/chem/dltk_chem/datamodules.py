"""Chem datamodules on fingerprint vectors: each preset's source (:mod:`dltk_chem.sources`) combined
with :class:`FingerprintDataModule`, the molecule datamodule whose representation is
:class:`~dltk_chem.fingerprints.Fingerprints` (``features``: ``ecfp``, ``maccs``, ``rdkit2d``,
``deepchem:Name(...)`` joined by ``+``). Batches are ``{"x": float32 features, "y": float labels
with NaN = missing}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from dltk_chem.fingerprints import Fingerprints
from dltk_chem.molecule_datamodule import MoleculeDataModule
from dltk_chem.sources import ESOLSource, MoleculeNetTox21Source, SmilesCsvSource, Tox21ChallengeSource


class FingerprintDataModule(MoleculeDataModule):
    """A molecule datamodule featurized as fingerprint vectors.

    Args:
        features: ``+``-separated feature blocks from ``ecfp``, ``maccs``, ``rdkit2d`` or
            ``deepchem:Name(...)``.
        radius: Morgan radius (2 = ECFP4).
        n_bits: fingerprint length.
        counts: ECFP as log1p of atom-environment counts (clipped at 255) instead of bits.
        store: ``memory`` (features held in RAM) or ``hdf5``: featurized chunk by chunk into an
            on-disk HDF5 store under the cache and read batch by batch, for data larger than RAM.
        store_chunk: molecules featurized per chunk when writing a store.
        **kwargs: see :class:`~dltk_chem.molecule_datamodule.MoleculeDataModule` (``batch_size``,
            ``num_workers``, ``split_seed``, ``n_jobs``).
    """

    representation: Fingerprints

    def __init__(self, features: str = "ecfp", radius: int = 2, n_bits: int = 2048, counts: bool = False,
                 store: Literal["memory", "hdf5"] = "memory", store_chunk: int = 8192, **kwargs: Any) -> None:
        super().__init__(representation=Fingerprints(features, radius, n_bits, counts, store, store_chunk),
                         **kwargs)

    @classmethod
    def contract_overrides(cls, tmp_dir: Path) -> list[str]:
        """Plugin contract runs: ECFP alone (RDKit 2D descriptors for ~12k molecules take minutes)."""
        return ["--data.features", "ecfp"]


class Tox21ChallengeDataModule(Tox21ChallengeSource, FingerprintDataModule):
    """The Tox21 Data Challenge 2014 (:class:`~dltk_chem.sources.Tox21ChallengeSource`) as fingerprints."""


class MoleculeNetTox21DataModule(MoleculeNetTox21Source, FingerprintDataModule):
    """MoleculeNet's Tox21 csv (:class:`~dltk_chem.sources.MoleculeNetTox21Source`) as fingerprints."""


class ESOLDataModule(ESOLSource, FingerprintDataModule):
    """ESOL aqueous solubility (:class:`~dltk_chem.sources.ESOLSource`) as fingerprints."""


class SmilesCsvDataModule(SmilesCsvSource, FingerprintDataModule):
    """Any SMILES CSV (:class:`~dltk_chem.sources.SmilesCsvSource`) as fingerprints."""
