"""Single-cell CpG methylation: profile readers and DeepCpG-style neighbour features.

A CpG profile is a (gzipped) tab-separated file ``chrom  pos  state`` with one row per observed CpG
of one cell, sorted by chromosome and position, state 0 (unmethylated) or 1 (methylated), as in the
DeepCpG test profiles (Angermueller et al. 2017, Genome Biol 18:67). Chromosome names are compared
without a ``chr`` prefix (``chr18`` and ``18`` are the same chromosome).

For every CpG to predict, :func:`knn_features` gives the states and distances of the ``k`` nearest
*observed* CpGs on each side in one cell, excluding the CpG itself: the input of DeepCpG's CpG module.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from dltk.data import RemoteFile
from dltk.errors import DataError

_DEEPCPG = "https://raw.githubusercontent.com/cangermueller/deepcpg/master/tests/integration_tests/data"

FILES: dict[str, RemoteFile] = {
    "BS27_4_SER": RemoteFile("genomics/deepcpg-scbs/BS27_4_SER.bed.gz",
                             f"{_DEEPCPG}/cpg_profiles/BS27_4_SER.bed.gz",
                             "c53ba2ef287fc05739baad1083213da82ead1c715b2cb86ae861513c0e81c92b", 33007),
    "BS28_2_SER": RemoteFile("genomics/deepcpg-scbs/BS28_2_SER.bed.gz",
                             f"{_DEEPCPG}/cpg_profiles/BS28_2_SER.bed.gz",
                             "be47f230eec40c962db081bb1a06b9a1417b9187038c8df4bb78ebfe6cd2948b", 32488),
}
"""The two serum-grown mouse ES cell profiles shipped with DeepCpG's tests (Smallwood et al. 2014,
GEO GSE56879; 10,000 CpGs each on chr18/chr19, mm10)."""

DEFAULT_CELLS = ("BS27_4_SER", "BS28_2_SER")


def normalise_chrom(name: str) -> str:
    """Chromosome name without a ``chr`` prefix (``chr18`` -> ``18``, ``chrX`` -> ``X``)."""
    name = name.strip()
    return name[3:] if name[:3].lower() == "chr" and len(name) > 3 else name


@dataclass
class CpgProfile:
    """One cell's observed CpGs, sorted by (chromosome, position).

    Attributes:
        name: the cell's name (file name without ``.bed[.gz]``/``.tsv[.gz]`` by default).
        source: the file it was read from.
        chrom: chromosome of each CpG (normalised, no ``chr`` prefix).
        pos: 0- or 1-based position as written in the file (int64).
        state: 0.0 or 1.0 (float32).
    """

    name: str
    source: str
    chrom: np.ndarray
    pos: np.ndarray
    state: np.ndarray

    def __len__(self) -> int:
        return len(self.pos)

    def chromosome(self, chrom: str) -> tuple[np.ndarray, np.ndarray]:
        """(positions, states) on one chromosome."""
        mask = self.chrom == chrom
        return self.pos[mask], self.state[mask]

    @property
    def chromosomes(self) -> list[str]:
        return list(dict.fromkeys(self.chrom.tolist()))


def cell_name(path: str | Path) -> str:
    name = Path(path).name
    for suffix in (".gz", ".bed", ".tsv", ".txt"):
        name = name.removesuffix(suffix)
    return name


def read_cpg_profile(path: str | Path, name: str | None = None) -> CpgProfile:
    """Read one cell's CpG profile (``chrom pos state``, tab-separated, optionally gzipped).

    Lines starting with ``#`` or ``track`` and a header line whose position field is not a number
    are skipped; columns after the third are ignored.

    Raises:
        DataError: naming the file and 1-based line for a short row, a position that is not a
            non-negative integer, a state other than 0/1, positions not sorted within a chromosome
            (or a chromosome that reappears after another), a duplicate position, or an empty file.
    """
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    chroms: list[str] = []
    positions: list[int] = []
    states: list[float] = []
    rows: list[int] = []
    try:
        with opener(path, "rt") as fh:  # type: ignore[operator]
            for lineno, line in enumerate(fh, start=1):
                if not line.strip() or line.startswith(("#", "track")):
                    continue
                fields = line.rstrip("\r\n").split("\t")
                if len(fields) < 3:
                    fields = line.split()
                if len(fields) < 3:
                    raise DataError(path, f"expected 3 tab-separated fields 'chrom pos state', got "
                                          f"{len(fields)}", row=lineno)
                try:
                    pos = int(fields[1])
                except ValueError:
                    if not positions and not chroms:  # a header line
                        continue
                    raise DataError(path, f"position {fields[1]!r} is not an integer", row=lineno,
                                    field="pos") from None
                if pos < 0:
                    raise DataError(path, f"negative position {pos}", row=lineno, field="pos")
                try:
                    state = float(fields[2])
                except ValueError:
                    state = float("nan")
                if state not in (0.0, 1.0):
                    raise DataError(path, f"non-binary methylation state {fields[2].strip()!r} "
                                          "(expected 0 or 1)", row=lineno, field="state")
                chroms.append(normalise_chrom(fields[0]))
                positions.append(pos)
                states.append(state)
                rows.append(lineno)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read CpG profile ({exc})") from exc
    if not positions:
        raise DataError(path, "no CpG rows (empty profile)")
    chrom = np.asarray(chroms, dtype=object)
    pos_arr = np.asarray(positions, dtype=np.int64)
    _check_sorted(path, chrom, pos_arr, rows)
    return CpgProfile(name or cell_name(path), str(path), chrom, pos_arr, np.asarray(states, dtype=np.float32))


def _check_sorted(path: Path, chrom: np.ndarray, pos: np.ndarray, rows: list[int]) -> None:
    same = chrom[1:] == chrom[:-1]
    step = np.diff(pos)
    dup = np.flatnonzero(same & (step == 0))
    back = np.flatnonzero(same & (step < 0))
    if len(dup) and (not len(back) or dup[0] < back[0]):
        i = int(dup[0]) + 1
        raise DataError(path, f"duplicate CpG {chrom[i]}:{pos[i]} (also on line {rows[i - 1]})", row=rows[i])
    if len(back):
        i = int(back[0]) + 1
        raise DataError(path, f"positions not sorted: {chrom[i]}:{pos[i]} after {pos[i - 1]} "
                              "(sort with `sort -k1,1 -k2,2n`)", row=rows[i])
    starts = np.concatenate([[0], np.flatnonzero(~same) + 1])
    seen: set[str] = set()
    for s in starts:
        if chrom[s] in seen:
            raise DataError(path, f"chromosome {chrom[s]!r} reappears after another chromosome (rows not "
                                  "grouped by chromosome; sort with `sort -k1,1 -k2,2n`)", row=rows[s])
        seen.add(chrom[s])


def knn_features(targets: np.ndarray, pos: np.ndarray, state: np.ndarray,
                 k: int) -> tuple[np.ndarray, np.ndarray]:
    """States and distances of the ``k`` nearest observed CpGs on each side of each target.

    Args:
        targets: sorted or unsorted positions to describe (one chromosome).
        pos: sorted positions of the observed CpGs of one cell on that chromosome.
        state: their states.
        k: neighbours per side.

    Returns:
        ``(states, dists)``, each ``(len(targets), 2k)`` float32: columns ``0..k-1`` are the left
        neighbours from the farthest to the nearest, ``k..2k-1`` the right neighbours from the nearest
        to the farthest; distances are positive base-pair offsets. A CpG observed at the target
        position itself is excluded. Missing neighbours (chromosome ends) are NaN in both.
    """
    targets = np.asarray(targets, dtype=np.int64)
    n = len(pos)
    left = np.searchsorted(pos, targets, side="left")  # first observed >= target
    right = np.searchsorted(pos, targets, side="right")  # first observed > target
    offsets = np.arange(k)
    li = left[:, None] - 1 - offsets[::-1][None, :]  # (N, k), farthest .. nearest
    ri = right[:, None] + offsets[None, :]  # (N, k), nearest .. farthest
    idx = np.concatenate([li, ri], axis=1)
    ok = (idx >= 0) & (idx < n)
    safe = np.clip(idx, 0, max(n - 1, 0))
    if n == 0:
        nan = np.full(idx.shape, np.nan, dtype=np.float32)
        return nan, nan.copy()
    states = np.where(ok, state[safe], np.nan).astype(np.float32)
    dists = np.where(ok, np.abs(pos[safe] - targets[:, None]), np.nan).astype(np.float32)
    return states, dists


def neighbour_average(states: np.ndarray, dists: np.ndarray, n: int = 5) -> np.ndarray:
    """Distance-weighted (1/d) mean state of the ``n`` nearest observed CpGs on each side, the
    reference baseline of the MANIFEST (from :func:`knn_features` output with ``k >= n``); 0.5 where
    there is no neighbour at all."""
    k = states.shape[1] // 2
    if n > k:
        raise ValueError(f"neighbour_average needs n <= k ({n} > {k})")
    s = states[:, k - n:k + n].astype(np.float64)
    d = dists[:, k - n:k + n].astype(np.float64)
    ok = ~np.isnan(s)
    w = np.where(ok, 1.0 / np.maximum(np.nan_to_num(d, nan=1.0), 1.0), 0.0)
    total = w.sum(axis=1)
    avg = (np.where(ok, s, 0.0) * w).sum(axis=1) / np.maximum(total, 1e-12)
    return np.where(total > 0, avg, 0.5).astype(np.float32)


def encode_neighbours(states: np.ndarray, dists: np.ndarray, max_dist: float) -> np.ndarray:
    """Model input from :func:`knn_features`: ``(..., 2k, 2)`` float32 with channel 0 the state as
    -1/+1 (0 = no neighbour) and channel 1 the distance as ``log1p(d) / log1p(max_dist)`` clipped to
    1 (1 = no neighbour)."""
    s = np.where(np.isnan(states), 0.0, 2.0 * states - 1.0)
    scale = np.log1p(max_dist)
    d = np.where(np.isnan(dists), 1.0, np.minimum(np.log1p(np.nan_to_num(dists, nan=0.0)) / scale, 1.0))
    return np.stack([s, d], axis=-1).astype(np.float32)


class FastaWindows:
    """Fixed-width DNA windows centred on CpGs, read by random access from an indexed FASTA (pyfaidx).

    The ``.fai`` index is written under the dltk cache (never beside the FASTA, which may be
    read-only); only the requested windows are read, never a whole chromosome. Chromosome names are
    matched without a ``chr`` prefix, so profiles naming ``18`` work with a FASTA naming ``chr18``.
    Positions are 1-based (as in the DeepCpG profiles): the window of width ``w`` around ``p`` holds
    bases ``p - w//2 .. p - w//2 + w - 1``, the CpG's C at index ``w//2``. Bases past a contig end are
    padded with code 0 (all-zero one-hot) and counted in :attr:`padded`.

    Args:
        path: the reference FASTA (plain or bgzip-compressed).
        window: window width in bases.
    """

    def __init__(self, path: str | Path, window: int) -> None:
        import hashlib

        import pyfaidx
        from dltk.data import cache_dir

        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(self.path, "reference FASTA not found")
        if window < 1:
            raise DataError(self.path, f"DNA window must be >= 1 base, got {window}")
        self.window = int(window)
        st = self.path.stat()
        key = hashlib.sha256(f"{self.path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:24]
        index = cache_dir("fai") / f"{key}-{self.path.name}.fai"
        try:
            self.fasta = pyfaidx.Fasta(str(self.path), indexname=str(index), as_raw=True,
                                       sequence_always_upper=True, duplicate_action="first")
        except (pyfaidx.FastaIndexingError, pyfaidx.UnsupportedCompressionFormat, ValueError, OSError) as exc:
            raise DataError(self.path, f"cannot index FASTA ({' '.join(str(exc).split())})") from exc
        self.names = {normalise_chrom(name): name for name in self.fasta.keys()}  # noqa: SIM118 (iterating Fasta yields records)
        self.padded = 0

    def contig(self, chrom: str) -> str:
        name = self.names.get(normalise_chrom(chrom))
        if name is None:
            shown = ", ".join(list(self.names)[:8])
            raise DataError(self.path, f"chromosome {chrom!r} of the CpG profiles is not in the FASTA "
                                       f"(it has: {shown}{', ...' if len(self.names) > 8 else ''})")
        return name

    def codes(self, chrom: str, positions: np.ndarray) -> np.ndarray:
        """``(len(positions), window)`` uint8 IUPAC codes (:mod:`dltk_genomics.encoding`)."""
        from dltk_genomics.encoding import INVALID, encode

        name = self.contig(chrom)
        record = self.fasta[name]
        length = len(record)
        w = self.window
        out = np.zeros((len(positions), w), dtype=np.uint8)
        for i, p in enumerate(np.asarray(positions, dtype=np.int64)):
            start = int(p) - 1 - w // 2  # 0-based
            lo, hi = max(start, 0), min(start + w, length)
            if hi > lo:
                codes = encode(record[lo:hi])
                codes[codes == INVALID] = 15  # non-IUPAC bytes in a reference: treat as N
                out[i, lo - start:hi - start] = codes
            if lo != start or hi != start + w:
                self.padded += 1
        return out
