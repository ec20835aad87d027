"""Expression (AnnData): cell types (:class:`ExpressionDataModule`) and D-GEX-style landmark ->
target gene regression (:class:`ExpressionRegressionDataModule`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from dltk.base import INPUT, TARGET, BaseDataModule, TensorDictDataset
from dltk.errors import ConfigError, DataError
from torch.utils.data import DataLoader

log = logging.getLogger("dltk.genomics")


class _AnnDataModule(BaseDataModule):
    """Shared AnnData loading, seeded split and training-set gene standardisation."""

    def __init__(self, path: str | None = None, use: Literal["raw", "X"] = "raw", val_fraction: float = 0.15,
                 test_fraction: float = 0.2, batch_size: int = 64, num_workers: int = 0,
                 split_seed: int = 0) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, split_seed=split_seed)
        if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ConfigError(f"data.val_fraction ({val_fraction}) and data.test_fraction ({test_fraction}) must "
                              "be in (0, 1) and sum to less than 1")
        self.path = path
        self.use = use
        self.val_fraction = float(val_fraction)
        self.test_fraction = float(test_fraction)
        self.baseline: dict[str, float] = {}
        self._info: dict[str, Any] = {}

    def read(self) -> tuple[Any, np.ndarray, list[str], str]:
        from dltk_genomics import expression

        adata, source = expression.load_anndata(self.path)
        X, genes = expression.expression_matrix(adata, self.use, source)
        return adata, X, genes, source

    def split(self, n: int, stratify: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Seeded (stratified) train/val/test indices."""
        from sklearn.model_selection import train_test_split

        idx = np.arange(n)
        rest, test = train_test_split(idx, test_size=self.test_fraction, random_state=self.split_seed,
                                      stratify=stratify)
        val_of_rest = self.val_fraction / (1.0 - self.test_fraction)
        train, val = train_test_split(rest, test_size=val_of_rest, random_state=self.split_seed,
                                      stratify=None if stratify is None else stratify[rest])
        return np.sort(train), np.sort(val), np.sort(test)

    @staticmethod
    def scaler(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = X.mean(axis=0)
        std = X.std(axis=0)
        return mean.astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32)

    def extra_info(self) -> dict[str, Any]:
        return dict(self._info)

    def _adata_inputs(self, path: str, info: dict[str, Any]) -> tuple[Any, np.ndarray, int]:
        """A new h5ad's cells as standardised model inputs, genes aligned to the training genes."""
        from dltk_genomics import expression

        adata, source = expression.load_anndata(path)
        X, genes = expression.expression_matrix(adata, self.use, source)
        wanted = list(info["input_genes"])
        mean = np.asarray(info["input_mean"], dtype=np.float32)
        std = np.asarray(info["input_std"], dtype=np.float32)
        X, missing = expression.align_genes(X, genes, wanted, mean)
        if missing == len(wanted):
            raise DataError(source, f"none of the model's {len(wanted)} input genes is in var_names")
        if missing:
            print(f"expression: {missing} of {len(wanted)} input genes absent from {source}; "
                  "filled with the training mean", flush=True)
        return adata, (X - mean) / std, missing

    def predict_file(self, input_path: str, output_path: str, models: list[Any],
                     options: list[str]) -> dict[str, int] | None:
        """``dltk predict --input cells.h5ad``: every cell of an AnnData file (genes matched by name):
        its cell type, or its target genes from its landmarks."""
        import torch
        from dltk.inference import ensemble_inference

        if options:
            raise ConfigError(f"unknown predict option(s): {' '.join(options)}")
        info = models[0].data_info
        adata, Z, _ = self._adata_inputs(input_path, info)
        shape = (len(Z),) if info["task_type"] == "multiclass" else (len(Z), len(info["task_names"]))
        y = np.full(shape, np.nan, dtype=np.float32)
        loader = DataLoader(TensorDictDataset(**{INPUT: torch.from_numpy(Z), TARGET: y}),
                            batch_size=self.batch_size, shuffle=False)
        preds, std, _ = ensemble_inference(models, loader)
        self._write_predictions(output_path, adata, models[0].output_columns(preds, std))
        return {"cells": len(Z), "predicted": len(Z), "errors": 0}

    def _write_predictions(self, output_path: str, adata: Any, columns: dict[str, np.ndarray]) -> None:
        from dltk.io import atomic_path

        table = pd.concat([pd.DataFrame({"cell": [str(c) for c in adata.obs_names]}), pd.DataFrame(columns)],
                          axis=1)
        with atomic_path(Path(output_path)) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")


