"""Whole-slide reading and tiling on the real OpenSlide test slide (CMU-1-Small-Region.svs) and on
generated TIFFs: lazy region reads equal the decoded page, the tissue mask, the tile grid, the
CSV + heatmap output, and "not a slide" errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

tifffile = pytest.importorskip("tifffile")
pytest.importorskip("zarr")

from dltk.data import fetch
from dltk.errors import DataError
from dltk_imaging.cls_datamodules import FILES
from dltk_imaging.cls_models import ImageClassifier
from dltk_imaging.slide import Slide, is_slide, predict_slide, tile_grid, tissue_mask

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def svs(data_root: Path) -> Path:
    return fetch(FILES["cmu1_small"])


def test_svs_levels_and_lazy_regions_equal_the_page(svs: Path) -> None:
    assert is_slide(svs)
    with Slide(svs) as slide:
        assert [(lv.width, lv.height) for lv in slide.levels] == [(2220, 2967)]  # MANIFEST: level 0 2220x2967
        full = tifffile.imread(svs, key=0)
        region = slide.read_region(0, 1000, 700, 300, 250)
        assert np.array_equal(region, full[700:950, 1000:1300])
        edge = slide.read_region(0, 2100, 2900, 200, 100)  # beyond the edge: white padding
        assert np.array_equal(edge[:67, :120], full[2900:, 2100:]) and (edge[67:] == 255).all()
        thumb = slide.thumbnail()
        assert thumb.shape == (768, 574, 3)  # the SVS thumbnail page
        mask = tissue_mask(thumb)
        assert 0.2 < mask.mean() < 0.5  # a tissue strip on glass
        assert not mask[400:700, :100].any()  # glass left of the tissue strip
        grid = tile_grid(slide, mask, level=0, tile=150, min_tissue=0.5)
        assert (grid.n_cols, grid.n_rows) == (15, 20)
        assert 40 < len(grid.cols) < 200 and (grid.tissue >= 0.5).all()


def test_not_a_slide(tmp_path: Path) -> None:
    fake = tmp_path / "fake.svs"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n not a slide")
    assert is_slide(fake)
    with pytest.raises(DataError, match="fake.svs: not a slide"):
        Slide(fake)
    grey = tmp_path / "grey.svs"
    tifffile.imwrite(grey, np.zeros((64, 64), np.uint16))
    with pytest.raises(DataError, match="not an RGB slide"):
        Slide(grey)
    small = tmp_path / "cell.tif"
    tifffile.imwrite(small, np.zeros((3, 40, 40), np.uint16))
    assert not is_slide(small)  # an ordinary multi-channel image is not tiled as a slide


def _tiny_rgb_model(tile: int = 32) -> ImageClassifier:
    info = {"task_names": ["tissue"], "task_type": "multiclass", "class_names": ["tumor", "stroma", "empty"],
            "class_counts": [1, 1, 1], "in_chans": 3, "image_size": [tile, tile], "norm_low": [0.0] * 3,
            "norm_high": [255.0] * 3, "bit_depth": "8-bit", "primary_metric": ["balanced_accuracy", "max"]}
    return ImageClassifier(backbone="test_resnet", data_info=info)


def test_predict_slide_writes_tiles_and_heatmap(svs: Path, tmp_path: Path) -> None:
    counts = predict_slide(svs, str(tmp_path / "out"), [_tiny_rgb_model(64)], level=0, tile=256, min_tissue=0.5,
                           batch_size=8)
    table = pd.read_csv(tmp_path / "out" / "tiles.csv")
    assert counts["tiles"] == 9 * 12 and counts["predicted"] == len(table) > 0
    assert counts["background"] == counts["tiles"] - counts["predicted"]
    probs = table[["prob_tumor", "prob_stroma", "prob_empty"]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert set(table["tissue"]) <= {"tumor", "stroma", "empty"}
    assert (table["x"] == table["col"] * 256).all() and (table["width"] == 256).all()
    for name in ("heatmap.png", "tissue_mask.png"):
        assert (tmp_path / "out" / name).read_bytes()[:8] == PNG_MAGIC


def test_pyramidal_tiff_levels(tmp_path: Path) -> None:
    """A generated 2-level tiled pyramid (level 1 = 2x downsample) is read level by level."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (512, 768, 3), dtype=np.uint8)
    path = tmp_path / "pyramid.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(base, tile=(128, 128), photometric="rgb", subifds=1)
        tif.write(base[::2, ::2], tile=(128, 128), photometric="rgb", subfiletype=1)
    with Slide(path) as slide:
        assert [(lv.width, lv.height, lv.downsample) for lv in slide.levels] == [(768, 512, 1.0), (384, 256, 2.0)]
        assert np.array_equal(slide.read_region(1, 100, 50, 64, 32), base[::2, ::2][50:82, 100:164])
