"""Image readers: every input format round-trips bit-exactly; bad input is a one-line error or a
counted skip (tiny fixtures generated in tmp_path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

tifffile = pytest.importorskip("tifffile")
from dltk.errors import DataError
from dltk_imaging import readers
from PIL import Image

RNG = np.random.default_rng(0)


def _u16(c: int = 3, size: int = 12) -> np.ndarray:
    return RNG.integers(0, 65535, (c, size, size), dtype=np.uint16)


def _class_folder(root: Path, n_per_class: int = 3, channels: int = 3) -> dict[str, list[np.ndarray]]:
    written: dict[str, list[np.ndarray]] = {}
    for name in ("mitotic", "interphase"):
        (root / name).mkdir(parents=True)
        written[name] = []
        for i in range(n_per_class):
            image = _u16(channels)
            tifffile.imwrite(root / name / f"{i:02d}.tif", image)
            written[name].append(image)
    return written


def test_read_image_formats_bit_exact(tmp_path: Path) -> None:
    multi = _u16(5)
    tifffile.imwrite(tmp_path / "multi.tif", multi)  # 5 pages = 5 channels
    assert np.array_equal(readers.read_image(tmp_path / "multi.tif"), multi)
    rgb = RNG.integers(0, 255, (10, 14, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")  # interleaved samples
    assert np.array_equal(readers.read_image(tmp_path / "rgb.tif"), np.moveaxis(rgb, -1, 0))
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert np.array_equal(readers.read_image(tmp_path / "rgb.png"), np.moveaxis(rgb, -1, 0))
    grey16 = RNG.integers(0, 65535, (9, 7), dtype=np.uint16)
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    out = readers.read_image(tmp_path / "grey16.png")
    assert out.shape == (1, 9, 7) and np.array_equal(out[0].astype(np.uint16), grey16)
    assert readers.bit_depth(out.dtype) in ("16-bit", "32-bit")  # PIL decodes 16-bit PNG as I;16 or I


def test_class_folder_round_trip_and_cache(tmp_path: Path) -> None:
    written = _class_folder(tmp_path / "data")
    data = readers.read_folder(tmp_path / "data")
    assert data.class_names == ["interphase", "mitotic"]  # sorted folder names
    assert data.images.shape == (6, 3, 12, 12) and data.images.dtype == np.uint16
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert np.array_equal(data.images[0], written["interphase"][0])
    assert np.array_equal(data.images[5], written["mitotic"][2])
    again = readers.read_folder(tmp_path / "data")  # second read from the decoded cache
    assert np.array_equal(again.images, data.images) and again.ids == data.ids
    ordered = readers.read_folder(tmp_path / "data", classes=["mitotic", "interphase"])
    assert ordered.labels.tolist() == [0, 0, 0, 1, 1, 1] and np.array_equal(ordered.images[0], written["mitotic"][0])


def test_corrupt_and_truncated_files_are_counted_skips(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _class_folder(tmp_path / "data")
    (tmp_path / "data" / "mitotic" / "zz_garbage.tif").write_bytes(b"II*\x00not a tiff at all")
    good = tmp_path / "data" / "interphase" / "00.tif"
    (tmp_path / "data" / "interphase" / "zz_truncated.tif").write_bytes(good.read_bytes()[:200])
    data = readers.read_folder(tmp_path / "data", use_cache=False)
    assert len(data) == 6 and data.skipped == 2
    assert "skipped 2 unreadable image files (first:" in capsys.readouterr().out


def test_inconsistent_folders_are_one_line_errors(tmp_path: Path) -> None:
    _class_folder(tmp_path / "chan")
    tifffile.imwrite(tmp_path / "chan" / "mitotic" / "four.tif", _u16(4))
    with pytest.raises(DataError, match=r"four\.tif: image has 4 channel\(s\) but .* has 3"):
        readers.read_folder(tmp_path / "chan", use_cache=False)

    _class_folder(tmp_path / "depth")
    Image.fromarray(RNG.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(tmp_path / "depth" / "mitotic" / "b8.png")
    with pytest.raises(DataError, match=r"mix bit depths: 16-bit .*8-bit \(first: b8\.png\)"):
        readers.read_folder(tmp_path / "depth", use_cache=False)

    _class_folder(tmp_path / "size")
    tifffile.imwrite(tmp_path / "size" / "mitotic" / "big.tif", _u16(3, 20))
    with pytest.raises(DataError, match="set --data.image_size"):
        readers.read_folder(tmp_path / "size", use_cache=False)
    resized = readers.read_folder(tmp_path / "size", image_size=16, use_cache=False)
    assert resized.images.shape == (7, 3, 16, 16) and resized.images.dtype == np.uint16

    _class_folder(tmp_path / "empty")
    (tmp_path / "empty" / "prophase").mkdir()
    with pytest.raises(DataError, match="class folder 'prophase' holds no images"):
        readers.read_folder(tmp_path / "empty")
    for err in (DataError,):
        with pytest.raises(err, match="one sub-folder per class"):
            readers.read_folder(tmp_path / "empty" / "prophase")


def test_manifest_with_split_and_unknown_label(tmp_path: Path) -> None:
    written = _class_folder(tmp_path / "imgs")
    lines = ["path,label,split", "imgs/mitotic/00.tif,mitotic,train", "imgs/mitotic/01.tif,mitotic,val",
             "imgs/interphase/00.tif,interphase,test", "imgs/interphase/01.tif,interphase,train"]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    data = readers.read_manifest(tmp_path / "m.csv")
    assert data.class_names == ["interphase", "mitotic"]
    assert data.labels.tolist() == [1, 1, 0, 0] and data.split.tolist() == ["train", "val", "test", "train"]
    assert np.array_equal(data.images[2], written["interphase"][0])

    (tmp_path / "bad.csv").write_text("\n".join(lines[:3] + ["imgs/interphase/00.tif,anaphase,test"]) + "\n")
    with pytest.raises(DataError, match=r"bad\.csv, row 4, field 'label': label 'anaphase' is not one of"):
        readers.read_manifest(tmp_path / "bad.csv", classes=["interphase", "mitotic"])
    (tmp_path / "missing.csv").write_text("path,label\nimgs/nope.tif,mitotic\n")
    with pytest.raises(DataError, match="row 2, field 'path': image file not found"):
        readers.read_manifest(tmp_path / "missing.csv")
    (tmp_path / "split.csv").write_text("path,label,split\nimgs/mitotic/00.tif,mitotic,training\n")
    with pytest.raises(DataError, match="split 'training' must be one of train, val, test"):
        readers.read_manifest(tmp_path / "split.csv")


def test_array_files_npz_and_hdf5(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    nchw = RNG.integers(0, 4000, (5, 2, 8, 8), dtype=np.uint16)
    labels = np.array([0, 1, 2, 1, 0], dtype=np.int8)
    np.savez(tmp_path / "a.npz", images=nchw, labels=labels, class_names=np.array(["G1", "S", "G2"]))
    data = readers.read_arrays(tmp_path / "a.npz")
    assert np.array_equal(data.images, nchw) and data.labels.tolist() == [0, 1, 2, 1, 0]
    assert data.class_names == ["G1", "S", "G2"]

    nhwc = RNG.integers(0, 255, (4, 10, 10, 3), dtype=np.uint8)
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f["images"] = nhwc
        f["labels"] = np.array([b"tumor", b"stroma", b"tumor", b"stroma"])
    data = readers.read_arrays(tmp_path / "b.h5")
    assert np.array_equal(data.images, np.moveaxis(nhwc, -1, 1))
    assert data.class_names == ["stroma", "tumor"] and data.labels.tolist() == [1, 0, 1, 0]

    np.savez(tmp_path / "c.npz", images=nchw, labels=np.array([0, 1, 5, 1, 0]), class_names=np.array(["a", "b"]))
    with pytest.raises(DataError, match="row 3, field 'labels': label index 5 outside 0..1"):
        readers.read_arrays(tmp_path / "c.npz")
    np.savez(tmp_path / "d.npz", pictures=nchw)
    with pytest.raises(DataError, match="no 'images' array"):
        readers.read_arrays(tmp_path / "d.npz")
    (tmp_path / "e.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match="cannot read array file"):
        readers.read_arrays(tmp_path / "e.npz")
