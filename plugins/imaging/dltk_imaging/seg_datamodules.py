"""Nucleus segmentation datamodule: DSB2018 (default) or user image + mask folders.

Splits (stated in docs/imaging.md), all seeded and stratified by image kind (fluorescence,
brightfield, colour, decided from the pixels):

- ``images: dsb2018`` -- the competition's stage-1 protocol: the 664 stage-1 training images, of
  which ``n_val`` are held out (by image) for validation, and all 65 stage-1 test images as the
  test set (``n_test`` is not used).
- ``images: dsb2018_test`` -- the small-data mode on the 65 stage-1 test images alone: ``n_test``
  test images, ``n_val`` validation images, the rest for training.
- a folder of images (``masks``: their instance masks) -- the small-data mode on your own set.

Training samples are
random ``crop_size`` crops (images smaller than the crop are mirror-padded) with random flips, 90°
rotations and a small intensity jitter; ``crops_per_epoch`` crops make one epoch. Validation and
test use whole images (mirror-padded to a multiple of 32, padding excluded from the metric).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from dltk.base import INPUT, TARGET, BaseDataModule
from dltk.errors import ConfigError
from torch.utils.data import DataLoader, Dataset

from dltk_imaging.seg_data import (
    VALID,
    pad_to,
    SegSample,
    load_dsb2018,
    load_folder_pairs,
    nucleus_radius,
    rescale_pair,
    scale_for,
    stratified_split,
    to_grey,
)
from dltk_imaging.options import NucleiPredictOptions
from dltk_imaging.seg_targets import encode_targets

class RandomCropDataset(Dataset):
    """``length`` random crops of (image, targets) pairs with flips, rot90 and intensity jitter.

    Randomness comes from torch's generator, so ``seed_everything`` makes an epoch reproducible.
    """

    def __init__(self, images: list[np.ndarray], targets: list[np.ndarray], crop: int, length: int,
                 jitter: float = 0.1) -> None:
        self.images = [pad_to(im, crop, crop) for im in images]
        self.targets = [pad_to(t, crop, crop) for t in targets]
        self.crop = crop
        self.length = length
        self.jitter = jitter

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        r = torch.randint(0, 2**31 - 1, (6,)).tolist()
        i = r[0] % len(self.images)
        image, target = self.images[i], self.targets[i]
        h, w = image.shape
        y0, x0 = r[1] % (h - self.crop + 1), r[2] % (w - self.crop + 1)
        x = image[y0:y0 + self.crop, x0:x0 + self.crop]
        y = target[:, y0:y0 + self.crop, x0:x0 + self.crop]
        k = r[3] % 4
        x, y = np.rot90(x, k), np.rot90(y, k, axes=(1, 2))
        if r[4] % 2:
            x, y = x[:, ::-1], y[:, :, ::-1]
        x = np.ascontiguousarray(x, dtype=np.float32)[None]
        if self.jitter > 0:  # contrast x brightness in [1 - j, 1 + j], offset in [-j/2, j/2]
            u = (r[5] % 10_000) / 10_000.0
            v = ((r[5] // 10_000) % 10_000) / 10_000.0
            x = x * (1 - self.jitter + 2 * self.jitter * u) + self.jitter * (v - 0.5)
        return {INPUT: torch.from_numpy(x), TARGET: torch.from_numpy(np.ascontiguousarray(y))}


class WholeImageDataset(Dataset):
    """Whole images mirror-padded to a multiple of ``divisor``, with their targets and valid mask."""

    def __init__(self, images: list[np.ndarray], targets: list[np.ndarray], divisor: int = 32) -> None:
        self.images, self.targets, self.divisor = images, targets, divisor

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image, target = self.images[index], self.targets[index]
        h, w = image.shape
        H, W = math.ceil(h / self.divisor) * self.divisor, math.ceil(w / self.divisor) * self.divisor
        valid = np.zeros((1, H, W), dtype=np.float32)
        valid[:, :h, :w] = 1.0
        return {INPUT: torch.from_numpy(pad_to(image, H, W)[None].copy()),
                TARGET: torch.from_numpy(pad_to(target, H, W).copy()),
                VALID: torch.from_numpy(valid)}


class NucleiDataModule(BaseDataModule):
    """Nucleus instance segmentation: grey images + foreground/distance targets.

    Args:
        images: ``dsb2018`` (train on the 664 stage-1 training images, test on all 65 stage-1 test
            images), ``dsb2018_test`` (split the 65 test images alone) or a folder of images.
        masks: with a folder of images, the folder of instance masks (same file stems, optionally
            ``_mask``/``_label`` suffixed; binary masks are split into connected components).
        crop_size: training crop side in pixels (a multiple of 32).
        crops_per_epoch: random crops that make one training epoch.
        n_test: test images split off a ``dsb2018_test`` or folder source (``dsb2018``: all 65).
        n_val: validation images (pick the best epoch by foreground Dice).
        jitter: intensity jitter amplitude of the training augmentation (0 = off).
        nucleus_radius: when > 0, images whose nuclei are larger are shrunk so that their typical
            radius (:func:`~dltk_imaging.seg_data.nucleus_radius` of the true mask) becomes this
            many pixels; prediction estimates the radius from a first pass (0 = native scale).
        select_by: validation metric that picks the best checkpoint: foreground ``dice`` or the
            watershed ``dsb_score`` on the validation images.
        batch_size, num_workers, split_seed: as in :class:`dltk.base.BaseDataModule`.
    """

    predict_options = NucleiPredictOptions

    def __init__(self, images: str = "dsb2018", masks: str = "", crop_size: int = 256,
                 crops_per_epoch: int = 256, n_test: int = 20, n_val: int = 5, jitter: float = 0.1,
                 nucleus_radius: float = 0.0, select_by: Literal["dice", "dsb_score"] = "dice",
                 batch_size: int = 8, num_workers: int = 0, split_seed: int = 0) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, split_seed=split_seed)
        if crop_size % 32 or crop_size < 32:
            raise ConfigError(f"data.crop_size must be a positive multiple of 32 (got {crop_size})")
        if images not in ("dsb2018", "dsb2018_test") and not masks:
            raise ConfigError("data.masks is required with a folder of images (data.images)")
        self.images, self.masks = images, masks
        self.crop_size, self.crops_per_epoch = crop_size, crops_per_epoch
        self.n_test, self.n_val, self.jitter = n_test, n_val, jitter
        self.nucleus_radius = nucleus_radius
        self.select_by = select_by
        self.splits: dict[str, list[SegSample]] = {}

    @classmethod
    def contract_overrides(cls, tmp_dir: Path) -> list[str]:
        """Shrink the preset for the plugin contract run: small crops, 3 test images."""
        return ["--data.images", "dsb2018_test", "--data.crop_size", "64", "--data.batch_size", "2",
                "--data.crops_per_epoch", "4",
                "--data.n_test", "3", "--data.n_val", "2"]

    def load(self) -> None:
        self.splits = self.split_samples()
        prepared: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        for k, v in self.splits.items():
            greys, targets = [], []
            for s in v:
                scale = scale_for(nucleus_radius(s.labels), self.nucleus_radius)
                grey, labels = rescale_pair(to_grey(s.image), s.labels, scale)
                greys.append(grey)
                targets.append(encode_targets(labels))
            prepared[k] = (greys, targets)
        self.train_dataset = RandomCropDataset(*prepared["train"], crop=self.crop_size,
                                               length=self.crops_per_epoch, jitter=self.jitter)
        self.val_dataset = WholeImageDataset(*prepared["val"]) if self.splits["val"] else None
        self.test_dataset = WholeImageDataset(*prepared["test"]) if self.splits["test"] else None
        self.task_names = ["nucleus"]
        self.task_type = "classification"
        self._test_records = pd.DataFrame({"id": [s.id for s in self.splits["test"]],
                                           "kind": [s.kind for s in self.splits["test"]]})

    def split_samples(self) -> dict[str, list[SegSample]]:
        """train / val / test samples of the configured source (see the module docstring)."""
        if self.images == "dsb2018":
            pool, test = load_dsb2018("train"), load_dsb2018("test")
            split = stratified_split([s.kind for s in pool], 0, self.n_val, self.split_seed)
            return {"train": [pool[i] for i in split["train"]], "val": [pool[i] for i in split["val"]],
                    "test": test}
        if self.images == "dsb2018_test":
            samples = load_dsb2018("test")
        else:
            samples, messages = load_folder_pairs(self.images, self.masks)
            for message in messages:
                print(message)
        split = stratified_split([s.kind for s in samples], self.n_test, self.n_val, self.split_seed)
        return {k: [samples[i] for i in idx] for k, idx in split.items()}

    def extra_info(self) -> dict[str, Any]:
        return {"in_channels": 1, "image_policy": "grey", "crop_size": self.crop_size,
                "nucleus_radius": self.nucleus_radius,
                "outputs": ["foreground", "distance"], "primary_metric": [self.select_by, "max"],
                "split_sizes": {k: len(v) for k, v in self.splits.items()}}

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_dataset, batch_size=1, shuffle=False, num_workers=0)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_dataset, batch_size=1, shuffle=False, num_workers=0)

    def test_samples(self) -> list[SegSample]:
        """The held-out test images with their instance maps, in test order."""
        self.setup()
        return list(self.splits["test"])

    def predict_file(self, input_path: str, output_path: str, models: list,
                     options: NucleiPredictOptions | None = None) -> dict[str, int]:
        """``dltk predict``: an image file or folder in; a label image per input + counts CSV out."""
        from dltk_imaging.seg_predict import predict_folder

        return predict_folder(models, Path(input_path), Path(output_path), options or NucleiPredictOptions())
