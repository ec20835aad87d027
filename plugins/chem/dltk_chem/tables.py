"""Molecule tables: :class:`MolTable`, canonical SMILES, the task type of a label matrix and the
merging of rows that repeat a structure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from rdkit import Chem
from rdkit.rdBase import BlockLogs


@dataclass
class MolTable:
    """Molecules with a label matrix.

    Attributes:
        smiles: raw SMILES strings, one per record (not validated).
        ids: record identifiers (sample id, mol id or line number), one per record.
        y: float32 array (n, T); NaN = missing label.
        tasks: the T task (column) names.
        source: where the records came from (file path or dataset/part name).
    """

    smiles: list[str]
    ids: list[str]
    y: np.ndarray
    tasks: list[str]
    source: str

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=np.float32)
        if self.y.ndim == 1:
            self.y = self.y[:, None]
        n = len(self.smiles)
        if len(self.ids) != n or self.y.shape != (n, len(self.tasks)):
            raise ValueError(f"inconsistent MolTable: {n} smiles, {len(self.ids)} ids, "
                             f"y {self.y.shape}, {len(self.tasks)} tasks")

    def __len__(self) -> int:
        return len(self.smiles)

    def subset(self, idx: Sequence[int] | np.ndarray) -> MolTable:
        """A new table with the records at ``idx`` (integer indices or a boolean mask), in order."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return MolTable([self.smiles[i] for i in idx], [self.ids[i] for i in idx],
                        self.y[idx].copy(), list(self.tasks), self.source)



def canonical_smiles(smiles: str, isomeric: bool = True) -> str | None:
    """RDKit canonical SMILES, or None when RDKit cannot parse ``smiles`` (or it is empty).

    ``isomeric=False`` drops stereochemistry, so stereoisomers (identical ECFP without chirality)
    share one key: use it to group records for leakage-free splits.
    """
    with BlockLogs():
        mol = Chem.MolFromSmiles(smiles) if smiles else None
        if mol is None or mol.GetNumAtoms() == 0:
            return None
        return Chem.MolToSmiles(mol, isomericSmiles=isomeric)



def infer_task_type(y: np.ndarray) -> Literal["classification", "regression"]:
    """``"classification"`` iff every non-missing (non-NaN) value is 0 or 1, else ``"regression"``."""
    y = np.asarray(y, dtype=np.float64)
    values = y[~np.isnan(y)]
    return "classification" if np.isin(values, (0.0, 1.0)).all() else "regression"



def merge_duplicates(raw: MolTable, average_real_values: bool = False) -> tuple[MolTable, dict]:
    """Merge rows whose RDKit canonical SMILES coincide (unparsable SMILES: identical strings).

    The merged record keeps the first row's SMILES and id. Per task, agreeing labels are kept;
    conflicting labels become NaN (dropped) — except, with ``average_real_values``, a task whose
    labels are not all 0/1 (a measurement) gets the mean of its replicates.

    Returns:
        The merged table and a report dict: ``n_rows``, ``n_records``, ``n_invalid``,
        ``n_duplicate_smiles``, ``n_duplicate_rows``, ``n_conflicts`` (task-level conflicts set
        to NaN), ``n_averaged``, ``n_agreeing_duplicate_labels``, ``first_conflict`` (row id and
        task of the first conflict) and the ``policy``.
    """
    keys: dict[str, list[int]] = {}
    n_invalid = 0
    for i, smi in enumerate(raw.smiles):
        can = canonical_smiles(smi)
        n_invalid += can is None
        keys.setdefault(smi if can is None else can, []).append(i)
    n_tasks = raw.y.shape[1]
    binary = [bool(np.isin(raw.y[~np.isnan(raw.y[:, t]), t], (0.0, 1.0)).all()) for t in range(n_tasks)]
    y = np.full((len(keys), n_tasks), np.nan, dtype=np.float32)
    n_conflicts = n_agree = n_averaged = 0
    first_conflict = None
    for r, rows in enumerate(keys.values()):
        block = raw.y[rows]
        for t in range(n_tasks):
            present = block[~np.isnan(block[:, t]), t]
            values = np.unique(present)
            if len(values) == 1:
                y[r, t] = values[0]
                n_agree += len(present) > 1
            elif len(values) > 1 and average_real_values and not binary[t]:
                y[r, t] = present.mean()
                n_averaged += 1
            elif len(values) > 1:
                n_conflicts += 1
                if first_conflict is None:
                    later = [raw.ids[i] for i in rows if not np.isnan(raw.y[i, t])][1]
                    first_conflict = f"row {later}, field {raw.tasks[t]!r}"
    firsts = [rows[0] for rows in keys.values()]
    table = MolTable([raw.smiles[i] for i in firsts], [raw.ids[i] for i in firsts], y, list(raw.tasks), raw.source)
    report = {
        "n_rows": len(raw),
        "n_records": len(table),
        "n_invalid": n_invalid,
        "n_duplicate_smiles": sum(len(rows) > 1 for rows in keys.values()),
        "n_duplicate_rows": len(raw) - len(table),
        "n_conflicts": n_conflicts,
        "n_averaged": n_averaged,
        "n_agreeing_duplicate_labels": int(n_agree),
        "first_conflict": first_conflict,
        "policy": "merged by RDKit canonical SMILES; conflicting task labels set to missing"
                  + ("; replicate measurements averaged" if average_real_values else ""),
    }
    return table, report

