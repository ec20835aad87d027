"""Sequence readers on the real files (documented counts) and on bad input written in tmp_path."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from dltk.errors import DataError
from dltk_genomics.sequences import iter_sequence_file, read_deepbind, read_fasta

SRF = "genomics/deepbind-encode/SRF_H1-hESC_SRF_HudsonAlpha_{}.seq.gz"
PUM2 = "genomics/pysster-pum2/pum2.{}.fasta"


def test_deepbind_srf_counts(data_root: Path) -> None:
    train = read_deepbind(data_root / SRF.format("AC"))
    test = read_deepbind(data_root / SRF.format("B"))
    assert len(train) == 4605 and train.labels is not None and train.labels.sum() == 4605  # positives only
    assert len(test) == 1000 and test.labels is not None and test.labels.sum() == 500
    assert {len(s) for s in train.seqs + test.seqs} == {101}
    assert train.ids[0] == "seq_00001_peak" and train.rows[0] == 2
    assert train.skipped.total == 0 and test.skipped.total == 0


def test_pum2_counts_duplicates_and_rna(data_root: Path) -> None:
    pos = read_fasta(data_root / PUM2.format("train.positive"), label=1)
    neg = read_fasta(data_root / PUM2.format("train.negative"), label=0)
    neg_all = read_fasta(data_root / PUM2.format("train.negative"), label=0, duplicates="keep")
    test_neg = read_fasta(data_root / PUM2.format("test.negative"), label=0)
    assert len(pos) == 3888 and len(neg_all) == 3888
    assert len(neg) == 3885 and neg.skipped.counts == {"with a repeated header": 3}
    assert len(test_neg) == 1294
    assert {len(s) for s in pos.seqs} == {200}
    assert "U" in pos.seqs[0] and not any("N" in s for s in pos.seqs)
    assert sum("N" in s for s in neg_all.seqs) > 0
    with pytest.raises(DataError, match="duplicate FASTA header"):
        read_fasta(data_root / PUM2.format("train.negative"), duplicates="error")


def test_fasta_bad_input_is_counted_or_one_line(tmp_path: Path) -> None:
    f = tmp_path / "x.fa"
    f.write_text(">a\nACGT\nacgu\n>b\nACXGT\n>c\n\n>d desc\nNNRY\n>e\nAC GT\n")
    recs = read_fasta(f, label=1)
    assert recs.ids == ["a", "d desc"]
    assert recs.seqs == ["ACGTACGU", "NNRY"]  # multi-line joined, lowercase upper-cased, U kept (encoder maps it)
    assert recs.lowercase == 1
    # "AC GT": whitespace inside a sequence line is not IUPAC either
    assert recs.skipped.counts == {"with non-IUPAC characters": 2, "with no sequence": 1}
    assert recs.skipped.first["with non-IUPAC characters"] == 4
    assert "skipped 2 sequences with non-IUPAC characters (first: row 4)" in recs.skipped.lines()[0]
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    with pytest.raises(DataError, match="empty file"):
        read_fasta(empty)
    headerless = tmp_path / "h.fa"
    headerless.write_text("ACGT\n>a\nACGT\n")
    with pytest.raises(DataError, match="row 1.*before the first '>'"):
        read_fasta(headerless)
    bad_only = tmp_path / "bad.fa"
    bad_only.write_text(">a\n1234\n")
    with pytest.raises(DataError, match="no usable sequence"):
        read_fasta(bad_only)


def test_deepbind_bad_input(tmp_path: Path) -> None:
    f = tmp_path / "x_AC.seq.gz"
    with gzip.open(f, "wt") as fh:
        fh.write("FoldID\tEventID\tseq\tBound\nA\tp1\tACGTNacgt\t1\nA\tp2\tACG*T\t1\n")
    recs = read_deepbind(f)
    assert recs.seqs == ["ACGTNACGT"] and recs.lowercase == 1 and recs.skipped.first == {"with non-IUPAC characters": 3}
    wrong = tmp_path / "wrong.seq"
    wrong.write_text("id\tseq\n")
    with pytest.raises(DataError, match="expected the DeepBind header"):
        read_deepbind(wrong)
    label = tmp_path / "label.seq"
    label.write_text("FoldID\tEventID\tseq\tBound\nA\tp1\tACGT\t2\n")
    with pytest.raises(DataError, match="row 2.*label must be 0 or 1"):
        read_deepbind(label)
    empty = tmp_path / "empty.seq"
    empty.write_text("")
    with pytest.raises(DataError, match="empty file"):
        read_deepbind(empty)


def test_sequence_file_for_predict(tmp_path: Path) -> None:
    lines = tmp_path / "seqs.txt"
    lines.write_text("ACGT\n\n# comment\nmyid acgu\n")
    assert list(iter_sequence_file(lines)) == [(1, "seq1", "ACGT"), (4, "myid", "acgu")]
    fasta = tmp_path / "seqs.fa"
    fasta.write_text(">s1\nAC\nGT\n")
    assert list(iter_sequence_file(fasta)) == [(1, "s1", "ACGT")]
    empty = tmp_path / "e.txt"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="empty"):
        list(iter_sequence_file(empty))
