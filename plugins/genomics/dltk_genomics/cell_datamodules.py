"""Cell-level genomics datamodules: single-cell CpG methylation (DeepCpG) and expression (AnnData).

Methylation
    Every CpG observed in at least one cell is a sample; its targets are the states in each cell
    (NaN where that cell did not observe it), its inputs the ``k`` nearest observed CpGs on each side
    in every cell, excluding the CpG itself (DeepCpG's CpG module), and, with ``fasta``, the DNA window
    around it (DeepCpG's DNA module). Split ``chromosome`` (default): ``test_chroms`` are the test
    set; of every other chromosome the last ``val_fraction`` of its sites (a contiguous region) is
    the validation set, the rest the training set. Split ``region``: every chromosome is cut into
    ``region_size``-bp blocks, and a seeded random ``test_fraction`` / ``val_fraction`` of the blocks
    form the test / validation sets.

Expression
    See :class:`ExpressionDataModule` (cell types) and :class:`ExpressionRegressionDataModule`
    (D-GEX-style landmark -> target genes).
"""

from __future__ import annotations

import csv
import gzip
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from dltk.base import INPUT, TARGET, BaseDataModule, TensorDictDataset
from dltk.errors import ConfigError, DataError
from torch.utils.data import DataLoader

from dltk_genomics import methylation as meth

log = logging.getLogger("dltk.genomics")

DNA = "dna"
"""Batch key of the DNA window codes (uint8 IUPAC codes, see :mod:`dltk_genomics.encoding`)."""


def _auroc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(y) == 0 or y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, p))


