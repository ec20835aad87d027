"""``dltk predict`` on a nuclei run: segment -> measure -> (crop), for an image, a folder of images,
or a folder of class folders (``screen/<condition>/<image>``: each crop is labelled with its folder).

Written into the output folder, per image ``<name>_labels.tif`` (the instance mask, 16-bit) and
``<name>_overlay.png``; for the whole input ``objects.csv`` (or ``.parquet``: one row per nucleus,
:mod:`dltk_imaging.seg_measure`), ``counts.csv`` (one row per image, unreadable images with their
error) and, with ``--crops SIZE``, ``crops.npz`` (``images`` N x C x SIZE x SIZE raw pixels, ``object_id``,
``image``, ``centroid``; ``labels`` + ``class_names`` from class folders) that the ``images`` and
``cell_phenotype`` tasks train on directly (``--data.path crops.npz``). Every file is written
atomically, the tables after the last image: a run stopped midway leaves no half-written table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from dltk.errors import DataError
from dltk.io import atomic_path

from dltk_imaging.options import NucleiPredictOptions
from dltk_imaging.seg_blocks import ImageResult, open_image, segment_image
from dltk_imaging.seg_data import IMAGE_SUFFIXES, SegSample
from dltk_imaging.seg_plots import overlay_panel, write_rows


class ModelSegmenter:
    """The run's network(s) (ensemble-averaged maps) + its watershed, as a block segmenter."""

    def __init__(self, models: list) -> None:
        self.models = models
        model = models[0]
        tile = int(model.hparams.get("inference_tile", 0)) or int(model.data_info.get("crop_size", 256))
        self.context = min(int(model.hparams.tile_overlap), tile // 2)

    def fit(self, grey_sample: np.ndarray) -> None:
        """Nothing to fit: the network sees each block."""

    def __call__(self, grey: np.ndarray) -> np.ndarray:
        from dltk_imaging.seg_models import ensemble_probs

        return self.models[0].instances(ensemble_probs(self.models, grey))


def make_segmenter(models: list, options: NucleiPredictOptions) -> Any:
    """The segmenter ``options.segmenter`` names (classical parameters: tuned defaults unless given)."""
    if options.segmenter == "model":
        if not models:
            raise DataError(None, "no model to segment with (use --segmenter classical)")
        return ModelSegmenter(models)
    from dltk_imaging.seg_classical import ClassicalParams, ClassicalSegmenter

    base = ClassicalParams()
    params = ClassicalParams(threshold=base.threshold if options.threshold < 0 else options.threshold,
                             sigma=base.sigma if options.sigma < 0 else options.sigma,
                             min_distance=base.min_distance, min_size=base.min_size)
    return ClassicalSegmenter(params)


def input_images(path: Path) -> list[tuple[Path, str, str]]:
    """(file, name, class) of an image, of a folder's images, and of its sub-folders' images
    (the sub-folder is the class); sorted, not deeper."""
    def images(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)

    if path.is_file():
        return [(path, path.name, "")]
    if not path.is_dir():
        raise DataError(path, "no such image file or folder")
    found = [(p, p.name, "") for p in images(path)]
    for sub in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found += [(p, f"{sub.name}/{p.name}", sub.name) for p in images(sub)]
    if not found:
        raise DataError(path, f"folder holds no images ({', '.join(IMAGE_SUFFIXES)}), nor do its sub-folders")
    return found


def _outputs(output_path: Path, name: str, fmt: str) -> tuple[Path, Path]:
    stem = output_path / Path(name).with_suffix("")
    return stem.with_name(f"{stem.name}_labels.{fmt}"), stem.with_name(f"{stem.name}_overlay.png")


def _write_png_mask(path: Path, labels: np.ndarray) -> None:
    from PIL import Image

    if labels.max() > 65535:
        raise DataError(path, f"{int(labels.max())} objects do not fit a 16-bit PNG; use --format tif")
    with atomic_path(path) as tmp:
        Image.fromarray(labels.astype(np.uint16)).save(tmp, format="PNG")


def segment_one(file: Path, name: str, segmenter: Any, output_path: Path, options: NucleiPredictOptions
                ) -> ImageResult:
    """Segment one image into its mask (+ overlay); DataError when it cannot be read."""
    mask, overlay = _outputs(output_path, name, options.format)
    source = open_image(file)
    try:
        result = segment_image(source, segmenter, name, block=options.block, margin=options.margin,
                               crop_size=options.crops, mask_path=mask if options.format == "tif" else None)
    except DataError:
        raise
    except (ValueError, OSError, RuntimeError, KeyError) as exc:  # a corrupt tile or strip
        raise DataError(file, f"unreadable image ({type(exc).__name__}: {exc})") from exc
    if options.format == "png":
        if result.labels is None:
            raise DataError(file, f"larger than --block {options.block}: use --format tif")
        _write_png_mask(mask, result.labels)
    if options.overlay and result.labels is not None:
        image = source.read(0, source.shape[0], 0, source.shape[1])
        overlay_panel([SegSample(name, image, None)], [result.labels], [{"pred_nuclei": result.n_objects}], overlay)
    return result


def predict_folder(models: list, input_path: Path, output_path: Path, options: NucleiPredictOptions) -> dict[str, int]:
    """Segment, measure and crop an image file, a folder of images or of class folders (module doc)."""
    from tqdm.auto import tqdm

    from dltk.inference import device

    models = [m.to(device()) for m in models]
    files = input_images(Path(input_path))
    if output_path.exists() and not output_path.is_dir():
        raise DataError(output_path, "output must be a folder (masks, overlays and tables are written into it)")
    segmenter = make_segmenter(models, options)
    output_path.mkdir(parents=True, exist_ok=True)
    rows, tables, crops, skipped = [], [], [], []
    for file, name, cls in tqdm(files, desc="segmenting", leave=False):
        try:
            result = segment_one(file, name, segmenter, output_path, options)
        except DataError as exc:
            skipped.append(name)
            rows.append({"file": name, "nuclei": "", "height": "", "width": "", "truncated": "", "error": str(exc)})
            continue
        h, w = result.shape
        rows.append({"file": name, "nuclei": result.n_objects, "height": h, "width": w,
                     "truncated": result.truncated, "error": ""})
        tables.append(result.table)
        if result.crops is not None:
            crops.append((file, name, cls, result))
    if options.crops:  # first: a channel-count mismatch stops before any table is written
        write_crops(output_path / "crops.npz", crops, options.crops)
    write_table(output_path / f"objects.{options.table}", tables)
    write_rows(output_path / "counts.csv", rows)
    if skipped:
        print(f"skipped {len(skipped)} unreadable images (first: {skipped[0]})")
    return {"images": len(files), "segmented": len(files) - len(skipped), "skipped": len(skipped),
            "nuclei": int(sum(r["nuclei"] for r in rows if r["nuclei"] != ""))}


def write_table(path: Path, tables: list[pd.DataFrame]) -> Path:
    """The per-object table of every image (columns: the union; a missing channel is empty), atomically."""
    from dltk_imaging.seg_measure import INTENSITY_COLUMNS, SHAPE_COLUMNS, measure_objects

    if not tables:
        tables = [measure_objects(np.zeros((1, 1), np.int32), np.zeros((1, 1)), "")]
    table = pd.concat(tables, ignore_index=True)
    first = [c for c in SHAPE_COLUMNS if c in table]
    def order(column: str) -> tuple[int, int]:
        name, k = column.rsplit("_c", 1)
        return int(k), INTENSITY_COLUMNS.index(name)

    table = table[first + sorted((c for c in table if c not in first), key=order)]
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False, float_format="%.6g")
    return path


