"""Bad sequence, interval, methylation and AnnData files for the genomics plugin."""

from __future__ import annotations

import gzip

import numpy as np
from catalogue import TRAIN_TAIL, Case, Context

RNG = np.random.default_rng(7)


def _dna(n: int, length: int = 60) -> list[str]:
    return ["".join(RNG.choice(list("ACGT"), length)) for _ in range(n)]


def _fasta(records: list[tuple[str, str]]) -> str:
    return "".join(f">{h}\n{s}\n" for h, s in records)


def _rbp(pos_train: str, *extra: str, name: str = "pos.fa"):
    """rbp_binding on a (bad) positive training FASTA and valid other files."""
    def build(ctx: Context) -> list[str]:
        files = {"train_positive": ctx.write(name, pos_train),
                 "train_negative": ctx.write("neg.fa", _fasta([(f"n{i}", s) for i, s in enumerate(_dna(40))])),
                 "test_positive": ctx.write("tpos.fa", _fasta([(f"t{i}", s) for i, s in enumerate(_dna(20))])),
                 "test_negative": ctx.write("tneg.fa", _fasta([(f"u{i}", s) for i, s in enumerate(_dna(20))]))}
        args = [arg for key, path in files.items() for arg in (f"--data.{key}", str(path))]
        return ["train", "--plugin", "genomics", "--task", "rbp_binding", *args, *extra, *TRAIN_TAIL]
    return build


def _deepbind(train: str | bytes, name: str = "x_AC.seq.gz", gz: bool = True):
    def build(ctx: Context) -> list[str]:
        data = train.encode() if isinstance(train, str) else train
        path = ctx.write(name, gzip.compress(data) if gz else data)
        test = ctx.write("x_B.seq.gz", gzip.compress(("FoldID\tEventID\tseq\tBound\n" + "".join(
            f"B\tt{i}\t{s}\t{i % 2}\n" for i, s in enumerate(_dna(20, 101)))).encode()))
        return ["train", "--plugin", "genomics", "--task", "tf_binding", "--data.train_path", str(path),
                "--data.test_path", str(test), *TRAIN_TAIL]
    return build


def _truncated_deepbind(ctx: Context) -> list[str]:
    text = "FoldID\tEventID\tseq\tBound\n" + "".join(f"A\tp{i}\t{s}\t1\n" for i, s in enumerate(_dna(400, 101)))
    path = ctx.truncated_gzip("cut_AC.seq.gz", text)
    return ["train", "--plugin", "genomics", "--task", "tf_binding", "--data.train_path", str(path), *TRAIN_TAIL]


def _intervals(bed_text: str | None, fasta_text: str | None = None):
    def build(ctx: Context) -> list[str]:
        from dltk_genomics.intervals import write_synthetic_genome

        fasta, bed = write_synthetic_genome(ctx.tmp / "genome", n_contigs=3, contig_length=20_000,
                                            peaks_per_contig=20)
        if fasta_text is not None:
            fasta = ctx.write("genome/broken.fa", fasta_text)
        if bed_text is not None:
            bed = ctx.write("peaks-bad.bed", bed_text)
        return ["train", "--plugin", "genomics", "--task", "intervals", "--data.fasta", str(fasta),
                "--data.bed", str(bed), "--data.val_contigs", "chr2", "--data.test_contigs", "chr3", *TRAIN_TAIL]
    return build


def _methylation(rows: list[str]):
    def build(ctx: Context) -> list[str]:
        good = ctx.write("cellA.tsv", "".join(f"18\t{100 + 50 * i}\t{i % 2}\n" for i in range(300)))
        bad = ctx.write("cellB.tsv", "".join(r + "\n" for r in rows))
        return ["train", "--plugin", "genomics", "--task", "methylation", "--data.paths", f"{good},{bad}",
                *TRAIN_TAIL]
    return build


def _h5ad_without_label(ctx: Context) -> list[str]:
    import anndata
    import pandas as pd

    obs = pd.DataFrame({"cell_type": ["a", "b"] * 30, "batch": ["x"] * 60}, index=[f"c{i}" for i in range(60)])
    adata = anndata.AnnData(RNG.random((60, 12)).astype(np.float32), obs=obs)
    path = ctx.tmp / "cells.h5ad"
    adata.write_h5ad(path)
    return ["train", "--plugin", "genomics", "--task", "expression", "--data.path", str(path),
            "--data.label_key", "label", *TRAIN_TAIL]


