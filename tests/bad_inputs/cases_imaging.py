"""Bad image folders, manifests, arrays, masks and slides for the imaging plugin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from catalogue import TRAIN_TAIL, Case, Context

RNG = np.random.default_rng(11)


def _u16(channels: int = 3, size: int = 16) -> np.ndarray:
    return RNG.integers(0, 4000, (channels, size, size), dtype=np.uint16)


def _class_folder(root: Path, per_class: int = 4) -> Path:
    import tifffile

    for cls in ("interphase", "mitotic"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            tifffile.imwrite(root / cls / f"{i:02d}.tif", _u16())
    return root


def _images(prepare, *extra: str):
    """``dltk train --plugin imaging --task images`` on a folder/manifest/array ``prepare`` writes."""
    def build(ctx: Context) -> list[str]:
        path = prepare(ctx)
        return ["train", "--plugin", "imaging", "--task", "images", "--data.path", str(path), *extra, *TRAIN_TAIL]
    return build


def _channel_mismatch(ctx: Context) -> Path:
    import tifffile

    root = _class_folder(ctx.tmp / "cells")
    tifffile.imwrite(root / "mitotic" / "four.tif", _u16(4))
    return root


def _bit_depth_mix(ctx: Context) -> Path:
    from PIL import Image

    root = _class_folder(ctx.tmp / "cells")
    Image.fromarray(RNG.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / "mitotic" / "b8.png")
    return root


def _empty_class(ctx: Context) -> Path:
    root = _class_folder(ctx.tmp / "cells")
    (root / "prophase").mkdir()
    return root


def _size_mismatch(ctx: Context) -> Path:
    import tifffile

    root = _class_folder(ctx.tmp / "cells")
    tifffile.imwrite(root / "mitotic" / "big.tif", _u16(3, 24))
    return root


def _manifest_unknown_label(ctx: Context) -> Path:
    root = _class_folder(ctx.tmp / "cells")
    rows = [f"{p.relative_to(ctx.tmp)},{p.parent.name}" for p in sorted(root.rglob("*.tif"))]
    rows.insert(3, f"{rows[0].split(',')[0]},anaphase")
    return ctx.write("manifest.csv", "path,label\n" + "\n".join(rows) + "\n")


def _manifest_missing_image(ctx: Context) -> Path:
    _class_folder(ctx.tmp / "cells")
    return ctx.write("manifest.csv", "path,label\ncells/interphase/00.tif,interphase\nnowhere.tif,mitotic\n")


def _array_label_out_of_range(ctx: Context) -> Path:
    path = ctx.tmp / "cells.npz"
    np.savez(path, images=np.stack([_u16() for _ in range(8)]), labels=np.array([0, 1, 0, 1, 5, 0, 1, 0]),
             class_names=np.array(["a", "b"]))
    return path


def _corrupt_files(ctx: Context) -> Path:
    root = _class_folder(ctx.tmp / "cells", per_class=10)
    (root / "mitotic" / "zz_garbage.tif").write_bytes(b"II*\x00not a tiff at all")
    good = (root / "interphase" / "00.tif").read_bytes()
    (root / "interphase" / "zz_truncated.tif").write_bytes(good[:200])
    return root


def _mask_size_mismatch(ctx: Context) -> list[str]:
    import tifffile

    images, masks = ctx.tmp / "img", ctx.tmp / "masks"
    images.mkdir()
    masks.mkdir()
    for i in range(3):
        tifffile.imwrite(images / f"n{i}.tif", RNG.integers(0, 255, (48, 40), dtype=np.uint8))
        tifffile.imwrite(masks / f"n{i}.tif", np.zeros((47 if i == 1 else 48, 40), np.uint16))
    return ["train", "--plugin", "imaging", "--task", "nuclei", "--data.images", str(images), "--data.masks",
            str(masks), *TRAIN_TAIL]


def _slide_not_a_slide(ctx: Context) -> list[str]:
    fake = ctx.write("fake.svs", b"II*\x00" + b"\x00" * 64)
    return ["predict", "--run", str(ctx.runs("imaging")), "--input", str(fake), "--output", "scores.csv"]


def _predict_channel_mismatch(ctx: Context) -> list[str]:
    from PIL import Image

    folder = ctx.tmp / "new"
    folder.mkdir()
    Image.fromarray(RNG.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(RNG.integers(0, 255, (16, 16, 4), dtype=np.uint8)).save(folder / "b.png")
    return ["predict", "--run", str(ctx.runs("imaging")), "--input", str(folder), "--output", "scores.csv"]


CASES = [
    Case("image-channel-count-mismatch", _images(_channel_mismatch), ("four.tif", "4 channel(s)"), plugin="imaging"),
    Case("image-bit-depth-mix", _images(_bit_depth_mix), ("mix bit depths", "b8.png"), plugin="imaging"),
    Case("image-empty-class-folder", _images(_empty_class), ("class folder 'prophase' holds no images",),
         plugin="imaging"),
    Case("image-size-mismatch", _images(_size_mismatch), ("big.tif", "--data.image_size"), plugin="imaging"),
    Case("manifest-label-not-in-classes", _images(_manifest_unknown_label, "--data.classes", "interphase,mitotic"),
         ("manifest.csv", "row 5", "field 'label'", "'anaphase'"), plugin="imaging"),
    Case("manifest-image-missing", _images(_manifest_missing_image), ("manifest.csv", "row 3", "field 'path'",
                                                                      "not found"), plugin="imaging"),
    Case("array-label-out-of-range", _images(_array_label_out_of_range), ("cells.npz", "field 'labels'",
                                                                          "label index 5"), plugin="imaging"),
    Case("image-corrupt-and-truncated-skipped", _images(_corrupt_files), ("skipped 2 unreadable image files",),
         plugin="imaging", skip=True),
    Case("mask-size-differs-from-image", _mask_size_mismatch, ("n1.tif", "40x47", "40x48"), plugin="imaging"),
    Case("slide-not-a-slide", _slide_not_a_slide, ("fake.svs",), plugin="imaging"),
    Case("predict-images-channel-mismatch", _predict_channel_mismatch, ("b.png", "4 channel(s)"), plugin="imaging"),
]
