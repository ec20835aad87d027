"""The genomics plugin's declaration: light (imports only dltk.plugin), read by `dltk plugins`.

Sequence tasks (binding from sequence, genomic intervals) are declared in ``spec_sequence``, cell
tasks (single-cell CpG methylation, expression) in ``spec_cells``; the first sequence task,
``tf_binding``, is the default.
"""

from __future__ import annotations

from dltk.plugin import PluginSpec, Requirement
from dltk_genomics import spec_cells, spec_sequence

plugin = PluginSpec(
    name="genomics",
    summary="Sequence -> binding (DeepBind/DanQ CNNs), genomic intervals (pyfaidx), single-cell CpG "
            "methylation (DeepCpG), expression on AnnData (scanpy).",
    package="dltk_genomics",
    tasks=spec_sequence.TASKS + spec_cells.TASKS,
    datamodules={**spec_sequence.DATAMODULES, **spec_cells.DATAMODULES},
    models={**spec_sequence.MODELS, **spec_cells.MODELS},
    requires=(Requirement("pyfaidx"), Requirement("scanpy"), Requirement("anndata")),
    install_hint="pip install 'dltk[genomics]'",
    benchmarks=spec_sequence.BENCHMARKS + spec_cells.BENCHMARKS,
    explainer="dltk_genomics.explain:explain",
)
