"""Segment an image of any size block by block, with memory bounded by the block size.

The image is cut into ``block`` x ``block`` cores. Each core is segmented with a surrounding
``margin`` (the *zone*) plus the segmenter's own ``context`` (and half a crop) read around it; an
object belongs to the core that holds its **anchor**, its first pixel in raster order, so each
object is kept exactly once. Object ids are given block by block in row-major order (within a block
in raster order of the anchors). The blocks' kept objects go to a temporary folder; the instance
mask is then assembled output tile by output tile into a tiled, compressed TIFF (uint16, or uint32
when there are more than 65,535 objects). Measurements and crops are taken per block on the raw
pixels. Peak memory is therefore set by ``block``, ``margin`` and the segmenter, not by the image.

Exactness: when every object is smaller than ``margin`` and the segmenter's label of a pixel
depends only on its own foreground component and a ``context`` neighbourhood (the classical
pipeline with a fixed threshold; a network up to its receptive field), the result equals the
whole-image result up to the numbering of the objects (tested). Objects that reach the zone's edge
inside the image are counted as ``truncated`` (raise ``margin`` when that is not 0).

Image policy constants (percentiles, inversion) come from the whole image, or from a strided
sample of at most 4 megapixels of a larger one, so every block is scaled alike.
"""

from __future__ import annotations

import math
import tempfile
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from dltk.errors import DataError
from dltk.io import atomic_path

from dltk_imaging.seg_data import GreyStats, apply_grey, grey_raw, grey_stats, read_image
from dltk_imaging.seg_measure import extract_crops, measure_objects

TIFF_TILE = 256
SAMPLE_PIXELS = 4_000_000


class Segmenter(Protocol):
    """Policy-scaled grey region (h, w) -> int instance map; ``context`` pixels of context needed."""

    context: int

    def fit(self, grey_sample: np.ndarray) -> None:
        """See the whole image once (a strided sample of a large one) before the blocks."""

    def __call__(self, grey: np.ndarray) -> np.ndarray: ...


class ImageSource:
    """Region reads of a raw image held in memory or read lazily from a TIFF (tile by tile)."""

    def __init__(self, data: Any, layout: str = "hwc") -> None:
        self.data, self.layout = data, layout
        shape = tuple(data.shape)
        self.shape: tuple[int, int] = shape[1:3] if layout == "chw" else shape[:2]  # type: ignore[assignment]

    def read(self, y0: int, y1: int, x0: int, x1: int, step: int = 1) -> np.ndarray:
        """Raw pixels of rows y0:y1, columns x0:x1 (every ``step``-th), (h, w[, C])."""
        if self.layout == "chw":
            return np.moveaxis(np.asarray(self.data[:, y0:y1:step, x0:x1:step]), 0, -1)
        return np.asarray(self.data[y0:y1:step, x0:x1:step])


def open_image(path: Path) -> ImageSource:
    """A TIFF is opened lazily (zarr view of its tiles or strips); other formats are decoded whole."""
    if path.suffix.lower() not in (".tif", ".tiff"):
        return _source(read_image(path), path)
    try:
        import tifffile
        import zarr

        z = zarr.open(tifffile.imread(path, aszarr=True), mode="r")
        if not hasattr(z, "shape"):  # a pyramid: level 0
            z = z["0"]
    except Exception as exc:
        raise DataError(path, f"unreadable image ({type(exc).__name__}: {exc})") from exc
    return _source(z, path)


def _source(data: Any, path: Path) -> ImageSource:
    shape = tuple(data.shape)
    if len(shape) == 2 or (len(shape) == 3 and shape[-1] <= 4 < shape[0]):
        return ImageSource(data)
    if len(shape) == 3 and shape[0] <= 4 < shape[1]:
        return ImageSource(data, "chw")
    raise DataError(path, f"not a 2-D image with at most 4 channels (shape {shape})")


@dataclass
class ImageResult:
    """One segmented image: its object table, crops, counts, and the mask when it was one block."""

    table: pd.DataFrame
    n_objects: int
    truncated: int = 0
    crops: np.ndarray | None = None
    labels: np.ndarray | None = None
    blocks: int = 1
    shape: tuple[int, int] = (0, 0)


def whole_image_stats(source: ImageSource) -> tuple[GreyStats, np.ndarray]:
    """Policy constants of the whole image (a strided sample of at most 4 MP) and that sample."""
    h, w = source.shape
    step = max(1, math.ceil(math.sqrt(h * w / SAMPLE_PIXELS)))
    raw = grey_raw(source.read(0, h, 0, w, step))
    stats = grey_stats(raw)
    return stats, apply_grey(raw, stats, converted=True)


def _owned(lab: np.ndarray, core: tuple[int, int, int, int]) -> np.ndarray:
    """Objects of ``lab`` whose first raster pixel lies in ``core`` (y0, y1, x0, x1), renumbered
    1..k in raster order of those pixels; every other pixel 0."""
    ids, first = np.unique(lab.ravel(), return_index=True)
    keep = ids > 0
    ids, first = ids[keep], first[keep]
    ay, ax = np.divmod(first, lab.shape[1])
    inside = (ay >= core[0]) & (ay < core[1]) & (ax >= core[2]) & (ax < core[3])
    ids, first = ids[inside], first[inside]
    lut = np.zeros(int(lab.max()) + 1 if lab.size else 1, dtype=np.int32)
    lut[ids[np.argsort(first, kind="stable")]] = np.arange(1, len(ids) + 1, dtype=np.int32)
    return lut[lab]


def _truncated(owned: np.ndarray, edges: tuple[bool, bool, bool, bool]) -> int:
    """Objects touching a zone edge that lies inside the image (top, bottom, left, right)."""
    sides = [owned[0], owned[-1], owned[:, 0], owned[:, -1]]
    touching = set()
    for inner, side in zip(edges, sides):
        if inner:
            touching.update(np.unique(side[side > 0]).tolist())
    return len(touching)


