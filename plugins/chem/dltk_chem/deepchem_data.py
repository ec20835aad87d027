"""DeepChem datasets in and out of dltk, without unpickling anything.

In: :class:`DeepChemDataModule` trains on a ``dc.data.DiskDataset`` directory or a saved
``NumpyDataset`` (an ``.npz`` with ``X``, ``y``, ``w`` and optionally ``ids``). DeepChem's weights
become dltk's missing-label mask: ``w == 0`` is a missing label (NaN); any other weight (DeepChem's
balancing weights included) counts as labelled.

Out: :func:`export_disk_datasets` writes a dltk run's train/validation/test splits as DiskDatasets
that ``dc.data.DiskDataset(path)`` opens, so DeepChem code can use exactly the same split.

Safety: DeepChem 2.8.0 writes ``tasks.json``, ``metadata.csv.gzip`` (plain CSV) and one ``.npy``
per array and shard, and reads the shards with ``np.load`` allowing pickles; an ``ids`` shard of
Python strings is a pickled object array. This module reads the metadata with pandas' CSV reader and
every shard with ``np.load(allow_pickle=False)``: an ``ids`` shard that would need unpickling is
not read (rows are then named ``<shard file>:<row>``), and the pre-2.4 ``metadata.joblib`` format
(a pickle) is refused. The export writes ``ids`` as a Unicode array, which needs no pickle.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dltk.errors import ConfigError, DataError

log = logging.getLogger("dltk.chem")


@dataclass
class DeepChemArrays:
    """The arrays of a DeepChem dataset: ``X`` (n, features), ``y`` (n, tasks) with NaN = missing
    (from ``w == 0``), ``w`` (n, tasks) as stored, ``ids`` (n,) strings and the task names."""

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray
    ids: list[str]
    tasks: list[str]


def _load_npy(path: Path, what: str) -> np.ndarray | None:
    """One shard without pickles; None for a pickled object array (``ids`` of Python strings)."""
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            return None
        raise DataError(path, f"unreadable {what} shard: {exc}") from None
    except OSError as exc:
        raise DataError(path, f"cannot read the {what} shard: {exc}") from None


def _as_2d(a: np.ndarray, n: int, path: Path, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 1:
        a = a.reshape(-1, 1)
    if a.ndim != 2 or len(a) != n:
        raise DataError(path, f"{what} has shape {a.shape}, expected ({n}, ...)")
    return a


def _finish(X: np.ndarray, y: np.ndarray, w: np.ndarray | None, ids: list[str], tasks: list[str],
            path: Path) -> DeepChemArrays:
    """Shape checks and the ``w == 0`` -> NaN label mask."""
    if X.ndim != 2:
        raise DataError(path, f"X has shape {X.shape}: dltk trains on one feature vector per row (n, features)")
    n = len(X)
    y = _as_2d(y, n, path, "y").astype(np.float32)
    w = np.ones_like(y) if w is None else _as_2d(w, n, path, "w").astype(np.float32)
    if w.shape != y.shape:
        raise DataError(path, f"w has shape {w.shape} but y has {y.shape}")
    tasks = list(tasks) or [f"task{j}" for j in range(y.shape[1])]
    if len(tasks) != y.shape[1]:
        raise DataError(path, f"{len(tasks)} task names for {y.shape[1]} label columns")
    y = np.where(w == 0, np.nan, y).astype(np.float32)
    return DeepChemArrays(X, y, w, list(ids), tasks)


def read_disk_dataset(path: str | Path) -> DeepChemArrays:
    """Read a ``dc.data.DiskDataset`` directory with ``np.load(allow_pickle=False)``.

    Raises:
        DataError: no DeepChem metadata, the pickled pre-2.4 format, or inconsistent shards.
    """
    import pandas as pd

    folder = Path(path)
    meta = folder / "metadata.csv.gzip"
    if not meta.is_file():
        if (folder / "metadata.joblib").is_file():
            raise DataError(folder, "metadata.joblib is DeepChem's pre-2.4 pickled format, which dltk does not "
                            "unpickle; open and re-save it with a current DeepChem (DiskDataset(path))")
        raise DataError(folder, "not a DeepChem DiskDataset: no metadata.csv.gzip")
    tasks_file = folder / "tasks.json"
    tasks = json.loads(tasks_file.read_text()) if tasks_file.is_file() else []
    table = pd.read_csv(meta, compression="gzip", dtype=object)
    parts: dict[str, list[np.ndarray]] = {"X": [], "y": [], "w": []}
    ids: list[str] = []
    unreadable_ids = 0
    for row, shard in table.iterrows():
        if not isinstance(shard.get("X"), str) or not isinstance(shard.get("y"), str):
            raise DataError(meta, "a shard without X or y cannot be trained on", row=int(row))
        X = _load_npy(folder / shard["X"], "X")
        if X is None:
            raise DataError(folder / shard["X"], "X is a pickled object array; dltk needs numeric features")
        for key in ("y", "w"):
            name = shard.get(key)
            array = _load_npy(folder / name, key) if isinstance(name, str) else np.ones((len(X), len(tasks) or 1))
            if array is None:
                raise DataError(folder / name, f"{key} is a pickled object array")
            parts[key].append(_as_2d(array, len(X), folder / str(name), key))
        parts["X"].append(X)
        shard_ids = _load_npy(folder / shard["ids"], "ids") if isinstance(shard.get("ids"), str) else None
        if shard_ids is None:
            unreadable_ids += len(X)
            ids += [f"{shard['X'][:-len('-X.npy')]}:{i}" for i in range(len(X))]
        else:
            ids += [str(v) for v in shard_ids]
    if not parts["X"]:
        raise DataError(folder, "the DiskDataset holds no shards")
    if unreadable_ids:
        log.warning("%s: %d ids are stored as pickled Python objects, which dltk does not unpickle; rows are "
                    "named <shard>:<row> instead", folder, unreadable_ids)
    return _finish(np.concatenate(parts["X"]), np.concatenate(parts["y"]), np.concatenate(parts["w"]), ids,
                   tasks, folder)


def read_numpy_dataset(path: str | Path) -> DeepChemArrays:
    """Read a saved ``NumpyDataset``: ``np.savez(path, X=, y=, w=, ids=)`` (``w``, ``ids`` optional)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "X" not in npz or "y" not in npz:
                raise DataError(path, f"an .npz dataset needs arrays X and y, found {sorted(npz.files)}")
            X, y = npz["X"], npz["y"]
            w = npz["w"] if "w" in npz else None
            try:
                ids = [str(v) for v in npz["ids"]] if "ids" in npz else [str(i) for i in range(len(X))]
            except ValueError:  # an object array: would need unpickling
                log.warning("%s: ids are pickled Python objects, not read; rows are named by number", path)
                ids = [str(i) for i in range(len(X))]
            tasks = [str(t) for t in npz["tasks"]] if "tasks" in npz else []
    except (OSError, ValueError) as exc:
        raise DataError(path, f"cannot read the dataset without unpickling: {exc}") from None
    return _finish(np.asarray(X), y, w, ids, tasks, path)


