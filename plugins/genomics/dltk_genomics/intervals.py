"""Genomic intervals: an indexed reference FASTA (pyfaidx) + a BED of peaks -> labelled windows.

* :class:`Genome` reads windows by random access through pyfaidx. Its ``.fai`` index is written
  under the dltk cache (``$DLTK_CACHE/genomics/fai/``), never beside the FASTA (which may be on a
  read-only mirror), and nothing but the index is held in memory.
* Contig names are matched with aliases: ``chr18`` <-> ``18``, ``chrM`` <-> ``MT`` <-> ``M``
  (:meth:`Genome.resolve`), so a UCSC-style BED works on an Ensembl-style FASTA and back.
* :func:`read_bed` validates rows (one-line :class:`~dltk.errors.DataError` for malformed ones) and
  counts, then skips, rows on contigs absent from the FASTA and rows that end past their contig.
* :func:`peak_windows`: fixed-width windows centred on each peak (on the summit for narrowPeak
  files, column 10); a window that would run off its contig is skipped and counted.
* :func:`background_windows`: negatives sampled uniformly from the same contigs, rejected when they
  overlap any positive window or hold more than ``max_n`` ambiguous bases, and **GC-matched**: the
  positives' GC fractions are binned (bins of 0.02) and each bin receives ``ratio`` times as many
  negatives; a bin the sampler cannot fill borrows from its nearest bins (counted and reported).
* Splits are by held-out chromosomes (:func:`split_by_contig`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from dltk.errors import ConfigError, DataError

from dltk_genomics import encoding
from dltk_genomics.sequences import SkipReport, open_text

log = logging.getLogger("dltk.genomics")

GC_BIN = 0.02


def _aliases(name: str) -> list[str]:
    bare = name[3:] if name.lower().startswith("chr") else name
    names = [name, bare, "chr" + bare]
    if bare.upper() in ("M", "MT"):
        names += ["chrM", "MT", "M", "chrMT"]
    return names


class Genome:
    """A reference FASTA opened with pyfaidx (index in the cache dir); windows by random access.

    The file handle is opened lazily and dropped when pickled, so the object can be sent to
    DataLoader worker processes.

    Args:
        path: FASTA file (plain, or bgzip-compressed as pyfaidx supports).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise DataError(path, "reference FASTA not found")
        self._fasta: Any = None
        fasta = self._open()
        self.lengths: dict[str, int] = {name: int(rec.rlen) for name, rec in fasta.faidx.index.items()}
        if not self.lengths:
            raise DataError(self.path, "empty FASTA: no contigs")
        self._alias: dict[str, str] = {}
        for name in self.lengths:
            for alias in _aliases(name):
                self._alias.setdefault(alias, name)
        for name in self.lengths:  # exact names win over aliases
            self._alias[name] = name

    def index_path(self) -> Path:
        from dltk.data import cache_dir

        st = self.path.stat()
        key = hashlib.sha256(f"{self.path}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
        return cache_dir("genomics", "fai") / f"{key}-{self.path.name}.fai"

    def _open(self) -> Any:
        if self._fasta is None:
            import pyfaidx

            try:
                self._fasta = pyfaidx.Fasta(str(self.path), indexname=str(self.index_path()), as_raw=True,
                                            sequence_always_upper=False, rebuild=False)
            except ImportError as exc:  # pyfaidx reads bgzip through Biopython
                raise DataError(self.path, f"compressed FASTA: {exc} (or decompress the file: plain gzip "
                                "cannot be read by random access)") from exc
            except (pyfaidx.FastaIndexingError, ValueError, OSError) as exc:
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise DataError(self.path, f"cannot index FASTA with pyfaidx: {message}") from exc
        return self._fasta

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fasta"] = None
        return state

    def resolve(self, name: str) -> str | None:
        """The FASTA's name for contig ``name`` (exact, or an alias), or None when absent."""
        if name in self._alias:
            return self._alias[name]
        for alias in _aliases(name):
            if alias in self._alias:
                return self._alias[alias]
        return None

    def fetch(self, contig: str, start: int, end: int) -> str:
        """Bases ``[start, end)`` (0-based) of ``contig`` as written in the file."""
        return self._open()[contig][start:end]

    def codes(self, contig: str, start: int, end: int) -> np.ndarray:
        """Bases ``[start, end)`` as uint8 codes (:mod:`dltk_genomics.encoding`); non-IUPAC -> N."""
        codes = encoding.encode(self.fetch(contig, start, end))
        codes[codes == encoding.INVALID] = 15
        return codes


@dataclass
class Regions:
    """Intervals on a genome (contig names as in the FASTA), 0-based half-open."""

    contigs: np.ndarray  # str
    starts: np.ndarray  # int64
    ends: np.ndarray  # int64
    scores: np.ndarray  # float (NaN when absent)
    rows: np.ndarray  # int64, 1-based line in the BED (0 for sampled regions)
    names: list[str]

    def __len__(self) -> int:
        return len(self.starts)

    def subset(self, index: np.ndarray) -> Regions:
        index = np.asarray(index, dtype=np.int64)
        return Regions(self.contigs[index], self.starts[index], self.ends[index], self.scores[index],
                       self.rows[index], [self.names[i] for i in index])

    @staticmethod
    def concat(parts: Sequence[Regions]) -> Regions:
        return Regions(np.concatenate([p.contigs for p in parts]), np.concatenate([p.starts for p in parts]),
                       np.concatenate([p.ends for p in parts]), np.concatenate([p.scores for p in parts]),
                       np.concatenate([p.rows for p in parts]), [n for p in parts for n in p.names])


def _bed_fields(path: str | Path, row: int, line: str) -> tuple[list[str], int, int]:
    """The fields of a BED row and its start and end; a DataError naming the row when malformed."""
    fields = line.split("\t") if "\t" in line else line.split()
    if len(fields) < 3:
        raise DataError(path, f"a BED row needs at least 3 fields (chrom, start, end), got {len(fields)}",
                        row=row)
    try:
        start, end = int(fields[1]), int(fields[2])
    except ValueError:
        raise DataError(path, f"start/end must be integers, got {fields[1]!r}, {fields[2]!r}",
                        row=row) from None
    if start < 0 or end <= start:
        raise DataError(path, f"need 0 <= start < end, got start={start}, end={end}", row=row)
    return fields, start, end


def _bed_score_and_summit(fields: list[str], start: int, end: int) -> tuple[float, int]:
    """``score`` (column 5; NaN when absent or not a number) and the absolute narrowPeak summit
    (column 10; -1 when absent, not an integer or outside the region)."""
    score = np.nan
    if len(fields) >= 5:
        try:
            score = float(fields[4])
        except ValueError:
            score = np.nan
    summit = -1
    if len(fields) >= 10:
        try:
            offset = int(fields[9])
            summit = start + offset if 0 <= offset < end - start else -1
        except ValueError:
            summit = -1
    return score, summit


def read_bed(path: str | Path, genome: Genome) -> tuple[Regions, SkipReport, np.ndarray]:
    """Read a BED (BED3+; ``score`` from column 5, narrowPeak summit from column 10 when present).

    Returns:
        the usable regions (contigs renamed to the FASTA's names), the counted skips, and the
        summit position of each region (absolute, -1 when the file gives none).

    Raises:
        DataError: an empty file, or a malformed row (too few fields, non-integer or negative
            coordinates, end <= start).
    """
    skipped = SkipReport(str(path))
    contigs: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    scores: list[float] = []
    rows: list[int] = []
    names: list[str] = []
    summits: list[int] = []
    absent: dict[str, int] = {}
    any_row = False
    with open_text(path) as fh:
        for row, line in enumerate(fh, start=1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            any_row = True
            fields, start, end = _bed_fields(path, row, line)
            contig = genome.resolve(fields[0])
            if contig is None:
                absent.setdefault(fields[0], row)
                skipped.add("on contigs absent from the FASTA", row)
                continue
            if end > genome.lengths[contig]:
                skipped.add("ending past their contig end", row)
                continue
            score, summit = _bed_score_and_summit(fields, start, end)
            contigs.append(contig)
            starts.append(start)
            ends.append(end)
            scores.append(score)
            rows.append(row)
            names.append(fields[3] if len(fields) >= 4 else f"{fields[0]}:{start}-{end}")
            summits.append(summit)
    if absent:
        log.warning("%s: contigs absent from %s: %s", path, genome.path.name, ", ".join(list(absent)[:10]))
    if not any_row:
        raise DataError(path, "empty BED file: no regions")
    if not starts:
        raise DataError(path, "no usable region: " + "; ".join(skipped.lines()))
    regions = Regions(np.asarray(contigs, dtype=object), np.asarray(starts, np.int64), np.asarray(ends, np.int64),
                      np.asarray(scores, np.float64), np.asarray(rows, np.int64), names)
    return regions, skipped, np.asarray(summits, np.int64)


def peak_windows(regions: Regions, summits: np.ndarray, width: int, genome: Genome,
                 skipped: SkipReport) -> Regions:
    """Windows of ``width`` centred on each region's summit (or midpoint); those that would run off
    their contig are skipped and counted in ``skipped``."""
    centre = np.where(summits >= 0, summits, (regions.starts + regions.ends) // 2)
    starts = centre - width // 2
    ends = starts + width
    lengths = np.array([genome.lengths[c] for c in regions.contigs], dtype=np.int64)
    fits = (starts >= 0) & (ends <= lengths)
    for row in regions.rows[~fits]:
        skipped.add(f"whose {width}-bp window runs off the contig end", int(row))
    windows = regions.subset(np.flatnonzero(fits))
    windows.starts, windows.ends = starts[fits], ends[fits]
    return windows


def window_codes(genome: Genome, regions: Regions) -> np.ndarray:
    """(N, width) codes of equal-width regions, read one by one through the index."""
    width = int(regions.ends[0] - regions.starts[0]) if len(regions) else 0
    out = np.zeros((len(regions), width), dtype=np.uint8)
    for i, (c, s, e) in enumerate(zip(regions.contigs, regions.starts, regions.ends)):
        out[i] = genome.codes(str(c), int(s), int(e))
    return out


class _Overlaps:
    """Fast 'does [s, e) overlap any positive window on this contig' queries."""

    def __init__(self, regions: Regions) -> None:
        self.by_contig: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for contig in set(regions.contigs.tolist()):
            sel = regions.contigs == contig
            order = np.argsort(regions.starts[sel])
            starts = regions.starts[sel][order]
            ends = np.maximum.accumulate(regions.ends[sel][order])
            self.by_contig[contig] = (starts, ends)

    def any(self, contig: str, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        if contig not in self.by_contig:
            return np.zeros(len(starts), dtype=bool)
        pos_starts, pos_ends_cummax = self.by_contig[contig]
        # positives starting before each query end; the furthest end among them decides
        k = np.searchsorted(pos_starts, ends, side="left")
        reach = np.where(k > 0, pos_ends_cummax[np.maximum(k - 1, 0)], -1)
        return reach > starts


def _gc_quota(genome: Genome, positives: Regions, ratio: float, n_bins: int,
              rng: np.random.Generator) -> np.ndarray:
    """Background windows wanted per GC bin: ``ratio`` times the positives' count in that bin,
    stochastically rounded."""
    pos_gc = encoding.gc_fraction(window_codes(genome, positives))
    pos_bins = np.clip(np.nan_to_num(pos_gc, nan=0.5) / GC_BIN, 0, n_bins - 1).astype(np.int64)
    need = np.bincount(pos_bins, minlength=n_bins).astype(np.float64) * ratio
    return np.floor(need + rng.random(n_bins) * (need % 1 > 0)).astype(np.int64)  # stochastic rounding


def _gc_bin(genome: Genome, contig: str, start: int, width: int, max_n: float, n_bins: int) -> int | None:
    """The GC bin of a candidate window, or None when it holds too many ambiguous bases."""
    codes = genome.codes(contig, start, start + width)
    ambiguous = np.count_nonzero((codes != 1) & (codes != 2) & (codes != 4) & (codes != 8))
    if ambiguous > max_n * width:
        return None
    return int(min(encoding.gc_fraction(codes)[0] / GC_BIN, n_bins - 1))


def _borrow_nearest(need: np.ndarray, spare: list[tuple[str, int, int]],
                    chosen: dict[int, list[tuple[str, int]]]) -> None:
    """Fill the GC bins still short (``need``) from the spare candidates of the nearest bins."""
    spare_bins = np.array([b for _, _, b in spare]) if spare else np.zeros(0, np.int64)
    used = np.zeros(len(spare), dtype=bool)
    for b in np.flatnonzero(need > 0):
        for _ in range(int(need[b])):
            free = np.flatnonzero(~used)
            if not free.size:
                break
            j = free[np.argmin(np.abs(spare_bins[free] - b))]
            used[j] = True
            chosen[b].append(spare[j][:2])


def background_windows(genome: Genome, positives: Regions, contigs: Iterable[str], width: int, ratio: float,
                       seed: int, max_n: float = 0.1, exclude: Regions | None = None,
                       max_draws: int = 200) -> Regions:
    """GC-matched background windows from ``contigs`` (see the module docstring).

    Args:
        genome: the reference.
        positives: the positive windows whose GC distribution is matched (same width).
        contigs: contigs to sample from (the split's own).
        width: window width.
        ratio: negatives per positive.
        seed: sampling seed.
        max_n: largest fraction of ambiguous (non-ACGT) bases a background window may hold.
        exclude: windows no background window may overlap (default: ``positives``).
        max_draws: candidates drawn per wanted negative before giving up on an exact match.
    """
    contigs = [c for c in contigs if genome.lengths.get(c, 0) >= width]
    wanted = round(ratio * len(positives))
    if wanted == 0 or not contigs:
        return _background_regions([], width)
    rng = np.random.default_rng(seed)
    overlaps = _Overlaps(exclude if exclude is not None else positives)
    n_bins = round(1 / GC_BIN) + 1
    need = _gc_quota(genome, positives, ratio, n_bins, rng)
    sizes = np.array([genome.lengths[c] - width + 1 for c in contigs], dtype=np.float64)
    prob = sizes / sizes.sum()
    chosen: dict[int, list[tuple[str, int]]] = {b: [] for b in range(n_bins)}
    spare: list[tuple[str, int, int]] = []
    batch = max(256, int(need.sum()))
    draws = 0
    while (need > 0).any() and draws < max_draws * max(int(need.sum()), 1):
        which = rng.choice(len(contigs), size=batch, p=prob)
        for ci in np.unique(which):
            contig = contigs[ci]
            k = int((which == ci).sum())
            starts = rng.integers(0, genome.lengths[contig] - width + 1, size=k)
            starts = starts[~overlaps.any(contig, starts, starts + width)]
            for s in starts:
                b = _gc_bin(genome, contig, int(s), width, max_n, n_bins)
                if b is None:
                    continue
                if need[b] > 0:
                    chosen[b].append((contig, int(s)))
                    need[b] -= 1
                elif len(spare) < 4 * wanted:
                    spare.append((contig, int(s), b))
        draws += batch
    short = int(need.sum())
    if short:
        _borrow_nearest(need, spare, chosen)
        log.warning("background: %d of %d windows could not be GC-matched exactly; taken from the nearest GC "
                    "bins", short, wanted)
    picks = [p for b in range(n_bins) for p in chosen[b]]
    if not picks:
        raise DataError(genome.path, "could not sample any background window (contigs too short or fully "
                        "covered by positives)")
    order = rng.permutation(len(picks))
    return _background_regions([picks[i] for i in order], width)


def _background_regions(picks: list[tuple[str, int]], width: int) -> Regions:
    """Regions of the sampled ``(contig, start)`` windows, named ``bg:<contig>:<start>-<end>``."""
    starts = np.array([s for _, s in picks], dtype=np.int64)
    return Regions(np.asarray([c for c, _ in picks], dtype=object), starts, starts + width,
                   np.full(len(picks), np.nan), np.zeros(len(picks), np.int64),
                   [f"bg:{c}:{s}-{s + width}" for c, s in picks])


def parse_contigs(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


def split_by_contig(genome: Genome, val_contigs: Sequence[str], test_contigs: Sequence[str]
                    ) -> dict[str, list[str]]:
    """Contigs of each split: the named validation and test contigs (aliases resolved), the rest
    for training.

    Raises:
        ConfigError: a named contig is absent from the FASTA, or one is in both lists.
    """
    resolved: dict[str, list[str]] = {}
    for part, names in (("val", val_contigs), ("test", test_contigs)):
        out = []
        for name in names:
            contig = genome.resolve(name)
            if contig is None:
                shown = ", ".join(list(genome.lengths)[:10])
                raise ConfigError(f"data.{part}_contigs: contig {name!r} is not in {genome.path.name} "
                                  f"(contigs: {shown}{', ...' if len(genome.lengths) > 10 else ''})")
            out.append(contig)
        resolved[part] = out
    both = set(resolved["val"]) & set(resolved["test"])
    if both:
        raise ConfigError(f"contigs {sorted(both)} are in both data.val_contigs and data.test_contigs")
    held = set(resolved["val"]) | set(resolved["test"])
    resolved["train"] = [c for c in genome.lengths if c not in held]
    return resolved


def write_synthetic_genome(folder: str | Path, n_contigs: int = 3, contig_length: int = 50_000,
                           peaks_per_contig: int = 60, motif: str = "CCATATATGG", seed: int = 0,
                           bed_prefix: str = "chr") -> tuple[Path, Path]:
    """Write a small seeded genome ``genome.fa`` (contigs ``chr1..chrN``, 60 bases per line, GC
    varying by kilobase block, soft-masked blocks and runs of N) and ``peaks.bed`` whose peaks carry
    ``motif`` (either strand) near their centre: a task a motif-finding model can learn and a
    GC-only model cannot. Used by the tests and the plugin contract check.

    Args:
        folder: where to write the two files.
        n_contigs: contigs.
        contig_length: bases per contig.
        peaks_per_contig: planted peaks per contig (non-overlapping, away from the ends).
        motif: the planted site.
        seed: generator seed.
        bed_prefix: contig-name prefix used in the BED (``""`` writes ``1, 2, ...``: aliases).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    letters = np.array(list("ACGT"))
    rc_motif = encoding.decode(encoding.reverse_complement(encoding.encode(motif)))
    fasta_lines: list[str] = []
    bed_lines = ["track name=planted description=\"synthetic peaks\""]
    for c in range(1, n_contigs + 1):
        blocks = []
        for _ in range(int(np.ceil(contig_length / 1000))):
            gc = rng.uniform(0.3, 0.7)
            p = np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])
            blocks.append(letters[rng.choice(4, size=1000, p=p)])
        seq = np.concatenate(blocks)[:contig_length].astype("<U1")
        slots = rng.permutation(np.arange(1, contig_length // 400 - 1))[:peaks_per_contig]
        for slot in np.sort(slots):
            centre = int(slot * 400 + 200 + rng.integers(-20, 21))
            site = motif if rng.random() < 0.5 else rc_motif
            start = centre - len(site) // 2
            seq[start:start + len(site)] = list(site)
            bed_lines.append(f"{bed_prefix}{c}\t{centre - 30}\t{centre + 30}\tpeak_{c}_{slot}\t"
                             f"{int(rng.integers(100, 1000))}")
        for _ in range(3):  # soft-masked kilobases and a run of N, away from the peaks' effect
            s = int(rng.integers(0, contig_length - 1000))
            seq[s:s + 1000] = np.char.lower(seq[s:s + 1000])
        s = int(rng.integers(0, contig_length - 200))
        seq[s:s + 50] = "N"
        text = "".join(seq.tolist())
        fasta_lines.append(f">chr{c}")
        fasta_lines.extend(text[i:i + 60] for i in range(0, len(text), 60))
    fasta = folder / "genome.fa"
    bed = folder / "peaks.bed"
    fasta.write_text("\n".join(fasta_lines) + "\n")
    bed.write_text("\n".join(bed_lines) + "\n")
    return fasta, bed
