"""Genomic intervals on a genome the test generates: pyfaidx index in the cache (never beside a
read-only FASTA), contig aliases, BED rows past contig ends / on absent contigs, centred windows,
GC-matched background that avoids positives, held-out chromosomes."""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from dltk.errors import ConfigError, DataError
from dltk_genomics import encoding
from dltk_genomics.intervals import (
    Genome,
    background_windows,
    peak_windows,
    read_bed,
    split_by_contig,
    window_codes,
    write_synthetic_genome,
)


@pytest.fixture(scope="module")
def genome_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("genome")
    fasta, bed = write_synthetic_genome(folder, n_contigs=3, contig_length=30_000, peaks_per_contig=30)
    os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR)  # read-only, like the data mirror
    yield fasta, bed
    os.chmod(folder, stat.S_IRWXU)


def test_index_goes_to_cache_and_windows_are_exact(genome_files: tuple[Path, Path]) -> None:
    fasta, _ = genome_files
    g = Genome(fasta)
    assert not fasta.with_suffix(".fa.fai").exists()
    assert g.index_path().is_file() and str(g.index_path()).startswith(os.environ["DLTK_CACHE"])
    assert g.lengths == {"chr1": 30_000, "chr2": 30_000, "chr3": 30_000}
    lines = fasta.read_text().splitlines()
    chr2 = "".join(lines[lines.index(">chr2") + 1:lines.index(">chr3")])
    assert g.fetch("chr2", 12_345, 12_500) == chr2[12_345:12_500]  # spans several 60-base lines
    assert np.array_equal(g.codes("chr2", 0, 300), encoding.encode(chr2[:300]))


def test_contig_aliases(genome_files: tuple[Path, Path]) -> None:
    g = Genome(genome_files[0])
    assert g.resolve("chr1") == "chr1" and g.resolve("1") == "chr1" and g.resolve("CHR9") is None
    assert g.resolve("MT") is None


def test_bed_skips_and_errors(genome_files: tuple[Path, Path], tmp_path: Path) -> None:
    g = Genome(genome_files[0])
    bed = tmp_path / "p.bed"
    bed.write_text("# comment\nchr1\t1000\t1060\tp1\t5\n2\t2000\t2100\n"
                   "chr1\t29990\t30010\tpast_end\nchrX\t10\t20\nchrUn\t10\t20\nchr3\t5\t45\tnear_start\n")
    regions, skipped, summits = read_bed(bed, g)
    assert list(regions.contigs) == ["chr1", "chr2", "chr3"]  # "2" resolved to chr2
    assert skipped.counts == {"ending past their contig end": 1, "on contigs absent from the FASTA": 2}
    assert skipped.first["ending past their contig end"] == 4
    assert regions.scores[0] == 5 and np.isnan(regions.scores[1])
    windows = peak_windows(regions, summits, 100, g, skipped)
    assert list(windows.starts) == [980, 2000] and list(windows.ends - windows.starts) == [100, 100]
    assert skipped.counts["whose 100-bp window runs off the contig end"] == 1
    for text, message in (("chr1\t10\n", "at least 3 fields"), ("chr1\tx\t20\n", "integers"),
                          ("chr1\t30\t20\n", "start < end")):
        bad = tmp_path / "bad.bed"
        bad.write_text(text)
        with pytest.raises(DataError, match=message):
            read_bed(bad, g)
    empty = tmp_path / "empty.bed"
    empty.write_text("track name=x\n")
    with pytest.raises(DataError, match="empty BED"):
        read_bed(empty, g)
    absent = tmp_path / "absent.bed"
    absent.write_text("chrZ\t1\t10\n")
    with pytest.raises(DataError, match="no usable region"):
        read_bed(absent, g)


def test_narrowpeak_summit_centres_window(genome_files: tuple[Path, Path], tmp_path: Path) -> None:
    g = Genome(genome_files[0])
    bed = tmp_path / "p.narrowPeak"
    bed.write_text("chr1\t1000\t1400\tp\t0\t.\t5\t1\t1\t300\n")
    regions, skipped, summits = read_bed(bed, g)
    windows = peak_windows(regions, summits, 50, g, skipped)
    assert windows.starts[0] == 1300 - 25


def test_background_is_gc_matched_and_avoids_positives(genome_files: tuple[Path, Path]) -> None:
    fasta, bed = genome_files
    g = Genome(fasta)
    regions, skipped, summits = read_bed(bed, g)
    assert len(regions) == 90
    pos = peak_windows(regions, summits, 100, g, skipped)
    train = pos.subset(np.flatnonzero(pos.contigs != "chr3"))
    neg = background_windows(g, train, ["chr1", "chr2"], 100, ratio=2.0, seed=0, exclude=pos)
    assert len(neg) == 2 * len(train)
    assert set(neg.contigs) <= {"chr1", "chr2"}
    for c, s, e in zip(neg.contigs, neg.starts, neg.ends):
        same = pos.contigs == c
        assert not np.any((pos.starts[same] < e) & (pos.ends[same] > s))
    gc_pos = encoding.gc_fraction(window_codes(g, train))
    gc_neg = encoding.gc_fraction(window_codes(g, neg))
    assert abs(np.nanmean(gc_pos) - np.nanmean(gc_neg)) < 0.02
    assert abs(np.nanstd(gc_pos) - np.nanstd(gc_neg)) < 0.02
    again = background_windows(g, train, ["chr1", "chr2"], 100, ratio=2.0, seed=0, exclude=pos)
    assert np.array_equal(again.starts, neg.starts)


def test_split_by_contig(genome_files: tuple[Path, Path]) -> None:
    g = Genome(genome_files[0])
    assert split_by_contig(g, ["2"], ["chr3"]) == {"val": ["chr2"], "test": ["chr3"], "train": ["chr1"]}
    with pytest.raises(ConfigError, match="contig 'chr8' is not in genome.fa"):
        split_by_contig(g, ["chr8"], ["chr3"])
    with pytest.raises(ConfigError, match="both"):
        split_by_contig(g, ["chr3"], ["3"])


def test_unreadable_fasta_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        Genome(tmp_path / "missing.fa")
    dup = tmp_path / "dup.fa"
    dup.write_text(">a\nACGT\n>a\nACGT\n")
    with pytest.raises(DataError, match="cannot index FASTA"):
        Genome(dup)
    gz = tmp_path / "g.fa.gz"
    gz.write_bytes(gzip.compress(b">a\nACGT\n"))
    with pytest.raises(DataError, match="compressed FASTA|cannot index FASTA"):
        Genome(gz)
