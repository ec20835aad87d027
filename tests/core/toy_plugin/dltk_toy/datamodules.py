"""Seeded synthetic multitask data, generated in memory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from dltk.base import INPUT, TARGET, BaseDataModule, TensorDictDataset
from dltk.data.splits import random_split
from dltk.errors import DataError
from dltk.options import option
from dltk.serving import RequestError, RequestRows

TASKS = ["alpha", "beta"]


def make_data(n_samples: int, n_features: int, noise: float, missing_fraction: float, data_seed: int,
              task_type: str = "classification") -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: X ~ N(0, 1); each task is a noisy linear function of X (thresholded at 0 for
    classification); a ``missing_fraction`` of the labels are NaN. Depends only on the arguments."""
    rng = np.random.default_rng(data_seed)
    X = rng.normal(size=(n_samples, n_features)).astype(np.float32)
    W = rng.normal(size=(n_features, len(TASKS)))
    signal = X @ W / np.sqrt(n_features) + noise * rng.normal(size=(n_samples, len(TASKS)))
    if task_type == "multiclass":  # class = which of 3 linear scores is largest (two tasks' signals and 0)
        scores = np.concatenate([signal, np.zeros((n_samples, 1))], axis=1)
        y = scores.argmax(axis=1).astype(np.float32)
    else:
        y = (signal > 0).astype(np.float32) if task_type == "classification" else signal.astype(np.float32)
    y[rng.random(y.shape) < missing_fraction] = np.nan
    return X, y


CLASSES = ["red", "green", "blue"]


@dataclass
class ToyPredictOptions:
    """``dltk predict`` options of the toy plugin (declared; core parses them)."""

    chunk_size: int = option(1000, "rows read per chunk")

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ValueError(f"--chunk-size must be >= 1, got {self.chunk_size}")


class ToyDataModule(BaseDataModule):
    """Synthetic data: 2 tasks (``alpha``, ``beta``), 60/20/20 random split.

    Args:
        n_samples: number of samples.
        n_features: input width.
        noise: standard deviation of the noise added to the linear signal.
        missing_fraction: fraction of labels set to NaN (missing).
        data_seed: seed of the generated data.
        task_type: ``classification`` (labels 0/1), ``regression`` or ``multiclass`` (one target
            ``colour`` with 3 classes: the largest of the two tasks' signals and 0).
        batch_size: samples per batch.
        num_workers: DataLoader workers.
        split_seed: seed of the split.
    """

    predict_options = ToyPredictOptions

    def __init__(self, n_samples: int = 600, n_features: int = 8, noise: float = 0.3,
                 missing_fraction: float = 0.15, data_seed: int = 0,
                 task_type: Literal["classification", "regression", "multiclass"] = "classification",
                 batch_size: int = 64, num_workers: int = 0, split_seed: int = 0) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, split_seed=split_seed)
        self.n_samples = n_samples
        self.n_features = n_features
        self.noise = noise
        self.missing_fraction = missing_fraction
        self.data_seed = data_seed
        self.requested_task_type = task_type
        self._stats: tuple[list[float], list[float]] | None = None

    def load(self) -> None:
        X, y = make_data(self.n_samples, self.n_features, self.noise, self.missing_fraction,
                         self.data_seed, self.requested_task_type)
        train, val, test = random_split(len(X), (0.6, 0.2, 0.2), seed=self.split_seed)
        self.task_names = ["colour"] if self.requested_task_type == "multiclass" else list(TASKS)
        self.task_type = self.requested_task_type
        if self.task_type == "multiclass":
            labels = y[train][~np.isnan(y[train])].astype(int)
            self._class_counts = np.bincount(labels, minlength=len(CLASSES)).tolist()
        self.train_dataset, self.val_dataset, self.test_dataset = (
            TensorDictDataset(**{INPUT: X[idx], TARGET: y[idx]}) for idx in (train, val, test))
        self._test_records = pd.DataFrame({"id": [f"s{i}" for i in test]})
        if self.task_type == "regression":
            mean, std = np.nanmean(y[train], axis=0), np.nanstd(y[train], axis=0)
            self._stats = (mean.round(6).tolist(), std.round(6).tolist())

    def extra_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"in_features": self.n_features}
        if self._stats is not None:
            info["target_mean"], info["target_std"] = self._stats
        if self.task_type == "multiclass":
            info["class_names"] = list(CLASSES)
            info["class_counts"] = self._class_counts
            info["primary_metric"] = ["balanced_accuracy", "max"]
        return info

    @classmethod
    def request_schema(cls) -> dict[str, Any]:
        """``{"rows": [[x0, x1, ...], ...], "ids": [...]}``; a null or missing feature is a row error."""
        number = {"type": ["number", "null"]}
        return {"type": "object", "additionalProperties": False, "required": ["rows"], "properties": {
            "rows": {"type": "array", "minItems": 1, "items": {"type": "array", "maxItems": 1024, "items": number}},
            "ids": {"type": "array", "items": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}}}}

    @classmethod
    def decode_request(cls, payload: dict[str, Any]) -> RequestRows:
        rows, ids = payload["rows"], payload.get("ids")
        if ids is not None and len(ids) != len(rows):
            raise RequestError(f"body.ids: {len(ids)} ids for {len(rows)} rows")
        width = max(len(r) for r in rows)
        header = ",".join(["id"] + [f"x{i}" for i in range(width)])
        lines = [",".join([ids[i] if ids else str(i + 1)] + ["" if v is None else repr(float(v)) for v in row]
                          + [""] * (width - len(row))) for i, row in enumerate(rows)]
        return RequestRows(".csv", lines, header)

    def predict_chunks(self, path: str, data_info: dict[str, Any] | None = None, chunk_size: int = 1000,
                       **kwargs: Any) -> Iterator[tuple[pd.DataFrame, DataLoader | None]]:
        """A CSV with columns ``x0..x{n_features-1}`` (and optionally ``id``); a row with a missing
        or non-numeric feature keeps an error and gets no prediction."""
        n_features = int((data_info or {}).get("in_features", self.n_features))
        columns = [f"x{i}" for i in range(n_features)]
        try:
            reader = pd.read_csv(path, chunksize=chunk_size, dtype=str, keep_default_na=False)
            offset = 0
            for chunk in reader:
                missing = [c for c in columns if c not in chunk.columns]
                if missing:
                    raise DataError(path, f"missing feature column(s) {missing}", row=1)
                values = chunk[columns].apply(pd.to_numeric, errors="coerce").to_numpy(np.float32)
                ok = np.isfinite(values).all(axis=1)
                records = pd.DataFrame({
                    "id": chunk["id"].to_numpy() if "id" in chunk else np.arange(len(chunk)) + offset + 1,
                    "error": np.where(ok, "", "missing or non-numeric feature")})
                loader = None
                if ok.any():
                    width = 1 if (data_info or {}).get("task_type") == "multiclass" else len(TASKS)
                    y = np.full((int(ok.sum()), width), np.nan, dtype=np.float32)
                    loader = DataLoader(TensorDictDataset(**{INPUT: values[ok], TARGET: y}),
                                        batch_size=self.batch_size, shuffle=False)
                offset += len(chunk)
                yield records, loader
        except pd.errors.EmptyDataError:
            raise DataError(path, "file is empty") from None