def write_crops(path: Path, crops: list[tuple[Path, str, str, ImageResult]], size: int) -> Path:
    """``crops.npz`` (see the module docstring); DataError when images differ in channel count."""
    channels = {r.crops.shape[1] for *_, r in crops if r.crops is not None and len(r.crops)}
    if len(channels) > 1:
        first = next(f for f, *_, r in crops if r.crops is not None and r.crops.shape[1] != min(channels))
        raise DataError(first, f"crops need one channel count; images have {sorted(channels)} channels")
    n_ch = channels.pop() if channels else 1
    parts = [r.crops for *_, r in crops if r.crops is not None and len(r.crops)]
    arrays: dict[str, np.ndarray] = {
        "images": np.concatenate(parts) if parts else np.zeros((0, n_ch, size, size), np.uint8),
        "object_id": np.concatenate([r.table["object_id"].to_numpy(np.int64) for *_, r in crops]
                                    or [np.zeros(0, np.int64)]),
        "image": np.asarray([n for _, n, _, r in crops for _ in range(r.n_objects)], dtype=str),
        "centroid": np.concatenate([r.table[["centroid_y", "centroid_x"]].to_numpy() for *_, r in crops]
                                   or [np.zeros((0, 2))]),
    }
    classes = sorted({c for _, _, c, _ in crops})
    if crops and "" not in classes:
        arrays["class_names"] = np.asarray(classes, dtype=str)
        arrays["labels"] = np.asarray([classes.index(c) for _, _, c, r in crops for _ in range(r.n_objects)], np.int64)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return path
