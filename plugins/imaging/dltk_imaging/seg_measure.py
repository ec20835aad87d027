"""Per-object measurements and single-cell crops of segmented nuclei.

The measurement table is what CellProfiler's MeasureObjectSizeShape + MeasureObjectIntensity give,
computed with scikit-image's ``regionprops_table`` on the instance map and the **raw** pixels (the
file's own values: 8 or 16 bit, every channel; the alpha channel of RGBA is dropped):

``image, object_id, centroid_y, centroid_x, bbox_min_y, bbox_min_x, bbox_max_y, bbox_max_x, area,
perimeter, eccentricity, solidity`` and per channel ``k`` ``mean_intensity_ck, max_intensity_ck,
integrated_intensity_ck`` (integrated = the sum of the object's pixel values, exact in float64).
Coordinates are in pixels of the whole image (row, column; the bounding box's max is exclusive).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SHAPE_COLUMNS: tuple[str, ...] = (
    "image", "object_id", "centroid_y", "centroid_x", "bbox_min_y", "bbox_min_x", "bbox_max_y", "bbox_max_x",
    "area", "perimeter", "eccentricity", "solidity")
"""The table's columns before the per-channel intensity columns."""

INTENSITY_COLUMNS: tuple[str, ...] = ("mean_intensity", "max_intensity", "integrated_intensity")
"""Per channel ``k``: ``<name>_c<k>``."""


def channels_last(image: np.ndarray) -> np.ndarray:
    """(H, W, C) view of a raw image: grey gets C = 1, RGBA loses alpha, (C, H, W) is moved."""
    a = np.asarray(image)
    if a.ndim == 2:
        return a[..., None]
    if a.ndim != 3:
        raise ValueError(f"cannot measure an image of shape {a.shape}")
    if a.shape[-1] <= 4 and a.shape[0] > 4:
        return a[..., :3] if a.shape[-1] == 4 else a
    if a.shape[0] <= 4:
        return np.moveaxis(a, 0, -1)
    raise ValueError(f"cannot read an image of shape {a.shape} as (H, W, C)")


def intensity_columns(n_channels: int) -> list[str]:
    """The per-channel column names for ``n_channels`` channels."""
    return [f"{name}_c{k}" for k in range(n_channels) for name in INTENSITY_COLUMNS]


def measure_objects(labels: np.ndarray, image: np.ndarray, image_name: str, *,
                    origin: tuple[int, int] = (0, 0)) -> pd.DataFrame:
    """One row per object of ``labels`` (ids kept) measured on ``image`` (see the module docstring).

    Args:
        labels: (h, w) int instance map, 0 = background.
        image: the raw pixels of the same region, (h, w), (h, w, C) or (C, h, w).
        image_name: the ``image`` column.
        origin: (row, column) of the region in the whole image, added to coordinates.
    """
    from skimage.measure import regionprops_table

    pixels = channels_last(image)
    labels = np.asarray(labels)
    if pixels.shape[:2] != labels.shape:
        raise ValueError(f"instance map {labels.shape} and image {pixels.shape[:2]} differ in size")
    n_ch = pixels.shape[-1]
    if not labels.any():
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in (*SHAPE_COLUMNS, *intensity_columns(n_ch))})
    props = regionprops_table(labels, properties=("label", "centroid", "bbox", "area", "perimeter",
                                                  "eccentricity", "solidity"))
    ids = props["label"].astype(np.int64)
    table = {"image": [image_name] * len(ids), "object_id": ids,
             "centroid_y": props["centroid-0"] + origin[0], "centroid_x": props["centroid-1"] + origin[1],
             "bbox_min_y": props["bbox-0"] + origin[0], "bbox_min_x": props["bbox-1"] + origin[1],
             "bbox_max_y": props["bbox-2"] + origin[0], "bbox_max_x": props["bbox-3"] + origin[1],
             "area": props["area"].astype(np.int64), "perimeter": props["perimeter"],
             "eccentricity": props["eccentricity"], "solidity": props["solidity"]}
    flat = labels.ravel()
    for k in range(n_ch):
        channel = np.ascontiguousarray(pixels[..., k])
        inten = regionprops_table(labels, intensity_image=channel, properties=("intensity_mean", "intensity_max"))
        sums = np.bincount(flat, weights=channel.ravel().astype(np.float64), minlength=int(ids.max()) + 1)
        table[f"mean_intensity_c{k}"] = inten["intensity_mean"].astype(np.float64)
        table[f"max_intensity_c{k}"] = inten["intensity_max"].astype(np.float64)
        table[f"integrated_intensity_c{k}"] = sums[ids]
    return pd.DataFrame(table)


def _dtype(column: str) -> str:
    if column == "image":
        return "object"
    return "int64" if column in ("object_id", "area") or column.startswith("bbox") else "float64"


def extract_crops(image: np.ndarray, centroids: np.ndarray, size: int,
                  origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """(N, C, size, size) crops of the raw pixels centred on each object (zero outside the image).

    Args:
        image: raw pixels of a region (layouts as in :func:`channels_last`).
        centroids: (N, 2) object centroids (row, column) in whole-image coordinates.
        size: crop side in pixels.
        origin: (row, column) of the region in the whole image.
    """
    pixels = channels_last(image)
    h, w, c = pixels.shape
    out = np.zeros((len(centroids), c, size, size), dtype=pixels.dtype)
    for i, (cy, cx) in enumerate(np.asarray(centroids, dtype=np.float64).reshape(-1, 2)):
        y0 = int(np.floor(cy - origin[0])) - size // 2
        x0 = int(np.floor(cx - origin[1])) - size // 2
        sy0, sx0 = max(0, y0), max(0, x0)
        sy1, sx1 = min(h, y0 + size), min(w, x0 + size)
        if sy1 > sy0 and sx1 > sx0:
            out[i, :, sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = np.moveaxis(pixels[sy0:sy1, sx0:sx1], -1, 0)
    return out
