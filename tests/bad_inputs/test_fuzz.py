"""Property-based fuzzing of the readers users feed files to: whatever the bytes, a reader either
returns well-formed records or raises :class:`dltk.errors.DataError` (a one-line message) —
never another exception, never silently malformed data."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dltk.errors import DataError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# text that looks like the real thing often enough to get past the first checks
CSV_ALPHABET = st.sampled_from(list("CNOc1()=#[]+-@Hl,;\t \n\r\"'0123456789.eEnaisfxyz") + ["smiles", "\ufeff", "é"])
csv_text = st.lists(CSV_ALPHABET, max_size=300).map("".join)
FASTA_ALPHABET = st.sampled_from(list("ACGTUNacgtunRYKMSWBDHV>-.*! \n\r\t0123456789XZ") + ["\n>seq", "\n>dup"])
fasta_text = st.lists(FASTA_ALPHABET, max_size=400).map("".join)
raw_bytes = st.binary(max_size=300)


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    return path


@FUZZ
@given(text=csv_text)
def test_training_csv_reader(tmp_path: Path, text: str) -> None:
    pytest.importorskip("rdkit")
    from dltk_chem.smiles_files import load_smiles_csv

    path = _write(tmp_path, "fuzz.csv", text)
    try:
        table = load_smiles_csv(path)
    except DataError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc).strip()
        return
    assert len(table.smiles) == len(table.ids) == table.y.shape[0] > 0
    assert all(s.strip() for s in table.smiles)
    assert all(math.isnan(v) or math.isfinite(v) for v in table.y.ravel())


@FUZZ
@given(content=st.one_of(csv_text, raw_bytes), suffix=st.sampled_from([".csv", ".smi", ".tsv"]))
def test_prediction_stream_reader(tmp_path: Path, content: str | bytes, suffix: str) -> None:
    pytest.importorskip("rdkit")
    from dltk_chem.smiles_files import read_smiles_file

    path = _write(tmp_path, f"fuzz{suffix}", content)
    try:
        chunks = list(read_smiles_file(path, chunk_size=7))
    except DataError as exc:
        assert str(path) in str(exc)
        return
    rows = [r for chunk in chunks for r in chunk]
    assert all(len(chunk) <= 7 for chunk in chunks)
    lines = [r[0] for r in rows]
    assert lines == sorted(lines) and len(set(lines)) == len(lines)  # input order, one record per line


@FUZZ
@given(smiles=st.text(max_size=60))
def test_smiles_parsing_never_crashes(smiles: str) -> None:
    pytest.importorskip("rdkit")
    from dltk_chem.tables import canonical_smiles

    result = canonical_smiles(smiles)
    assert result is None or isinstance(result, str)


@FUZZ
@given(content=st.one_of(fasta_text, raw_bytes), duplicates=st.sampled_from(["first", "keep", "error"]))
def test_fasta_reader(tmp_path: Path, content: str | bytes, duplicates: str) -> None:
    pytest.importorskip("pyfaidx")
    from dltk_genomics.sequences import read_fasta

    path = _write(tmp_path, "fuzz.fa", content)
    try:
        records = read_fasta(path, label=1.0, duplicates=duplicates)  # type: ignore[arg-type]
    except DataError as exc:
        assert str(path) in str(exc)
        return
    assert len(records) > 0
    assert len(records.ids) == len(records.seqs) == len(records.rows)
    for seq in records.seqs:
        assert seq and re.fullmatch(r"[ACGTUNRYKMSWBDHV]+", seq), seq  # only IUPAC letters, upper case
    if duplicates == "first":
        assert len(set(records.ids)) == len(records.ids)