def _predict_sequences(content: str):
    def build(ctx: Context) -> list[str]:
        src = ctx.write("query.fa", content)
        return ["predict", "--run", str(ctx.runs("genomics")), "--input", str(src), "--output", "scores.csv"]
    return build


GOOD = [(f"p{i}", s) for i, s in enumerate(_dna(40))]

CASES = [
    Case("fasta-duplicate-headers", _rbp(_fasta(GOOD + [("p3", _dna(1)[0])]), "--data.duplicates", "error"),
         ("pos.fa", "duplicate FASTA header 'p3'"), plugin="genomics"),
    Case("fasta-only-non-iupac", _rbp(_fasta([(f"p{i}", "ACGTJ" * 12) for i in range(5)])),
         ("pos.fa", "no usable sequence", "non-IUPAC"), plugin="genomics"),
    Case("fasta-zero-length-records", _rbp(_fasta([(f"p{i}", "") for i in range(5)])),
         ("pos.fa", "no usable sequence"), plugin="genomics"),
    Case("fasta-text-before-header", _rbp("ACGT\n" + _fasta(GOOD)), ("pos.fa", "row 1", "before the first '>'"),
         plugin="genomics"),
    Case("fasta-empty", _rbp(""), ("pos.fa", "empty"), plugin="genomics"),
    Case("fasta-some-non-iupac-skipped", _rbp(_fasta(GOOD + [("bad", "ACGT!!ACGT" * 6)])),
         ("pos.fa", "skipped 1 sequence with non-IUPAC characters"), plugin="genomics", skip=True),
    Case("deepbind-wrong-header", _deepbind("id\tseq\n1\tACGT\n"), ("x_AC.seq.gz", "DeepBind header"),
         plugin="genomics"),
    Case("deepbind-label-not-binary", _deepbind("FoldID\tEventID\tseq\tBound\nA\tp1\tACGTACGT\t2\n"),
         ("x_AC.seq.gz", "row 2", "0 or 1"), plugin="genomics"),
    Case("deepbind-gzip-truncated", _truncated_deepbind, ("cut_AC.seq.gz", "truncated or corrupt"),
         plugin="genomics"),
    Case("bed-all-on-absent-contigs", _intervals("chrZ\t100\t200\nchrQ\t5\t50\n"),
         ("peaks-bad.bed", "no usable region"), plugin="genomics"),
    Case("bed-start-after-end", _intervals("chr1\t300\t200\n"), ("peaks-bad.bed", "row 1", "start < end"),
         plugin="genomics"),
    Case("bed-non-integer-coordinates", _intervals("chr1\tten\t200\n"), ("peaks-bad.bed", "row 1", "integers"),
         plugin="genomics"),
    Case("fasta-reference-not-fasta", _intervals(None, "this is not a genome\n"), ("broken.fa",),
         plugin="genomics"),
    Case("methylation-non-binary-state", _methylation(["18\t10\t1", "18\t20\t0.5"]),
         ("cellB.tsv", "row 2", "non-binary methylation state '0.5'"), plugin="genomics"),
    Case("methylation-unsorted-positions", _methylation(["18\t10\t1", "18\t30\t0", "18\t20\t1"]),
         ("cellB.tsv", "row 3", "not sorted"), plugin="genomics"),
    Case("methylation-missing-file", lambda ctx: ["train", "--plugin", "genomics", "--task", "methylation",
                                                  "--data.paths", "nowhere.tsv", *TRAIN_TAIL],
         ("nowhere.tsv", "not found"), plugin="genomics"),
    Case("h5ad-without-label-key", _h5ad_without_label, ("cells.h5ad", "'label'", "cell_type"), plugin="genomics"),
    Case("h5ad-not-anndata", lambda ctx: ["train", "--plugin", "genomics", "--task", "expression", "--data.path",
                                          str(ctx.write("fake.h5ad", "not hdf5")), *TRAIN_TAIL],
         ("fake.h5ad", "AnnData"), plugin="genomics"),
    Case("predict-sequences-empty", _predict_sequences(""), ("query.fa", "empty"), plugin="genomics"),
]