class ExpressionDataModule(_AnnDataModule):
    """Cell-type classification from expression (multiclass), with a logistic-regression baseline
    fitted on the same training split and scored on the same test split.

    Args:
        path: ``.h5ad`` file; default scanpy's bundled ``pbmc68k_reduced`` (700 PBMCs, 765 genes,
            ``bulk_labels``: 10 FACS-sorted cell types).
        label_key: ``obs`` column with the cell types. Cells without a label are skipped (counted);
            classes with fewer than ``min_cells`` cells are dropped (counted), since a stratified
            split needs a few of each.
        use: ``raw`` (``adata.raw.X``, log-normalised) or ``X``.
        val_fraction: validation fraction (stratified, seeded with ``split_seed``).
        test_fraction: test fraction (stratified, seeded with ``split_seed``).
        min_cells: smallest class kept.
        batch_size: cells per batch.
        num_workers: DataLoader workers.
        split_seed: seed of the split.
    """

    def __init__(self, path: str | None = None, label_key: str = "bulk_labels", use: Literal["raw", "X"] = "raw",
                 val_fraction: float = 0.15, test_fraction: float = 0.2, min_cells: int = 5,
                 batch_size: int = 64, num_workers: int = 0, split_seed: int = 0) -> None:
        super().__init__(path=path, use=use, val_fraction=val_fraction, test_fraction=test_fraction,
                         batch_size=batch_size, num_workers=num_workers, split_seed=split_seed)
        self.label_key = label_key
        self.min_cells = max(3, int(min_cells))

    def load(self) -> None:
        from dltk_genomics import expression

        adata, X, genes, source = self.read()
        y_names = expression.labels(adata, self.label_key, source)
        keep = np.array([v is not None for v in y_names])
        if (~keep).any():
            first = int(np.flatnonzero(~keep)[0])
            print(f"expression: skipped {int((~keep).sum())} cells without a {self.label_key!r} label "
                  f"(first: {adata.obs_names[first]!r})", flush=True)
        names, counts = np.unique(y_names[keep].astype(str), return_counts=True)
        small = names[counts < self.min_cells]
        if len(small):
            dropped = np.isin(y_names.astype(str), small) & keep
            print(f"expression: dropped {int(dropped.sum())} cells of {len(small)} classes with fewer than "
                  f"{self.min_cells} cells ({', '.join(map(str, small))})", flush=True)
            keep &= ~dropped
        classes = [str(c) for c in names if c not in set(small)]
        if len(classes) < 2:
            raise DataError(source, f"obs[{self.label_key!r}] has {len(classes)} class(es) with at least "
                                    f"{self.min_cells} cells; need 2 or more", field=self.label_key)
        X = X[keep]
        cells = np.asarray(adata.obs_names)[keep]
        y = np.searchsorted(np.asarray(classes), y_names[keep].astype(str)).astype(np.float32)
        train, val, test = self.split(len(y), stratify=y)
        mean, std = self.scaler(X[train])
        Z = (X - mean) / std
        self.task_names = [self.label_key]
        self.task_type = "multiclass"
        self.train_dataset, self.val_dataset, self.test_dataset = (
            TensorDictDataset(**{INPUT: Z[i], TARGET: y[i]}) for i in (train, val, test))
        self._test_records = pd.DataFrame({"cell": [str(c) for c in cells[test]]})
        self.baseline = logistic_baseline(Z[train], y[train], Z[test], y[test], len(classes))
        class_counts = np.bincount(y[train].astype(int), minlength=len(classes)).tolist()
        self._info = {"class_names": classes, "class_counts": class_counts, "in_features": len(genes),
                      "primary_metric": ["macro_f1", "max"], "input_genes": genes,
                      "input_mean": mean.tolist(), "input_std": std.tolist(), "baseline": dict(self.baseline)}
        log.info("expression: %s, %d cells x %d genes (%s), %d classes; split %d/%d/%d (seed %d)", source,
                 len(y), len(genes), self.use, len(classes), len(train), len(val), len(test), self.split_seed)
        print("expression: logistic-regression baseline on the same split, test "
              + ", ".join(f"{k} {v:.3f}" for k, v in self.baseline.items()), flush=True)


