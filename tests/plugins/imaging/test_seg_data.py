"""DSB2018 reader (documented counts), user image + mask folders, the grey image policy, the split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from dltk.errors import DataError
from dltk_imaging.seg_data import image_kind, load_dsb2018, load_folder_pairs, stratified_split, to_grey
from PIL import Image


def test_dsb2018_documented_counts(data_root: Path) -> None:
    samples = load_dsb2018()
    assert len(samples) == 65
    assert sum(int(s.labels.max()) for s in samples) == 4152  # MANIFEST: 4,152 nuclei
    assert all(len(np.unique(s.labels)) - 1 == s.labels.max() for s in samples)  # consecutive ids
    assert sum(s.image.ndim == 3 for s in samples) == 12
    shapes = {s.image.shape[:2] for s in samples}
    assert (256, 256) in shapes and (520, 696) in shapes
    assert min(min(s) for s in shapes) == 161 and max(max(s) for s in shapes) == 696
    assert len(samples[0].id) == 64  # Kaggle image ids
    assert {s.kind for s in samples} == {"fluorescence", "colour"}


def test_dsb2018_split_is_seeded_and_stratified(data_root: Path) -> None:
    kinds = [s.kind for s in load_dsb2018()]
    a = stratified_split(kinds, 20, 5, seed=0)
    assert [len(a[k]) for k in ("train", "val", "test")] == [40, 5, 20]
    assert sorted(a["train"] + a["val"] + a["test"]) == list(range(65))
    assert a == stratified_split(kinds, 20, 5, seed=0)
    assert a["test"] != stratified_split(kinds, 20, 5, seed=1)["test"]
    # 12 of 65 images are colour: round(20 * 12 / 65) = 4 of them in the test split
    assert sum(kinds[i] == "colour" for i in a["test"]) == 4


def test_split_too_small_is_an_error() -> None:
    with pytest.raises(DataError, match="cannot give"):
        stratified_split(["a"] * 5, 3, 2, seed=0)


def test_grey_policy() -> None:
    dark = np.zeros((32, 32), np.uint8)
    dark[10:20, 10:20] = 200  # a bright nucleus on a dark background: not inverted
    g = to_grey(dark)
    assert g.dtype == np.float32 and g.shape == (32, 32)
    assert g[15, 15] == 1.0 and g[0, 0] == 0.0
    he = np.full((32, 32, 3), 230, np.uint8)
    he[10:20, 10:20] = (90, 40, 120)  # a dark purple nucleus on a bright background: inverted
    g = to_grey(he)
    assert g[15, 15] == 1.0 and g[0, 0] == 0.0
    assert image_kind(he) == "colour" and image_kind(dark) == "fluorescence"
    assert image_kind(np.repeat(255 - dark[..., None], 3, axis=-1)) == "brightfield"
    # RGB luminance weights (ITU-R 601), before scaling
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = np.arange(8)[:, None] * 30
    np.testing.assert_allclose(to_grey(rgb, invert="never"), to_grey(rgb[..., 0], invert="never"), atol=1e-6)
    with pytest.raises(ValueError):
        to_grey(np.zeros((2, 3, 4, 5)))


def _pair_folders(tmp_path: Path) -> tuple[Path, Path]:
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    labels = np.zeros((40, 48), np.uint16)
    labels[5:15, 5:15] = 1
    labels[20:30, 20:35] = 2
    image = (labels > 0).astype(np.uint8) * 180 + 10
    tifffile.imwrite(images / "a.tif", image)
    tifffile.imwrite(masks / "a.tif", labels)
    Image.fromarray(np.stack([image] * 3, axis=-1)).save(images / "b.png")
    Image.fromarray(((labels > 0) * 255).astype(np.uint8)).save(masks / "b_mask.png")  # binary mask
    Image.fromarray(image).save(images / "c.png")  # no mask
    return images, masks


def test_folder_pairs_read_match_and_count_skips(tmp_path: Path) -> None:
    images, masks = _pair_folders(tmp_path)
    (images / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(masks / "d.png")
    samples, messages = load_folder_pairs(images, masks)
    assert [s.id for s in samples] == ["a", "b"]
    assert samples[0].labels.max() == 2 and samples[1].labels.max() == 2  # binary mask split in two
    np.testing.assert_array_equal(samples[0].labels > 0, samples[1].labels > 0)
    assert "skipped 1 images unreadable (first: " in messages[0] and "d.png" in messages[0]
    assert messages[1] == "skipped 1 images without a mask (first: c.png)"
    assert messages[2].startswith("1 masks were binary")


def test_mask_of_another_size_is_a_one_line_error(tmp_path: Path) -> None:
    images, masks = _pair_folders(tmp_path)
    tifffile.imwrite(masks / "a.tif", np.zeros((40, 47), np.uint16))
    with pytest.raises(DataError, match=r"mask is 47x40 pixels but its image a.tif is 48x40"):
        load_folder_pairs(images, masks)


def test_no_usable_pairs_and_missing_folders(tmp_path: Path) -> None:
    images, masks = _pair_folders(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no usable image"):
        load_folder_pairs(images, empty)
    with pytest.raises(DataError, match="mask folder not found"):
        load_folder_pairs(images, tmp_path / "nope")
    with pytest.raises(DataError, match="no images"):
        load_folder_pairs(empty, masks)


def test_nucleus_radius_and_scale() -> None:
    from dltk_imaging.seg_data import nucleus_radius, rescale_pair, scale_for

    yy, xx = np.mgrid[:200, :200]
    disc = (yy - 100) ** 2 + (xx - 100) ** 2 <= 40 ** 2
    assert nucleus_radius(disc) == pytest.approx(40, rel=0.05)  # mean distance in a disc is r / 3
    two = disc | ((yy - 100) ** 2 + (xx - 180) ** 2 <= 40 ** 2)  # touching discs: same radius
    assert nucleus_radius(two) == pytest.approx(40, rel=0.1)
    assert nucleus_radius(np.zeros((4, 4), bool)) == 0.0
    assert scale_for(40, 10) == 0.25 and scale_for(10.5, 10) == 1.0 and scale_for(5, 10) == 1.0
    assert scale_for(1000, 10) == 0.2 and scale_for(40, 0) == 1.0
    labels = disc.astype(np.int32) * 3
    g, lab = rescale_pair(disc.astype(np.float32), labels, 0.25)
    assert g.shape == lab.shape == (50, 50) and set(np.unique(lab)) == {0, 3}


@pytest.mark.slow
def test_competition_protocol_trains_on_stage1_train_and_tests_on_all_65() -> None:
    """The preset's split: 664 training images (16 held out by image, stratified by kind), all 65 test."""
    from dltk_imaging.seg_datamodules import NucleiDataModule

    dm = NucleiDataModule(images="dsb2018", n_val=16)
    splits = dm.split_samples()
    assert [len(splits[k]) for k in ("train", "val", "test")] == [648, 16, 65]
    assert sum(int(s.labels.max()) for k in ("train", "val") for s in splits[k]) == 28986
    assert not {s.id for s in splits["test"]} & {s.id for k in ("train", "val") for s in splits[k]}
    assert sorted(s.kind for s in splits["val"]).count("colour") == 3