@dataclass
class _Block:
    zone: tuple[int, int, int, int]
    offset: int
    count: int
    file: Path


def _segment_block(source: ImageSource, segmenter: Segmenter, stats: GreyStats, core: tuple[int, int, int, int],
                   margin: int, extra: int) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], tuple[int, ...], int]:
    """(owned objects of the zone, raw region, zone box, region box, truncated) of one core."""
    h, w = source.shape
    y0, y1, x0, x1 = core
    zone = (max(0, y0 - margin), min(h, y1 + margin), max(0, x0 - margin), min(w, x1 + margin))
    region = (max(0, zone[0] - extra), min(h, zone[1] + extra), max(0, zone[2] - extra), min(w, zone[3] + extra))
    raw = source.read(*region)
    labels = np.asarray(segmenter(apply_grey(raw, stats)))
    zy, zx = zone[0] - region[0], zone[2] - region[2]
    lab_zone = labels[zy:zy + zone[1] - zone[0], zx:zx + zone[3] - zone[2]]
    owned = _owned(lab_zone, (y0 - zone[0], y1 - zone[0], x0 - zone[2], x1 - zone[2]))
    edges = (zone[0] > 0, zone[1] < h, zone[2] > 0, zone[3] < w)
    return owned, raw, zone, region, _truncated(owned, edges)


def segment_image(source: ImageSource, segmenter: Segmenter, name: str, *, block: int = 2048, margin: int = 64,
                  crop_size: int = 0, mask_path: Path | None = None) -> ImageResult:
    """Segment, measure and (optionally) crop one image block by block; write its mask atomically.

    Args:
        source: the raw image (:func:`open_image`).
        segmenter: the segmenter (see :class:`Segmenter`).
        name: the ``image`` column of the table.
        block: core side in pixels (a whole image up to this size is one block).
        margin: pixels of zone around each core (> the largest object), at most ``block``.
        crop_size: side of the single-cell crops (0 = none).
        mask_path: where to write the instance mask TIFF (None = not written).
    """
    if margin > block:
        raise ValueError(f"margin ({margin}) must not exceed block ({block})")
    stats, sample = whole_image_stats(source)
    segmenter.fit(sample)
    del sample
    h, w = source.shape
    extra = int(segmenter.context) + (crop_size // 2 + 1 if crop_size else 0)
    cores = [(y, min(h, y + block), x, min(w, x + block)) for y in range(0, h, block) for x in range(0, w, block)]
    tables, crops, blocks, truncated, offset = [], [], [], 0, 0
    with tempfile.TemporaryDirectory(prefix="dltk-nuclei-") as tmp:
        for i, core in enumerate(cores):
            owned, raw, zone, region, cut = _segment_block(source, segmenter, stats, core, margin, extra)
            truncated += cut
            zy, zx = zone[0] - region[0], zone[2] - region[2]
            raw_zone = raw[zy:zy + owned.shape[0], zx:zx + owned.shape[1]]
            table = measure_objects(owned, raw_zone, name, origin=(zone[0], zone[2]))
            table["object_id"] += offset
            tables.append(table)
            if crop_size:
                centroids = table[["centroid_y", "centroid_x"]].to_numpy()
                crops.append(extract_crops(raw, centroids, crop_size, origin=(region[0], region[2])))
            count = int(owned.max()) if owned.size else 0
            blocks.append(_Block(zone, offset, count, Path(tmp) / f"{i}.npy"))
            np.save(blocks[-1].file, owned)
            offset += count
        single = owned if len(cores) == 1 else None
        if mask_path is not None:
            write_mask(mask_path, (h, w), blocks, offset)
    table = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
    return ImageResult(table, offset, truncated, np.concatenate(crops) if crop_size else None, single,
                       len(cores), (h, w))


def _tiles(shape: tuple[int, int], blocks: list[_Block], dtype: type) -> Iterator[np.ndarray]:
    """Output tiles in row-major order, each pasted from the blocks whose zone meets it."""
    cache: OrderedDict[Path, np.ndarray] = OrderedDict()
    for ty in range(0, shape[0], TIFF_TILE):
        for tx in range(0, shape[1], TIFF_TILE):
            tile = np.zeros((TIFF_TILE, TIFF_TILE), dtype=dtype)
            for b in blocks:
                y0, y1, x0, x1 = b.zone
                if b.count == 0 or y1 <= ty or y0 >= ty + TIFF_TILE or x1 <= tx or x0 >= tx + TIFF_TILE:
                    continue
                if b.file not in cache:
                    cache[b.file] = np.load(b.file)
                    if len(cache) > 8:
                        cache.popitem(last=False)
                owned = cache[b.file]
                sy0, sy1, sx0, sx1 = max(y0, ty), min(y1, ty + TIFF_TILE), max(x0, tx), min(x1, tx + TIFF_TILE)
                piece = owned[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0]
                view = tile[sy0 - ty:sy1 - ty, sx0 - tx:sx1 - tx]
                np.copyto(view, (piece + b.offset).astype(dtype), where=(piece > 0) & (view == 0))
            yield tile


def write_mask(path: Path, shape: tuple[int, int], blocks: list[_Block], n_objects: int) -> Path:
    """The instance mask as a tiled zlib TIFF (uint16, uint32 above 65,535 objects), atomically."""
    import tifffile

    dtype = np.uint16 if n_objects <= 65535 else np.uint32
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, _tiles(shape, blocks, dtype), shape=shape, dtype=dtype,
                         tile=(TIFF_TILE, TIFF_TILE), compression="zlib")
    return path
