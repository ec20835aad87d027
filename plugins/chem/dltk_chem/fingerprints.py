"""The fingerprint representation: each molecule as one fixed-length float32 vector.

The vector concatenates the ``features`` blocks, a ``+``-separated list of

- ``ecfp``: Morgan/ECFP fingerprint (:class:`~dltk_chem.featurize.ECFP`; bits, or log1p counts
  with ``counts: true``),
- ``maccs``: the 167 MACCS keys,
- ``rdkit2d``: RDKit's ~210 2D descriptors, imputed and robustly scaled with statistics fitted on
  the training split only (saved with the model, reused by ``dltk predict``),
- ``deepchem:Name(key=value,...)``: a DeepChem featurizer (:mod:`dltk_chem.deepchem_features`).

Each block is computed in parallel and cached on disk (keyed by the SMILES content and the
featurizer settings). Structures RDKit cannot parse are dropped and counted in the log. Items are
``{"x": float32 features, "y": float labels with NaN = missing}``; with ``store: hdf5`` the splits
are written chunk by chunk to an on-disk store and read batch by batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
from torch.utils.data import DataLoader

from dltk.base import INPUT, TARGET, TensorDictDataset
from dltk.errors import ConfigError
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
from dltk_chem.representation import ChunkFeaturizer, Parts, Representation, require_valid
from dltk_chem.tables import MolTable

log = logging.getLogger("dltk.chem")

FEATURES = ("ecfp", "maccs", "rdkit2d")


class Fingerprints(Representation):
    """Fixed-length vectors of concatenated feature blocks. The arguments are those of
    :class:`~dltk_chem.datamodules.FingerprintDataModule`, where they are documented."""

    def __init__(self, features: str = "ecfp", radius: int = 2, n_bits: int = 2048, counts: bool = False,
                 store: Literal["memory", "hdf5"] = "memory", store_chunk: int = 8192) -> None:
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

    @property
    def n_features(self) -> int:
        return sum(f.n_features for f in self.blocks.values())

    def raw_blocks(self, smiles: list[str], n_jobs: int | None, cached: bool = True,
                   pool: Any = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Each block's raw values for ``smiles`` and the mask of molecules every block could featurize."""
        raw: dict[str, np.ndarray] = {}
        valid = np.ones(len(smiles), dtype=bool)
        for name, featurizer in self.blocks.items():
            if cached:
                X, ok, _ = featurize_cached(featurizer, smiles, n_jobs=n_jobs)
            else:
                X, ok = featurize(featurizer, smiles, n_jobs=n_jobs, progress=False, pool=pool)
            raw[name] = X
            valid &= ok
        return raw, valid

    def assemble(self, raw: dict[str, np.ndarray], part: str) -> np.ndarray:
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

    def _featurize(self, table: MolTable, part: str,
                   n_jobs: int | None) -> tuple[dict[str, np.ndarray], MolTable]:
        raw, valid = self.raw_blocks(table.smiles, n_jobs)
        require_valid(valid, table, part)  # before the warning below: a user error is one line on stderr
        dropped = int((~valid).sum())
        if dropped:
            bad = [table.ids[i] for i in np.flatnonzero(~valid)[:5]]
            log.warning("%s: dropped %d of %d structures RDKit cannot parse (e.g. %s)", part, dropped,
                        len(table), ", ".join(map(str, bad)))
        return {k: v[valid] for k, v in raw.items()}, table.subset(valid)

    def build(self, tables: dict[str, MolTable], n_jobs: int | None) -> Parts:
        if self.store == "hdf5":
            return self._build_stores(tables, n_jobs)
        raw = {part: self._featurize(table, part, n_jobs) for part, table in tables.items()}
        if "rdkit2d" in self.blocks:
            self.scaler = DescriptorScaler.fit(raw["train"][0]["rdkit2d"])
        return {part: (TensorDictDataset(**{INPUT: self.assemble(blocks, part), TARGET: kept.y}), kept)
                for part, (blocks, kept) in raw.items()}

    def _build_stores(self, tables: dict[str, MolTable], n_jobs: int | None) -> Parts:
        """Featurize each split chunk by chunk straight into an HDF5 store under the cache, so the
        feature matrix never has to fit in memory; training then reads batches from disk. A store
        is keyed by the SMILES, labels, feature settings and descriptor scaler, and reused."""
        import hashlib
        import json

        from dltk.data import cache_dir
        from dltk.data.store import StoreDataset, StoreWriter

        if "rdkit2d" in self.blocks:  # the scaler needs only the (small) training descriptor block
            desc, ok, _ = featurize_cached(self.blocks["rdkit2d"], tables["train"].smiles, n_jobs=n_jobs)
            self.scaler = DescriptorScaler.fit(desc[ok])
        settings = {"features": self.features, "ecfp": self.featurizer.settings(),
                    "scaler": self.scaler.state() if self.scaler else None}
        parts: Parts = {}
        pool = make_pool(n_jobs)
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
                        raw, valid = self.raw_blocks(smiles, n_jobs, cached=False, pool=pool)
                        keep[start:start + len(smiles)] = valid
                        if writer is not None and valid.any():
                            X = self.assemble({k: v[valid] for k, v in raw.items()}, part)
                            writer.append(**{INPUT: X, TARGET: table.y[start:start + len(smiles)][valid]})
                except BaseException:
                    if writer is not None:
                        writer.abort()
                    raise
                if writer is not None:
                    writer.close()
                require_valid(keep, table, part)
                parts[part] = (StoreDataset(path), table.subset(keep))
                log.info("%s: %s store %s (%d rows)", part, "wrote" if build else "reusing", path.name,
                         int(keep.sum()))
        finally:
            if pool is not None:
                pool.close()
                pool.join()
        return parts

    def summary(self, parts: Parts) -> str:
        return f"features: {self.features}, {self.n_features} dimensions"

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"in_features": self.n_features, "features": self.features,
                                "ecfp": self.featurizer.settings()}
        if self.scaler is not None:
            info["descriptor_scaler"] = self.scaler.state()
        return info

    @contextmanager
    def predicting(self, data_info: Mapping[str, Any], n_jobs: int | None,
                   batch_size: int) -> Iterator[ChunkFeaturizer]:
        """One featurization pool serves every chunk (workers start once); the model sees each
        chunk as a single batch."""
        if self.scaler is None and "descriptor_scaler" in data_info:
            st = data_info["descriptor_scaler"]
            self.scaler = DescriptorScaler.from_state(st)
        pool = make_pool(n_jobs)

        def featurize_chunk(smiles: list[str], n_tasks: int) -> tuple[Any, DataLoader | None]:
            raw, valid = self.raw_blocks(smiles, n_jobs, cached=False, pool=pool)
            X = self.assemble({k: v[valid] for k, v in raw.items()}, "predict")
            errors = np.where(valid, "", "invalid SMILES (RDKit cannot parse)")
            errors = np.where(np.array([s.strip() == "" for s in smiles]), "empty SMILES", errors)
            if not valid.any():
                return errors, None
            y = np.full((int(valid.sum()), n_tasks), np.nan, dtype=np.float32)
            return errors, DataLoader(TensorDictDataset(**{INPUT: X, TARGET: y}), batch_size=len(X), shuffle=False)

        try:
            yield featurize_chunk
        finally:
            if pool is not None:
                pool.close()
                pool.join()

