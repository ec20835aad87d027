"""Molecule splits: ``random``, the balanced Bemis-Murcko ``scaffold`` split (chemprop's
``scaffold_balanced``), DeepChem splitters (``deepchem:NameSplitter``, :mod:`dltk_chem.deepchem_splits`)
and the split grouped by structure (no stereoisomers across parts) of the Tox21 challenge."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold
from rdkit.rdBase import BlockLogs

from dltk.data.splits import assign_groups_in_order, check_fractions, group_split, random_split
from dltk.errors import ConfigError
from dltk_chem.tables import MolTable, canonical_smiles

SPLITS = ("random", "scaffold")
"""The named splits of one table; a ``deepchem:NameSplitter`` string is the other choice."""


def murcko_scaffold(smiles: str) -> str | None:
    """Bemis-Murcko scaffold SMILES (no chirality); ``""`` for acyclic molecules, None if unparsable."""
    with BlockLogs():
        mol = Chem.MolFromSmiles(smiles) if smiles else None
        if mol is None or mol.GetNumAtoms() == 0:
            return None
        return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)


def scaffold_split(smiles: Sequence[str], fractions: Sequence[float] = (0.8, 0.1, 0.1),
                   seed: int = 0) -> tuple[np.ndarray, ...]:
    """Balanced Bemis-Murcko scaffold split (chemprop's ``scaffold_balanced``).

    Records are grouped by scaffold (acyclic molecules share the empty scaffold; each unparsable
    SMILES is its own group). Scaffold sets larger than half the validation or test size are
    placed first (shuffled), then the others (shuffled); each set goes whole to train while it
    fits, else to validation while it fits, else to test. No scaffold straddles two parts.

    Args:
        smiles: SMILES strings.
        fractions: 2 or 3 fractions summing to 1 (train, val[, test]).
        seed: random seed for the shuffles.

    Returns:
        One sorted int64 index array per fraction.
    """
    fr = check_fractions(fractions)
    n = len(smiles)
    groups: dict[object, list[int]] = {}
    for i, s in enumerate(smiles):
        scaffold = murcko_scaffold(s)
        groups.setdefault(("invalid", i) if scaffold is None else scaffold, []).append(i)
    half_sizes = [f * n / 2 for f in fr[1:]]
    sets = list(groups.values())
    big = [g for g in sets if any(len(g) > h for h in half_sizes)]
    small = [g for g in sets if not any(len(g) > h for h in half_sizes)]
    rng = np.random.default_rng(seed)
    ordered = [big[i] for i in rng.permutation(len(big))] + [small[i] for i in rng.permutation(len(small))]
    where = assign_groups_in_order([len(g) for g in ordered], n, fr)
    parts: list[list[int]] = [[] for _ in fr]
    for g, part in zip(ordered, where):
        parts[part].extend(g)
    return tuple(np.sort(np.asarray(p, dtype=np.int64)) for p in parts)



def check_split(split: str) -> str:
    """``split`` when it names a split dltk can make, else a ConfigError listing the choices."""
    if split not in SPLITS and not split.startswith("deepchem:"):
        raise ConfigError(f"data.split: {split!r}; choose random, scaffold or deepchem:NameSplitter")
    return split


def split_table(table: MolTable, split: str, seed: int = 0,
                fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> tuple[MolTable, ...]:
    """``table`` split by ``split`` (``random``, ``scaffold`` or ``deepchem:NameSplitter``) into one
    table per fraction, each in the original record order."""
    if split.startswith("deepchem:"):  # hook: DeepChem splitters (dltk_chem.deepchem_splits)
        from dltk_chem.deepchem_splits import split_indices

        parts = split_indices(split, table.smiles, table.y, fractions, seed=seed)
    elif split == "scaffold":
        parts = scaffold_split(table.smiles, fractions, seed=seed)
    else:
        parts = random_split(len(table), fractions, seed=seed)
    return tuple(table.subset(np.sort(p)) for p in parts)


def structure_split(table: MolTable, fractions: Sequence[float], seed: int = 0) -> tuple[MolTable, ...]:
    """``table`` split with every structure in one part only: records are grouped by canonical SMILES
    without stereochemistry (stereoisomers share a fingerprint); each unparsable SMILES is its own
    group. One table per fraction, each in the original record order."""
    groups = [canonical_smiles(s, isomeric=False) or f"invalid:{i}" for i, s in enumerate(table.smiles)]
    parts = group_split(groups, fractions, seed=seed)
    return tuple(table.subset(np.sort(p)) for p in parts)
