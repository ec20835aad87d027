"""Declaration of the imaging plugin's classification tasks (light: imports only dltk.plugin).

``cell_phenotype`` (BBBC048 cell-cycle phases, multi-channel imaging flow cytometry) is the plugin's
default task; ``tissue_tiles`` classifies RGB histology tiles and predicts whole slides tile by tile;
``images`` trains on any labelled images (class folders, a CSV manifest or an .npz/.h5 array file).
"""

from __future__ import annotations

from dltk.plugin import BenchmarkSpec, Reference, TaskSpec

_RF_NOTE = ("MANIFEST of the dltk data mirror (imaging/bbbc048-cellcycle.npz): random forest on 12 "
            "per-channel intensity statistics, 5-fold CV on this 3,418-cell subset; data of Blasi et al. "
            "2016 and Eulenberg et al. 2017, Nat. Commun. 8:463 (their figures are on the full 32,266-cell "
            "set, not comparable)")

BBBC048_REFERENCES = (
    Reference("Random forest (intensity statistics)", _RF_NOTE, "balanced_accuracy", {"mean": 0.536}),
    Reference("Random forest (intensity statistics)", _RF_NOTE, "accuracy", {"mean": 0.895}),
)

CRC_REFERENCES = (
    Reference("Kather et al. texture features + SVM", "Kather et al. 2016, Sci. Rep. 6:27988 (full 5,000 "
              "tiles, 8 classes, 10-fold CV; the smoke tiles here are NOT comparable)", "accuracy",
              {"mean": 0.874}),
)

TASKS = (
    TaskSpec("cell_phenotype", "BBBC048 cell-cycle phase from 3-channel imaging flow cytometry (3,418 cells, "
             "7 imbalanced classes), timm ResNet, balanced accuracy", "configs/cell_phenotype.yaml",
             BBBC048_REFERENCES, space={
             "model.backbone": {"type": "categorical", "choices": ["test_resnet", "resnet18"]},
             "model.lr": {"type": "float", "low": 3.0e-4, "high": 1.0e-2, "log": True},
             "model.augment": {"type": "categorical", "choices": [True, False]},
             "model.jitter_gain": {"type": "float", "low": 0.0, "high": 0.3, "when": {"model.augment": True}},
             "model.jitter_offset": {"type": "float", "low": 0.0, "high": 0.15, "when": {"model.augment": True}}}),
    TaskSpec("tissue_tiles", "RGB histology tile classes (CRC smoke tiles: pipeline test only); "
             "`dltk predict --input slide.svs` tiles a whole slide into a CSV + heatmap PNG",
             "configs/tissue_tiles.yaml", CRC_REFERENCES),
    TaskSpec("images", "any labelled images: --data.path FOLDER (one sub-folder per class), CSV manifest "
             "(path,label[,split]) or .npz/.h5 (images + labels); PNG/TIFF, any channel count",
             "configs/images.yaml"),
)

DATAMODULES: dict[str, str] = {
    "bbbc048": "dltk_imaging.cls_datamodules:BBBC048DataModule",
    "crc_tiles": "dltk_imaging.cls_datamodules:CRCTilesDataModule",
    "images": "dltk_imaging.cls_datamodules:ImageDataModule",
}

MODELS: dict[str, str] = {"image_classifier": "dltk_imaging.cls_models:ImageClassifier"}

BENCHMARKS = (
    BenchmarkSpec(
        "bbbc048_cellcycle", "BBBC048 cell-cycle phase (7 classes), seeded stratified 70/10/20 split, "
        "test balanced accuracy",
        task="cell_phenotype", metric="balanced_accuracy", higher_is_better=True,
        references=BBBC048_REFERENCES[:1],
        protocol="imaging/bbbc048-cellcycle.npz (3,418 cells, 3 channels 40x40 uint16; 900/900/900/606/69/"
                 "15/28 per class). Stratified split per class 70/10/20 (train/validation/test) with split "
                 "seed 0 for every model seed, so the three seeds vary the initialisation, augmentation and "
                 "batch order only. Per-channel 1st/99.5th percentile normalisation fitted on the training "
                 "split; class-balanced cross-entropy; flips, 90-degree rotations and small per-channel "
                 "gain/offset jitter. The backbone (timm test_resnet vs. resnet18), learning rate and "
                 "epochs were chosen on validation balanced accuracy only (docs/imaging.md); the checkpoint is the epoch with the best "
                 "validation balanced accuracy. The reference is a random forest with 5-fold CV on the "
                 "same cells: a different protocol (CV vs. one held-out split), and the test split holds "
                 "only 3 Anaphase and 6 Telophase cells, so per-seed balanced accuracy is noisy.",
        seeds=3),
)