def read_dataset(path: str | Path) -> DeepChemArrays:
    """A DiskDataset directory or a saved NumpyDataset ``.npz``."""
    path = Path(path)
    if path.is_dir():
        return read_disk_dataset(path)
    if path.suffix == ".npz" and path.is_file():
        return read_numpy_dataset(path)
    raise DataError(path, "expected a DeepChem DiskDataset directory or a NumpyDataset saved as .npz")


def write_disk_dataset(folder: str | Path, X: np.ndarray, y: np.ndarray, w: np.ndarray, ids: list[str],
                       tasks: list[str]) -> Path:
    """Write one shard in DiskDataset's 2.8.0 layout (``dc.data.DiskDataset(folder)`` opens it);
    ``ids`` as a Unicode array (no pickle). The folder must not exist yet."""
    import os
    import shutil
    import tempfile

    import pandas as pd

    folder = Path(folder)
    if folder.exists():
        raise ConfigError(f"{folder} exists; choose a new output folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        arrays = {"X": np.asarray(X), "y": np.asarray(y), "w": np.asarray(w), "ids": np.asarray(ids, dtype=str)}
        for key, array in arrays.items():
            np.save(tmp / f"shard-0-{key}.npy", array, allow_pickle=False)
        row = {"ids": "shard-0-ids.npy", "X": "shard-0-X.npy", "y": "shard-0-y.npy", "w": "shard-0-w.npy",
               "ids_shape": str(arrays["ids"].shape), "X_shape": str(arrays["X"].shape),
               "y_shape": str(arrays["y"].shape), "w_shape": str(arrays["w"].shape)}
        pd.DataFrame([row]).to_csv(tmp / "metadata.csv.gzip", index=False, compression="gzip")
        (tmp / "tasks.json").write_text(json.dumps(list(tasks)))
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
