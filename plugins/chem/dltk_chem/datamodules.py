"""Chem datamodules: SMILES tables -> molecular features -> train/val/test splits.

Features are chosen with ``features``, a ``+``-separated list of

- ``ecfp``: Morgan/ECFP fingerprint (:class:`~dltk_chem.featurize.ECFP`; bits, or log1p counts
  with ``counts: true``),
- ``maccs``: the 167 MACCS keys,
- ``rdkit2d``: RDKit's ~210 2D descriptors, imputed and robustly scaled with statistics fitted on
  the training split only (saved with the model, reused by ``dltk predict``).

Each block is computed in parallel and cached on disk (keyed by the SMILES content and the
featurizer settings). Structures RDKit cannot parse are dropped and counted in the log. Batches are
``{"x": float32 features, "y": float labels with NaN = missing}``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from dltk.base import INPUT, TARGET, BaseDataModule, TensorDictDataset
from dltk.data.splits import group_split, random_split
from dltk.errors import ConfigError, DataError
from dltk.serving import RequestRows
from dltk_chem import datasets, serving
from dltk_chem.deepchem_features import deepchem_blocks
from dltk_chem.featurize import (
    ECFP,
    MACCS,
    DescriptorScaler,
    RDKitDescriptors,
    featurize,
    featurize_cached,
    make_pool,
)

log = logging.getLogger("dltk.chem")

FEATURES = ("ecfp", "maccs", "rdkit2d")
POOL_MIN_BYTES = 100_000
"""Prediction files smaller than this (about MIN_PARALLEL SMILES) are featurized in-process."""


def tiny_smiles_csv(folder: Path) -> Path:
    """48 molecules with a regression target (heavy-atom count) and a binary one (has oxygen), for
    contract runs of the presets that read a user's file."""
    from rdkit import Chem

    smiles = ([("C" * n) for n in range(1, 9)] + [("C" * n + "O") for n in range(1, 9)]
              + [("C" * n + "N") for n in range(1, 9)] + [("c1ccccc1" + "C" * n) for n in range(8)]
              + [("C" * n + "C(=O)O") for n in range(8)] + [("OC" + "C" * n + "O") for n in range(8)])
    rows = ["smiles,heavy_atoms,has_oxygen"]
    for smi in smiles:
        mol = Chem.MolFromSmiles(smi)
        rows.append(f"{smi},{mol.GetNumHeavyAtoms()},{int(any(a.GetSymbol() == 'O' for a in mol.GetAtoms()))}")
    path = Path(folder) / "tiny.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


