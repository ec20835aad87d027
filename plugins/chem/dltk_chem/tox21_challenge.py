"""The Tox21 Data Challenge 2014 sets from the NCATS files (train per assay, leaderboard, final).

Raw SMILES are kept: unparsable structures are *not* dropped here; the featurizer flags them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dltk.data import fetch
from dltk.errors import DataError
from dltk_chem.files import FILES, TOX21_ASSAYS
from dltk_chem.tables import MolTable


def _read_lines(path: Path) -> list[str]:
    """Decode a text file and split lines (LF or CRLF), keeping 1-based numbering by position."""
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def _label(path: Path, value: str, row: int, column: str) -> float:
    value = value.strip()
    if value in ("", "x"):
        return math.nan
    if value in ("0", "1"):
        return float(value)
    raise DataError(path, f"label must be 0, 1 or x, got {value!r}", row=row, field=column)


def _sd_label(path: Path, value: str, record: int, name: str) -> float:
    try:
        return _label(path, value, 0, name)
    except DataError:
        raise DataError(path, f"SD record {record}: label must be 0 or 1, got {value!r}",
                        field=name) from None


def _load_tox21_train() -> MolTable:
    smiles: dict[str, str] = {}
    labels: dict[str, np.ndarray] = {}
    for t, assay in enumerate(TOX21_ASSAYS):
        path = fetch(FILES[f"tox21_train/{assay}"])
        for row, line in enumerate(_read_lines(path), start=1):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 3:
                raise DataError(path, f"expected 3 tab-separated fields (SMILES, sample id, label), "
                                f"got {len(parts)}", row=row)
            smi, sid, lab = (p.strip() for p in parts)
            if sid in smiles and smiles[sid] != smi:
                raise DataError(path, f"sample {sid} has a different SMILES than in another "
                                "assay file", row=row)
            smiles.setdefault(sid, smi)
            labels.setdefault(sid, np.full(len(TOX21_ASSAYS), np.nan, dtype=np.float32))
            labels[sid][t] = _label(path, lab, row, assay)
    ids = sorted(smiles)
    return MolTable([smiles[i] for i in ids], ids, np.stack([labels[i] for i in ids]),
                    list(TOX21_ASSAYS), "tox21-challenge-2014/train")


def _sdf_properties(path: Path) -> list[dict[str, str]]:
    """The SD data fields of each record of an SD file (text parsing; no RDKit needed)."""
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    name: str | None = None
    for line in _read_lines(path):
        if line.startswith("$$$$"):
            records.append(current)
            current, name = {}, None
        elif line.startswith(">"):
            start, end = line.find("<"), line.rfind(">")
            name = line[start + 1:end] if 0 < start < end else None
            if name is not None:
                current[name] = ""
        elif name is not None:
            if line.strip() == "":
                name = None
            else:
                current[name] = (current[name] + "\n" + line).lstrip("\n")
    return records


def _smiles_and_ids(path: Path) -> tuple[list[str], list[str]]:
    """The SMILES and sample ids of a ``SMILES<TAB>sample id`` file, in file order (``#`` comments
    and blank lines skipped)."""
    smiles: list[str] = []
    ids: list[str] = []
    for row, line in enumerate(_read_lines(path), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            raise DataError(path, "expected SMILES<TAB>sample id", row=row)
        smiles.append(parts[0].strip())
        ids.append(parts[1].strip())
    return smiles, ids


def _load_tox21_leaderboard() -> MolTable:
    smi_path = fetch(FILES["tox21_leaderboard_smiles"])
    sdf_path = fetch(FILES["tox21_leaderboard_sdf"])
    smiles_list, order = _smiles_and_ids(smi_path)
    smiles = dict(zip(order, smiles_list))
    labels: dict[str, np.ndarray] = {}
    for k, props in enumerate(_sdf_properties(sdf_path), start=1):
        sid = props.get("Compound Batch ID")
        if sid is None:
            raise DataError(sdf_path, f"SD record {k} has no 'Compound Batch ID' field")
        labels[sid] = np.array([_sd_label(sdf_path, props.get(a, ""), k, a) for a in TOX21_ASSAYS],
                               dtype=np.float32)
    if set(labels) != set(order):
        raise DataError(sdf_path, f"sample ids differ from {smi_path.name} "
                        f"({len(set(labels) ^ set(order))} not in both)")
    return MolTable([smiles[i] for i in order], order, np.stack([labels[i] for i in order]),
                    list(TOX21_ASSAYS), "tox21-challenge-2014/leaderboard")


def _load_tox21_final() -> MolTable:
    smi_path = fetch(FILES["tox21_final_smiles"])
    txt_path = fetch(FILES["tox21_final_labels"])
    smiles, ids = _smiles_and_ids(smi_path)
    lines = _read_lines(txt_path)
    header = [h.strip() for h in lines[0].split("\t")] if lines else []
    missing = [a for a in ["Sample ID", *TOX21_ASSAYS] if a not in header]
    if missing:
        raise DataError(txt_path, f"header lacks column(s) {missing}", row=1)
    cols = [header.index(a) for a in TOX21_ASSAYS]
    labels: dict[str, np.ndarray] = {}
    for row, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != len(header):
            raise DataError(txt_path, f"expected {len(header)} fields, got {len(parts)}", row=row)
        labels[parts[header.index("Sample ID")].strip()] = np.array(
            [_label(txt_path, parts[c], row, a) for c, a in zip(cols, TOX21_ASSAYS)], dtype=np.float32)
    lost = [i for i in ids if i not in labels]
    if lost or len(labels) != len(ids):
        raise DataError(txt_path, f"sample ids differ from {smi_path.name} (e.g. {lost[:3]})")
    return MolTable(smiles, ids, np.stack([labels[i] for i in ids]), list(TOX21_ASSAYS),
                    "tox21-challenge-2014/final")


def load_tox21_challenge() -> dict[str, MolTable]:
    """The Tox21 Data Challenge 2014 sets from the NCATS files.

    Returns:
        ``train``: the 12 per-assay training files merged on NCGC sample id (11,764 records,
        sorted by id); ``leaderboard``: 296 records (SMILES from the .smiles file, labels from the
        SDF fields); ``final``: 647 records (score.smiles + score.txt, ``x`` = missing). Columns
        are :data:`TOX21_ASSAYS`; raw SMILES are kept, unparsable ones included.

    Raises:
        ChecksumError: a file does not match its registered sha256.
        DataError: a file is missing (offline) or malformed.
    """
    return {"train": _load_tox21_train(), "leaderboard": _load_tox21_leaderboard(),
            "final": _load_tox21_final()}

