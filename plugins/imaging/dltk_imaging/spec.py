"""The imaging plugin's declaration: light (imports only dltk.plugin), read by `dltk plugins`.

Classification tasks (cell phenotypes, tissue tiles and whole slides) are declared in
``spec_classify``, segmentation (nuclei) in ``spec_segment``; ``cell_phenotype`` is the default.
"""

from __future__ import annotations

from dltk.plugin import PluginSpec, Requirement
from dltk_imaging import spec_classify, spec_segment

plugin = PluginSpec(
    name="imaging",
    summary="Cell phenotypes from multi-channel images, tissue tiles and whole slides (timm), nucleus "
            "instance segmentation (U-Net + watershed).",
    package="dltk_imaging",
    tasks=spec_classify.TASKS + spec_segment.TASKS,
    datamodules={**spec_classify.DATAMODULES, **spec_segment.DATAMODULES},
    models={**spec_classify.MODELS, **spec_segment.MODELS},
    requires=(Requirement("timm"), Requirement("torchvision"), Requirement("tifffile"),
              Requirement("skimage", "scikit-image"), Requirement("segmentation_models_pytorch",
                                                                  "segmentation-models-pytorch")),
    install_hint="pip install 'dltk[imaging]'",
    benchmarks=spec_classify.BENCHMARKS + spec_segment.BENCHMARKS,
    explainer="dltk_imaging.explain:explain",
)