class MoleculeDataModule(BaseDataModule):
    """Shared behaviour of the chem datamodules (subclasses implement :meth:`load_tables`).

    Args:
        features: ``+``-separated feature blocks from ``ecfp``, ``maccs``, ``rdkit2d``.
        radius: Morgan radius (2 = ECFP4).
        n_bits: fingerprint length.
        counts: ECFP as log1p of atom-environment counts (clipped at 255) instead of bits.
        batch_size: samples per batch.
        num_workers: DataLoader workers.
        split_seed: seed of the data split.
        n_jobs: featurization processes (default: all cores, up to 8).
        store: ``memory`` (features held in RAM) or ``hdf5``: featurized chunk by chunk into an
            on-disk HDF5 store under the cache and read batch by batch, for data larger than RAM.
        store_chunk: molecules featurized per chunk when writing a store.
    """

    def __init__(self, features: str = "ecfp", radius: int = 2, n_bits: int = 2048, counts: bool = False,
                 batch_size: int = 128, num_workers: int = 0, split_seed: int = 0,
                 n_jobs: int | None = None, store: Literal["memory", "hdf5"] = "memory",
                 store_chunk: int = 8192) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, split_seed=split_seed)
        self.store = store
        self.store_chunk = max(1, int(store_chunk))
        names = [f.strip() for f in features.split("+") if f.strip()]
        dc_blocks = deepchem_blocks(names)  # hook: deepchem:Name(...) blocks (dltk_chem.deepchem_features)
        unknown = [f for f in names if f not in FEATURES and f not in dc_blocks]
        if unknown or not names:
            raise ConfigError(f"data.features: unknown feature block(s) {unknown or [features]}; "
                              f"choose from {', '.join(FEATURES)} or deepchem:Name(...) joined by '+'")
        self.features = "+".join(names)
        self.featurizer = ECFP(radius=radius, n_bits=n_bits, counts=counts)
        self.blocks: dict[str, Any] = {"ecfp": self.featurizer, "maccs": MACCS(), "rdkit2d": None}
        self.blocks = {name: dc_blocks[name] if name in dc_blocks else self.blocks[name] for name in names}
        if "rdkit2d" in self.blocks:
            self.blocks["rdkit2d"] = RDKitDescriptors()
        self.scaler: DescriptorScaler | None = None
        self.n_jobs = n_jobs
        self._pos_fraction: list[float] = []
        self._target_stats: tuple[list[float], list[float]] | None = None

    def load_tables(self) -> tuple[datasets.MolTable, datasets.MolTable, datasets.MolTable]:
        """Return the (train, validation, test) tables."""
        raise NotImplementedError

    # -- featurization ----------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        return sum(f.n_features for f in self.blocks.values())

    def _raw_blocks(self, smiles: list[str], cached: bool = True,
                    pool: Any = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        raw: dict[str, np.ndarray] = {}
        valid = np.ones(len(smiles), dtype=bool)
        for name, featurizer in self.blocks.items():
            if cached:
                X, ok, _ = featurize_cached(featurizer, smiles, n_jobs=self.n_jobs)
            else:
                X, ok = featurize(featurizer, smiles, n_jobs=self.n_jobs, progress=False, pool=pool)
            raw[name] = X
            valid &= ok
        return raw, valid

    def _assemble(self, raw: dict[str, np.ndarray], part: str) -> np.ndarray:
        """Concatenate the blocks as float32; ECFP counts as log1p; descriptors scaled."""
        columns = []
        for name, X in raw.items():
            if name == "ecfp" and self.featurizer.counts:
                columns.append(np.log1p(X.astype(np.float32)))
            elif name == "rdkit2d":
                assert self.scaler is not None
                scaled, imputed = self.scaler.transform(X)
                if imputed:
                    log.info("%s: imputed %d NaN/inf descriptor values with training medians", part, imputed)
                columns.append(scaled)
            else:
                columns.append(X.astype(np.float32))
        return np.concatenate(columns, axis=1) if len(columns) > 1 else columns[0]

    def _featurize(self, table: datasets.MolTable, part: str) -> tuple[dict[str, np.ndarray], datasets.MolTable]:
        raw, valid = self._raw_blocks(table.smiles)
        if not valid.any():  # before the warning below: a user error is one line on stderr
            raise DataError(table.source, f"no valid SMILES among {len(table)} rows ({part} split)")
        dropped = int((~valid).sum())
        if dropped:
            bad = [table.ids[i] for i in np.flatnonzero(~valid)[:5]]
            log.warning("%s: dropped %d of %d structures RDKit cannot parse (e.g. %s)", part, dropped,
                        len(table), ", ".join(map(str, bad)))
        self.dropped[part] = dropped
        return {k: v[valid] for k, v in raw.items()}, table.subset(valid)

    def load(self) -> None:
        train, val, test = self.load_tables()
        self.dropped: dict[str, int] = {}
        tables = {"train": train, "val": val, "test": test}
        for part, table in tables.items():
            if len(table) == 0:
                total = len(train) + len(val) + len(test)
                raise DataError(train.source, f"the {part} split is empty: {total} rows are too few "
                                "to split into train/validation/test")
        if self.store == "hdf5":
            parts = self._load_to_store(tables)
        else:
            raw = {part: self._featurize(table, part) for part, table in tables.items()}
            if "rdkit2d" in self.blocks:
                self.scaler = DescriptorScaler.fit(raw["train"][0]["rdkit2d"])
            parts = {part: (TensorDictDataset(**{INPUT: self._assemble(blocks, part), TARGET: kept.y}), kept)
                     for part, (blocks, kept) in raw.items()}
        log.info("features: %s, %d dimensions; dropped unparsable: %s", self.features, self.n_features,
                 self.dropped)
        self.task_names = list(train.tasks)
        y_train = parts["train"][1].y
        self.task_type = self.resolve_task_type(y_train)
        self.train_dataset, self.val_dataset, self.test_dataset = (d for d, _ in parts.values())
        test_table = parts["test"][1]
        self._test_records = pd.DataFrame({"id": test_table.ids, "smiles": test_table.smiles})
        self.fit_label_stats(y_train)
        sizes = {p: len(t) for p, (_, t) in parts.items()}
        log.info("splits: %s; %d tasks (%s)", sizes, len(self.task_names), self.task_type)

    def _load_to_store(self, tables: dict[str, datasets.MolTable]) -> dict[str, tuple[Any, datasets.MolTable]]:
        """Featurize each split chunk by chunk straight into an HDF5 store under the cache, so the
        feature matrix never has to fit in memory; training then reads batches from disk. A store
        is keyed by the SMILES, labels, feature settings and descriptor scaler, and reused."""
        import hashlib
        import json

        from dltk.data import cache_dir
        from dltk.data.store import StoreDataset, StoreWriter

        if "rdkit2d" in self.blocks:  # the scaler needs only the (small) training descriptor block
            desc, ok, _ = featurize_cached(self.blocks["rdkit2d"], tables["train"].smiles, n_jobs=self.n_jobs)
            self.scaler = DescriptorScaler.fit(desc[ok])
        settings = {"features": self.features, "ecfp": self.featurizer.settings(),
                    "scaler": self.scaler.state() if self.scaler else None}
        parts: dict[str, tuple[Any, datasets.MolTable]] = {}
        pool = make_pool(self.n_jobs)
        try:
            for part, table in tables.items():
                digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
                digest.update("\n".join(table.smiles).encode())
                digest.update(np.ascontiguousarray(table.y).tobytes())
                path = cache_dir("stores") / f"{digest.hexdigest()[:32]}-{part}.h5"
                keep = np.zeros(len(table), dtype=bool)
                build = not path.is_file()
                writer = StoreWriter(path, {INPUT: ((self.n_features,), "float32"),
                                            TARGET: ((len(table.tasks),), "float32")}) if build else None
                try:
                    for start in range(0, len(table), self.store_chunk):
                        smiles = table.smiles[start:start + self.store_chunk]
                        raw, valid = self._raw_blocks(smiles, cached=False, pool=pool)
                        keep[start:start + len(smiles)] = valid
                        if writer is not None and valid.any():
                            X = self._assemble({k: v[valid] for k, v in raw.items()}, part)
                            writer.append(**{INPUT: X, TARGET: table.y[start:start + len(smiles)][valid]})
                except BaseException:
                    if writer is not None:
                        writer.abort()
                    raise
                if writer is not None:
                    writer.close()
                if not keep.any():
                    raise DataError(table.source, f"no valid SMILES among {len(table)} rows ({part} split)")
                self.dropped[part] = int((~keep).sum())
                parts[part] = (StoreDataset(path), table.subset(keep))
                log.info("%s: %s store %s (%d rows)", part, "wrote" if build else "reusing", path.name,
                         int(keep.sum()))
        finally:
            if pool is not None:
                pool.close()
                pool.join()
        return parts

    def fit_label_stats(self, y_train: np.ndarray) -> None:
        """Training-split label statistics for the model: positive fraction per task
        (classification, for class weighting) or target mean/std (regression, for scaling)."""
        labelled = ~np.isnan(y_train)
        if self.task_type == "classification":
            pos = np.where(labelled, y_train, 0).sum(0)
            self._pos_fraction = (pos / np.maximum(labelled.sum(0), 1)).round(6).tolist()
        else:
            mean = np.nanmean(y_train, axis=0)
            std = np.nanstd(y_train, axis=0)
            self._target_stats = (mean.round(6).tolist(), np.where(std > 0, std, 1.0).round(6).tolist())

    def resolve_task_type(self, y: np.ndarray) -> Literal["classification", "regression"]:
        return datasets.infer_task_type(y)

    def extra_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"in_features": self.n_features, "features": self.features,
                                "ecfp": self.featurizer.settings()}
        if self.scaler is not None:
            info["descriptor_scaler"] = self.scaler.state()
        info.update(self.label_info())
        return info

    def label_info(self) -> dict[str, Any]:
        """The training-label statistics from :meth:`fit_label_stats`, as data_info entries."""
        if self.task_type == "classification":
            return {"pos_fraction": self._pos_fraction}
        if self._target_stats is not None:
            return {"target_mean": self._target_stats[0], "target_std": self._target_stats[1]}
        return {}

    # -- prediction on new files ------------------------------------------------------------
    def predict_chunks(self, path: str, data_info: dict[str, Any] | None = None,
                       smiles_column: str | None = None, chunk_size: int = 10_000,
                       **kwargs: Any) -> Iterator[tuple[pd.DataFrame, DataLoader | None]]:
        """Stream a CSV (with a ``smiles`` column) or ``.smi`` file; invalid rows keep an error.

        One featurization pool serves every chunk (workers start once), and the model sees each
        chunk as a single batch.
        """
        if self.scaler is None and data_info and "descriptor_scaler" in data_info:
            st = data_info["descriptor_scaler"]
            self.scaler = DescriptorScaler(st["median"], st["scale"], st["clip"])
        n_tasks = len((data_info or {}).get("task_names", self.task_names)) or 1
        # a small file (one `dltk serve` batch) is featurized in-process: starting worker processes
        # costs more than it saves below ~MIN_PARALLEL molecules (the result is the same either way)
        pool = make_pool(self.n_jobs) if Path(path).is_file() and Path(path).stat().st_size >= POOL_MIN_BYTES else None
        try:
            for chunk in datasets.read_smiles_file(path, smiles_column=smiles_column, chunk_size=chunk_size):
                lines = [c[0] for c in chunk]
                smiles = [c[1] for c in chunk]
                ids = [c[2] for c in chunk]
                raw, valid = self._raw_blocks(smiles, cached=False, pool=pool)
                X = self._assemble({k: v[valid] for k, v in raw.items()}, "predict")
                errors = np.where(valid, "", "invalid SMILES (RDKit cannot parse)")
                errors = np.where(np.array([s.strip() == "" for s in smiles]), "empty SMILES", errors)
                records = pd.DataFrame({"line": lines, "id": ids, "smiles": smiles, "error": errors})
                loader = None
                if valid.any():
                    y = np.full((int(valid.sum()), n_tasks), np.nan, dtype=np.float32)
                    loader = DataLoader(TensorDictDataset(**{INPUT: X, TARGET: y}), batch_size=len(X),
                                        shuffle=False)
                yield records, loader
        finally:
            if pool is not None:
                pool.close()
                pool.join()

    @classmethod
    def request_schema(cls) -> dict[str, Any]:
        """``dltk serve``: ``{"smiles": [...]}`` (:mod:`dltk_chem.serving`)."""
        return serving.SCHEMA

    @classmethod
    def decode_request(cls, payload: dict[str, Any]) -> RequestRows:
        return serving.decode(payload)

    @classmethod
    def contract_overrides(cls, tmp_dir: Path) -> list[str]:
        """Plugin contract runs: ECFP alone (RDKit 2D descriptors for ~12k molecules take minutes)."""
        return ["--data.features", "ecfp"]


