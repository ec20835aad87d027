"""The imaging plugin's ``dltk predict`` and ``dltk explain`` options, declared for core to parse
(:mod:`dltk.options`); ``dltk predict --run DIR --help`` lists them. Light: no torch import."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dltk.options import option


@dataclass
class ImagePredictOptions:
    """``dltk predict`` on a classification run: an image, a folder, or a whole slide."""

    level: int = option(0, "slide pyramid level to read (0 = full resolution; slides only)")
    tile: int = option(0, "slide tile size in pixels (0: the training size; slides only)")
    min_tissue: float = option(0.5, "fraction of a slide tile that must be tissue to be scored")
    batch_size: int = option(0, "images per batch (0: the run's batch size)")

    def __post_init__(self) -> None:
        if self.level < 0 or self.tile < 0 or self.batch_size < 0:
            raise ValueError("--level, --tile and --batch-size must be >= 0")
        if not 0.0 <= self.min_tissue <= 1.0:
            raise ValueError(f"--min-tissue must be in [0, 1], got {self.min_tissue}")


@dataclass
class NucleiPredictOptions:
    """``dltk predict`` on a nuclei run: an image, a folder of images, or a folder of class folders."""

    format: Literal["tif", "png"] = option("tif", "instance mask format (16-bit TIFF, or 16-bit PNG)")
    overlay: bool = option(True, "write an overlay PNG per image (on by default; images of one block only)")
    table: Literal["csv", "parquet"] = option("csv", "per-object measurement table format (objects.csv/.parquet)")
    crops: int = option(0, "also write SIZE x SIZE single-cell crops + object ids to crops.npz (0 = none)")
    segmenter: Literal["model", "classical"] = option(
        "model", "the run's network, or the classical threshold + distance-transform watershed pipeline")
    sigma: float = option(-1.0, "classical pipeline: smoothing sigma in pixels (-1 = tuned default)")
    threshold: float = option(
        -1.0, "classical pipeline: threshold on the [0, 1] grey scale (0 = Otsu, -1 = tuned default)")
    block: int = option(2048, "segment images larger than this block by block (bounded memory)")
    margin: int = option(64, "pixels of context around each block; more than the largest nucleus")

    def __post_init__(self) -> None:
        if self.crops < 0 or (0 < self.crops < 8):
            raise ValueError(f"--crops must be 0 or at least 8 pixels, got {self.crops}")
        if self.block < 64 or self.margin < 0 or self.margin > self.block:
            raise ValueError(f"need --block >= 64 and 0 <= --margin <= --block (got {self.block}, {self.margin})")
        if self.threshold > 1.0:
            raise ValueError(f"--threshold must be at most 1 (the grey scale is [0, 1]), got {self.threshold}")


@dataclass
class ExplainOptions:
    """``dltk explain`` on a classification run: Grad-CAM or saliency on test images."""

    method: Literal["gradcam", "saliency"] = option("gradcam", "attribution method")
    per_class: int = option(2, "test images per class")
    seed: int = option(0, "seed of the image choice")
    output: str = option("", "folder for the PNG (default RUN/explain)")

    def __post_init__(self) -> None:
        if self.per_class < 1:
            raise ValueError(f"--per-class must be >= 1, got {self.per_class}")
