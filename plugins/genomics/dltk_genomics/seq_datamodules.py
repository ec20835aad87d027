"""Datamodules of the sequence tasks: ``tf_binding`` (DeepBind ENCODE), ``rbp_binding`` (labelled FASTA,
PUM2 by default) and ``intervals`` (reference FASTA + BED).

Every batch is ``{"x": (B, L) uint8 IUPAC codes, "y": (B, 1) float label}`` (one task, ``bound``);
the model one-hot encodes on its device. Sequences of other lengths than ``seq_length`` are
centre-cropped or centre-padded with "no base" (code 0), counted and reported
(:func:`dltk_genomics.encoding.fit_length`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from dltk.base import INPUT, TARGET, BaseDataModule, TensorDictDataset
from dltk.data import RemoteFile, fetch
from dltk.data.splits import random_split
from dltk.errors import ConfigError, DataError
from dltk.serving import RequestRows
from torch.utils.data import DataLoader, Dataset

from dltk_genomics import encoding, intervals, sequences, serving
from dltk_genomics.shuffle import shuffle_sequences

log = logging.getLogger("dltk.genomics")

TASK = "bound"

_DEEPRAM = "https://raw.githubusercontent.com/MedChaabane/deepRAM/master/datasets/ChIP-seq/{}"
_PYSSTER = "https://raw.githubusercontent.com/budach/pysster/master/tutorials/rbp/data/{}"

FILES: dict[str, RemoteFile] = {
    "srf_train": RemoteFile("genomics/deepbind-encode/SRF_H1-hESC_SRF_HudsonAlpha_AC.seq.gz",
                            _DEEPRAM.format("SRF_H1-hESC_SRF_HudsonAlpha_AC.seq.gz"),
                            "33e46d27403bfd97ea2c045066481277f65d5652b957207ad4ed7afacfac786c", 152258),
    "srf_test": RemoteFile("genomics/deepbind-encode/SRF_H1-hESC_SRF_HudsonAlpha_B.seq.gz",
                           _DEEPRAM.format("SRF_H1-hESC_SRF_HudsonAlpha_B.seq.gz"),
                           "64c03d38d25206d0d7771aa4c4d8a1135c1dde859a2cb3574fb4b9bc47e81cd3", 34307),
    "pum2_train_positive": RemoteFile("genomics/pysster-pum2/pum2.train.positive.fasta",
                                      _PYSSTER.format("pum2.train.positive.fasta"),
                                      "b30b96c49f4cfe4fffbeef68b8da9c0968fb81d9bbc6b9694a0bdd24021a414b", 901982),
    "pum2_train_negative": RemoteFile("genomics/pysster-pum2/pum2.train.negative.fasta",
                                      _PYSSTER.format("pum2.train.negative.fasta"),
                                      "fc1d5ce784d0e514d9ef8e41532a6cc99926dfe23abc58f9ab57f2566066c6b2", 901611),
    "pum2_test_positive": RemoteFile("genomics/pysster-pum2/pum2.test.positive.fasta",
                                     _PYSSTER.format("pum2.test.positive.fasta"),
                                     "d6be122ed2d5636b2ddaf7ca505f9956b5bab02f531d643c7528d2b503da9729", 300659),
    "pum2_test_negative": RemoteFile("genomics/pysster-pum2/pum2.test.negative.fasta",
                                     _PYSSTER.format("pum2.test.negative.fasta"),
                                     "256de3c980973e28e8bb63434253bcf902274a7b22182df2344b1474f1c078e8", 300431),
}
"""Registered public files (the mirror's relpaths, canonical URLs, sha256)."""


def _path(user: str, key: str) -> str:
    return user if user else str(fetch(FILES[key]))


class SequenceDataModule(BaseDataModule):
    """Shared behaviour: encoding to codes, pad/crop, stratified validation split, prediction input.

    Subclasses implement :meth:`load_parts` returning ``{"train"|"val"|"test": (ids, seqs, labels)}``.

    Args:
        seq_length: bases per sequence fed to the model; 0 = the longest training sequence.
        val_fraction: fraction of the training records held out for validation (stratified by label).
        batch_size: samples per batch.
        num_workers: DataLoader workers.
        split_seed: seed of the validation split.
    """

    def __init__(self, seq_length: int = 0, val_fraction: float = 0.1, batch_size: int = 128,
                 num_workers: int = 0, split_seed: int = 0) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, split_seed=split_seed)
        if seq_length < 0:
            raise ConfigError(f"data.seq_length must be >= 0 (0 = longest training sequence), got {seq_length}")
        if not 0 < val_fraction < 1:
            raise ConfigError(f"data.val_fraction must be in (0, 1), got {val_fraction}")
        self.seq_length = seq_length
        self.val_fraction = val_fraction
        self.task_names = [TASK]
        self.task_type = "classification"
        self._pos_fraction: list[float] = []

    def load_parts(self) -> dict[str, tuple[list[str], list[str], np.ndarray]]:
        raise NotImplementedError

    def stratified_split(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(train, val) indices: ``val_fraction`` of each class, seeded by ``split_seed``."""
        train, val = [], []
        for value in (0.0, 1.0):
            idx = np.flatnonzero(labels == value)
            tr, va = random_split(len(idx), (1 - self.val_fraction, self.val_fraction), seed=self.split_seed)
            train.append(idx[tr])
            val.append(idx[va])
        return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))

    def load(self) -> None:
        parts = self.load_parts()
        for part, (_, seqs, labels) in parts.items():
            if len(seqs) == 0:
                raise DataError(None, f"the {part} split is empty")
            if part != "test" and len(np.unique(labels)) < 2:
                raise DataError(None, f"the {part} split has a single class ({int(labels[0])}); binding tasks "
                                "need positives and negatives")
        train_lengths = np.array([len(s) for s in parts["train"][1]])
        if self.seq_length == 0:
            self.seq_length = int(train_lengths.max())
        datasets = {}
        for part, (ids, seqs, labels) in parts.items():
            sequences.fit_report(np.array([len(s) for s in seqs]), self.seq_length, f"{part} split")
            codes = encoding.encode_batch(seqs, self.seq_length)
            datasets[part] = TensorDictDataset(**{INPUT: codes, TARGET: labels.astype(np.float32)[:, None]})
        self.train_dataset, self.val_dataset, self.test_dataset = datasets["train"], datasets["val"], datasets["test"]
        ids, seqs, labels = parts["test"]
        self._test_records = pd.DataFrame({"id": ids, "sequence": seqs})
        y = parts["train"][2]
        self._pos_fraction = [round(float(y.mean()), 6)]
        sizes = {p: f"{len(s)} ({int(lab.sum())} bound)" for p, (_, s, lab) in parts.items()}
        log.info("splits: %s; seq_length %d", sizes, self.seq_length)

    def extra_info(self) -> dict[str, Any]:
        return {"seq_length": self.seq_length, "pos_fraction": self._pos_fraction, "encoding": "iupac4"}

    # -- prediction on new files ----------------------------------------------------------------
    @classmethod
    def request_schema(cls) -> dict[str, Any]:
        """``dltk serve``: ``{"sequences": [...], "ids": [...]}`` (:mod:`dltk_genomics.serving`)."""
        return serving.SCHEMA

    @classmethod
    def decode_request(cls, payload: dict[str, Any]) -> RequestRows:
        return serving.decode(payload)

    def predict_chunks(self, path: str, data_info: dict[str, Any] | None = None, chunk_size: int = 10_000,
                       **kwargs: Any) -> Iterator[tuple[pd.DataFrame, DataLoader | None]]:
        """Stream a FASTA file or a one-sequence-per-line file (``id sequence`` or bare sequences).

        Rows that cannot be encoded keep an ``error``; others are padded/cropped to the model's
        ``seq_length`` (the ``length`` column shows each input's own length).
        """
        length = int((data_info or {}).get("seq_length") or self.seq_length or 0)
        if length <= 0:
            raise ConfigError("the model's data_info has no seq_length; cannot encode new sequences")
        chunk: list[tuple[int, str, str]] = []

        def flush() -> tuple[pd.DataFrame, DataLoader | None]:
            errors = []
            for _, _, seq in chunk:
                reason, pos = sequences.check_sequence(seq)
                errors.append("" if reason is None else ("empty sequence" if pos < 0 else
                              f"non-IUPAC character {seq[pos]!r} at position {pos + 1}"))
            ok = np.array([e == "" for e in errors])
            records = pd.DataFrame({"row": [c[0] for c in chunk], "id": [c[1] for c in chunk],
                                    "length": [len(c[2]) for c in chunk], "error": errors})
            loader = None
            if ok.any():
                codes = encoding.encode_batch([c[2] for c, k in zip(chunk, ok) if k], length)
                y = np.full((len(codes), 1), np.nan, dtype=np.float32)
                loader = DataLoader(TensorDictDataset(**{INPUT: codes, TARGET: y}), batch_size=max(1, self.batch_size),
                                    shuffle=False)
            return records, loader

        for item in sequences.iter_sequence_file(path):
            chunk.append(item)
            if len(chunk) >= chunk_size:
                yield flush()
                chunk = []
        if chunk:
            yield flush()


class TFBindingDataModule(SequenceDataModule):
    """DeepBind ENCODE ChIP-seq format (``*_AC.seq.gz`` train, ``*_B.seq.gz`` test); SRF in H1-hESC by default.

    The training file holds positives only; each positive gets ``negatives_per_positive``
    dinucleotide-shuffled copies (:mod:`dltk_genomics.shuffle`, seeded by ``shuffle_seed`` and the
    record's index in the file) as negatives, as DeepBind did. The validation split is made on the
    positives first, and each positive's shuffles follow it, so no validation negative is a shuffle
    of a training sequence. The test file is used as published (500 peaks + 500 shuffles).

    Args:
        train_path: a DeepBind ``*_AC.seq.gz`` (default: the registered SRF H1-hESC file).
        test_path: the matching ``*_B.seq.gz`` (default: SRF H1-hESC).
        negatives_per_positive: shuffled copies per training positive.
        shuffle_seed: seed of the shuffles (independent of the split and model seeds).
        **kwargs: see :class:`SequenceDataModule`.
    """

    def __init__(self, train_path: str = "", test_path: str = "", negatives_per_positive: int = 1,
                 shuffle_seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if negatives_per_positive < 1:
            raise ConfigError(f"data.negatives_per_positive must be >= 1, got {negatives_per_positive}")
        self.train_path = train_path
        self.test_path = test_path
        self.negatives_per_positive = negatives_per_positive
        self.shuffle_seed = shuffle_seed

    def load_parts(self) -> dict[str, tuple[list[str], list[str], np.ndarray]]:
        train = sequences.read_deepbind(_path(self.train_path, "srf_train"))
        test = sequences.read_deepbind(_path(self.test_path, "srf_test"))
        for recs in (train, test):
            recs.skipped.emit()
            if recs.lowercase:
                log.warning("%s: %d sequences with lowercase (soft-masked) bases read as upper case",
                            recs.source, recs.lowercase)
        assert train.labels is not None and test.labels is not None
        pos = np.flatnonzero(train.labels == 1)
        given_neg = np.flatnonzero(train.labels == 0)
        if pos.size == 0:
            raise DataError(train.source, "no bound (label 1) sequence to train on")
        tr, va = random_split(len(pos), (1 - self.val_fraction, self.val_fraction), seed=self.split_seed)
        k = self.negatives_per_positive
        shuffled = shuffle_sequences([train.seqs[i] for i in pos], seed=self.shuffle_seed, copies=k)
        parts = {}
        for part, sel in (("train", tr), ("val", va)):
            ids = [train.ids[pos[i]] for i in sel]
            seqs = [train.seqs[pos[i]] for i in sel]
            neg_ids = [f"{train.ids[pos[i]]}_shuf{j}" for i in sel for j in range(k)]
            neg_seqs = [shuffled[i * k + j] for i in sel for j in range(k)]
            parts[part] = [ids + neg_ids, seqs + neg_seqs,
                           np.concatenate([np.ones(len(ids)), np.zeros(len(neg_ids))]).astype(np.float32)]
        if given_neg.size:  # a file with its own negatives: split them as well
            gtr, gva = random_split(len(given_neg), (1 - self.val_fraction, self.val_fraction), seed=self.split_seed)
            for part, sel in (("train", gtr), ("val", gva)):
                parts[part][0] += [train.ids[given_neg[i]] for i in sel]
                parts[part][1] += [train.seqs[given_neg[i]] for i in sel]
                parts[part][2] = np.concatenate([parts[part][2], np.zeros(len(sel), np.float32)])
        parts["test"] = [test.ids, test.seqs, test.labels]
        return {p: (v[0], v[1], np.asarray(v[2], dtype=np.float32)) for p, v in parts.items()}


class RBPBindingDataModule(SequenceDataModule):
    """Labelled FASTA files (positives and negatives, train and test), RNA or DNA alphabet; PUM2
    PAR-CLIP sites from pysster by default.

    ``U`` is read as ``T``; duplicate headers follow ``duplicates`` (the PUM2 negatives repeat 3 + 2
    records verbatim: ``first`` drops the repeats, counted); sequences present in both classes are
    counted and reported (10 in PUM2's training files, 1 in its test files) but kept, as published.

    Args:
        train_positive, train_negative, test_positive, test_negative: FASTA files (defaults: PUM2).
        duplicates: ``first``, ``keep`` or ``error`` for repeated FASTA headers.
        **kwargs: see :class:`SequenceDataModule`.
    """

    def __init__(self, train_positive: str = "", train_negative: str = "", test_positive: str = "",
                 test_negative: str = "", duplicates: Literal["first", "keep", "error"] = "first",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        given = [bool(p) for p in (train_positive, train_negative, test_positive, test_negative)]
        if any(given) and not all(given):
            raise ConfigError("rbp_binding: give all four of data.train_positive, data.train_negative, "
                              "data.test_positive, data.test_negative (or none for the PUM2 default)")
        self.paths = {"train_positive": train_positive, "train_negative": train_negative,
                      "test_positive": test_positive, "test_negative": test_negative}
        self.duplicates = duplicates

    def read(self, key: str, label: float) -> sequences.SeqRecords:
        recs = sequences.read_fasta(_path(self.paths[key], f"pum2_{key}"), label=label, duplicates=self.duplicates)
        recs.skipped.emit()
        if recs.lowercase:
            log.warning("%s: %d sequences with lowercase (soft-masked) bases read as upper case", recs.source,
                        recs.lowercase)
        return recs

    def load_parts(self) -> dict[str, tuple[list[str], list[str], np.ndarray]]:
        out: dict[str, tuple[list[str], list[str], np.ndarray]] = {}
        for split in ("train", "test"):
            pos, neg = self.read(f"{split}_positive", 1.0), self.read(f"{split}_negative", 0.0)
            both = len({s.replace("U", "T") for s in pos.seqs} & {s.replace("U", "T") for s in neg.seqs})
            if both:
                log.warning("%s: %d sequences appear among both positives and negatives (kept)", split, both)
            n_amb = sum(1 for s in neg.seqs if "N" in s), sum(1 for s in pos.seqs if "N" in s)
            if n_amb[0] != n_amb[1]:
                log.info("%s: sequences with N: %d negatives, %d positives", split, *n_amb)
            out[split] = (pos.ids + neg.ids, pos.seqs + neg.seqs, np.concatenate([pos.labels, neg.labels]))
        ids, seqs, labels = out["train"]
        tr, va = self.stratified_split(labels)
        return {"train": ([ids[i] for i in tr], [seqs[i] for i in tr], labels[tr]),
                "val": ([ids[i] for i in va], [seqs[i] for i in va], labels[va]),
                "test": out["test"]}


class WindowDataset(Dataset):
    """Windows read on demand from an indexed FASTA: item ``i`` is ``{"x": codes, "y": [label]}``.

    Only coordinates are held; the genome stays on disk (pyfaidx random access).
    """

    def __init__(self, genome: intervals.Genome, regions: intervals.Regions, labels: np.ndarray) -> None:
        self.genome = genome
        self.contigs = [str(c) for c in regions.contigs]
        self.starts = regions.starts.astype(np.int64)
        self.ends = regions.ends.astype(np.int64)
        self.labels = torch.as_tensor(labels, dtype=torch.float32)[:, None]

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        codes = self.genome.codes(self.contigs[index], int(self.starts[index]), int(self.ends[index]))
        return {INPUT: torch.from_numpy(codes), TARGET: self.labels[index]}


class IntervalsDataModule(SequenceDataModule):
    """A reference FASTA (pyfaidx) + a BED of positive regions -> windows centred on the peaks vs
    GC-matched background from the same genome, split by held-out chromosomes.

    The user supplies both files (no reference genome ships with dltk). See
    :mod:`dltk_genomics.intervals` for the rules (aliases, contig ends, GC matching).

    Args:
        fasta: reference FASTA (plain or bgzip); its ``.fai`` index goes to the dltk cache.
        bed: BED of positive regions (BED3+, narrowPeak summits used when present).
        width: window width in bases, centred on the summit or midpoint.
        val_contigs: comma-separated held-out validation contigs (aliases accepted: ``chr7`` or ``7``).
        test_contigs: comma-separated held-out test contigs.
        neg_ratio: background windows per positive window, in each split.
        max_n: largest fraction of ambiguous bases in a background window.
        background_seed: seed of the background sampling (independent of the model seed).
        min_score: keep only BED rows with score (column 5) >= this (None: keep all).
        **kwargs: see :class:`SequenceDataModule` (``seq_length`` is ``width``).
    """

    def __init__(self, fasta: str = "", bed: str = "", width: int = 200, val_contigs: str = "chr7",
                 test_contigs: str = "chr8,chr9", neg_ratio: float = 1.0, max_n: float = 0.1,
                 background_seed: int = 0, min_score: float | None = None, **kwargs: Any) -> None:
        kwargs.pop("seq_length", None)
        super().__init__(seq_length=width, **kwargs)
        if width < 1:
            raise ConfigError(f"data.width must be >= 1, got {width}")
        if neg_ratio <= 0:
            raise ConfigError(f"data.neg_ratio must be > 0, got {neg_ratio}")
        self.fasta = fasta
        self.bed = bed
        self.width = width
        self.val_contigs = intervals.parse_contigs(val_contigs)
        self.test_contigs = intervals.parse_contigs(test_contigs)
        self.neg_ratio = neg_ratio
        self.max_n = max_n
        self.background_seed = background_seed
        self.min_score = min_score

    @classmethod
    def contract_overrides(cls, tmp_dir: Any) -> list[str]:
        """A tiny generated genome + BED for the plugin contract check (the preset needs user files)."""
        fasta, bed = intervals.write_synthetic_genome(tmp_dir, n_contigs=3, contig_length=20_000,
                                                      peaks_per_contig=20)
        return ["--data.fasta", str(fasta), "--data.bed", str(bed), "--data.width", "100",
                "--data.val_contigs", "chr2", "--data.test_contigs", "chr3"]

    def load(self) -> None:
        if not self.fasta or not self.bed:
            raise ConfigError("the intervals task needs your files: --data.fasta GENOME.fa --data.bed PEAKS.bed "
                              "(and --data.val_contigs / --data.test_contigs naming held-out chromosomes)")
        genome = intervals.Genome(self.fasta)
        regions, skipped, summits = intervals.read_bed(self.bed, genome)
        if self.min_score is not None:
            keep = np.flatnonzero(np.nan_to_num(regions.scores, nan=-np.inf) >= self.min_score)
            log.info("min_score %g keeps %d of %d regions", self.min_score, len(keep), len(regions))
            regions, summits = regions.subset(keep), summits[keep]
        windows = intervals.peak_windows(regions, summits, self.width, genome, skipped)
        skipped.emit()
        if len(windows) == 0:
            raise DataError(self.bed, "no positive window fits on its contig")
        split = intervals.split_by_contig(genome, self.val_contigs, self.test_contigs)
        datasets: dict[str, WindowDataset] = {}
        records = None
        for i, part in enumerate(("train", "val", "test")):
            pos = windows.subset(np.flatnonzero(np.isin(windows.contigs, split[part])))
            if len(pos) == 0:
                raise DataError(self.bed, f"no positive region on the {part} contigs ({', '.join(split[part][:8])})")
            neg = intervals.background_windows(genome, pos, split[part], self.width, self.neg_ratio,
                                               seed=self.background_seed + 1000 * i, max_n=self.max_n,
                                               exclude=windows)
            both = intervals.Regions.concat([pos, neg])
            labels = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))]).astype(np.float32)
            datasets[part] = WindowDataset(genome, both, labels)
            log.info("%s: %d positive and %d background windows on %d contigs", part, len(pos), len(neg),
                     len(split[part]))
            if part == "test":
                records = pd.DataFrame({"id": both.names, "contig": both.contigs.astype(str), "start": both.starts,
                                        "end": both.ends})
            if part == "train":
                self._pos_fraction = [round(float(labels.mean()), 6)]
        self.train_dataset, self.val_dataset, self.test_dataset = datasets["train"], datasets["val"], datasets["test"]
        self._test_records = records
