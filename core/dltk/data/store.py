"""On-disk array store (HDF5 via h5py) for data larger than memory.

A store is one HDF5 file with aligned datasets (e.g. ``x`` features and ``y`` labels), written in
chunks by :class:`StoreWriter` (to a temporary file renamed into place on success, so a killed
writer never leaves a store that looks complete) and read by :class:`StoreDataset`, a torch
``Dataset`` that reads only the rows a batch asks for (``__getitems__``: one sorted fancy-index
read per batch). Nothing is unpickled: HDF5 holds plain numeric arrays.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from dltk.io import atomic_path


class StoreWriter:
    """Append aligned row blocks to a new HDF5 store.

    Args:
        path: the store file to create.
        columns: name -> (row shape, dtype), e.g. ``{"x": ((2048,), "float32"), "y": ((12,), "float32")}``.
        chunk_rows: HDF5 chunk length along rows (a batch read touches few chunks).
    """

    def __init__(self, path: str | Path, columns: dict[str, tuple[tuple[int, ...], Any]],
                 chunk_rows: int = 1024) -> None:
        import h5py

        self.path = Path(path)
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        self._file = h5py.File(self._tmp, "w")
        self._data = {
            name: self._file.create_dataset(name, shape=(0, *shape), maxshape=(None, *shape), dtype=np.dtype(dtype),
                                            chunks=(chunk_rows, *shape))
            for name, (shape, dtype) in columns.items()}
        self.rows = 0

    def append(self, **arrays: np.ndarray) -> None:
        if set(arrays) != set(self._data):
            raise ValueError(f"expected columns {sorted(self._data)}, got {sorted(arrays)}")
        n = {len(a) for a in arrays.values()}
        if len(n) != 1:
            raise ValueError("columns differ in length")
        count = n.pop()
        for name, values in arrays.items():
            ds = self._data[name]
            ds.resize(self.rows + count, axis=0)
            ds[self.rows:self.rows + count] = values
        self.rows += count

    def close(self) -> Path:
        """Finish the file and move it into place."""
        self._file.attrs["rows"] = self.rows
        self._file.close()
        self._atomic.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        self._file.close()
        try:
            self._atomic.__exit__(RuntimeError, RuntimeError("aborted"), None)
        except RuntimeError:
            pass

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class StoreDataset:
    """Rows of an HDF5 store as ``{column: tensor}`` items, read lazily (one file handle per
    process, opened on first use, so DataLoader workers each open their own)."""

    def __init__(self, path: str | Path, columns: list[str] | None = None) -> None:
        import h5py

        self.path = Path(path)
        with h5py.File(self.path, "r") as f:
            self.columns = list(columns or f.keys())
            self.length = int(f[self.columns[0]].shape[0])
        self._file: Any = None
        self._pid: int | None = None

    def _handle(self) -> Any:
        import h5py

        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        f = self._handle()
        return {c: torch.from_numpy(np.asarray(f[c][index])) for c in self.columns}

    def __getitems__(self, indices: list[int]) -> list[dict[str, Any]]:
        """A whole batch in one read per column (h5py needs increasing indices: sort, then undo)."""
        import torch

        f = self._handle()
        idx = np.asarray(indices)
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        unique, inverse = np.unique(sorted_idx, return_inverse=True)
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        blocks = {c: f[c][unique][inverse][back] for c in self.columns}
        return [{c: torch.from_numpy(blocks[c][i]) for c in self.columns} for i in range(len(idx))]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None, "_pid": None}
