"""Image readers: class folders, CSV manifests and array files -> one ``(N, C, H, W)`` array.

Inputs users bring (see docs/imaging.md):

- a **folder with one sub-folder per class** (``root/<class>/<image>``), images as PNG, JPEG or TIFF
  (single page, multi-page = one channel per page, or interleaved samples), any channel count;
- a **CSV manifest** with columns ``path,label[,split]`` (paths relative to the CSV's folder;
  ``split`` in ``train``/``val``/``test``);
- an **array file**: ``.npz`` (read with ``allow_pickle=False``) or HDF5 (``.h5``/``.hdf5``) holding
  ``images`` (``N,C,H,W``, ``N,H,W,C`` or ``N,H,W``) and ``labels`` (integer indices into
  ``class_names`` when present, else class names or integers), optionally ``split``.

Files are decoded in a thread pool (PIL and tifffile release the GIL while decoding) and the decoded
stack of a folder or manifest is cached as an uncompressed ``.npz`` under the dltk cache, keyed by
every file's path, size and modification time, so a second run reads one file.

Bad input never crashes mid-epoch: everything is read and checked before training starts.

- an unreadable, corrupt or truncated image is a **counted skip** (a warning names the first one);
- an image whose channel count, size or bit depth differs from the rest, an empty class folder, a
  manifest label outside the declared classes, a missing manifest file: a one-line
  :class:`~dltk.errors.DataError` naming the file (and row).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from dltk.errors import ConfigError, DataError

log = logging.getLogger("dltk.imaging")
logging.getLogger("tifffile").setLevel(logging.ERROR)  # corrupt files are reported by us, once, as skips

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
ARRAY_SUFFIXES = (".npz", ".h5", ".hdf5")
SPLITS = ("train", "val", "test")


@dataclass
class ImageSet:
    """Decoded images with their labels.

    Attributes:
        images: ``(N, C, H, W)`` array in the files' own dtype (uint8, uint16, float32, ...).
        labels: ``(N,)`` int64 class indices into ``class_names``; -1 = unlabelled.
        class_names: the classes, in index order.
        ids: one identifier per image (its path, or ``<file>#<index>`` for array files).
        split: ``(N,)`` split names from a manifest or array file (``""`` = not given), or None.
        channel_names: names of the channels when the source gives them.
        skipped: number of unreadable files left out.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    ids: list[str]
    split: np.ndarray | None = None
    channel_names: list[str] = field(default_factory=list)
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.labels)


def as_storage(images: np.ndarray) -> np.ndarray:
    """How images are held in memory: uint8 stays uint8 (4x smaller); other dtypes become float32
    (torch has no uint16 math)."""
    return images if images.dtype == np.uint8 else images.astype(np.float32)


# ------------------------------------------------------------------------------------------------
# single images
# ------------------------------------------------------------------------------------------------
def read_image(path: str | Path) -> np.ndarray:
    """Decode one image file as ``(C, H, W)`` in its own dtype.

    TIFF: a 2-D page is one channel; interleaved samples (``...YXS``) become channels; extra
    leading axes (pages, ``C``/``Z``/``I``) are flattened into channels. PNG/JPEG/BMP: grey, grey +
    alpha, RGB or RGBA; 16-bit PNG keeps its 16 bits.

    Raises:
        DataError: the file is missing, not an image, corrupt or truncated.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                array = series.asarray()
                axes = series.axes
            if axes.endswith("S") and array.ndim >= 3:
                array = np.moveaxis(array, -1, 0)
            array = array.reshape((-1,) + array.shape[-2:])
        else:
            from PIL import Image

            with Image.open(path) as img:
                img.load()
                array = np.asarray(img)
            if array.ndim == 3:
                array = np.moveaxis(array, -1, 0)
            else:
                array = array[None]
    except FileNotFoundError as exc:
        raise DataError(path, "file not found") from exc
    except Exception as exc:
        raise DataError(path, f"cannot decode image ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
                        ) from exc
    if array.ndim != 3 or array.shape[1] < 1 or array.shape[2] < 1:
        raise DataError(path, f"not a 2-D image (array shape {array.shape})")
    if array.dtype == bool:
        array = array.astype(np.uint8)
    return np.ascontiguousarray(array)


def bit_depth(dtype: np.dtype) -> str:
    """``"8-bit"``, ``"16-bit"``, ``"float"`` ... for error messages and ``data_info``."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return "float"
    return f"{dtype.itemsize * 8}-bit"


