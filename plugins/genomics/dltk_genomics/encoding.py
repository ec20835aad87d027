"""Nucleotide encoding: IUPAC letters -> 4-bit codes -> one-hot, by vectorised table lookup.

Codes
-----
Every base is stored as one byte holding the IUPAC **4-bit mask** of the nucleotides it may be
(htslib's ``seq_nt16`` convention): ``A=1, C=2, G=4, T=8``; ambiguity codes are the union of their
bases (``R=A|G=5``, ``Y=C|T=10``, ..., ``N=15``) and ``0`` means *no base* (padding). So

* ``U``/``u`` (RNA) is encoded as ``T``; lowercase (soft-masked) letters as their upper case;
* ``N`` and the other ambiguity codes are kept, and their one-hot column spreads 1 evenly over the
  bases they stand for (``N`` -> 0.25 each, ``R`` -> 0.5 A + 0.5 G);
* any other byte (digits, ``-``, ``*``, ``X``, whitespace...) is :data:`INVALID` (255), which the
  readers turn into a counted skip or a one-line error;
* the reverse complement of a code is its bit-reversed mask (``A<->T``, ``C<->G``, ``R<->Y``,
  ``N<->N``, ``0<->0``), so reverse-complementing a padded array needs no special case.

One byte per base is what the datamodules keep (a quarter of a float32 one-hot per base); the
model expands codes to one-hot on its own device with :data:`ONE_HOT` (a 16 x 4 table).

Pad/crop policy (:func:`fit_length`): a sequence longer than the target length is cropped around
its centre (the extra base, when the surplus is odd, is dropped from the right); a shorter one is
padded on both sides with code 0 (all-zero one-hot columns, distinct from ``N``), again centred.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

ALPHABET = "ACGT"
IUPAC = "ACGTURYSWKMBDHVN"
"""Letters accepted in input sequences (either case); everything else is invalid."""

INVALID = 255
PAD = 0

_MASKS = {"A": 1, "C": 2, "G": 4, "T": 8, "U": 8, "R": 5, "Y": 10, "S": 6, "W": 9, "K": 12, "M": 3,
          "B": 14, "D": 13, "H": 11, "V": 7, "N": 15}

CODES = np.full(256, INVALID, dtype=np.uint8)
"""ASCII byte -> 4-bit IUPAC code (:data:`INVALID` for bytes outside IUPAC)."""
for _letter, _mask in _MASKS.items():
    CODES[ord(_letter)] = _mask
    CODES[ord(_letter.lower())] = _mask

_BITS = ((np.arange(16)[:, None] >> np.arange(4)[None, :]) & 1).astype(np.float32)  # (16, 4): A C G T
ONE_HOT = (_BITS / np.maximum(_BITS.sum(1, keepdims=True), 1)).astype(np.float32)
"""(16, 4) code -> one-hot column over A, C, G, T (ambiguity spread evenly; code 0 = zeros)."""

COMPLEMENT = np.zeros(256, dtype=np.uint8)
"""Code -> code of the complementary base (bit-reversed mask); INVALID stays INVALID."""
COMPLEMENT[:16] = [int(f"{m:04b}"[::-1], 2) for m in range(16)]
COMPLEMENT[INVALID] = INVALID

LETTERS = np.frombuffer(b"-ACMGRSVTWYHKDBN", dtype=np.uint8)
"""Code -> upper-case letter (``-`` for padding), for printing codes back as text."""

# One-hot as packed bytes straight from ASCII: 4 uint8 indicator bytes in one uint32, so one
# ``take`` writes a whole (L, 4) row group. Little/big-endian safe by building from bytes.
_INDICATOR = (_BITS > 0).astype(np.uint8)
_PACKED = np.zeros(256, dtype=np.uint32)
_PACKED[:] = np.frombuffer(np.ascontiguousarray(
    np.where((CODES == INVALID)[:, None], 0, _INDICATOR[CODES & 15])).tobytes(), dtype=np.uint32)


def encode(seq: str | bytes) -> np.ndarray:
    """One sequence -> (L,) uint8 codes (:data:`INVALID` where a byte is not an IUPAC letter)."""
    raw = seq.encode("latin-1") if isinstance(seq, str) else bytes(seq)
    return CODES[np.frombuffer(raw, dtype=np.uint8)]


def first_invalid(codes: np.ndarray) -> int:
    """Index of the first invalid code, or -1 when every code is a valid IUPAC letter."""
    bad = np.flatnonzero(codes == INVALID)
    return int(bad[0]) if bad.size else -1


def decode(codes: np.ndarray) -> str:
    """Codes -> upper-case IUPAC string (``-`` for padding)."""
    return LETTERS[np.asarray(codes, dtype=np.uint8) & 15].tobytes().decode("ascii")


def fit_length(codes: np.ndarray, length: int) -> np.ndarray:
    """Centre-crop or centre-pad (with code 0) one code array to ``length``."""
    n = len(codes)
    if n == length:
        return codes
    if n > length:
        start = (n - length) // 2
        return codes[start:start + length]
    out = np.zeros(length, dtype=np.uint8)
    left = (length - n) // 2
    out[left:left + n] = codes
    return out


def encode_batch(seqs: Sequence[str | bytes], length: int) -> np.ndarray:
    """Sequences -> (N, length) uint8 codes, each centre-cropped / centre-padded to ``length``.

    Equal-length inputs (the usual case) are encoded with a single table lookup over one buffer.
    """
    n = len(seqs)
    raws = [s.encode("latin-1") if isinstance(s, str) else bytes(s) for s in seqs]
    if n and all(len(r) == length for r in raws):
        return CODES[np.frombuffer(b"".join(raws), dtype=np.uint8)].reshape(n, length)
    out = np.zeros((n, length), dtype=np.uint8)
    for i, raw in enumerate(raws):
        out[i] = fit_length(CODES[np.frombuffer(raw, dtype=np.uint8)], length)
    return out


def one_hot(codes: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """Codes (..., L) -> one-hot (..., L, 4) over A, C, G, T (ambiguity codes spread evenly)."""
    return ONE_HOT.astype(dtype, copy=False)[np.asarray(codes) & 15]


def one_hot_bytes(seq: bytes | bytearray | memoryview, out: np.ndarray | None = None) -> np.ndarray:
    """ASCII bytes -> (L, 4) uint8 indicator one-hot, one packed-table lookup per base.

    For A/C/G/T/U this is the exact one-hot; an ambiguity code sets every base it stands for
    (``N`` -> 1, 1, 1, 1) and a non-IUPAC byte gives an all-zero row. This is the fast path
    measured by ``benchmarks/bench_genomics_onehot.py``.
    """
    idx = np.frombuffer(seq, dtype=np.uint8)
    if out is None:
        out = np.empty((len(idx), 4), dtype=np.uint8)
    np.take(_PACKED, idx, out=out.view(np.uint32).reshape(-1), mode="clip")  # 'raise' would buffer
    return out


def reverse_complement(codes: np.ndarray) -> np.ndarray:
    """Reverse complement of codes (..., L), along the last axis."""
    return COMPLEMENT[np.asarray(codes)[..., ::-1]]


def gc_fraction(codes: np.ndarray) -> np.ndarray:
    """GC fraction over the unambiguous bases of each row of (N, L) codes (NaN for none)."""
    codes = np.atleast_2d(codes)
    gc = ((codes == 2) | (codes == 4)).sum(-1)
    at = ((codes == 1) | (codes == 8)).sum(-1)
    total = gc + at
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, gc / np.maximum(total, 1), np.nan)


def kmer_counts(codes: np.ndarray, k: int) -> np.ndarray:
    """(N, 4**k) counts of the unambiguous k-mers of each row of (N, L) codes (no Python loop
    over positions beyond k)."""
    codes = np.atleast_2d(codes)
    base = np.full(codes.shape, -1, dtype=np.int64)
    for i, mask in enumerate((1, 2, 4, 8)):
        base[codes == mask] = i
    n, length = codes.shape
    if length < k:
        return np.zeros((n, 4 ** k), dtype=np.float32)
    index = np.zeros((n, length - k + 1), dtype=np.int64)
    valid = np.ones_like(index, dtype=bool)
    for j in range(k):
        part = base[:, j:length - k + 1 + j]
        valid &= part >= 0
        index = index * 4 + np.maximum(part, 0)
    flat = (index + (np.arange(n) * 4 ** k)[:, None])[valid]
    return np.bincount(flat, minlength=n * 4 ** k).reshape(n, 4 ** k).astype(np.float32)


def as_strings(records: Iterable[np.ndarray]) -> list[str]:
    """Decode several code arrays."""
    return [decode(r) for r in records]