class Tox21ChallengeDataModule(MoleculeDataModule):
    """The original Tox21 Data Challenge 2014 (NCATS files), DeepTox protocol.

    Train on training (11,764 records) + leaderboard (296); validation is ``val_fraction`` of those
    records, **grouped by canonical structure without stereochemistry** so that no structure (and
    no stereoisomer, which has the same fingerprint) is in both: the same structure appears under
    several sample ids. Test on the 647-compound final set.

    Args:
        val_fraction: fraction of train+leaderboard records held out for validation.
        **kwargs: see :class:`MoleculeDataModule`.
    """

    def __init__(self, val_fraction: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.val_fraction = val_fraction

    def load_tables(self) -> tuple[datasets.MolTable, datasets.MolTable, datasets.MolTable]:
        sets = datasets.load_tox21_challenge()
        train, board = sets["train"], sets["leaderboard"]
        pool = datasets.MolTable(train.smiles + board.smiles, train.ids + board.ids,
                                 np.concatenate([train.y, board.y]), list(train.tasks), "tox21 train+leaderboard")
        groups = [datasets.canonical_smiles(s, isomeric=False) or f"invalid:{i}" for i, s in enumerate(pool.smiles)]
        tr, va = group_split(groups, (1 - self.val_fraction, self.val_fraction), seed=self.split_seed)
        return pool.subset(np.sort(tr)), pool.subset(np.sort(va)), sets["final"]


class MoleculeNetTox21DataModule(MoleculeDataModule):
    """MoleculeNet's Tox21 csv (duplicates merged by canonical SMILES, conflicting labels dropped).

    Args:
        split: ``random`` or ``scaffold`` (Bemis-Murcko, balanced as in chemprop), 80/10/10, seeded;
            or a DeepChem splitter, ``deepchem:ScaffoldSplitter`` (see :mod:`dltk_chem.deepchem_splits`).
        **kwargs: see :class:`MoleculeDataModule`.
    """

    def __init__(self, split: str = "random", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if split not in ("random", "scaffold") and not split.startswith("deepchem:"):
            raise ConfigError(f"data.split: {split!r}; choose random, scaffold or deepchem:NameSplitter")
        self.split = split

    def full_table(self) -> datasets.MolTable:
        table, report = datasets.load_tox21_moleculenet()
        log.info("MoleculeNet Tox21: %s", report)
        return table

    def load_tables(self) -> tuple[datasets.MolTable, datasets.MolTable, datasets.MolTable]:
        table = self.full_table()
        if self.split.startswith("deepchem:"):  # hook: DeepChem splitters (dltk_chem.deepchem_splits)
            from dltk_chem.deepchem_splits import split_indices

            parts = split_indices(self.split, table.smiles, table.y, (0.8, 0.1, 0.1), seed=self.split_seed)
        elif self.split == "scaffold":
            parts = datasets.scaffold_split(table.smiles, (0.8, 0.1, 0.1), seed=self.split_seed)
        else:
            parts = random_split(len(table), (0.8, 0.1, 0.1), seed=self.split_seed)
        return tuple(table.subset(np.sort(p)) for p in parts)  # type: ignore[return-value]


class ESOLDataModule(MoleculeNetTox21DataModule):
    """ESOL (Delaney) aqueous solubility, log mol/L; regression."""

    def full_table(self) -> datasets.MolTable:
        return datasets.load_esol()


class SmilesCsvDataModule(MoleculeNetTox21DataModule):
    """Any CSV with a SMILES column and one or more label columns (blank = missing).

    Args:
        path: the CSV file.
        smiles_column: name of the SMILES column.
        target_columns: label columns, comma-separated or a list (default: every other numeric column).
        id_column: optional identifier column.
        task_type: ``auto`` (classification when every label is 0/1), ``classification`` or
            ``regression``.
        **kwargs: see :class:`MoleculeNetTox21DataModule` (``split``) and :class:`MoleculeDataModule`.
    """

    @classmethod
    def contract_overrides(cls, tmp_dir: Path) -> list[str]:
        """Plugin contract runs: a generated 48-molecule CSV, ECFP features."""
        return ["--data.path", str(tiny_smiles_csv(tmp_dir)), "--data.target_columns", "heavy_atoms",
                "--data.batch_size", "8", "--data.features", "ecfp"]

    def __init__(self, path: str = "", smiles_column: str = "smiles",
                 target_columns: list[str] | str | None = None, id_column: str | None = None,
                 task_type: Literal["auto", "classification", "regression"] = "auto", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.smiles_column = smiles_column
        if isinstance(target_columns, str):
            target_columns = [c.strip() for c in target_columns.split(",") if c.strip()]
        self.target_columns = target_columns
        self.id_column = id_column
        self.requested_task_type = task_type

    def full_table(self) -> datasets.MolTable:
        if not self.path:
            raise DataError(None, "the csv task needs --data.path FILE.csv")
        raw = datasets.load_smiles_csv(self.path, self.smiles_column, self.target_columns, self.id_column)
        table, report = datasets.merge_duplicates(raw, average_real_values=True)
        if report["n_duplicate_rows"]:
            conflicts = (f"; {report['n_conflicts']} conflicting label(s) dropped (first: {report['first_conflict']})"
                         if report["n_conflicts"] else "")
            averaged = f"; {report['n_averaged']} replicate measurement(s) averaged" if report["n_averaged"] else ""
            print(f"dltk: {self.path}: {report['n_duplicate_rows']} row(s) repeat a structure and were merged"
                  f"{conflicts}{averaged}", flush=True)
        self.merge_report = report
        return table

    def resolve_task_type(self, y: np.ndarray) -> Literal["classification", "regression"]:
        if self.requested_task_type == "auto":
            return datasets.infer_task_type(y)
        if self.requested_task_type == "classification":
            bad = ~np.isnan(y) & (y != 0) & (y != 1)
            if bad.any():
                row, col = np.argwhere(bad)[0]
                raise DataError(self.path, f"classification labels must be 0 or 1, got {y[row, col]:g}",
                                field=self.task_names[col] if self.task_names else None)
        return self.requested_task_type
