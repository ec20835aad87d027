"""Chem loaders on the real mirror: counts from MANIFEST.md, CSV errors, streaming, scaffold split."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rdkit")

from dltk.data import RemoteFile, fetch  # noqa: E402
from dltk.errors import ChecksumError, DataError  # noqa: E402
from dltk_chem.files import FILES, TOX21_ASSAYS  # noqa: E402
from dltk_chem.moleculenet import load_esol, load_tox21_moleculenet  # noqa: E402
from dltk_chem.smiles_files import load_smiles_csv, read_smiles_file  # noqa: E402
from dltk_chem.splits import murcko_scaffold, scaffold_split  # noqa: E402
from dltk_chem.tables import MolTable, canonical_smiles, infer_task_type  # noqa: E402
from dltk_chem.tox21_challenge import load_tox21_challenge  # noqa: E402


@pytest.fixture(scope="module")
def tox21(data_root: Path) -> dict[str, MolTable]:
    return load_tox21_challenge()


# --------------------------------------------------------------------------------------------------
# Registry and checksums


def test_registry_matches_mirror(data_root: Path) -> None:
    for name, remote in FILES.items():
        path = fetch(remote, download=False)
        assert path == data_root / remote.relpath, name
        assert path.stat().st_size == remote.size, name
        assert remote.url.startswith("https://"), name


def test_wrong_sha256_on_temp_mirror_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "chem").mkdir()
    (tmp_path / "chem" / "x.smi").write_text("CCO\n")
    monkeypatch.setenv("DLTK_DATA_DIR", str(tmp_path))
    with pytest.raises(ChecksumError, match="x.smi"):
        fetch(RemoteFile("chem/x.smi", "https://example.invalid/x.smi", "0" * 64), download=False)


def test_corrupt_mirrored_file_fails_the_loader(data_root: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    remote = FILES["esol"]
    target = tmp_path / remote.relpath
    target.parent.mkdir(parents=True)
    data = (data_root / remote.relpath).read_bytes()
    target.write_bytes(data.replace(b"-0.77", b"-0.78", 1))  # one changed label
    monkeypatch.setenv("DLTK_DATA_DIR", str(tmp_path))
    with pytest.raises(ChecksumError, match="delaney-processed.csv"):
        load_esol()


def test_missing_file_offline_is_a_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLTK_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="delaney-processed.csv"):
        fetch(FILES["esol"], download=False)


# --------------------------------------------------------------------------------------------------
# Tox21 challenge 2014


def test_tox21_challenge_counts(tox21: dict[str, MolTable]) -> None:
    assert {k: len(v) for k, v in tox21.items()} == {"train": 11764, "leaderboard": 296, "final": 647}
    for table in tox21.values():
        assert table.tasks == TOX21_ASSAYS
        assert table.y.dtype == np.float32 and table.y.shape == (len(table), 12)
        assert set(np.unique(table.y[~np.isnan(table.y)])) <= {0.0, 1.0}
        assert len(set(table.ids)) == len(table)
    train = tox21["train"]
    assert len(set(train.smiles)) == 8043  # unique structures (raw SMILES)
    # every record of the 12 files is one label: 98,352 lines in total
    assert int((~np.isnan(train.y)).sum()) == 98352
    assert infer_task_type(train.y) == "classification"


def test_tox21_final_positives_and_unparsable(tox21: dict[str, MolTable]) -> None:
    final = tox21["final"]
    positives = dict(zip(TOX21_ASSAYS, np.nansum(final.y, axis=0).astype(int)))
    assert min(positives.values()) == positives["NR-AR-LBD"] == 8
    assert max(positives.values()) == positives["SR-ARE"] == 93
    assert sum(canonical_smiles(s) is None for s in final.smiles) == 2
    assert sum(canonical_smiles(s) is None for s in tox21["leaderboard"].smiles) == 0
    assert sum(canonical_smiles(s) is None for s in tox21["train"].smiles) == 3
    assert final.ids[0] == "NCGC00261900-01"
    assert np.isnan(final.y[0, TOX21_ASSAYS.index("NR-AR-LBD")])  # 'x' in score.txt


def test_tox21_leaderboard_labels_from_sdf(tox21: dict[str, MolTable]) -> None:
    lb = tox21["leaderboard"]
    assert lb.ids[0] == "NCGC00261443-01"
    assert lb.y[0, TOX21_ASSAYS.index("SR-ATAD5")] == 1
    assert np.nansum(lb.y[:, TOX21_ASSAYS.index("SR-ARE")]) == 48
    # the SDF has no NR-Aromatase field for 82 of the 296 compounds
    assert int(np.isnan(lb.y[:, TOX21_ASSAYS.index("NR-Aromatase")]).sum()) == 296 - 214


def test_moltable_subset(tox21: dict[str, MolTable]) -> None:
    t = tox21["final"]
    sub = t.subset([5, 0, 3])
    assert len(sub) == 3 and sub.ids == [t.ids[5], t.ids[0], t.ids[3]]
    assert np.array_equal(sub.y, t.y[[5, 0, 3]], equal_nan=True)
    mask = np.zeros(len(t), dtype=bool)
    mask[[1, 2]] = True
    assert t.subset(mask).ids == t.ids[1:3]


# --------------------------------------------------------------------------------------------------
# MoleculeNet


def test_moleculenet_tox21_duplicates(data_root: Path) -> None:
    table, report = load_tox21_moleculenet()
    assert report["n_rows"] == 8014
    assert report["n_duplicate_smiles"] == 160
    assert report["n_conflicts"] == 64
    assert report["n_invalid"] == 8
    assert len(table) == report["n_records"] == 8014 - report["n_duplicate_rows"]
    assert table.tasks == TOX21_ASSAYS
    keys = [canonical_smiles(s) or s for s in table.smiles]
    assert len(set(keys)) == len(keys)


def test_esol(data_root: Path) -> None:
    table = load_esol()
    assert len(table) == 1128
    assert table.tasks == ["logS"]
    assert infer_task_type(table.y) == "regression"
    assert not any(s != s.strip() for s in table.smiles)
    assert table.ids[0] == "Amigdalin" and table.y[0, 0] == pytest.approx(-0.77)


# --------------------------------------------------------------------------------------------------
# User CSVs


def _csv(tmp_path: Path, text: str, name: str = "mols.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_smiles_csv_ok(tmp_path: Path) -> None:
    path = _csv(tmp_path, "name,smiles,a,b\nx1,CCO,1,\nx2, c1ccccc1 ,0,2.5\n\n")
    t = load_smiles_csv(path, target_columns=["a", "b"], id_column="name")
    assert t.smiles == ["CCO", "c1ccccc1"] and t.ids == ["x1", "x2"] and t.tasks == ["a", "b"]
    assert np.array_equal(t.y, np.array([[1, np.nan], [0, 2.5]], dtype=np.float32), equal_nan=True)
    assert infer_task_type(t.y[:, :1]) == "classification"
    assert infer_task_type(t.y) == "regression"
    default = load_smiles_csv(path, id_column="NAME")
    assert default.tasks == ["a", "b"]
    assert load_smiles_csv(path, target_columns=["a"]).ids == ["2", "3"]  # line numbers


@pytest.mark.parametrize(("text", "kwargs", "row", "field", "message"), [
    ("smiles,y\nCCO,1\nCCN,abc\n", {}, 3, "y", "not a number"),
    ("smiles,y\n", {}, None, None, "no data rows"),
    ("smiles,y\nCCO,1\n", {"target_columns": ["z"]}, 1, "z", "available columns: ['smiles', 'y']"),
    ("mol,y\nCCO,1\n", {}, 1, "smiles", "available columns: ['mol', 'y']"),
    ("smiles,y\nCCO,1\nCCN\n", {}, 3, None, "expected 2 fields"),
    ("smiles,y\nCCO,1\n ,0\n", {}, 3, "smiles", "blank SMILES"),
    ("smiles,y\nCCO,inf\n", {}, 2, "y", "not finite"),
])
def test_load_smiles_csv_errors(tmp_path: Path, text: str, kwargs: dict, row: int | None,
                                field: str | None, message: str) -> None:
    path = _csv(tmp_path, text)
    with pytest.raises(DataError) as info:
        load_smiles_csv(path, **kwargs)
    text = str(info.value)
    assert str(path) in text and message in text
    assert info.value.row == row and info.value.field == field
    if row is not None:
        assert f"row {row}" in text
    if field is not None:
        assert repr(field) in text


def test_load_smiles_csv_missing_and_empty(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.csv.*not found"):
        load_smiles_csv(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="empty.csv.*empty"):
        load_smiles_csv(_csv(tmp_path, "", "empty.csv"))


# --------------------------------------------------------------------------------------------------
# Streaming reader


def test_read_smiles_csv_chunks(tmp_path: Path) -> None:
    rows = "".join(f"C{'C' * (i % 5)}O,m{i}\n" for i in range(25))
    path = _csv(tmp_path, "Smiles,ID\n" + rows + "\n,blank\n")
    chunks = list(read_smiles_file(path, chunk_size=10, id_column="id"))
    assert [len(c) for c in chunks] == [10, 10, 6]
    assert chunks[0][0] == (2, "CO", "m0")
    assert chunks[-1][-1] == (28, "", "blank")  # blank line 27 skipped, blank SMILES kept
    assert list(read_smiles_file(path))[0][0][2] is None


def test_read_smiles_smi_and_gz(tmp_path: Path) -> None:
    text = "# comment\nCCO ethanol\n\nc1ccccc1\tbenzene ring\nCCN\n"
    smi = _csv(tmp_path, text, "in.smi")
    expected = [(2, "CCO", "ethanol"), (4, "c1ccccc1", "benzene ring"), (5, "CCN", None)]
    assert [r for c in read_smiles_file(smi) for r in c] == expected
    gz = tmp_path / "in.smiles.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(text)
    assert [r for c in read_smiles_file(gz, chunk_size=2) for r in c] == expected


def test_read_smiles_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing.smi.*not found"):
        next(read_smiles_file(tmp_path / "missing.smi"))
    with pytest.raises(DataError, match="empty.csv.*empty"):
        next(read_smiles_file(_csv(tmp_path, "", "empty.csv")))
    path = _csv(tmp_path, "mol,y\nCCO,1\n")
    with pytest.raises(DataError, match=r"row 1.*available columns: \['mol', 'y'\]"):
        next(read_smiles_file(path))
    assert next(read_smiles_file(path, smiles_column="MOL")) == [(2, "CCO", None)]


def test_read_real_files(data_root: Path) -> None:
    final = fetch(FILES["tox21_final_smiles"])  # has a '#SMILES<TAB>Sample ID' header
    records = [r for c in read_smiles_file(final) for r in c]
    assert len(records) == 647 and records[0][0] == 2 and records[0][2] == "NCGC00261900-01"
    path = fetch(FILES["moleculenet_tox21"])
    assert sum(len(c) for c in read_smiles_file(path, chunk_size=3000)) == 8014


def test_read_muv_streaming(data_root: Path) -> None:
    chunks = read_smiles_file(fetch(FILES["muv"]))
    assert sum(len(c) for c in chunks) == 93127


# --------------------------------------------------------------------------------------------------
# Scaffold split


def test_scaffold_split_no_shared_scaffold(tox21: dict[str, MolTable]) -> None:
    smiles = list(dict.fromkeys(tox21["train"].smiles))[:3000] + ["not a smiles", "C1CC"]
    parts = scaffold_split(smiles, (0.8, 0.1, 0.1), seed=0)
    n = len(smiles)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(n))
    scaffolds = [{murcko_scaffold(smiles[i]) for i in p} - {None} for p in parts]
    assert not scaffolds[0] & scaffolds[1]
    assert not scaffolds[0] & scaffolds[2]
    assert not scaffolds[1] & scaffolds[2]
    for p, f in zip(parts, (0.8, 0.1, 0.1)):
        assert abs(len(p) / n - f) < 0.03
    again = scaffold_split(smiles, (0.8, 0.1, 0.1), seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    other = scaffold_split(smiles, (0.8, 0.1, 0.1), seed=1)
    assert not np.array_equal(parts[1], other[1])
    two = scaffold_split(smiles[:500], (0.9, 0.1), seed=0)
    assert len(two) == 2 and sum(len(p) for p in two) == 500


def test_scaffold_helpers() -> None:
    assert murcko_scaffold("CCO") == ""
    assert murcko_scaffold("Cc1ccccc1") == "c1ccccc1"
    assert murcko_scaffold("xyz") is None and canonical_smiles("xyz") is None
    assert canonical_smiles("") is None
    assert canonical_smiles("OCC") == "CCO"

