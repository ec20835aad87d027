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
    """``dltk predict`` on a nuclei run: an image or a folder of images."""

    format: Literal["tif", "png"] = option("tif", "label image format (uint16 TIFF, or 16-bit PNG)")
    overlay: bool = option(False, "also write an overlay PNG per image")


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
