"""Image classification datamodules: BBBC048 cell cycle, CRC histology tiles, any labelled images.

All of them hold the decoded images in memory as ``(N, C, H, W)`` (uint8 kept as uint8, anything
else as float32), raw: the model normalises with the training-split percentiles given in
``data_info`` and augments on its device. Splits are stratified per class and seeded
(:func:`stratified_split`) unless the source names a split per image. The task type is
``multiclass``: ``y`` holds the class index as a float (NaN = unlabelled).

``dltk predict --run DIR --input X --output Y`` accepts an image folder (flat, or one sub-folder per
class, whose names then become a ``true_<target>`` column), a CSV manifest, an ``.npz``/``.h5`` file, a
single image (:mod:`dltk_imaging.cls_predict`), or a whole-slide image (``.svs``, ``.ndpi``, a tiled
pyramidal TIFF), which is tiled (:mod:`dltk_imaging.slide`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from dltk.base import INPUT, TARGET, BaseDataModule, TensorDictDataset
from dltk.data import RemoteFile, fetch
from dltk.errors import ConfigError, DataError
from torch.utils.data import DataLoader, WeightedRandomSampler

from dltk_imaging import readers
from dltk_imaging.normalize import fit_percentiles
from dltk_imaging.options import ImagePredictOptions
from dltk_imaging.serving import ImageServing

log = logging.getLogger("dltk.imaging")

FILES: dict[str, RemoteFile] = {
    # Repacked for dltk from the montage TIFFs of GitHub minh-doan/MLCP (images/Experiment_1, BSD-3);
    # data of Blasi et al. 2016 / Eulenberg et al. 2017. The URL is the source repository's archive,
    # which holds the TIFF montages, not this .npz: without the local mirror (DLTK_DATA_DIR) the
    # fetch stops with a one-line "archive has no member" error.
    "bbbc048": RemoteFile(
        "imaging/bbbc048-cellcycle.npz", "https://github.com/minh-doan/MLCP/archive/refs/heads/master.zip",
        "9bcffbddca743f5e5c15d61062a250a1921920fedbb2647b059c227fffc169f3", 17399625,
        member="bbbc048-cellcycle.npz"),
    # Repacked: 24 Kather-2016 tiles (Zenodo 53169, CC BY 4.0) + 9 NCT-CRC-HE-100K tiles (Zenodo 1214456);
    # the URL is the Kather-2016 archive (source), which does not hold this .npz.
    "crc_smoke": RemoteFile(
        "imaging/crc-histology-smoke.npz",
        "https://zenodo.org/record/53169/files/Kather_texture_2016_image_tiles_5000.zip",
        "0cd2619d4c7e2c040980807d1f169eb84a6f465e6795dfcab064ee6a84ff3040", 2170598,
        member="crc-histology-smoke.npz"),
    # The OpenSlide test slide, byte for byte (CC0).
    "cmu1_small": RemoteFile(
        "imaging/CMU-1-Small-Region.svs",
        "https://openslide.cs.cmu.edu/download/openslide-testdata/Aperio/CMU-1-Small-Region.svs",
        "ed92d5a9f2e86df67640d6f92ce3e231419ce127131697fbbce42ad5e002c8a7", 1938955),
}


def stratified_split(labels: np.ndarray, fractions: tuple[float, float, float], seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class seeded split into train/val/test index arrays (sorted int64).

    Each class is shuffled with its own stream of ``seed`` and cut at its rounded fractions; a class
    with at least 3 samples gets at least one validation and one test sample, so every class is
    scored (the rarest BBBC048 class has 15 cells). Unlabelled samples (-1) go to train.
    """
    from dltk.data.splits import check_fractions

    fr = check_fractions(fractions)
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        if c < 0:
            parts[0] += idx.tolist()
            continue
        n = len(idx)
        n_test = round(fr[2] * n) if len(fr) == 3 else 0
        n_val = round(fr[1] * n)
        if n >= 3:
            n_test = max(n_test, 1) if len(fr) == 3 and fr[2] > 0 else n_test
            n_val = max(n_val, 1) if fr[1] > 0 else n_val
        parts[2] += idx[:n_test].tolist()
        parts[1] += idx[n_test:n_test + n_val].tolist()
        parts[0] += idx[n_test + n_val:].tolist()
    return tuple(np.sort(np.asarray(p, dtype=np.int64)) for p in parts)  # type: ignore[return-value]