def _resize(array: np.ndarray, size: int) -> np.ndarray:
    """Resize ``(C, H, W)`` to ``(C, size, size)`` (bilinear, anti-aliased), keeping the dtype's range."""
    if array.shape[1:] == (size, size):
        return array
    from skimage.transform import resize

    out = resize(np.moveaxis(array, 0, -1), (size, size), order=1, preserve_range=True, anti_aliasing=True)
    out = np.moveaxis(out, -1, 0)
    if array.dtype.kind in "ui":
        out = np.clip(np.rint(out), np.iinfo(array.dtype).min, np.iinfo(array.dtype).max)
    return out.astype(array.dtype)


def _decode_all(paths: Sequence[str | Path], image_size: int | None, n_threads: int,
                progress: bool) -> list[np.ndarray | DataError]:
    """Each file decoded (and resized), or its DataError, in order; threads for 8 files or more."""

    def one(p: str | Path) -> np.ndarray | DataError:
        try:
            array = read_image(p)
        except DataError as exc:
            return exc
        return _resize(array, image_size) if image_size else array

    iterator = map(one, paths) if n_threads <= 1 or len(paths) < 8 else None
    if iterator is None:
        pool = ThreadPoolExecutor(n_threads)
        iterator = pool.map(one, paths, chunksize=16)
    else:
        pool = None
    try:
        if progress and len(paths) > 200:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, total=len(paths), desc="reading images", unit="img", leave=False)
        return list(iterator)
    finally:
        if pool is not None:
            pool.shutdown()


def _check_agree(arrays: list[tuple[str | Path, np.ndarray]], where: str | Path | None,
                 expect_channels: int | None) -> None:
    """Every decoded image has the first one's (or the model's) channels, the first one's size and
    one bit depth; a DataError naming the first file that differs."""
    ref_path, ref = arrays[0]
    channels = expect_channels or ref.shape[0]
    for p, a in arrays:
        if a.shape[0] != channels:
            origin = "the model expects" if expect_channels else f"{Path(ref_path).name} has"
            raise DataError(p, f"image has {a.shape[0]} channel(s) but {origin} {channels}; every image "
                               "must have the same channels")
        if a.shape[1:] != ref.shape[1:]:
            raise DataError(p, f"image is {a.shape[2]}x{a.shape[1]} but {Path(ref_path).name} is "
                               f"{ref.shape[2]}x{ref.shape[1]}; set --data.image_size N to resize all images")
    depths: dict[str, str] = {}
    for p, a in arrays:
        depths.setdefault(bit_depth(a.dtype), str(p))
    if len(depths) > 1:
        mix = ", ".join(f"{k} (first: {Path(v).name})" for k, v in depths.items())
        raise DataError(where, f"images mix bit depths: {mix}; convert them to one bit depth so that "
                               "intensities are comparable")


