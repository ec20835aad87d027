"""Cell tasks of the genomics plugin (single-cell CpG methylation, expression): light, imports only
dltk.plugin."""

from __future__ import annotations

from dltk.plugin import BenchmarkSpec, Reference, TaskSpec

_NEIGHBOUR = Reference(
    "neighbour average", "1/distance-weighted mean state of the 5 nearest observed CpGs per side in the same "
    "cell, on this chr19 test split (recomputed in every run as test/baseline_auroc); over all CpGs of both "
    "chromosomes it is 0.838 / 0.908 (data MANIFEST: 0.827 / 0.907)",
    "auroc", {"BS27_4_SER": 0.856, "BS28_2_SER": 0.923, "mean": 0.889})
_DEEPCPG_TARGET = Reference(
    "target", "issue 4 target; DeepCpG: Angermueller et al. 2017, Genome Biol 18:67 (published AUCs are on "
    "other data)", "auroc", {"BS27_4_SER": 0.90, "BS28_2_SER": 0.94})

TASKS = (
    TaskSpec("methylation", "single-cell CpG states (DeepCpG CpG module, optional DNA module with "
             "--data.fasta), scBS-seq BS27_4/BS28_2, held-out chromosome 19, ROC-AUC per cell",
             "configs/methylation.yaml", (_NEIGHBOUR, _DEEPCPG_TARGET)),
    TaskSpec("expression", "cell types from expression (AnnData; scanpy's pbmc68k_reduced bulk_labels by "
             "default), MLP, stratified split, macro-F1 beside a logistic-regression baseline of the same run",
             "configs/expression.yaml"),
    TaskSpec("expression_dgex", "D-GEX-style landmark -> target gene regression on AnnData (top-variance 20% "
             "of genes as landmarks, or --data.landmarks FILE), beside a linear-regression baseline",
             "configs/expression_dgex.yaml"),
)

DATAMODULES: dict[str, str] = {
    "methylation": "dltk_genomics.cell_datamodules:MethylationDataModule",
    "expression": "dltk_genomics.cell_datamodules:ExpressionDataModule",
    "expression_dgex": "dltk_genomics.cell_datamodules:ExpressionRegressionDataModule",
}

MODELS: dict[str, str] = {
    "deepcpg": "dltk_genomics.cell_models:DeepCpG",
    "expression_mlp": "dltk_genomics.cell_models:ExpressionMLP",
}

BENCHMARKS: tuple = (
    BenchmarkSpec(
        "deepcpg_scbs", "DeepCpG CpG module, scBS-seq BS27_4_SER / BS28_2_SER, test ROC-AUC per cell",
        task="methylation", metric="auroc", references=(_NEIGHBOUR, _DEEPCPG_TARGET),
        protocol="Samples: every CpG observed in either cell (targets NaN where a cell did not observe it). "
                 "Inputs: states and distances of the 25 nearest observed CpGs per side in each cell, the "
                 "CpG itself excluded. Split: chromosome 19 held out for test; the last 20% of chromosome "
                 "18's sites (contiguous) for validation; the rest for training; the same split for every "
                 "seed (seeds vary initialisation and batch order). The neighbour-average baseline is "
                 "recomputed on the same test split in every run (test/baseline_auroc). Hyper-parameters "
                 "chosen on validation AUROC only (see docs/genomics.md, Cell tasks)."),
    BenchmarkSpec(
        "pbmc68k_celltype", "pbmc68k_reduced cell types (bulk_labels, 10 classes), test macro-F1 vs logistic "
        "regression on the same split", task="expression", metric="macro_f1", seed_split=True,
        protocol="scanpy's bundled pbmc68k_reduced (700 cells, 765 genes), raw.X (log-normalised), genes "
                 "standardised with training-cell statistics; stratified 65/15/20 split, a different split "
                 "per seed. The reference is a multinomial logistic regression (sklearn, C=1) fitted on the "
                 "same training cells in the same run (test/baseline_macro_f1). Hyper-parameters chosen on "
                 "validation macro-F1 only (see docs/genomics.md, Cell tasks)."),
)