class MethylationDataModule(BaseDataModule):
    """Single-cell CpG states from neighbouring CpGs (and optionally DNA), DeepCpG-style.

    Args:
        paths: comma-separated CpG profile files (``chrom pos state``), one per cell; default the two
            DeepCpG test profiles ``BS27_4_SER`` and ``BS28_2_SER`` (fetched through the registry).
        k: neighbouring observed CpGs per side and cell (DeepCpG uses 25).
        max_dist: distances are scaled as ``log1p(d) / log1p(max_dist)`` and clipped at 1.
        split: ``chromosome`` (held-out ``test_chroms``) or ``region`` (held-out genomic blocks).
        test_chroms: comma-separated held-out test chromosomes (``chr`` prefix optional).
        val_fraction: ``chromosome``: the last fraction of each training chromosome's sites, a
            contiguous region, forms the validation set; ``region``: the fraction of blocks.
        test_fraction: ``region`` only: the fraction of blocks held out for test.
        region_size: ``region`` only: block size in bases.
        fasta: optional reference FASTA (pyfaidx; index written to the dltk cache); adds the DNA
            window around each CpG (batch key ``dna``) for the DNA module.
        dna_window: DNA window width in bases (DeepCpG: 1001).
        batch_size: samples per batch.
        num_workers: DataLoader workers.
        split_seed: seed of the ``region`` split (the chromosome split does not depend on it).
    """

    def __init__(self, paths: str | None = None, k: int = 25, max_dist: int = 25000,
                 split: Literal["chromosome", "region"] = "chromosome", test_chroms: str = "19",
                 val_fraction: float = 0.2, test_fraction: float = 0.2, region_size: int = 100_000,
                 fasta: str | None = None, dna_window: int = 501,
                 batch_size: int = 128, num_workers: int = 0, split_seed: int = 0) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, split_seed=split_seed)
        if k < 1:
            raise ConfigError(f"data.k must be >= 1, got {k}")
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        if max_dist < 1:
            raise ConfigError(f"data.max_dist must be >= 1, got {max_dist}")
        self.paths = paths
        self.k = int(k)
        self.max_dist = int(max_dist)
        self.test_chroms = [meth.normalise_chrom(c) for c in test_chroms.split(",") if c.strip()]
        self.val_fraction = float(val_fraction)
        if split not in ("chromosome", "region"):
            raise ConfigError(f"data.split must be 'chromosome' or 'region', got {split!r}")
        if split == "region" and not (0 < test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ConfigError(f"data.test_fraction ({test_fraction}) must be in (0, 1) and leave room for "
                              f"training with val_fraction {val_fraction}")
        if region_size < 1:
            raise ConfigError(f"data.region_size must be >= 1, got {region_size}")
        self.split = split
        self.test_fraction = float(test_fraction)
        self.region_size = int(region_size)
        self.fasta = fasta
        self.dna_window = int(dna_window) if fasta else 0
        self.profiles: list[meth.CpgProfile] = []
        self.baseline: dict[str, float] = {}
        self._pos_fraction: list[float] = []

    # -- reading ----------------------------------------------------------------------------
    def read_profiles(self) -> list[meth.CpgProfile]:
        from dltk.data import fetch

        if self.paths:
            files = [p.strip() for p in self.paths.split(",") if p.strip()]
            missing = [p for p in files if not Path(p).is_file()]
            if missing:
                raise DataError(missing[0], "CpG profile not found")
            profiles = [meth.read_cpg_profile(p) for p in files]
        else:
            profiles = [meth.read_cpg_profile(fetch(meth.FILES[name]), name) for name in meth.DEFAULT_CELLS]
        names = [p.name for p in profiles]
        if len(set(names)) != len(names):
            raise ConfigError(f"data.paths: two profiles have the same cell name ({names}); rename the files")
        return profiles

    def featurize(self, chrom: str, targets: np.ndarray,
                  windows: meth.FastaWindows | None = None) -> dict[str, np.ndarray]:
        """Model inputs for target positions on one chromosome: ``x`` (N, cells, 2k, 2), the same-cell
        neighbour average ``baseline`` (N, cells) and, with a FASTA, ``dna`` (N, window) codes."""
        feats, base = [], []
        for profile in self.profiles:
            pos, state = profile.chromosome(chrom)
            s, d = meth.knn_features(targets, pos, state, self.k)
            feats.append(meth.encode_neighbours(s, d, self.max_dist))
            base.append(meth.neighbour_average(s, d, min(5, self.k)))
        out = {INPUT: np.stack(feats, axis=1), "baseline": np.stack(base, axis=1)}
        if windows is not None:
            out[DNA] = windows.codes(chrom, targets)
        return out

    def _windows(self) -> meth.FastaWindows | None:
        return meth.FastaWindows(self.fasta, self.dna_window) if self.fasta else None

    def load(self) -> None:
        self.profiles = self.read_profiles()
        self.task_names = [p.name for p in self.profiles]
        self.task_type = "classification"
        chroms = list(dict.fromkeys(c for p in self.profiles for c in p.chromosomes))
        unknown = [c for c in self.test_chroms if c not in chroms]
        if self.split == "region":
            unknown, self.test_chroms = [], []
        elif unknown or not self.test_chroms:
            raise ConfigError(f"data.test_chroms: {unknown or 'none given'} not among the profiles' "
                              f"chromosomes {chroms}")
        if self.split == "chromosome" and all(c in self.test_chroms for c in chroms):
            raise ConfigError(f"data.test_chroms holds every chromosome ({chroms}); nothing left to train on")
        windows = self._windows()
        parts: dict[str, list[dict[str, np.ndarray]]] = {"train": [], "val": [], "test": []}
        for chrom in chroms:
            sites = np.unique(np.concatenate([p.chromosome(chrom)[0] for p in self.profiles]))
            y = np.full((len(sites), len(self.profiles)), np.nan, dtype=np.float32)
            for j, profile in enumerate(self.profiles):
                pos, state = profile.chromosome(chrom)
                y[np.searchsorted(sites, pos), j] = state
            feats = self.featurize(chrom, sites, windows)
            block = {**feats, TARGET: y, "chrom": np.full(len(sites), chrom, dtype=object), "pos": sites}
            if self.split == "region":
                parts["all"] = parts.get("all", []) + [block]
                continue
            if chrom in self.test_chroms:
                parts["test"].append(block)
                continue
            n_val = round(len(sites) * self.val_fraction)
            cut = len(sites) - n_val
            parts["train"].append({k: v[:cut] for k, v in block.items()})
            parts["val"].append({k: v[cut:] for k, v in block.items()})
        if self.split == "region":
            parts = self._region_split(parts.pop("all"))
        if windows is not None and windows.padded:
            log.warning("%d DNA windows reach past a contig end; padded with empty bases", windows.padded)
        merged = {name: {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
                  for name, blocks in parts.items() if blocks}
        for name in ("train", "val", "test"):
            if name not in merged or len(merged[name][TARGET]) == 0:
                raise DataError(self.profiles[0].source, f"the {name} split is empty (chromosomes {chroms}, "
                                f"test {self.test_chroms}, val_fraction {self.val_fraction})")
        keys = [INPUT, TARGET] + ([DNA] if windows is not None else [])
        datasets = {name: TensorDictDataset(**{k: part[k] for k in keys}) for name, part in merged.items()}
        self.train_dataset, self.val_dataset, self.test_dataset = (datasets[n] for n in ("train", "val", "test"))
        test = merged["test"]
        self._test_records = pd.DataFrame({"chrom": test["chrom"], "pos": test["pos"]})
        y_train = merged["train"][TARGET]
        self._pos_fraction = [float(np.nanmean(y_train[:, j])) for j in range(len(self.profiles))]
        self.baseline = self._baseline_auroc(test)
        val_baseline = self._baseline_auroc(merged["val"])
        sizes = {n: len(p[TARGET]) for n, p in merged.items()}
        log.info("methylation: %d cells, %s split, splits %s (test chromosomes %s)", len(self.profiles), self.split,
                 sizes, self.test_chroms)
        print("methylation: neighbour-average baseline (5 CpGs per side, same cell, 1/distance) AUROC: test "
              + ", ".join(f"{k} {v:.3f}" for k, v in self.baseline.items()) + "; validation "
              + ", ".join(f"{k} {v:.3f}" for k, v in val_baseline.items()), flush=True)

    def _region_split(self, blocks: list[dict[str, np.ndarray]]) -> dict[str, list[dict[str, np.ndarray]]]:
        """Assign ``region_size`` blocks of every chromosome to test/val/train, seeded."""
        regions = [(i, b) for i, block in enumerate(blocks) for b in np.unique(block["pos"] // self.region_size)]
        order = np.random.default_rng(self.split_seed).permutation(len(regions))
        n_test = max(1, round(self.test_fraction * len(regions)))
        n_val = max(1, round(self.val_fraction * len(regions))) if self.val_fraction > 0 else 0
        role = {regions[r]: ("test" if rank < n_test else "val" if rank < n_test + n_val else "train")
                for rank, r in enumerate(order)}
        parts: dict[str, list[dict[str, np.ndarray]]] = {"train": [], "val": [], "test": []}
        for i, block in enumerate(blocks):
            ids = block["pos"] // self.region_size
            which = np.array([role[(i, b)] for b in ids])
            for name, part in parts.items():
                mask = which == name
                if mask.any():
                    part.append({k: v[mask] for k, v in block.items()})
        return parts

    def _baseline_auroc(self, part: dict[str, np.ndarray]) -> dict[str, float]:
        out = {}
        for j, name in enumerate(self.task_names):
            mask = ~np.isnan(part[TARGET][:, j])
            out[name] = _auroc(part[TARGET][mask, j], part["baseline"][mask, j])
        finite = [v for v in out.values() if not np.isnan(v)]
        out["mean"] = float(np.mean(finite)) if finite else float("nan")
        return out

    def extra_info(self) -> dict[str, Any]:
        return {"n_cells": len(self.profiles), "k": self.k, "max_dist": self.max_dist,
                "dna_window": self.dna_window, "pos_fraction": self._pos_fraction,
                "baseline_auroc": dict(self.baseline)}

    # -- prediction ---------------------------------------------------------------------------
    def predict_chunks(self, path: str, data_info: dict[str, Any] | None = None, chunk_size: int = 50000,
                       **kwargs: Any) -> Iterator[tuple[pd.DataFrame, DataLoader | None]]:
        """Impute the trained cells' states at the CpG positions of a table ``chrom pos`` (tab- or
        comma-separated, header optional), from the same cells' profiles (``data.paths``). Rows on
        chromosomes the profiles do not cover, or with a bad position, get an ``error``."""
        info = data_info or {}
        self.k = int(info.get("k", self.k))
        self.max_dist = int(info.get("max_dist", self.max_dist))
        if int(info.get("dna_window", self.dna_window)) and not self.fasta:
            raise ConfigError("this model was trained with a DNA module: pass --data.fasta in the run config")
        self.profiles = self.read_profiles()
        names = [p.name for p in self.profiles]
        if info.get("task_names") and list(info["task_names"]) != names:
            raise ConfigError(f"the run's cells {info['task_names']} differ from the profiles {names}")
        windows = self._windows()
        known = {c for p in self.profiles for c in p.chromosomes}
        table = _read_positions(path)
        for start in range(0, len(table), chunk_size):
            chunk = table.iloc[start:start + chunk_size].reset_index(drop=True)
            errors = chunk["error"].to_numpy(dtype=object)
            chrom_norm = chunk["chrom"].astype(str).map(meth.normalise_chrom).to_numpy()
            for i, c in enumerate(chrom_norm):
                if not errors[i] and c not in known:
                    errors[i] = f"chromosome {c!r} not in the cells' profiles"
            chunk["error"] = errors
            ok = np.flatnonzero(errors == "")
            if not len(ok):
                yield chunk, None
                continue
            blocks: list[dict[str, np.ndarray]] = []
            order: list[np.ndarray] = []
            for c in dict.fromkeys(chrom_norm[ok]):
                rows = ok[chrom_norm[ok] == c]
                blocks.append(self.featurize(c, chunk["pos"].to_numpy()[rows].astype(np.int64), windows))
                order.append(rows)
            inverse = np.argsort(np.concatenate(order), kind="stable")
            arrays = {k: np.concatenate([b[k] for b in blocks])[inverse] for k in blocks[0] if k != "baseline"}
            n = len(ok)
            arrays[TARGET] = np.full((n, len(names)), np.nan, dtype=np.float32)
            loader = DataLoader(TensorDictDataset(**arrays), batch_size=self.batch_size, shuffle=False)
            yield chunk, loader


def _read_positions(path: str) -> pd.DataFrame:
    """``chrom pos`` rows of a prediction input (tab/comma-separated, optional header)."""
    p = Path(path)
    opener = gzip.open if p.name.endswith(".gz") else open
    chroms: list[str] = []
    positions: list[int] = []
    errors: list[str] = []
    with opener(p, "rt") as fh:
        sample = fh.read(4096)
        fh.seek(0)
        delimiter = "\t" if "\t" in sample else ","
        for lineno, fields in enumerate(csv.reader(fh, delimiter=delimiter), start=1):
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) < 2:
                chroms.append(fields[0])
                positions.append(-1)
                errors.append("expected 'chrom pos'")
                continue
            try:
                positions.append(int(fields[1]))
                errors.append("")
            except ValueError:
                if lineno == 1:
                    continue  # header
                positions.append(-1)
                errors.append(f"position {fields[1]!r} is not an integer")
            chroms.append(fields[0].strip())
    if not chroms:
        raise DataError(p, "no 'chrom pos' rows")
    return pd.DataFrame({"chrom": chroms, "pos": positions, "error": errors})


# ------------------------------------------------------------------------------------------------
# expression (AnnData)
# ------------------------------------------------------------------------------------------------
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
