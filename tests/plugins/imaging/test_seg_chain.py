"""Segment -> measure -> classify on generated images with known nuclei; block-wise == whole-image."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from dltk.errors import DataError
from dltk.options import parse as parse_options
from dltk_imaging.options import NucleiPredictOptions
from dltk_imaging.seg_blocks import ImageSource, segment_image
from dltk_imaging.seg_classical import ClassicalParams, ClassicalSegmenter, classical_instances
from dltk_imaging.seg_measure import SHAPE_COLUMNS, intensity_columns
from dltk_imaging.seg_metrics import image_metrics
from dltk_imaging.seg_predict import predict_folder
from PIL import Image


def _nuclei(shape: tuple[int, int], n: int, seed: int, radius: tuple[int, int] = (5, 9), gap: int = 26,
            channels: int = 1, dtype: type = np.uint16) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """An image of ``n`` separated discs, each of its own constant value per channel, on a dark
    background; the true instance map; the value(s) of each true object."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    grid = [(y, x) for y in range(gap // 2, shape[0] - gap // 2, gap)
            for x in range(gap // 2, shape[1] - gap // 2, gap)]
    labels = np.zeros(shape, np.int32)
    image = np.full((*shape, channels), 40, dtype)
    values = {}
    for i, k in enumerate(rng.choice(len(grid), n, replace=False), start=1):
        (cy, cx), r = grid[k], int(rng.integers(*radius))
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        labels[disc] = i
        values[i] = rng.integers(900, 4000, channels).astype(dtype)
        image[disc] = values[i]
    return (image[..., 0] if channels == 1 else image), labels, values


EXACT = NucleiPredictOptions(segmenter="classical", sigma=0.0, threshold=0.1, crops=24)


def test_chain_counts_areas_and_intensities_exactly(tmp_path: Path) -> None:
    image, true, values = _nuclei((200, 260), 40, seed=0, channels=2)
    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "plate1.tif", image)
    counts = predict_folder([], folder, tmp_path / "out", EXACT)
    assert counts == {"images": 1, "segmented": 1, "skipped": 0, "nuclei": 40}
    table = pd.read_csv(tmp_path / "out" / "objects.csv")
    assert list(table.columns) == [*SHAPE_COLUMNS, *intensity_columns(2)]
    mask = tifffile.imread(tmp_path / "out" / "plate1_labels.tif")
    assert mask.dtype == np.uint16 and mask.shape == true.shape
    assert image_metrics(true, mask)["dsb_score"] == 1.0
    for row in table.itertuples():
        t = int(np.bincount(true[mask == row.object_id]).argmax())  # the true disc under this object
        area = int((true == t).sum())
        assert abs(row.area - area) <= 0.05 * area
        assert row.image == "plate1.tif" and row.mean_intensity_c0 == values[t][0] == row.max_intensity_c0
        assert row.mean_intensity_c1 == values[t][1]
        assert row.integrated_intensity_c0 == float(values[t][0]) * row.area
    assert Image.open(tmp_path / "out" / "plate1_overlay.png").format == "PNG"


def test_block_wise_equals_whole_image() -> None:
    image, _, _ = _nuclei((300, 420), 120, seed=1, radius=(4, 10), gap=22)
    params = ClassicalParams(threshold=0.1, sigma=1.0, min_distance=4)
    whole = segment_image(ImageSource(image), ClassicalSegmenter(params), "a", block=1024, crop_size=16)
    tiled = segment_image(ImageSource(image), ClassicalSegmenter(params), "a", block=64, margin=32, crop_size=16)
    assert whole.blocks == 1 and tiled.blocks == 5 * 7 and tiled.truncated == 0
    assert whole.n_objects == tiled.n_objects == 120
    key = ["centroid_y", "centroid_x"]
    a, b = whole.table.sort_values(key), tiled.table.sort_values(key)
    pd.testing.assert_frame_equal(a.drop(columns="object_id").reset_index(drop=True),
                                  b.drop(columns="object_id").reset_index(drop=True))
    np.testing.assert_array_equal(whole.crops[a.index.to_numpy()], tiled.crops[b.index.to_numpy()])


