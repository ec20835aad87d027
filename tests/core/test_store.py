"""HDF5 array store: chunked atomic writes, lazy batched reads equal to the arrays written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dltk.data.store import StoreDataset, StoreWriter


def _arrays(n: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 7)).astype(np.float32)
    y = rng.integers(0, 2, size=(n, 3)).astype(np.float32)
    y[rng.random(size=y.shape) < 0.2] = np.nan
    return x, y


def test_chunked_write_then_batched_reads(tmp_path: Path) -> None:
    x, y = _arrays()
    path = tmp_path / "s.h5"
    with StoreWriter(path, {"x": ((7,), "float32"), "y": ((3,), "float32")}, chunk_rows=64) as writer:
        for start in range(0, len(x), 300):  # uneven chunks
            writer.append(x=x[start:start + 300], y=y[start:start + 300])
    ds = StoreDataset(path)
    assert len(ds) == 1000 and ds.columns == ["x", "y"]
    np.testing.assert_array_equal(ds[17]["x"].numpy(), x[17])
    idx = [5, 999, 5, 0, 512, 3]  # unsorted, with a repeat
    items = ds.__getitems__(idx)
    np.testing.assert_array_equal(np.stack([i["x"].numpy() for i in items]), x[idx])
    np.testing.assert_array_equal(np.stack([i["y"].numpy() for i in items]), y[idx])
    torch.manual_seed(0)
    seen = np.concatenate([b["x"].numpy() for b in DataLoader(ds, batch_size=128, shuffle=True)])
    assert seen.shape == x.shape
    np.testing.assert_array_equal(np.sort(seen[:, 0]), np.sort(x[:, 0]))  # every row exactly once


def test_failed_write_leaves_no_store(tmp_path: Path) -> None:
    x, y = _arrays(10)
    path = tmp_path / "s.h5"
    with pytest.raises(ValueError):
        with StoreWriter(path, {"x": ((7,), "float32"), "y": ((3,), "float32")}) as writer:
            writer.append(x=x, y=y)
            writer.append(x=x)  # missing column
    assert not path.exists() and list(tmp_path.iterdir()) == []
