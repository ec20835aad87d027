"""Single-cell CpG methylation (DeepCpG).

Every CpG observed in at least one cell is a sample; its targets are the states in each cell
(NaN where that cell did not observe it), its inputs the ``k`` nearest observed CpGs on each side
in every cell, excluding the CpG itself (DeepCpG's CpG module), and, with ``fasta``, the DNA window
around it (DeepCpG's DNA module). Split ``chromosome`` (default): ``test_chroms`` are the test
set; of every other chromosome the last ``val_fraction`` of its sites (a contiguous region) is
the validation set, the rest the training set. Split ``region``: every chromosome is cut into
``region_size``-bp blocks, and a seeded random ``test_fraction`` / ``val_fraction`` of the blocks
form the test / validation sets.
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
