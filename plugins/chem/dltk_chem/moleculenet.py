"""MoleculeNet tables: ESOL (Delaney) solubility and the Tox21 csv, read as user CSVs."""

from __future__ import annotations

from dltk.data import fetch
from dltk_chem.files import FILES, TOX21_ASSAYS
from dltk_chem.smiles_files import load_smiles_csv
from dltk_chem.tables import MolTable, merge_duplicates

ESOL_TARGET = "measured log solubility in mols per litre"


def load_esol() -> MolTable:
    """ESOL / Delaney (MoleculeNet): 1,128 molecules, target ``measured log solubility in mols per
    litre`` (task name ``logS``); ids are the compound names. SMILES are stripped (the file has trailing spaces)."""
    path = fetch(FILES["esol"])
    table = load_smiles_csv(path, "smiles", [ESOL_TARGET], id_column="Compound ID")
    table.source = "moleculenet/esol"
    table.tasks = ["logS"]  # the file's column name, as a short task name (log10 mol/L)
    return table


def load_tox21_moleculenet() -> tuple[MolTable, dict]:
    """MoleculeNet Tox21 (the 2016 8,014-row csv), duplicates merged by RDKit canonical SMILES.

    Rows whose canonical SMILES coincide are merged into one record (first row's SMILES and
    ``mol_id``); per task, agreeing labels are kept and conflicting labels become NaN (dropped).
    Unparsable SMILES are kept (merged only on identical strings) and counted.

    Returns:
        The merged table (columns :data:`TOX21_ASSAYS`) and a report dict with ``n_rows``,
        ``n_records``, ``n_invalid``, ``n_duplicate_smiles`` (structures seen more than once),
        ``n_duplicate_rows`` (rows merged away), ``n_conflicts`` (task-level label conflicts
        set to NaN) and ``n_agreeing_duplicate_labels``.
    """
    path = fetch(FILES["moleculenet_tox21"])
    raw = load_smiles_csv(path, "smiles", list(TOX21_ASSAYS), id_column="mol_id")
    table, report = merge_duplicates(raw)
    table.source = "moleculenet/tox21"
    return table, report