def logistic_baseline(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray,
                      n_classes: int) -> dict[str, float]:
    """Multinomial logistic regression (sklearn, L2, C=1, standardised genes) on the training split,
    scored on the test split: ``macro_f1``, ``accuracy``, ``balanced_accuracy``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    clf = LogisticRegression(max_iter=3000, C=1.0)
    clf.fit(X_train, y_train.astype(int))
    pred = clf.predict(X_test)
    truth = y_test.astype(int)
    labels = list(range(n_classes))
    return {"macro_f1": float(f1_score(truth, pred, average="macro", labels=labels, zero_division=0)),
            "accuracy": float(accuracy_score(truth, pred)),
            "balanced_accuracy": float(balanced_accuracy_score(truth, pred))}


class ExpressionRegressionDataModule(_AnnDataModule):
    """D-GEX-style landmark -> target gene regression (Chen et al. 2016, Bioinformatics 32:1832), with a
    linear-regression baseline fitted on the same training split and scored on the same test split.

    Args:
        path: ``.h5ad`` file; default scanpy's bundled ``pbmc68k_reduced``.
        landmarks: file with one landmark gene per line; default the ``landmark_fraction`` of genes
            with the highest variance over the training cells.
        landmark_fraction: fraction of genes used as landmarks when no file is given (D-GEX: ~1,000 of
            ~22,000; here more, since pbmc68k_reduced keeps only 765 highly variable genes).
        use: ``raw`` (``adata.raw.X``, log-normalised) or ``X``.
        val_fraction: validation fraction (random, seeded with ``split_seed``).
        test_fraction: test fraction.
        batch_size: cells per batch.
        num_workers: DataLoader workers.
        split_seed: seed of the split.
    """

    def __init__(self, path: str | None = None, landmarks: str | None = None, landmark_fraction: float = 0.2,
                 use: Literal["raw", "X"] = "raw", val_fraction: float = 0.15, test_fraction: float = 0.2,
                 batch_size: int = 64, num_workers: int = 0, split_seed: int = 0) -> None:
        super().__init__(path=path, use=use, val_fraction=val_fraction, test_fraction=test_fraction,
                         batch_size=batch_size, num_workers=num_workers, split_seed=split_seed)
        if not 0 < landmark_fraction < 1:
            raise ConfigError(f"data.landmark_fraction must be in (0, 1), got {landmark_fraction}")
        self.landmarks = landmarks
        self.landmark_fraction = float(landmark_fraction)

    def load(self) -> None:
        from dltk_genomics import expression

        adata, X, genes, source = self.read()
        if len(X) < 10:
            raise DataError(source, f"{len(X)} cells are too few to split into train/validation/test")
        train, val, test = self.split(len(X), stratify=None)
        if self.landmarks:
            wanted = expression.read_gene_list(self.landmarks)
            index = {g: i for i, g in enumerate(genes)}
            absent = [g for g in wanted if g not in index]
            if absent:
                print(f"expression: {len(absent)} landmark genes not in the data, ignored (first: {absent[0]})",
                      flush=True)
            land = [index[g] for g in wanted if g in index]
            if not land or len(land) >= len(genes):
                raise DataError(self.landmarks, f"{len(land)} of the listed landmark genes are in the data; "
                                "need at least one, and fewer than all genes")
        else:
            n_land = max(1, round(self.landmark_fraction * len(genes)))
            land = np.argsort(-X[train].var(axis=0), kind="stable")[:n_land].tolist()
        land_idx = np.asarray(sorted(land))
        target_idx = np.setdiff1d(np.arange(len(genes)), land_idx)
        mean, std = self.scaler(X[train][:, land_idx])
        Z = (X[:, land_idx] - mean) / std
        Y = X[:, target_idx]
        self.task_names = [genes[i] for i in target_idx]
        self.task_type = "regression"
        self.train_dataset, self.val_dataset, self.test_dataset = (
            TensorDictDataset(**{INPUT: Z[i], TARGET: Y[i]}) for i in (train, val, test))
        self._test_records = pd.DataFrame({"cell": [str(c) for c in np.asarray(adata.obs_names)[test]]})
        self.baseline = linear_baseline(Z[train], Y[train], Z[test], Y[test])
        self._info = {"in_features": len(land_idx), "input_genes": [genes[i] for i in land_idx],
                      "input_mean": mean.tolist(), "input_std": std.tolist(),
                      "target_mean": Y[train].mean(axis=0).tolist(),
                      "target_std": np.where(Y[train].std(axis=0) > 1e-6, Y[train].std(axis=0), 1.0).tolist(),
                      "baseline": dict(self.baseline)}
        log.info("expression_dgex: %s, %d cells, %d landmark -> %d target genes; split %d/%d/%d", source,
                 len(X), len(land_idx), len(target_idx), len(train), len(val), len(test))
        print(f"expression_dgex: {len(land_idx)} landmark -> {len(target_idx)} target genes; linear-regression "
              "baseline on the same split, test " + ", ".join(f"{k} {v:.4f}" for k, v in self.baseline.items()),
              flush=True)


def linear_baseline(X_train: np.ndarray, Y_train: np.ndarray, X_test: np.ndarray,
                    Y_test: np.ndarray) -> dict[str, float]:
    """Ordinary least squares (sklearn LinearRegression, D-GEX's linear baseline) from landmarks to all
    target genes on the training split; test ``rmse``, ``mae`` and ``r2`` per gene, averaged over genes
    (as the model's metrics are)."""
    from sklearn.linear_model import LinearRegression

    pred = LinearRegression().fit(X_train, Y_train).predict(X_test)
    err = pred - Y_test
    rmse = np.sqrt((err ** 2).mean(axis=0))
    mae = np.abs(err).mean(axis=0)
    ss_res = (err ** 2).sum(axis=0)
    ss_tot = ((Y_test - Y_test.mean(axis=0)) ** 2).sum(axis=0)
    r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.nan)
    return {"rmse": float(rmse.mean()), "mae": float(mae.mean()), "r2": float(np.nanmean(r2))}
