"""Declaration of the imaging plugin's segmentation part (light: imports only dltk.plugin).

Task ``nuclei``: nucleus instance segmentation on the DSB2018 stage-1 test images (or user image +
mask folders) with a U-Net predicting foreground + distance maps and a seeded watershed.
"""

from __future__ import annotations

from dltk.plugin import BenchmarkSpec, Reference, TaskSpec

_DSB = ("Caicedo et al. 2019, Nat Methods 16:1247 (BBBC038 / 2018 Data Science Bowl); baseline measured "
        "on this copy (dltk MANIFEST, all 65 images)")

NUCLEI_REFERENCES = (
    Reference("Otsu + connected components (65 images)", _DSB, "dsb_score", {"mean": 0.226}),
    Reference("Otsu + connected components (the 20 test images)",
              "measured by dltk in every run on the same test images (metrics.json baseline_otsu_dsb_score)",
              "dsb_score", {"mean": 0.146}),
)

TASKS: tuple = (
    TaskSpec("nuclei", "Nucleus instance segmentation, DSB2018 stage-1 test (65 images: 40 train / 5 val / 20 "
             "test): U-Net (smp, resnet18) foreground + distance, watershed; DSB score, AP@0.5, Dice",
             "configs/nuclei.yaml", references=NUCLEI_REFERENCES),
)

DATAMODULES: dict[str, str] = {"nuclei": "dltk_imaging.seg_datamodules:NucleiDataModule"}
MODELS: dict[str, str] = {"nuclei_unet": "dltk_imaging.seg_models:NucleiUNet"}

BENCHMARKS: tuple = (
    BenchmarkSpec(
        "dsb2018_nuclei", "DSB2018 stage-1 test images, 20 held-out images, official DSB metric",
        task="nuclei", metric="dsb_score", higher_is_better=True,
        references=NUCLEI_REFERENCES,
        protocol="The 65 labelled DSB2018 stage-1 test images, split once with seed 0 and stratified by "
                 "image kind (fluorescence / brightfield / colour): 40 train, 5 validation, 20 test, the "
                 "same split for every model seed. Every image is converted to one grey channel (colour by "
                 "luminance, bright backgrounds inverted), percentile-scaled; images with large nuclei are "
                 "shrunk to a typical nucleus radius of 10 px (prediction: radius from a first pass). Score: per test image the mean "
                 "over IoU thresholds 0.50:0.05:0.95 of TP/(TP+FP+FN), averaged over images; the Otsu + "
                 "connected-components baseline is computed on the same 20 images in the same run "
                 "(baseline_otsu_dsb_score). Seeds vary initialisation and crop sampling. Hyper-parameters "
                 "(crop, epochs, decoder width, watershed thresholds) were chosen on the 5 validation images "
                 "only (docs/imaging.md)."),
)
