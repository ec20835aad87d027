"""Molecule splits: the balanced Bemis-Murcko scaffold split (chemprop's ``scaffold_balanced``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold
from rdkit.rdBase import BlockLogs

from dltk.data.splits import assign_groups_in_order, check_fractions


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

