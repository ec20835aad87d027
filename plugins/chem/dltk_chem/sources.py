"""Where a chem datamodule's molecules come from: the Tox21 challenge files, MoleculeNet tables and
a user's CSV, each split into train/validation/test (:meth:`MoleculeDataModule.load_tables`).

A source declares only its own settings and passes every other argument on (``**kwargs``) to the
representation datamodule it is combined with (:mod:`dltk_chem.datamodules` for fingerprints,
:mod:`dltk_chem.graph_datamodules` for graphs).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dltk.errors import DataError
from dltk_chem.molecule_datamodule import MoleculeDataModule
from dltk_chem.moleculenet import load_esol, load_tox21_moleculenet
from dltk_chem.smiles_files import load_smiles_csv
from dltk_chem.splits import check_split, split_table, structure_split
from dltk_chem.tables import MolTable, infer_task_type, merge_duplicates
from dltk_chem.tox21_challenge import load_tox21_challenge

log = logging.getLogger("dltk.chem")


def tiny_smiles_csv(folder: Path) -> Path:
    """48 molecules with a regression target (heavy-atom count) and a binary one (has oxygen), for
    contract runs of the presets that read a user's file."""
    from rdkit import Chem

    smiles = ([("C" * n) for n in range(1, 9)] + [("C" * n + "O") for n in range(1, 9)]
              + [("C" * n + "N") for n in range(1, 9)] + [("c1ccccc1" + "C" * n) for n in range(8)]
              + [("C" * n + "C(=O)O") for n in range(8)] + [("OC" + "C" * n + "O") for n in range(8)])
    rows = ["smiles,heavy_atoms,has_oxygen"]
    for smi in smiles:
        mol = Chem.MolFromSmiles(smi)
        rows.append(f"{smi},{mol.GetNumHeavyAtoms()},{int(any(a.GetSymbol() == 'O' for a in mol.GetAtoms()))}")
    path = Path(folder) / "tiny.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


class Tox21ChallengeSource(MoleculeDataModule):
    """The original Tox21 Data Challenge 2014 (NCATS files), DeepTox protocol.

    Train on training (11,764 records) + leaderboard (296); validation is ``val_fraction`` of those
    records, **grouped by canonical structure without stereochemistry** so that no structure (and
    no stereoisomer, which has the same fingerprint) is in both: the same structure appears under
    several sample ids. Test on the 647-compound final set.

    Args:
        val_fraction: fraction of train+leaderboard records held out for validation.
        **kwargs: the representation's settings and :class:`MoleculeDataModule`'s.
    """

    def __init__(self, val_fraction: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.val_fraction = val_fraction

    def load_tables(self) -> tuple[MolTable, MolTable, MolTable]:
        sets = load_tox21_challenge()
        train, board = sets["train"], sets["leaderboard"]
        pool = MolTable(train.smiles + board.smiles, train.ids + board.ids,
                        np.concatenate([train.y, board.y]), list(train.tasks), "tox21 train+leaderboard")
        fit, val = structure_split(pool, (1 - self.val_fraction, self.val_fraction), seed=self.split_seed)
        return fit, val, sets["final"]


class SplitSource(MoleculeDataModule):
    """One table of molecules (:meth:`full_table`) split 80/10/10 with ``split_seed``.

    Args:
        split: ``random`` or ``scaffold`` (Bemis-Murcko, balanced as in chemprop), 80/10/10, seeded;
            or a DeepChem splitter, ``deepchem:ScaffoldSplitter`` (see :mod:`dltk_chem.deepchem_splits`).
        **kwargs: the representation's settings and :class:`MoleculeDataModule`'s.
    """

    def __init__(self, split: str = "random", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.split = check_split(split)

    def full_table(self) -> MolTable:
        """The whole table, before the split."""
        raise NotImplementedError

    def load_tables(self) -> tuple[MolTable, MolTable, MolTable]:
        train, val, test = split_table(self.full_table(), self.split, seed=self.split_seed)
        return train, val, test


class MoleculeNetTox21Source(SplitSource):
    """MoleculeNet's Tox21 csv (duplicates merged by canonical SMILES, conflicting labels dropped)."""

    def full_table(self) -> MolTable:
        table, report = load_tox21_moleculenet()
        log.info("MoleculeNet Tox21: %s", report)
        return table


class ESOLSource(SplitSource):
    """ESOL (Delaney) aqueous solubility, log mol/L; regression."""

    def full_table(self) -> MolTable:
        return load_esol()


class SmilesCsvSource(SplitSource):
    """Any CSV with a SMILES column and one or more label columns (blank = missing).

    Args:
        path: the CSV file.
        smiles_column: name of the SMILES column.
        target_columns: label columns, comma-separated or a list (default: every other numeric column).
        id_column: optional identifier column.
        task_type: ``auto`` (classification when every label is 0/1), ``classification`` or
            ``regression``.
        **kwargs: ``split`` (see :class:`SplitSource`), the representation's settings and
            :class:`MoleculeDataModule`'s.
    """

    @classmethod
    def contract_overrides(cls, tmp_dir: Path) -> list[str]:
        """Plugin contract runs: a generated 48-molecule CSV, small batches."""
        return ["--data.path", str(tiny_smiles_csv(tmp_dir)), "--data.target_columns", "heavy_atoms",
                "--data.batch_size", "8", *(super().contract_overrides(tmp_dir) or [])]

    def __init__(self, path: str = "", smiles_column: str = "smiles",
                 target_columns: list[str] | str | None = None, id_column: str | None = None,
                 task_type: Literal["auto", "classification", "regression"] = "auto", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.smiles_column = smiles_column
        if isinstance(target_columns, str):
            target_columns = [c.strip() for c in target_columns.split(",") if c.strip()]
        self.target_columns = target_columns
        self.id_column = id_column
        self.requested_task_type = task_type

    def full_table(self) -> MolTable:
        if not self.path:
            raise DataError(None, "the csv task needs --data.path FILE.csv")
        raw = load_smiles_csv(self.path, self.smiles_column, self.target_columns, self.id_column)
        table, report = merge_duplicates(raw, average_real_values=True)
        if report["n_duplicate_rows"]:
            conflicts = (f"; {report['n_conflicts']} conflicting label(s) dropped (first: {report['first_conflict']})"
                         if report["n_conflicts"] else "")
            averaged = f"; {report['n_averaged']} replicate measurement(s) averaged" if report["n_averaged"] else ""
            print(f"dltk: {self.path}: {report['n_duplicate_rows']} row(s) repeat a structure and were merged"
                  f"{conflicts}{averaged}", flush=True)
        return table

    def resolve_task_type(self, y: np.ndarray) -> Literal["classification", "regression"]:
        if self.requested_task_type == "auto":
            return infer_task_type(y)
        if self.requested_task_type == "classification":
            bad = ~np.isnan(y) & (y != 0) & (y != 1)
            if bad.any():
                row, col = np.argwhere(bad)[0]
                raise DataError(self.path, f"classification labels must be 0 or 1, got {y[row, col]:g}",
                                field=self.task_names[col] if self.task_names else None)
        return self.requested_task_type
