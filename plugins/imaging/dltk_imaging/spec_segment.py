"""Declaration of the imaging plugin's segmentation part (light: imports only dltk.plugin).

Task ``nuclei``: nucleus instance segmentation on the DSB2018 stage-1 test images (or user image +
mask folders) with a U-Net predicting foreground + distance maps and a seeded watershed.
"""

from __future__ import annotations

from dltk.plugin import BenchmarkSpec, Reference, TaskSpec

_DSB = ("Caicedo et al. 2019, Nat Methods 16:1247 (BBBC038 / 2018 Data Science Bowl); baseline measured "
        "on this copy (dltk MANIFEST, all 65 images)")
_TABLE1 = "Caicedo et al. 2019, Nat Methods 16:1247, Table 1 (stage-2 test set, not the stage-1 test images)"

NUCLEI_REFERENCES = (
    Reference("Otsu + connected components (65 images)", _DSB, "dsb_score", {"mean": 0.226}),
    Reference("Otsu + connected components (same run)",
              "measured by dltk in every run on the same test images (metrics.json baseline_otsu_dsb_score)",
              "dsb_score", {"mean": 0.235}),
    Reference("CellProfiler reference pipeline (stage 2)", _TABLE1, "dsb_score", {"mean": 0.528}),
    Reference("Mask R-CNN (stage 2)", _TABLE1, "dsb_score", {"mean": 0.614}),
    Reference("DSB2018 winners, 32 U-Net/FPN models (stage 2)", _TABLE1, "dsb_score", {"mean": 0.632}),
    Reference("open re-implementation of the winning U-Net pipeline (stage-1 test)",
              "minerva-ml open-solution-data-science-bowl-2018, REPRODUCE.md (stage-1 leaderboard)",
              "dsb_score", {"mean": 0.457}),
)

TASKS: tuple = (
    TaskSpec("nuclei", "Nucleus instance segmentation, DSB2018 stage-1 protocol (664 training images: 648 train / "
             "16 val; all 65 stage-1 test images): U-Net (smp, resnet18) foreground + distance, watershed; "
             "DSB score, AP@0.5, Dice", "configs/nuclei.yaml", references=NUCLEI_REFERENCES),
)

DATAMODULES: dict[str, str] = {"nuclei": "dltk_imaging.seg_datamodules:NucleiDataModule"}
MODELS: dict[str, str] = {"nuclei_unet": "dltk_imaging.seg_models:NucleiUNet"}

BENCHMARKS: tuple = (
    BenchmarkSpec(
        "dsb2018_nuclei", "DSB2018 stage-1 protocol: train on the 664 stage-1 training images, test on all 65 "
        "stage-1 test images, official DSB metric",
        task="nuclei", metric="dsb_score", higher_is_better=True,
        references=NUCLEI_REFERENCES,
        protocol="Train on the 664 DSB2018 stage-1 training images (community-fixed annotations), 16 of them "
                 "held out by image for validation (seed 0, stratified by image kind -- fluorescence / "
                 "brightfield / colour -- decided from the pixels; the same split for every model seed); test "
                 "on all 65 stage-1 test images. Every image is converted to one grey channel (colour by "
                 "luminance, bright backgrounds inverted), percentile-scaled; images with large nuclei are "
                 "shrunk to a typical nucleus radius of 10 px (prediction: radius from a first pass). Score: per "
                 "test image the mean over IoU thresholds 0.50:0.05:0.95 of TP/(TP+FP+FN), averaged over images. "
                 "The Otsu + connected-components baseline and the classical threshold + distance-transform "
                 "watershed pipeline (parameters tuned on training images) are scored on the same 65 images in "
                 "the same run (baseline_otsu_*, baseline_classical_*). Seeds vary initialisation and crop "
                 "sampling. The published CellProfiler / Mask R-CNN / winners figures are on the stage-2 test "
                 "set (Caicedo et al. 2019, Table 1), not comparable one to one with the stage-1 test images."),
)
