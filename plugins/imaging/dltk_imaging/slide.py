"""Whole-slide inference: tissue mask, tiling at a chosen level, batched tile prediction, heatmap.

A slide (Aperio ``.svs``, Hamamatsu ``.ndpi``, any tiled pyramidal TIFF) is opened with tifffile;
its pyramid levels are the levels of the first series (an SVS also stores reduced images as later
pages: these are used as levels when they share the slide's aspect ratio and are listed in
:func:`slide_levels`). Pixels are read **lazily** through tifffile's zarr store: reading a tile
decodes only the JPEG/LZW tiles of the file it overlaps, so memory is bounded by the batch of
tiles, not by the slide (a 100,000 x 80,000 slide is never decoded whole).

1. **Tissue mask** on a thumbnail (the slide's own thumbnail page, or the smallest level):
   saturation above Otsu's threshold (scikit-image; stained tissue is coloured, glass is not),
   cleaned with morphological closing/opening, hole filling and small-object removal.
2. **Tiles**: a grid of ``tile x tile`` pixels at the chosen level (default: the model's training
   image size, so the tile's pixel scale should match the training tiles' microns per pixel);
   a tile is predicted when at least ``min_tissue`` of its footprint is tissue.
3. **Prediction** in batches of tiles (ensembles averaged), probabilities per class.
4. **Output**: ``tiles.csv`` (tile column/row, level-0 ``x``, ``y``, ``width``, ``height``, tissue
   fraction, predicted class, ``prob_<class>``) and ``heatmap.png`` (predicted class over the
   thumbnail, opacity = confidence) plus ``tissue_mask.png``. ``--output`` is a folder, or a
   ``.csv`` path whose PNGs are written beside it (``<stem>_heatmap.png``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from dltk.errors import ConfigError, DataError

SLIDE_SUFFIXES = (".svs", ".ndpi", ".scn", ".bif", ".vms", ".qptiff")
MIN_SLIDE_PIXELS = 4096
"""A plain TIFF counts as a slide when its first page is tiled and at least this wide or high."""


def is_slide(path: Path) -> bool:
    """A whole-slide file: a slide suffix, or a tiled TIFF of at least MIN_SLIDE_PIXELS."""
    suffix = path.suffix.lower()
    if suffix in SLIDE_SUFFIXES:
        return True
    if suffix in (".tif", ".tiff") and path.is_file():
        try:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                page = tif.pages.first
                return bool(page.is_tiled) and max(page.shape[:2]) >= MIN_SLIDE_PIXELS
        except Exception:  # noqa: BLE001 - not readable as TIFF: not a slide (the image reader reports it)
            return False
    return False


@dataclass
class Level:
    """One pyramid level: its size and downsample relative to level 0."""

    index: int
    height: int
    width: int
    downsample: float


class Slide:
    """A whole-slide image read lazily with tifffile + zarr.

    Raises:
        DataError: the file is not a readable RGB(A) tiled slide.
    """

    def __init__(self, path: str | Path) -> None:
        import tifffile

        self.path = Path(path)
        try:
            self.tif = tifffile.TiffFile(self.path)
        except Exception as exc:
            raise DataError(self.path, f"not a slide: cannot open as TIFF ({type(exc).__name__}: "
                                       f"{' '.join(str(exc).split())[:100]})") from exc
        try:
            series = self.tif.series[0]
            base = series.levels[0]
            if len(base.shape) != 3 or base.shape[-1] not in (3, 4) or base.dtype != np.uint8:
                raise DataError(self.path, f"not an RGB slide (first series {base.shape} {base.dtype}, axes "
                                           f"{base.axes})")
            self.levels: list[Level] = []
            w0 = base.shape[1]
            self._arrays: list[Any] = []
            for k, level in enumerate(series.levels):
                h, w = level.shape[:2]
                self.levels.append(Level(k, h, w, w0 / w))
                self._arrays.append(None)
        except DataError:
            self.tif.close()
            raise
        except Exception as exc:
            self.tif.close()
            raise DataError(self.path, f"not a slide ({type(exc).__name__}: {' '.join(str(exc).split())[:100]})"
                            ) from exc

    def close(self) -> None:
        self.tif.close()

    def __enter__(self) -> Slide:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _array(self, level: int) -> Any:
        if self._arrays[level] is None:
            import zarr

            store = self.tif.series[0].aszarr(level=level)
            self._arrays[level] = zarr.open(store, mode="r")
        return self._arrays[level]

    def read_region(self, level: int, x: int, y: int, width: int, height: int) -> np.ndarray:
        """RGB ``(height, width, 3)`` uint8 at ``level`` from level pixel ``(x, y)``; zero-padded
        (white) beyond the edge. Only the file tiles overlapping the region are decoded."""
        lv = self.levels[level]
        out = np.full((height, width, 3), 255, dtype=np.uint8)
        x1, y1 = min(lv.width, x + width), min(lv.height, y + height)
        if x1 > x and y1 > y:
            out[: y1 - y, : x1 - x] = np.asarray(self._array(level)[y:y1, x:x1])[..., :3]
        return out

    def thumbnail(self, max_size: int = 1024) -> np.ndarray:
        """An RGB overview no larger than ``max_size``: the slide's thumbnail page when it has one with
        the same aspect ratio, else the smallest level (read whole: levels that small are cheap)."""
        h0, w0 = self.levels[0].height, self.levels[0].width
        candidates = []
        for series in self.tif.series[1:]:
            if series.name.lower() in ("thumbnail",) and len(series.shape) == 3:
                h, w = series.shape[:2]
                if abs(w / h - w0 / h0) < 0.02:
                    candidates.append(series.asarray()[..., :3])
        if candidates:
            thumb = candidates[0]
        else:
            smallest = self.levels[-1]
            if smallest.width * smallest.height > 64_000_000:
                raise DataError(self.path, "slide has no thumbnail and no small pyramid level to build one from")
            thumb = self.read_region(smallest.index, 0, 0, smallest.width, smallest.height)
        scale = max(thumb.shape[:2]) / max_size
        if scale > 1:
            step = int(np.ceil(scale))
            thumb = thumb[::step, ::step]
        return np.ascontiguousarray(thumb)


def tissue_mask(thumb: np.ndarray) -> np.ndarray:
    """Boolean tissue mask of an RGB thumbnail: saturation above Otsu's threshold (stained tissue is
    coloured, glass and background are grey or white), closed, opened, with small holes filled and
    specks removed (scikit-image)."""
    from skimage.color import rgb2hsv
    from skimage.filters import threshold_otsu
    from skimage.morphology import closing, disk, opening, remove_small_holes, remove_small_objects

    sat = rgb2hsv(thumb[..., :3])[..., 1]
    if float(sat.max() - sat.min()) < 1e-3:
        return np.zeros(sat.shape, dtype=bool)
    mask = sat > threshold_otsu(sat)
    mask = opening(closing(mask, disk(2)), disk(1))
    size = max(16, int(mask.size * 1e-4))
    if _skimage_max_size():  # scikit-image >= 0.26: objects/holes of at most max_size pixels
        mask = remove_small_objects(mask, max_size=size)
        return remove_small_holes(mask, max_size=size)
    mask = remove_small_objects(mask, min_size=size)
    return remove_small_holes(mask, area_threshold=size)


def _skimage_max_size() -> bool:
    import inspect

    from skimage.morphology import remove_small_objects

    return "max_size" in inspect.signature(remove_small_objects).parameters


@dataclass
class TileGrid:
    """The tiles of one level that hold enough tissue."""

    level: int
    tile: int
    cols: np.ndarray
    rows: np.ndarray
    tissue: np.ndarray
    n_cols: int
    n_rows: int
    level_width: int
    level_height: int


def tile_grid(slide: Slide, mask: np.ndarray, level: int, tile: int, min_tissue: float) -> TileGrid:
    """Grid of ``tile``-pixel tiles at ``level``; keeps tiles whose tissue fraction (measured on the
    thumbnail mask over the tile's footprint) is at least ``min_tissue``."""
    lv = slide.levels[level]
    n_cols, n_rows = int(np.ceil(lv.width / tile)), int(np.ceil(lv.height / tile))
    mh, mw = mask.shape
    # footprint of each tile on the mask, in mask pixels (the mask covers level 0's full extent)
    sx, sy = mw / lv.width, mh / lv.height
    cols, rows, fracs = [], [], []
    for r in range(n_rows):
        y0, y1 = int(r * tile * sy), max(int(r * tile * sy) + 1, int(np.ceil(min(lv.height, (r + 1) * tile) * sy)))
        for c in range(n_cols):
            x0 = int(c * tile * sx)
            x1 = max(x0 + 1, int(np.ceil(min(lv.width, (c + 1) * tile) * sx)))
            frac = float(mask[y0:y1, x0:x1].mean()) if y1 > y0 and x1 > x0 else 0.0
            if frac >= min_tissue:
                cols.append(c)
                rows.append(r)
                fracs.append(frac)
    return TileGrid(level, tile, np.asarray(cols, dtype=np.int64), np.asarray(rows, dtype=np.int64),
                    np.asarray(fracs, dtype=np.float32), n_cols, n_rows, lv.width, lv.height)


def iter_tile_batches(slide: Slide, grid: TileGrid, batch_size: int) -> Iterator[tuple[slice, np.ndarray]]:
    """``(index slice, (B, 3, tile, tile) uint8)`` batches, read lazily one batch at a time."""
    t = grid.tile
    for start in range(0, len(grid.cols), batch_size):
        stop = min(len(grid.cols), start + batch_size)
        tiles = [slide.read_region(grid.level, int(c) * t, int(r) * t, t, t)
                 for c, r in zip(grid.cols[start:stop], grid.rows[start:stop])]
        yield slice(start, stop), np.stack(tiles).transpose(0, 3, 1, 2)


def _check_slide_model(info: dict[str, Any], tile: int, min_tissue: float) -> int:
    """The tile size (default: the model's image size) after checking that the model reads 8-bit RGB
    and the options are in range; a ConfigError otherwise."""
    if int(info.get("in_chans", 3)) != 3 or info.get("bit_depth", "8-bit") != "8-bit":
        raise ConfigError(f"slides are 8-bit RGB, but this model was trained on {info.get('in_chans')}-channel "
                          f"{info.get('bit_depth')} images; train tissue_tiles (or an RGB images task) to "
                          "predict slides")
    if not 0.0 <= min_tissue <= 1.0:
        raise ConfigError(f"--min-tissue must be within 0..1, got {min_tissue}")
    h, _ = info.get("image_size", [224, 224])
    tile = int(tile or h)
    if tile < 8:
        raise ConfigError(f"--tile must be at least 8 pixels, got {tile}")
    return tile


def _tile_probabilities(slide: Slide, grid: TileGrid, models: list[Any], size: tuple[int, int],
                        batch_size: int) -> np.ndarray:
    """Class probabilities of every tissue tile of ``grid`` (resized to the model's ``size``),
    averaged over ``models``."""
    import torch
    from dltk.inference import device
    from tqdm.auto import tqdm

    probs = np.zeros((len(grid.cols), len(models[0].class_names)), dtype=np.float32)
    dev = device()
    for m in models:
        m.to(dev).eval()
    with torch.inference_mode():
        batches = iter_tile_batches(slide, grid, batch_size)
        for index, tiles in tqdm(batches, total=int(np.ceil(len(grid.cols) / batch_size)), desc="tiles",
                                 unit="batch", leave=False):
            x = torch.from_numpy(tiles).to(dev)
            if tuple(x.shape[-2:]) != size:
                x = torch.nn.functional.interpolate(x.float(), size=size, mode="bilinear", align_corners=False)
            batch = {"x": x}
            probs[index] = np.mean([m.predict_step(batch).float().cpu().numpy() for m in models], axis=0)
    return probs


def predict_slide(path: Path, output_path: str, models: list[Any], *, level: int = 0, tile: int = 0,
                  min_tissue: float = 0.5, batch_size: int = 32) -> dict[str, int]:
    """Tile ``path``, predict tissue tiles with ``models`` (averaged), write CSV + heatmap PNGs."""
    import pandas as pd
    from dltk.io import atomic_path

    model = models[0]
    h, w = model.data_info.get("image_size", [224, 224])
    tile = _check_slide_model(model.data_info, tile, min_tissue)
    out = Path(output_path)
    if out.suffix.lower() == ".csv":
        csv_path, png_dir, stem = out, out.parent, out.stem + "_"
    else:
        csv_path, png_dir, stem = out / "tiles.csv", out, ""
    with Slide(path) as slide:
        if not 0 <= level < len(slide.levels):
            raise ConfigError(f"--level {level}: {path.name} has levels 0..{len(slide.levels) - 1} "
                              f"({', '.join(f'{lv.width}x{lv.height}' for lv in slide.levels)})")
        thumb = slide.thumbnail()
        mask = tissue_mask(thumb)
        grid = tile_grid(slide, mask, level, tile, min_tissue)
        lv = slide.levels[level]
        print(f"dltk imaging: {path.name} level {level} ({lv.width}x{lv.height}, downsample {lv.downsample:g}): "
              f"{len(grid.cols)} of {grid.n_cols * grid.n_rows} tiles of {tile} px hold >= {min_tissue:.0%} tissue",
              flush=True)
        n_classes = len(model.class_names)
        probs = _tile_probabilities(slide, grid, models, (int(h), int(w)), batch_size)
    scale = lv.downsample
    table = pd.DataFrame({
        "col": grid.cols, "row": grid.rows, "level": level,
        "x": np.rint(grid.cols * tile * scale).astype(np.int64), "y": np.rint(grid.rows * tile * scale).astype(np.int64),
        "width": round(tile * scale), "height": round(tile * scale), "tissue_fraction": grid.tissue,
    })
    columns = model.output_columns(probs) if len(probs) else {
        k: v[:0] for k, v in model.output_columns(np.zeros((1, n_classes), np.float32)).items()}
    for name, values in columns.items():
        table[name] = values
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.5g")
    heatmap_png(thumb, grid, probs, list(model.class_names), png_dir / f"{stem}heatmap.png",
                title=f"{path.name}: level {level}, {tile}-px tiles")
    mask_png(thumb, mask, png_dir / f"{stem}tissue_mask.png")
    print(f"dltk imaging: wrote {csv_path}, {png_dir / f'{stem}heatmap.png'}", flush=True)
    return {"tiles": int(grid.n_cols * grid.n_rows), "predicted": len(grid.cols),
            "background": int(grid.n_cols * grid.n_rows - len(grid.cols))}


def class_colours(n: int) -> np.ndarray:
    """``(n, 3)`` distinct RGB colours in 0..1 (matplotlib's tab10/tab20)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return np.asarray([cmap(i % cmap.N)[:3] for i in range(n)])


def heatmap_png(thumb: np.ndarray, grid: TileGrid, probs: np.ndarray, class_names: list[str], path: Path,
                title: str = "") -> Path:
    """Predicted class per tile over the thumbnail (opacity = probability of that class)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from dltk.plots import save_figure
    from matplotlib.patches import Patch

    colours = class_colours(len(class_names))
    overlay = np.zeros((grid.n_rows, grid.n_cols, 4), dtype=np.float32)
    if len(probs):
        pred = probs.argmax(axis=1)
        overlay[grid.rows, grid.cols, :3] = colours[pred]
        floor = 1.0 / len(class_names)  # opacity from chance-level (faint) to certain (strong)
        confidence = (probs.max(axis=1) - floor) / max(1e-6, 1.0 - floor)
        overlay[grid.rows, grid.cols, 3] = 0.35 + 0.5 * np.clip(confidence, 0, 1)
    th, tw = thumb.shape[:2]
    fig, ax = plt.subplots(figsize=(7, 7 * th / tw + 0.6))
    ax.imshow(thumb)
    extent = (0, grid.n_cols * grid.tile * tw / grid.level_width, grid.n_rows * grid.tile * th / grid.level_height, 0)
    ax.imshow(overlay, extent=extent, interpolation="nearest")
    ax.set_xlim(0, tw)
    ax.set_ylim(th, 0)
    ax.set_axis_off()
    used = sorted(set(probs.argmax(axis=1).tolist())) if len(probs) else []
    ax.legend(handles=[Patch(color=colours[i], label=class_names[i]) for i in used], loc="upper left",
              bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_title(title + f" ({len(probs)} tissue tiles)", fontsize=9)
    return save_figure(fig, path)


def mask_png(thumb: np.ndarray, mask: np.ndarray, path: Path) -> Path:
    """The thumbnail with the tissue mask outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from dltk.plots import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(8, 4 * thumb.shape[0] / thumb.shape[1] + 0.5))
    axes[0].imshow(thumb)
    axes[0].set_title("thumbnail", fontsize=9)
    axes[1].imshow(mask, cmap="gray")
    axes[1].set_title(f"tissue mask ({mask.mean():.0%} of the slide)", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    return save_figure(fig, path)