class ImageClassificationDataModule(ImageServing, BaseDataModule):
    """Shared behaviour: read -> split -> fit normalisation -> tensors; prediction on new inputs.

    Subclasses implement :meth:`read`.

    Args:
        target_name: name of the predicted column (``pred_<target_name>``).
        val_fraction: validation fraction (per class) when the source gives no split.
        test_fraction: test fraction (per class) when the source gives no split.
        norm_low: lower percentile of the per-channel normalisation (training split).
        norm_high: upper percentile.
        sampler: ``shuffle`` (plain shuffling; balance through the model's class-weighted loss)
            or ``balanced`` (each class drawn equally often, with replacement).
        batch_size: images per batch.
        num_workers: DataLoader workers (images are in memory; 0 is usually fastest).
        split_seed: seed of the stratified split.
    """

    predict_options = ImagePredictOptions

    def __init__(self, target_name: str = "label", val_fraction: float = 0.1, test_fraction: float = 0.2,
                 norm_low: float = 1.0, norm_high: float = 99.5,
                 sampler: Literal["shuffle", "balanced"] = "shuffle", batch_size: int = 64,
                 num_workers: int = 0, split_seed: int = 0) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, split_seed=split_seed)
        self.target_name = target_name
        self.fractions = (1.0 - val_fraction - test_fraction, val_fraction, test_fraction)
        if min(self.fractions) < 0 or val_fraction <= 0:
            raise ConfigError(f"data.val_fraction/test_fraction: need 0 < val, 0 <= test, val + test < 1; got "
                              f"{val_fraction}, {test_fraction}")
        self.norm_pct = (norm_low, norm_high)
        self.sampler = sampler
        self.task_type = "multiclass"  # type: ignore[assignment]
        self.info: dict[str, Any] = {}

    # -- hook -------------------------------------------------------------------------------
    def read(self) -> readers.ImageSet:
        """The labelled images (split optional)."""
        raise NotImplementedError

    # -- loading ----------------------------------------------------------------------------
    def load(self) -> None:
        data = self.read()
        names = data.class_names
        if len(names) < 2:
            raise DataError(None, f"need at least 2 classes, found {len(names)}: {names}")
        labels = data.labels
        counts = np.bincount(labels[labels >= 0], minlength=len(names))
        empty = [n for n, c in zip(names, counts) if c == 0]
        if empty:
            raise DataError(None, f"class(es) without any labelled image: {', '.join(empty)}")
        if data.split is not None and np.any(data.split != ""):
            parts = tuple(np.flatnonzero(data.split == s).astype(np.int64) for s in readers.SPLITS)
            if len(parts[0]) == 0 or len(parts[1]) == 0:
                raise DataError(None, "the given split needs 'train' and 'val' images "
                                      f"(found {len(parts[0])} train, {len(parts[1])} val)")
            if len(parts[2]) == 0:
                log.warning("the given split has no 'test' images; the validation images are tested")
                parts = (parts[0], parts[1], parts[1])
        else:
            parts = stratified_split(labels, self.fractions, self.split_seed)  # type: ignore[arg-type]
        train, val, test = parts
        train_counts = np.bincount(labels[train][labels[train] >= 0], minlength=len(names))
        missing = [n for n, c in zip(names, train_counts) if c == 0]
        if missing:
            raise DataError(None, f"class(es) with no training image after the split: {', '.join(missing)}")
        low, high = fit_percentiles(data.images[train], *self.norm_pct)
        images = readers.as_storage(data.images)
        y = np.where(labels >= 0, labels, np.nan).astype(np.float32)
        self.train_dataset = TensorDictDataset(**{INPUT: images[train], TARGET: y[train]})
        self.val_dataset = TensorDictDataset(**{INPUT: images[val], TARGET: y[val]})
        self.test_dataset = TensorDictDataset(**{INPUT: images[test], TARGET: y[test]})
        self._train_labels = labels[train]
        self._test_records = pd.DataFrame({"id": [data.ids[i] for i in test]})
        self._test_images = images[test]
        self.task_names = [self.target_name]
        self.info = {
            "class_names": list(names), "class_counts": [int(c) for c in train_counts],
            "in_chans": int(data.images.shape[1]), "image_size": [int(s) for s in data.images.shape[-2:]],
            "norm_low": low, "norm_high": high, "bit_depth": readers.bit_depth(data.images.dtype),
            "channel_names": list(data.channel_names), "primary_metric": ["balanced_accuracy", "max"],
        }
        sizes = ", ".join(f"{k} {len(p)}" for k, p in zip(("train", "val", "test"), parts))
        print(f"dltk imaging: {len(labels)} images ({data.images.shape[1]} channels, "
              f"{data.images.shape[-1]}x{data.images.shape[-2]}, {self.info['bit_depth']}), {len(names)} "
              f"classes; {sizes}" + (f"; skipped {data.skipped} unreadable" if data.skipped else ""), flush=True)

    def extra_info(self) -> dict[str, Any]:
        return dict(self.info)

    def train_dataloader(self) -> DataLoader:
        if self.sampler != "balanced":
            return super().train_dataloader()
        labels = self._train_labels
        counts = np.bincount(labels[labels >= 0], minlength=len(self.info["class_names"])).astype(np.float64)
        weights = np.where(labels >= 0, 1.0 / counts[np.clip(labels, 0, None)], 0.0)
        gen = torch.Generator().manual_seed(int(torch.initial_seed()) % (2**63))
        sampler = WeightedRandomSampler(torch.as_tensor(weights), num_samples=len(labels), replacement=True,
                                        generator=gen)
        return DataLoader(self.train_dataset, batch_size=self.batch_size, sampler=sampler,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def test_artifacts(self, run_dir: Path, preds: np.ndarray, target: np.ndarray) -> list[Path]:
        """``plots/test_examples.png``: per class, up to 4 correctly and 4 wrongly predicted test
        images (composite of the channels), wrong ones titled with the predicted class."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from dltk.plots import save_figure

        from dltk_imaging.explain import _composite

        names = list(self.info["class_names"])
        images = self.test_images()
        truth = np.where(np.isnan(target.reshape(-1)), -1, target.reshape(-1)).astype(np.int64)
        pred = preds.reshape(len(truth), -1).argmax(axis=1)
        per = 4
        fig, axes = plt.subplots(len(names), 2 * per, figsize=(1.3 * 2 * per, 1.35 * len(names) + 0.5),
                                 squeeze=False)
        for k, name in enumerate(names):
            right = np.flatnonzero((truth == k) & (pred == k))[:per]
            wrong = np.flatnonzero((truth == k) & (pred != k))[:per]
            for j in range(2 * per):
                ax = axes[k, j]
                ax.set_axis_off()
                group, slot = (right, j) if j < per else (wrong, j - per)
                if slot < len(group):
                    i = group[slot]
                    ax.imshow(_composite(images[i]))
                    ax.set_title(name if j < per else f"-> {names[pred[i]]}", fontsize=6,
                                 color="black" if j < per else "crimson")
        fig.suptitle("test images per class: 4 correct (left), 4 misclassified (right, predicted class)",
                     fontsize=8)
        return [save_figure(fig, Path(run_dir) / "plots" / "test_examples.png")]

    def test_images(self) -> np.ndarray:
        """Raw test images in test-loader order (for explanations and plots)."""
        self.setup()
        return self._test_images

    # -- prediction -------------------------------------------------------------------------
    def predict_file(self, input_path: str, output_path: str, models: list[Any],
                     options: ImagePredictOptions | None = None) -> dict[str, int] | None:
        from dltk_imaging.cls_predict import predict_images
        from dltk_imaging.slide import is_slide, predict_slide

        ns = options or ImagePredictOptions()
        batch_size = ns.batch_size or self.batch_size
        path = Path(input_path)
        if is_slide(path):
            return predict_slide(path, output_path, models, level=ns.level, tile=ns.tile,
                                 min_tissue=ns.min_tissue, batch_size=batch_size)
        if ns.tile or ns.level:
            raise ConfigError("--level/--tile apply to whole-slide input (.svs, .ndpi, tiled pyramidal TIFF)")
        return predict_images(path, output_path, models, batch_size=batch_size)

    @classmethod
    def contract_overrides(cls, tmp_dir: Path) -> list[str]:
        """Small settings for the plugin contract's preset run (override in subclasses with a path)."""
        return ["--data.batch_size", "16"]


# ------------------------------------------------------------------------------------------------
# concrete datamodules
# ------------------------------------------------------------------------------------------------
class BBBC048DataModule(ImageClassificationDataModule):
    """BBBC048 cell-cycle phases: 3,418 cells, 3 channels (brightfield, fluorescence, darkfield),
    40x40 uint16, 7 classes (G1, S, G2, prophase, metaphase, anaphase, telophase; 900/900/900/606/
    69/15/28). Stratified 70/10/20 split by default.

    Args:
        path: an .npz file of the same layout instead of the registered file (optional).
        target_name: name of the predicted column (``pred_phase``).
        **kwargs: see :class:`ImageClassificationDataModule`.
    """

    def __init__(self, path: str = "", target_name: str = "phase", **kwargs: Any) -> None:
        super().__init__(target_name=target_name, **kwargs)
        self.path = path

    def read(self) -> readers.ImageSet:
        path = Path(self.path) if self.path else fetch(FILES["bbbc048"])
        return readers.read_arrays(path)


class CRCTilesDataModule(ImageClassificationDataModule):
    """Colorectal cancer histology tiles (RGB). The built-in smoke set (24 Kather-2016 tiles, 3 per
    class, 150x150) exercises the pipeline only: far too small to learn or benchmark. Bring real
    tiles with ``--data.path`` (class folders, manifest or array file, e.g. the 5,000 Kather tiles).

    Args:
        path: tiles to train on instead of the smoke set.
        image_size: resize tiles to this size (0 = keep).
        target_name: name of the predicted column (``pred_tissue``).
        val_fraction, test_fraction: validation and test fractions (per class; a third each, since the
            smoke set has 3 tiles per class).
        batch_size: tiles per batch.
        **kwargs: see :class:`ImageClassificationDataModule`.
    """

    def __init__(self, path: str = "", image_size: int = 0, target_name: str = "tissue",
                 val_fraction: float = 0.34, test_fraction: float = 0.33, batch_size: int = 32,
                 **kwargs: Any) -> None:
        super().__init__(target_name=target_name, val_fraction=val_fraction, test_fraction=test_fraction,
                         batch_size=batch_size, **kwargs)
        self.path = path
        self.image_size = image_size or None

    def read(self) -> readers.ImageSet:
        if self.path:
            data = readers.read_any(self.path, image_size=self.image_size)
        else:
            with np.load(fetch(FILES["crc_smoke"]), allow_pickle=False) as z:
                images = np.ascontiguousarray(np.moveaxis(z["kather2016_images"], -1, 1))
                data = readers.ImageSet(images=images, labels=z["kather2016_labels"].astype(np.int64),
                                        class_names=[str(c) for c in z["kather2016_class_names"]],
                                        ids=[str(f) for f in z["kather2016_filenames"]],
                                        channel_names=["red", "green", "blue"])
            if self.image_size and data.images.shape[-1] != self.image_size:
                data.images = np.stack([readers._resize(a, self.image_size) for a in data.images])
        return data


class ImageDataModule(ImageClassificationDataModule):
    """Any labelled images: a folder with one sub-folder per class, a CSV manifest
    (``path,label[,split]``) or an ``.npz``/``.h5`` file (``images`` + ``labels``); see
    :mod:`dltk_imaging.readers` for formats and checks.

    Args:
        path: the folder, manifest or array file.
        classes: comma-separated class names fixing their order (and rejecting other labels);
            default: folder names / sorted labels.
        image_size: resize every image to ``image_size x image_size`` (0 = all must share one size).
        **kwargs: see :class:`ImageClassificationDataModule`.
    """

    def __init__(self, path: str = "", classes: str = "", image_size: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.classes = readers.parse_classes(classes)
        self.image_size = image_size or None

    def read(self) -> readers.ImageSet:
        if not self.path:
            raise ConfigError("task 'images' needs --data.path FOLDER | MANIFEST.csv | ARRAYS.npz")
        return readers.read_any(self.path, classes=self.classes, image_size=self.image_size)

    @classmethod
    def contract_overrides(cls, tmp_dir: Path) -> list[str]:
        """Write 3 classes x 6 tiny 2-channel 16-bit TIFFs into ``tmp_dir`` for the contract's preset run."""
        import tifffile

        rng = np.random.default_rng(0)
        root = Path(tmp_dir) / "images"
        for k, name in enumerate(("a", "b", "c")):
            (root / name).mkdir(parents=True, exist_ok=True)
            for i in range(6):
                image = (rng.integers(0, 1000, (2, 24, 24)) + 1000 * k).astype(np.uint16)
                tifffile.imwrite(root / name / f"{i}.tif", image)
        return ["--data.path", str(root), "--data.batch_size", "8"]