def test_block_mask_file_equals_whole_image_mask(tmp_path: Path) -> None:
    image, _, _ = _nuclei((300, 420), 120, seed=2, radius=(4, 10), gap=22)
    params = ClassicalParams(threshold=0.1, sigma=1.0)
    segmenter = ClassicalSegmenter(params)
    segment_image(ImageSource(image), segmenter, "a", mask_path=tmp_path / "whole.tif")
    result = segment_image(ImageSource(image), segmenter, "a", block=64, margin=32, mask_path=tmp_path / "tiled.tif")
    whole, tiled = tifffile.imread(tmp_path / "whole.tif"), tifffile.imread(tmp_path / "tiled.tif")
    assert result.blocks > 1 and whole.max() == tiled.max() == 120
    pairs = np.unique(np.stack([whole.ravel(), tiled.ravel()]), axis=1)  # a one-to-one renumbering
    assert pairs.shape[1] == 121 and len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == 121
    # the whole-image path is the plain pipeline, objects numbered in raster order
    grey = image.astype(np.float32)
    from dltk_imaging.seg_data import to_grey

    np.testing.assert_array_equal(whole, classical_instances(to_grey(grey), params))


def test_bad_inputs_are_skips_or_one_line_errors(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    rgba = np.zeros((64, 80, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[20:32, 20:34, :3] = 230
    Image.fromarray(rgba, "RGBA").save(folder / "a_rgba.png")
    Image.fromarray(np.zeros((50, 60), np.uint8)).save(folder / "b_empty.png")  # no nuclei: a valid result
    (folder / "c_broken.tif").write_bytes(b"II*\x00garbage")
    args = ["--segmenter", "classical", "--sigma", "0", "--table", "parquet", "--crops", "16"]
    opts = parse_options(NucleiPredictOptions, args, "p")
    counts = predict_folder([], folder, tmp_path / "out", opts)
    assert counts == {"images": 3, "segmented": 2, "skipped": 1, "nuclei": 1}
    table = pd.read_parquet(tmp_path / "out" / "objects.parquet")
    assert len(table) == 1 and table.area[0] == 12 * 14 and table.mean_intensity_c2[0] == 230
    with open(tmp_path / "out" / "counts.csv") as fh:
        rows = {r["file"]: r for r in csv.DictReader(fh)}
    assert rows["b_empty.png"]["nuclei"] == "0" and "unreadable image" in rows["c_broken.tif"]["error"]
    assert tifffile.imread(tmp_path / "out" / "b_empty_labels.tif").max() == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="holds no images"):
        predict_folder([], empty, tmp_path / "out2", opts)
    assert not (tmp_path / "out2").exists()
    with pytest.raises(Exception, match="--crops must be 0 or at least 8"):
        parse_options(NucleiPredictOptions, ["--crops", "3"], "p")


def test_crops_train_the_images_task(tmp_path: Path) -> None:
    """Class folders -> crops.npz with labels -> the ``images`` task reads and trains on it."""
    from dltk_imaging.readers import read_arrays

    screen = tmp_path / "screen"
    for k, cls in enumerate(("control", "drug")):
        (screen / cls).mkdir(parents=True)
        for j in range(2):
            image, _, _ = _nuclei((120, 160), 12, seed=10 * k + j, radius=(5, 8) if k == 0 else (8, 11))
            tifffile.imwrite(screen / cls / f"well{j}.tif", image)
    counts = predict_folder([], screen, tmp_path / "out", EXACT)
    assert counts["nuclei"] == 48
    data = read_arrays(tmp_path / "out" / "crops.npz")
    assert data.images.shape == (48, 1, 24, 24) and data.class_names == ["control", "drug"]
    assert np.bincount(data.labels).tolist() == [24, 24]
    with np.load(tmp_path / "out" / "crops.npz") as z:
        assert z["image"][0] == "control/well0.tif" and z["object_id"][:3].tolist() == [1, 2, 3]
    from dltk.cli import main
    from testutil import preserved_environ

    with preserved_environ():
        code = main(["train", "--plugin", "imaging", "--task", "images", "--data.path",
                     str(tmp_path / "out" / "crops.npz"), "--run-dir", str(tmp_path / "run"),
                     "--model.backbone", "test_resnet", "--trainer.max_epochs", "1",
                     "--data.batch_size", "8", "--trainer.enable_progress_bar", "false"])
    assert code == 0 and (tmp_path / "run" / "metrics.json").is_file()
