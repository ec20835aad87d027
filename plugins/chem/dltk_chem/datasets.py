"""Molecule tables: the Tox21 challenge and MoleculeNet files, user CSVs, SMILES streams, splits.

Every published file goes through :func:`dltk.data.fetch` (local mirror, then cache, then download,
always sha256-verified). Loaders keep raw SMILES strings: unparsable structures are *not* dropped
here; the featurizer flags them.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import numpy as np
from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold
from rdkit.rdBase import BlockLogs

from dltk.data import RemoteFile, fetch
from dltk.data.splits import assign_groups_in_order, check_fractions
from dltk.errors import DataError

TOX21_ASSAYS: list[str] = [
    "NR-AhR", "NR-AR", "NR-AR-LBD", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma",
    "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53",
]
"""The 12 Tox21 challenge assays, in the challenge's canonical column order."""

ESOL_TARGET = "measured log solubility in mols per litre"

# --------------------------------------------------------------------------------------------------
# Registry of published files (relpath relative to the data root / cache root).

_NCATS = "https://tripod.nih.gov/tox21/challenge/download?id={}&sec="
_DEEPCHEM = "https://deepchemdata.s3-us-west-1.amazonaws.com/datasets/{}"
_CHALLENGE = "chem/tox21-challenge-2014/ncats"

_TRAIN_SHA256 = {  # assay -> (sha256, size) of ncats/train_per_assay/<assay>.smiles
    "NR-AhR": ("8b57bcfec402bbe76ac008a5e243341de5b4c92f891324b34351c5534827aebb", 472354),
    "NR-AR": ("500659a727640a3f724dec2baaf372361bf5b47248736b25ba72211f0cbdf796", 547819),
    "NR-AR-LBD": ("e2cc1b983a8d82decc0ee37b2888fd656c35988d4be9e070d0ffc437c6160794", 490611),
    "NR-Aromatase": ("ead6133b5b88c71537a4d7e387e5378b427a5146fd9b68e894b849d896496583", 405949),
    "NR-ER": ("11c00153d4cd8c68ce25432d960796963c55681b35b98eb2a65def023a399d70", 435821),
    "NR-ER-LBD": ("8deb96ec74235eb2442ee6367a115d9e27a6b74808fdb9d09e80a77586b512e0", 505603),
    "NR-PPAR-gamma": ("d9962585e65b170f2423dd13c3384ae8fcb33434b5bbf2a3800357441c5ea28f", 455392),
    "SR-ARE": ("a28559984b7a36a4a9f9e80eee5d3de97a39b7df1d7e9742d6ed8477c42b70fb", 376444),
    "SR-ATAD5": ("720df91bedc0f909ee231614f5c6cb6e8112cf86f6ca9763e215eca32b3106a4", 520487),
    "SR-HSE": ("99216c1c22068c6ce537f870e4820937e1006b0ecfc6401da8386b69add7b41f", 438565),
    "SR-MMP": ("3c49070dd4c73861bb6dd2bc4a249780ee993d0c098e937268a05b5eaafca1b8", 414765),
    "SR-p53": ("1fa72a15760a228c9b649b9b90675556f205b101445936181980a9ad87792052", 494124),
}


def _train_file(assay: str) -> RemoteFile:
    stem = assay.lower()
    sha, size = _TRAIN_SHA256[assay]
    return RemoteFile(f"{_CHALLENGE}/train_per_assay/{stem}.smiles",
                      _NCATS.format(f"{stem}smiles"), sha, size)


FILES: dict[str, RemoteFile] = {
    **{f"tox21_train/{a}": _train_file(a) for a in TOX21_ASSAYS},
    # NCATS serves the two SDFs zipped: `member` names the .sdf inside; sha256 is the unzipped file's.
    "tox21_leaderboard_sdf": RemoteFile(
        f"{_CHALLENGE}/tox21_10k_challenge_test.sdf", _NCATS.format("tox21_10k_challenge_testsdf"),
        "98ef9e89a030962ec27c5b437d6daf415234a45479dc4c86c72006f9e3b9b4db", 718068,
        member="tox21_10k_challenge_test.sdf"),
    "tox21_leaderboard_smiles": RemoteFile(
        f"{_CHALLENGE}/tox21_10k_challenge_test.smiles",
        _NCATS.format("tox21_10k_challenge_testsmiles"),
        "4832698e22ab993e392a4292f6001165c5020104d2156d6095cd687baaecf634", 19522),
    "tox21_final_smiles": RemoteFile(
        f"{_CHALLENGE}/tox21_10k_challenge_score.smiles",
        _NCATS.format("tox21_10k_challenge_scoresmiles"),
        "57e4fef6d42f7867486967fe6c1a9e98c42aaed43023745c460ff0d102ce5786", 34889),
    "tox21_final_labels": RemoteFile(
        f"{_CHALLENGE}/tox21_10k_challenge_score.txt", _NCATS.format("tox21_10k_challenge_scoretxt"),
        "293438f8407c996a0212bedce86d7b9a278f5548df7e7b45ade2126c6dd2770d", 26641),
    "tox21_final_sdf": RemoteFile(
        f"{_CHALLENGE}/tox21_10k_challenge_score.sdf", _NCATS.format("tox21_10k_challenge_scoresdf"),
        "0ee45ed2351c230bdced31e8bd5f706a89f592e3c082caefa9770d5a29f1c343", 1194586,
        member="tox21_10k_challenge_score.sdf"),
    "moleculenet_tox21": RemoteFile(
        "chem/moleculenet/tox21.csv.gz", _DEEPCHEM.format("tox21.csv.gz"),
        "48b34e4e59a2bae6f95734cd206c1869ab355f50a5e50bb7371a21f861d5e297", 125310),
    "esol": RemoteFile(
        "chem/moleculenet/delaney-processed.csv", _DEEPCHEM.format("delaney-processed.csv"),
        "8c06a76f0c6487d29ab0f903e6a7a7139f189ab3c1178f159c8be8964602f189", 96699),
    "muv": RemoteFile(
        "chem/moleculenet/muv.csv.gz", _DEEPCHEM.format("muv.csv.gz"),
        "93c8b4a37c5996c76e57d5f3f065fb8b7cf1c19067011eff2293fd2a94ce274a", 1749843),
}
"""Every published chem file dltk reads, by short name."""


