"""Cell-level genomics datamodules, one module per source: single-cell CpG methylation (DeepCpG,
:mod:`~dltk_genomics.cell_datamodules.methylation`) and expression (AnnData,
:mod:`~dltk_genomics.cell_datamodules.expression`). The classes are importable (and recorded in
configs) as ``dltk_genomics.cell_datamodules.<Class>``.
"""

from dltk_genomics.cell_datamodules.expression import (
    ExpressionDataModule,
    ExpressionRegressionDataModule,
    linear_baseline,
    logistic_baseline,
)
from dltk_genomics.cell_datamodules.methylation import DNA, MethylationDataModule

__all__ = ["DNA", "ExpressionDataModule", "ExpressionRegressionDataModule", "MethylationDataModule",
           "linear_baseline", "logistic_baseline"]
