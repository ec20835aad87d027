"""``dltk predict`` on an image-classification run: image folders (flat, or one sub-folder per
class, whose names then become a ``true_<target>`` column), CSV manifests, ``.npz``/``.h5`` files
and single images, read and predicted ``CHUNK`` images at a time (whole-slide images are tiled by
:mod:`dltk_imaging.slide`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from dltk.base import INPUT, TARGET, TensorDictDataset
from dltk.errors import DataError
from torch.utils.data import DataLoader

from dltk_imaging import readers

CHUNK = 1024
"""Images decoded and predicted per chunk: memory stays bounded for large folders."""


@dataclass
class _Chunk:
    """One chunk of prediction input: row ids, known labels ('' = none), per-row errors, which rows
    were read, and their images (None when none was)."""

    ids: list[str]
    truth: list[str]
    errors: list[str]
    ok: np.ndarray
    images: np.ndarray | None


def _predict_sources(path: Path, class_names: list[str]) -> tuple[str, Any]:
    """('files', [(path, label-or-'')]) or ('arrays', ImageSet)."""
    if path.is_dir():
        items = [(p, "") for p in readers.list_images(path)]
        for sub in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
            label = sub.name if sub.name in class_names else ""  # a class folder gives the true label
            items += [(p, label) for p in readers.list_images(sub)]
        if not items:
            raise DataError(path, f"no images ({', '.join(readers.IMAGE_SUFFIXES)}) in the folder or its "
                                  "sub-folders")
        return "files", items
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "path" not in table.columns:
            raise DataError(path, f"needs a 'path' column (found: {', '.join(table.columns)})", field="path")
        labels = table["label"].str.strip() if "label" in table.columns else [""] * len(table)
        items = []
        for value, label in zip(table["path"], labels):
            p = Path(value)
            items.append((p if p.is_absolute() else path.parent / p, label))
        return "files", items
    if suffix in readers.ARRAY_SUFFIXES:
        return "arrays", readers.read_arrays(path, classes=None, require_labels=False)
    if suffix in readers.IMAGE_SUFFIXES:
        return "files", [(path, "")]
    raise DataError(path, "expected an image folder, a .csv manifest, an .npz/.h5 file, an image or a slide")


def _check_compatible(images: np.ndarray, info: dict[str, Any], where: Path) -> None:
    if images.shape[1] != int(info["in_chans"]):
        raise DataError(where, f"images have {images.shape[1]} channel(s), the model expects {info['in_chans']}")
    depth = readers.bit_depth(images.dtype)
    if info.get("bit_depth") and depth != info["bit_depth"]:
        raise DataError(where, f"images are {depth} but the model was trained on {info['bit_depth']} images; "
                               "intensities would not be comparable")


def _file_chunk(chunk: list[tuple[Path, str]], where: Path, resize_to: int | None, channels: int) -> _Chunk:
    """Read a chunk of image files; missing and unreadable files become rows with an error."""
    errors = [""] * len(chunk)
    existing = [i for i, (p, _) in enumerate(chunk) if Path(p).is_file()]
    for i in set(range(len(chunk))) - set(existing):
        errors[i] = f"{chunk[i][0]}: file not found"
    ok = np.zeros(len(chunk), dtype=bool)
    images = None
    if existing:
        try:
            images, ok_sub, errs = readers.read_images([chunk[i][0] for i in existing], image_size=resize_to,
                                                       where=where, expect_channels=channels)
        except DataError as exc:
            if "none of" not in str(exc):
                raise
            ok_sub, errs = np.zeros(len(existing), dtype=bool), []
            for i in existing:
                try:
                    readers.read_image(chunk[i][0])
                except DataError as inner:
                    errs.append(str(inner))
        bad = iter(errs)
        for i, good in zip(existing, ok_sub):
            ok[i] = bool(good)
            if not good:
                errors[i] = next(bad, "unreadable")
    return _Chunk([str(p) for p, _ in chunk], [label for _, label in chunk], errors, ok, images)


def _array_chunk(source: readers.ImageSet, start: int, stop: int, resize_to: int | None) -> _Chunk:
    """Rows ``start:stop`` of an array file (resized to the training size when it is square)."""
    images = source.images[start:stop]
    if resize_to and tuple(images.shape[-2:]) != (resize_to, resize_to):
        images = np.stack([readers._resize(a, resize_to) for a in images])
    ids = source.ids[start:stop]
    truth = [source.class_names[int(v)] if v >= 0 and source.class_names else "" for v in source.labels[start:stop]]
    return _Chunk(ids, truth, [""] * len(ids), np.ones(len(ids), dtype=bool), images)


def _chunk_table(chunk: _Chunk, models: list[Any], where: Path, batch_size: int) -> pd.DataFrame:
    """The prediction rows of a chunk: ``id``, ``true_<target>`` when known, the model's output
    columns (empty for rows that could not be read) and ``error``."""
    from dltk.inference import ensemble_inference

    model = models[0]
    info = model.data_info
    h, w = info["image_size"]
    table = pd.DataFrame({"id": chunk.ids})
    if any(chunk.truth):
        table[f"true_{model.task_names[0]}"] = chunk.truth
    images, ok = chunk.images, chunk.ok
    if images is not None and ok.any():
        _check_compatible(images, info, where)
        if tuple(images.shape[-2:]) != (int(h), int(w)):
            raise DataError(where, f"images are {images.shape[-1]}x{images.shape[-2]}, the model was "
                                   f"trained on {w}x{h}")
        dataset = TensorDictDataset(**{INPUT: readers.as_storage(images),
                                       TARGET: np.full(len(images), np.nan, np.float32)})
        probs, std, _ = ensemble_inference(models, DataLoader(dataset, batch_size=batch_size))
        columns = model.output_columns(probs, std)
    else:
        probe = np.zeros((1, len(model.class_names)), np.float32)
        columns = {k: v[:0] for k, v in model.output_columns(probe, probe if len(models) > 1 else None).items()}
    for name, values in columns.items():
        col = np.full(len(chunk.ids), np.nan if values.dtype != object else "", dtype=values.dtype
                      if values.dtype == object else np.float32)
        if len(values):
            col[ok] = values
        table[name] = col
    table["error"] = chunk.errors
    return table


def predict_images(path: Path, output_path: str, models: list[Any], batch_size: int = 64) -> dict[str, int]:
    """Predict every image of ``path``; write a CSV (``id``, ``true_*`` when known, predicted class,
    ``prob_<class>``, ``error``) atomically. Unreadable images are rows with an error."""
    from dltk.io import atomic_path

    info = models[0].data_info
    kind, source = _predict_sources(path, list(models[0].class_names))
    h, w = info["image_size"]
    resize_to = int(h) if h == w else None
    counts = {"rows": 0, "predicted": 0, "errors": 0}
    first = ""  # the first unreadable image's error, for the summary line
    out = Path(output_path)
    with atomic_path(out) as tmp:
        n = len(source) if kind == "files" else len(source.labels)
        for start in range(0, n, CHUNK):
            stop = min(n, start + CHUNK)
            chunk = (_file_chunk(source[start:stop], path, resize_to, int(info["in_chans"])) if kind == "files"
                     else _array_chunk(source, start, stop, resize_to))
            table = _chunk_table(chunk, models, path, batch_size)
            table.to_csv(tmp, mode="a", header=start == 0, index=False, float_format="%.6g")
            counts["rows"] += len(chunk.ids)
            counts["predicted"] += int(chunk.ok.sum())
            counts["errors"] += int((~chunk.ok).sum())
            first = first or next((e for e in chunk.errors if e), "")
    if counts["errors"]:
        print(f"dltk imaging: skipped {counts['errors']} unreadable images (first: {first})", flush=True)
    return counts