# --------------------------------------------------------------------------------------------------
# Table type


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


# --------------------------------------------------------------------------------------------------
# Chemistry helpers


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


def infer_task_type(y: np.ndarray) -> Literal["classification", "regression"]:
    """``"classification"`` iff every non-missing (non-NaN) value is 0 or 1, else ``"regression"``."""
    y = np.asarray(y, dtype=np.float64)
    values = y[~np.isnan(y)]
    return "classification" if np.isin(values, (0.0, 1.0)).all() else "regression"


# --------------------------------------------------------------------------------------------------
# Tox21 challenge 2014 (NCATS files)


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


def _load_tox21_leaderboard() -> MolTable:
    smi_path = fetch(FILES["tox21_leaderboard_smiles"])
    sdf_path = fetch(FILES["tox21_leaderboard_sdf"])
    smiles: dict[str, str] = {}
    order: list[str] = []
    for row, line in enumerate(_read_lines(smi_path), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            raise DataError(smi_path, "expected SMILES<TAB>sample id", row=row)
        smiles[parts[1].strip()] = parts[0].strip()
        order.append(parts[1].strip())
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
    smiles: list[str] = []
    ids: list[str] = []
    for row, line in enumerate(_read_lines(smi_path), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            raise DataError(smi_path, "expected SMILES<TAB>sample id", row=row)
        smiles.append(parts[0].strip())
        ids.append(parts[1].strip())
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


# --------------------------------------------------------------------------------------------------
# MoleculeNet and user CSVs


def _open_text(path: Path) -> IO[str]:
    """Open a (possibly gzipped) text file for reading, universal newlines, BOM stripped."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


_MISSING = {"", "nan", "na", "n/a"}


def _number(path: Path, value: str, row: int, column: str) -> float:
    text = value.strip()
    if text.lower() in _MISSING:
        return math.nan
    try:
        number = float(text)
    except ValueError:
        raise DataError(path, f"label {value!r} is not a number (leave it blank when missing)",
                        row=row, field=column) from None
    if not math.isfinite(number):
        raise DataError(path, f"label {value!r} is not finite", row=row, field=column)
    return number


def _find_column(path: Path, header: list[str], name: str) -> int:
    """Index of column ``name``: exact match first, else the first case-insensitive match."""
    if name in header:
        return header.index(name)
    lowered = [h.lower() for h in header]
    if name.lower() in lowered:
        return lowered.index(name.lower())
    raise DataError(path, f"no column {name!r}; available columns: {header}", row=1, field=name)


def load_smiles_csv(path: str | Path, smiles_column: str = "smiles",
                    target_columns: list[str] | None = None,
                    id_column: str | None = None) -> MolTable:
    """Read a user CSV of molecules and labels.

    Args:
        path: CSV file (``.gz`` allowed) with a header row.
        smiles_column: the SMILES column.
        target_columns: label columns; default every column except the SMILES and id columns.
            Column names match exactly, else case-insensitively.
        id_column: identifier column; default the line number.

    Returns:
        A :class:`MolTable`; blank (or ``nan``/``NA``) labels are missing (NaN). Row numbers in
        errors and default ids are 1-based file line numbers (the header is line 1).

    Raises:
        DataError: missing or empty file, unknown column (lists the columns), ragged row,
            blank SMILES, non-numeric label, or no data rows.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(path, "file is empty (expected a header row)") from None
        except (csv.Error, UnicodeDecodeError, OSError) as exc:
            raise DataError(path, f"cannot read CSV header: {exc}", row=1) from exc
        s_col = _find_column(path, header, smiles_column)
        i_col = None if id_column is None else _find_column(path, header, id_column)
        if target_columns is None:
            target_columns = [h for k, h in enumerate(header) if k not in (s_col, i_col)]
            if not target_columns:
                raise DataError(path, f"no label columns besides {smiles_column!r}; "
                                f"available columns: {header}", row=1)
        t_cols = [_find_column(path, header, t) for t in target_columns]
        smiles: list[str] = []
        ids: list[str] = []
        rows: list[list[float]] = []
        try:
            for record in reader:
                row = reader.line_num
                if not any(v.strip() for v in record):
                    continue
                if len(record) != len(header):
                    raise DataError(path, f"expected {len(header)} fields, got {len(record)}", row=row)
                smi = record[s_col].strip()
                if not smi:
                    raise DataError(path, "blank SMILES", row=row, field=header[s_col])
                smiles.append(smi)
                ids.append(record[i_col].strip() if i_col is not None else str(row))
                rows.append([_number(path, record[c], row, header[c]) for c in t_cols])
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DataError(path, f"malformed CSV: {exc}", row=reader.line_num) from exc
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DataError(path, f"compressed file is truncated or corrupt ({exc})",
                            row=reader.line_num) from exc
    if not smiles:
        raise DataError(path, "no data rows after the header")
    y = np.asarray(rows, dtype=np.float32).reshape(len(smiles), len(t_cols))
    for j, c in enumerate(t_cols):
        if np.isnan(y[:, j]).all():
            raise DataError(path, f"label column {header[c]!r} has no labels (every row is blank)",
                            field=header[c])
    return MolTable(smiles, ids, y, [header[c] for c in t_cols], str(path))


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


# --------------------------------------------------------------------------------------------------
# Streaming reader for prediction input

SMILES_SUFFIXES = (".smi", ".smiles")


def read_smiles_file(path: str | Path, smiles_column: str | None = None, chunk_size: int = 10_000,
                     id_column: str | None = None) -> Iterator[list[tuple[int, str, str | None]]]:
    """Stream ``(line_no, smiles, id)`` records from a prediction input file, in chunks.

    Formats, chosen by suffix (a trailing ``.gz`` is allowed and decompressed on the fly):

    * ``.smi`` / ``.smiles``: no header; each non-blank line is ``SMILES [id ...]`` separated by
      whitespace; lines starting with ``#`` are comments.
    * anything else: CSV (``.tsv``/``.txt``: tab-separated) with a header; the SMILES column is
      ``smiles_column`` (default ``smiles``) matched case-insensitively; the optional id column
      likewise. Blank SMILES fields are yielded as ``""`` so outputs stay aligned with inputs.

    The file is never read whole; only one chunk is held at a time.

    Args:
        path: input file.
        smiles_column: SMILES column name for CSV input (default ``smiles``).
        chunk_size: records per yielded list.
        id_column: optional id column for CSV input; ids are None without it.

    Yields:
        Lists of up to ``chunk_size`` ``(line_no, smiles, id)`` tuples; ``line_no`` is 1-based.

    Raises:
        DataError: missing or empty file, or no such column (lists the columns).
    """
    path = Path(path)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if not path.is_file():
        raise DataError(path, "file not found")
    if path.stat().st_size == 0:
        raise DataError(path, "file is empty")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    records = _smi_records(path) if kind in SMILES_SUFFIXES else _csv_records(
        path, smiles_column or "smiles", id_column, "\t" if kind in (".tsv", ".txt") else ",")
    chunk: list[tuple[int, str, str | None]] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _smi_records(path: Path) -> Iterator[tuple[int, str, str | None]]:
    with _open_text(path) as fh:
        try:
            for line_no, line in enumerate(fh, start=1):
                parts = line.split(None, 1)
                if not parts or parts[0].startswith("#"):
                    continue
                yield line_no, parts[0], (parts[1].strip() or None) if len(parts) > 1 else None
        except UnicodeDecodeError as exc:
            raise DataError(path, f"not UTF-8 text ({exc.reason})") from exc
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DataError(path, f"compressed file is truncated or corrupt ({exc})") from exc


def _csv_records(path: Path, smiles_column: str, id_column: str | None,
                 delimiter: str) -> Iterator[tuple[int, str, str | None]]:
    with _open_text(path) as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(path, "file is empty (expected a header row)") from None
        except (csv.Error, UnicodeDecodeError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DataError(path, f"cannot read the header: {exc}", row=1) from exc
        s_col = _find_column(path, header, smiles_column)
        i_col = None if id_column is None else _find_column(path, header, id_column)
        try:
            for record in reader:
                if not any(v.strip() for v in record):
                    continue
                smi = record[s_col].strip() if s_col < len(record) else ""
                rid = record[i_col].strip() if i_col is not None and i_col < len(record) else None
                yield reader.line_num, smi, rid
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DataError(path, f"malformed CSV: {exc}", row=reader.line_num) from exc
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DataError(path, f"compressed file is truncated or corrupt ({exc})", row=reader.line_num) from exc