def read_images(paths: Sequence[str | Path], *, image_size: int | None = None, n_threads: int | None = None,
                progress: bool = True, where: str | Path | None = None,
                expect_channels: int | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode many files into one ``(N, C, H, W)`` stack, checking that they agree.

    Args:
        paths: image files.
        image_size: resize every image to ``image_size x image_size``; None = keep the size (all
            images must then have the same size).
        n_threads: decoding threads (default: CPU count, up to 8).
        progress: show a progress bar.
        where: the folder/manifest being read (for error messages).
        expect_channels: the channel count a trained model expects (prediction), else None.

    Returns:
        ``(images, ok, errors)``: the stack of the readable files, a boolean mask over ``paths``
        (False = unreadable, skipped) and one error message per skipped file.

    Raises:
        DataError: channel count, size or bit depth differs between readable files.
    """
    decoded = _decode_all(paths, image_size, n_threads or min(8, os.cpu_count() or 1), progress)
    ok = np.array([not isinstance(d, DataError) for d in decoded], dtype=bool)
    errors = [str(d) for d in decoded if isinstance(d, DataError)]
    arrays = [(p, d) for p, d in zip(paths, decoded) if not isinstance(d, DataError)]
    if not arrays:
        raise DataError(where, f"none of {len(paths)} image files could be read (first: {errors[0]})"
                        if errors else "no image files")
    _check_agree(arrays, where, expect_channels)
    return np.stack([a for _, a in arrays]), ok, errors


def report_skips(errors: list[str], what: str = "image files") -> None:
    """Log the counted skips: ``skipped 3 unreadable image files (first: ...)``."""
    if errors:
        msg = f"skipped {len(errors)} unreadable {what} (first: {errors[0]})"
        log.warning(msg)
        print(f"dltk imaging: {msg}", flush=True)


# ------------------------------------------------------------------------------------------------
# sources
# ------------------------------------------------------------------------------------------------
def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (hidden files ignored)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("."))


def parse_classes(classes: str | Sequence[str] | None) -> list[str] | None:
    if classes is None or classes == "":
        return None
    names = [c.strip() for c in classes.split(",")] if isinstance(classes, str) else [str(c) for c in classes]
    if len(set(names)) != len(names) or any(not n for n in names):
        raise ConfigError(f"data.classes: class names must be unique and non-empty, got {names}")
    return names


def read_folder(root: str | Path, *, classes: Sequence[str] | None = None, image_size: int | None = None,
                use_cache: bool = True) -> ImageSet:
    """A folder with one sub-folder per class.

    Raises:
        DataError: no class folders, an empty class folder, or inconsistent images.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "not a folder")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(root, "expected one sub-folder per class (root/<class>/<image>), found none")
    found = {p.name: p for p in folders}
    names = list(classes) if classes else [p.name for p in folders]
    missing = [c for c in names if c not in found]
    if missing:
        raise DataError(root, f"no folder for class(es) {', '.join(missing)}")
    extra = [c for c in found if c not in names]
    if extra:
        raise DataError(root / extra[0], f"folder {extra[0]!r} is not one of the classes {names}")
    paths: list[Path] = []
    labels: list[int] = []
    for k, name in enumerate(names):
        files = list_images(found[name])
        if not files:
            raise DataError(found[name], f"class folder {name!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        paths += files
        labels += [k] * len(files)
    return _decode(root, paths, np.asarray(labels, dtype=np.int64), names, None, image_size, use_cache)


def read_manifest(csv_path: str | Path, *, classes: Sequence[str] | None = None, image_size: int | None = None,
                  use_cache: bool = True, require_labels: bool = True) -> ImageSet:
    """A CSV manifest ``path,label[,split]``; relative paths are resolved against the CSV's folder.

    Raises:
        DataError: missing columns, a missing file, a label outside ``classes``, a bad split name.
    """
    import pandas as pd

    csv_path = Path(csv_path)
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DataError(csv_path, f"cannot read CSV ({' '.join(str(exc).split())[:120]})") from exc
    if "path" not in table.columns:
        raise DataError(csv_path, f"needs a 'path' column (found: {', '.join(table.columns)})", field="path")
    if require_labels and "label" not in table.columns:
        raise DataError(csv_path, "needs a 'label' column for training", field="label")
    if table.empty:
        raise DataError(csv_path, "manifest has no rows")
    paths = []
    for i, value in enumerate(table["path"], start=2):
        if not value.strip():
            raise DataError(csv_path, "empty path", row=i, field="path")
        p = Path(value)
        p = p if p.is_absolute() else csv_path.parent / p
        if not p.is_file():
            raise DataError(csv_path, f"image file not found: {p}", row=i, field="path")
        paths.append(p)
    labels_col = table["label"].str.strip() if "label" in table.columns else pd.Series([""] * len(table))
    names = list(classes) if classes else sorted({v for v in labels_col if v})
    index = {n: k for k, n in enumerate(names)}
    labels = np.full(len(table), -1, dtype=np.int64)
    for i, value in enumerate(labels_col):
        if not value:
            if require_labels:
                raise DataError(csv_path, "empty label", row=i + 2, field="label")
            continue
        if value not in index:
            raise DataError(csv_path, f"label {value!r} is not one of the classes {names}", row=i + 2,
                            field="label")
        labels[i] = index[value]
    split = None
    if "split" in table.columns:
        split = table["split"].str.strip().str.lower().to_numpy(dtype=str)
        for i, value in enumerate(split):
            if value not in SPLITS:
                raise DataError(csv_path, f"split {str(value)!r} must be one of {', '.join(SPLITS)}", row=i + 2,
                                field="split")
    return _decode(csv_path, paths, labels, names, split, image_size, use_cache)


def _cache_key(paths: Sequence[Path], image_size: int | None) -> str:
    h = hashlib.sha256(f"v1|{image_size}".encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def _decode(source: Path, paths: list[Path], labels: np.ndarray, names: list[str], split: np.ndarray | None,
            image_size: int | None, use_cache: bool) -> ImageSet:
    from dltk.data.registry import cache_dir

    cached = cache_dir("imaging", "decoded") / f"{_cache_key(paths, image_size)}.npz" if use_cache else None
    if cached is not None and cached.is_file():
        with np.load(cached, allow_pickle=False) as z:
            images, ok, errors = z["images"], z["ok"], [str(e) for e in z["errors"]]
    else:
        images, ok, errors = read_images(paths, image_size=image_size, where=source)
        if cached is not None:
            from dltk.io import atomic_path

            with atomic_path(cached) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, images=images, ok=ok, errors=np.asarray(errors, dtype=str))
    report_skips(errors)
    ids = [str(p) for p, good in zip(paths, ok) if good]
    return ImageSet(images=images, labels=labels[ok], class_names=names, ids=ids,
                    split=None if split is None else split[ok], skipped=int((~ok).sum()))


def _to_nchw(images: np.ndarray, path: Path, layout: str) -> np.ndarray:
    if images.ndim == 3:
        return images[:, None]
    if images.ndim != 4:
        raise DataError(path, f"images must be (N, C, H, W), (N, H, W, C) or (N, H, W), got shape {images.shape}",
                        field="images")
    if layout == "nhwc" or (layout == "auto" and images.shape[-1] <= 4 < images.shape[1]):
        return np.ascontiguousarray(np.moveaxis(images, -1, 1))
    return images


def _load_arrays(path: Path, wanted: tuple[str, ...]) -> tuple[dict[str, np.ndarray], list[str]]:
    """The ``wanted`` arrays present in an ``.npz`` or HDF5 file (HDF5 strings decoded), and every
    key the file holds."""
    arrays: dict[str, np.ndarray] = {}
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.files)
                for key in wanted:
                    if key in z.files:
                        arrays[key] = z[key]
        else:
            import h5py

            with h5py.File(path, "r") as f:
                keys = list(f.keys())
                for key in wanted:
                    if key in f:
                        value = f[key][()]
                        if value.dtype.kind in "OS":
                            value = np.asarray([v.decode() if isinstance(v, bytes) else str(v) for v in value])
                        arrays[key] = value
    except DataError:
        raise
    except Exception as exc:
        raise DataError(path, f"cannot read array file ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
                        ) from exc
    return arrays, keys


