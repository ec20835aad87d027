"""Nucleotide encoding: bit-exact codes, one-hot, IUPAC/U/N/lowercase policy, pad/crop, reverse complement."""

from __future__ import annotations

import numpy as np
import pytest
from dltk_genomics import encoding as E
from hypothesis import given, settings
from hypothesis import strategies as st


def test_codes_are_iupac_bit_masks() -> None:
    assert E.encode("ACGT").tolist() == [1, 2, 4, 8]
    assert E.encode("acgtu").tolist() == [1, 2, 4, 8, 8]  # lowercase = upper case, U = T
    assert E.encode("NRYSWKMBDHV").tolist() == [15, 5, 10, 6, 9, 12, 3, 14, 13, 11, 7]
    assert E.encode("AX-1 *").tolist() == [1, 255, 255, 255, 255, 255]
    assert E.first_invalid(E.encode("ACGTN")) == -1
    assert E.first_invalid(E.encode("ACxGT")) == 2
    assert E.decode(E.encode("acgunry")) == "ACGTNRY"


def test_one_hot_values() -> None:
    oh = E.one_hot(E.encode("ACGTNR"))
    expected = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1],
                         [0.25, 0.25, 0.25, 0.25], [0.5, 0, 0.5, 0]], dtype=np.float32)
    assert oh.dtype == np.float32 and np.array_equal(oh, expected)
    assert np.array_equal(E.one_hot(np.array([0], np.uint8)), np.zeros((1, 4), np.float32))  # padding
    assert np.allclose(E.ONE_HOT[1:].sum(1), 1.0)


def test_one_hot_bytes_fast_path() -> None:
    out = E.one_hot_bytes(b"ACGTuNx")
    assert out.dtype == np.uint8
    assert out.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1],
                            [1, 1, 1, 1], [0, 0, 0, 0]]


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="ACGTacgt", min_size=1, max_size=300))
def test_fast_one_hot_equals_table_one_hot_on_dna(seq: str) -> None:
    assert np.array_equal(E.one_hot_bytes(seq.encode()).astype(np.float32), E.one_hot(E.encode(seq)))


def test_reverse_complement() -> None:
    assert E.decode(E.reverse_complement(E.encode("AACGTRYN"))) == "NRYACGTT"
    padded = E.fit_length(E.encode("ACG"), 6)
    assert E.decode(E.reverse_complement(padded)) == "--CGT-"
    assert np.array_equal(E.COMPLEMENT[E.COMPLEMENT[:16]], np.arange(16))


def test_pad_crop_policy_is_centred() -> None:
    assert E.decode(E.fit_length(E.encode("AACCGGTT"), 4)) == "CCGG"
    assert E.decode(E.fit_length(E.encode("ACGTA"), 4)) == "ACGT"  # odd surplus: extra base off the right
    assert E.decode(E.fit_length(E.encode("ACG"), 6)) == "-ACG--"  # padding is code 0, not N
    batch = E.encode_batch(["ACGT", "AACCGGTT", "A"], 4)
    assert [E.decode(r) for r in batch] == ["ACGT", "CCGG", "-A--"]
    assert E.encode_batch(["ACGT", "TTTT"], 4).tolist() == [[1, 2, 4, 8], [8, 8, 8, 8]]


def test_gc_and_kmers() -> None:
    assert E.gc_fraction(E.encode("GGCCAANN"))[0] == pytest.approx(4 / 6)
    assert np.isnan(E.gc_fraction(E.encode("NNN"))[0])
    counts = E.kmer_counts(E.encode("ACGTAN")[None], 2)[0]
    # AC=0*4+1=1, CG=1*4+2=6, GT=2*4+3=11, TA=3*4+0=12; "AN" is ambiguous and not counted
    assert counts.sum() == 4 and counts[[1, 6, 11, 12]].tolist() == [1, 1, 1, 1]
