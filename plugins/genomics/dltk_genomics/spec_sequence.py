"""Sequence tasks of the genomics plugin (TF/RBP binding from sequence, genomic intervals): light,
imports only dltk.plugin. ``tf_binding`` is first: the plugin's default task."""

from __future__ import annotations

from dltk.plugin import BenchmarkSpec, Reference, TaskSpec

_DEEPBIND = "Alipanahi et al. 2015, Nat Biotechnol 33:831 (DeepBind; ENCODE ChIP-seq AC/B protocol)"
_BUDACH = "Budach & Marsico 2018, Bioinformatics 34:3035 (pysster), PUM2 test set"

SRF_REFERENCES = (
    Reference("5-mer logistic regression", "measured on this data (data MANIFEST); "
              "benchmarks/bench_genomics_kmer_baseline.py gets 0.926 on the preset's split (L2 logistic "
              "regression on 5-mer counts of both strands, C chosen on validation)", "auroc",
              {"bound": 0.912, "mean": 0.912}),
    Reference("target", "issue 4 target for a DeepBind-class CNN on " + _DEEPBIND, "auroc",
              {"bound": 0.95, "mean": 0.95}),
)
PUM2_REFERENCES = (
    Reference("pysster", _BUDACH + " (sequence + predicted structure)", "auroc", {"bound": 0.945, "mean": 0.945}),
    Reference("GraphProt", _BUDACH, "auroc", {"bound": 0.853, "mean": 0.853}),
    Reference("5-mer logistic regression", "measured on this data (data MANIFEST); "
              "benchmarks/bench_genomics_kmer_baseline.py gets 0.872 on the preset's split", "auroc",
              {"bound": 0.858, "mean": 0.858}),
)

_SELECTION = ("Hyper-parameters (filters, filter width, pooling, hidden units, dropout, strand handling, "
              "learning rate, epochs) were chosen on the validation split carved from the training "
              "files only, never on the test file; the epoch is picked by early stopping on validation "
              "ROC-AUC. See docs/genomics.md (Sequence tasks) for the search.")

TASKS = (
    TaskSpec("tf_binding", "TF binding from sequence, DeepBind ENCODE format (*_AC train / *_B test); SRF "
             "H1-hESC by default; negatives = seeded dinucleotide shuffles; DeepBind CNN; ROC-AUC",
             "configs/tf_binding.yaml", SRF_REFERENCES, space={
                 "model.num_filters": {"type": "int", "low": 16, "high": 256, "log": True},
                 "model.filter_size": {"type": "int", "low": 8, "high": 32, "step": 4},
                 "model.dropout": {"type": "float", "low": 0.0, "high": 0.7},
                 "model.lr": {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True}}),
    TaskSpec("tf_binding_danq", "as tf_binding with a DanQ-style CNN + bidirectional LSTM",
             "configs/tf_binding_danq.yaml", SRF_REFERENCES),
    TaskSpec("rbp_binding", "RNA-binding-protein sites from labelled FASTA (positive/negative, RNA or DNA); "
             "PUM2 PAR-CLIP (pysster split) by default; ROC-AUC", "configs/rbp_binding.yaml", PUM2_REFERENCES),
    TaskSpec("intervals", "your reference FASTA (pyfaidx) + BED of peaks: windows centred on peaks vs "
             "GC-matched background, held-out chromosomes: --data.fasta G.fa --data.bed P.bed",
             "configs/intervals.yaml"),
)

DATAMODULES: dict[str, str] = {
    "tf_binding": "dltk_genomics.seq_datamodules:TFBindingDataModule",
    "rbp_binding": "dltk_genomics.seq_datamodules:RBPBindingDataModule",
    "intervals": "dltk_genomics.seq_datamodules:IntervalsDataModule",
}

MODELS: dict[str, str] = {
    "deepbind": "dltk_genomics.seq_models:DeepBindCNN",
    "danq": "dltk_genomics.seq_models:DanQ",
}

BENCHMARKS: tuple = (
    BenchmarkSpec(
        "deepbind_srf", "SRF in H1-hESC (ENCODE, HudsonAlpha), DeepBind format, test ROC-AUC on *_B",
        task="tf_binding", metric="auroc", references=SRF_REFERENCES,
        protocol="Train on SRF_H1-hESC_SRF_HudsonAlpha_AC.seq.gz (4,605 peaks, 101 bp); negatives are three "
                 "dinucleotide shuffles per peak (Altschul-Erickson, seeded: shuffle seed 0); validation = "
                 "10% of the peaks with their shuffles (split seed 0, the same for every model seed); test "
                 "on the published *_B.seq.gz (500 peaks + 500 shuffles). Seeds vary initialisation and "
                 "batch order. " + _SELECTION),
    BenchmarkSpec(
        "pum2", "PUM2 PAR-CLIP sites (pysster split), sequence only, test ROC-AUC",
        task="rbp_binding", metric="auroc", references=PUM2_REFERENCES,
        protocol="pysster's PUM2 files: train 3,888 positives + 3,888 negatives (CLIP sites of 24 other "
                 "RBPs), test 1,296 + 1,296, 200 nt, U read as T; repeated headers (3 train, 2 test "
                 "negatives, identical records) dropped; validation = 10% of the training files, stratified "
                 "(split seed 0 for every model seed). Sequence only (pysster's 0.945 also uses predicted "
                 "secondary structure). " + _SELECTION),
)