def _array_labels(path: Path, raw: np.ndarray, n: int, stored_names: list[str] | None, names: list[str] | None,
                  labels_key: str) -> tuple[np.ndarray, list[str]]:
    """Class indices of an array file's labels (indices into its ``class_names``, or the names
    themselves) and the class names (given, else sorted; numbers in numeric order)."""
    if len(raw) != n:
        raise DataError(path, f"{len(raw)} labels for {n} images", field=labels_key)
    if raw.dtype.kind in "iu" and stored_names is not None:
        bad = np.flatnonzero((raw < 0) | (raw >= len(stored_names)))
        if len(bad):
            raise DataError(path, f"label index {int(raw[bad[0]])} outside 0..{len(stored_names) - 1}",
                            row=int(bad[0]) + 1, field=labels_key)
        values = [stored_names[int(v)] for v in raw]
    else:
        values = [str(v.item() if hasattr(v, "item") else v) for v in raw]
    names = names or sorted(set(values), key=lambda v: (len(v), v) if v.isdigit() else (0, v))
    index = {c: k for k, c in enumerate(names)}
    labels = np.full(n, -1, dtype=np.int64)
    for i, v in enumerate(values):
        if v not in index:
            raise DataError(path, f"label {v!r} is not one of the classes {names}", row=i + 1, field=labels_key)
        labels[i] = index[v]
    return labels, names


def read_arrays(path: str | Path, *, images_key: str = "images", labels_key: str = "labels",
                classes: Sequence[str] | None = None, layout: str = "auto",
                require_labels: bool = True) -> ImageSet:
    """An ``.npz`` or HDF5 file with an image stack and labels (see the module docstring).

    Raises:
        DataError: a missing key, a length mismatch, a label outside the classes.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    arrays, keys = _load_arrays(path, (images_key, labels_key, "class_names", "channel_names", "split"))
    if images_key not in arrays:
        raise DataError(path, f"no {images_key!r} array (has: {', '.join(keys)})", field=images_key)
    images = _to_nchw(arrays[images_key], path, layout)
    n = len(images)
    stored_names = [str(c) for c in arrays["class_names"]] if "class_names" in arrays else None
    names = list(classes) if classes else stored_names
    labels = np.full(n, -1, dtype=np.int64)
    if labels_key in arrays:
        labels, names = _array_labels(path, arrays[labels_key], n, stored_names, names, labels_key)
    elif require_labels:
        raise DataError(path, f"no {labels_key!r} array (has: {', '.join(keys)})", field=labels_key)
    split = None
    if "split" in arrays:
        split = np.asarray([str(s).strip().lower() for s in arrays["split"]])
        bad = [i for i, s in enumerate(split) if s not in SPLITS]
        if bad:
            raise DataError(path, f"split {str(split[bad[0]])!r} must be one of {', '.join(SPLITS)}", row=bad[0] + 1,
                            field="split")
    channel_names = [str(c) for c in arrays.get("channel_names", [])]
    return ImageSet(images=images, labels=labels, class_names=names or [], ids=[f"{path.name}#{i}" for i in range(n)],
                    split=split, channel_names=channel_names)


def read_any(path: str | Path, *, classes: Sequence[str] | None = None, image_size: int | None = None,
             require_labels: bool = True, use_cache: bool = True) -> ImageSet:
    """Dispatch on the input: class folder, ``.csv`` manifest, ``.npz``/``.h5`` array file."""
    path = Path(path)
    if path.is_dir():
        return read_folder(path, classes=classes, image_size=image_size, use_cache=use_cache)
    suffix = path.suffix.lower()
    if not path.exists():
        raise DataError(path, "not found")
    if suffix == ".csv":
        return read_manifest(path, classes=classes, image_size=image_size, use_cache=use_cache,
                             require_labels=require_labels)
    if suffix in ARRAY_SUFFIXES:
        data = read_arrays(path, classes=classes, require_labels=require_labels)
        if image_size and data.images.shape[-2:] != (image_size, image_size):
            data.images = np.stack([_resize(a, image_size) for a in data.images])
        return data
    raise DataError(path, "expected a folder of class sub-folders, a .csv manifest or an .npz/.h5 array file")
