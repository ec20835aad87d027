"""Molecular fingerprints: ECFP via RDKit's Morgan generator, parallel and cached on disk.

A featurizer is any picklable object with ``n_features``, ``settings() -> dict`` and
``transform(smiles) -> (X, valid)``; :func:`featurize` runs it over chunks, in a process pool when
the input is large, and :func:`featurize_cached` stores the result under the dltk cache.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import sys
import zipfile
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import rdkit
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator
from rdkit.rdBase import BlockLogs

from dltk.data import cache_dir
from dltk.io import atomic_path

CHUNK_SIZE = 1_000
"""Molecules per work unit handed to a worker process."""

MIN_PARALLEL = 2_000
"""Inputs shorter than this are featurized in-process (a pool costs more than it saves)."""

CACHE_FORMAT = 1
"""Bump when the cached array layout changes: old entries then miss."""


class Featurizer(Protocol):
    """What :func:`featurize` needs from a featurizer."""

    n_features: int

    def settings(self) -> dict[str, Any]: ...

    def transform(self, smiles: Sequence[str]) -> tuple[np.ndarray, np.ndarray]: ...


class ECFP:
    """Extended-connectivity (Morgan) fingerprints from ``rdFingerprintGenerator``.

    Args:
        radius: Morgan radius (2 = ECFP4).
        n_bits: fingerprint length.
        counts: count vector (uint8, clipped at 255) instead of a bit vector.
        use_chirality: include chirality in the atom invariants.
    """

    def __init__(self, radius: int = 2, n_bits: int = 2048, counts: bool = False,
                 use_chirality: bool = False) -> None:
        if radius < 0 or n_bits < 1:
            raise ValueError(f"ECFP needs radius >= 0 and n_bits >= 1, got {radius}, {n_bits}")
        self.radius = int(radius)
        self.n_bits = int(n_bits)
        self.counts = bool(counts)
        self.use_chirality = bool(use_chirality)
        self._generator: Any = None

    @property
    def n_features(self) -> int:
        """Length of one feature vector."""
        return self.n_bits

    def settings(self) -> dict[str, Any]:
        """The settings that determine the output (used in cache keys and run records)."""
        return {"radius": self.radius, "n_bits": self.n_bits, "counts": self.counts,
                "use_chirality": self.use_chirality}

    def __repr__(self) -> str:
        return f"ECFP({', '.join(f'{k}={v!r}' for k, v in self.settings().items())})"

    def __getstate__(self) -> dict[str, Any]:  # the RDKit generator does not pickle
        return {**self.__dict__, "_generator": None}

    @property
    def generator(self) -> Any:
        """The RDKit Morgan generator, built on first use (also in each worker process)."""
        if self._generator is None:
            self._generator = rdFingerprintGenerator.GetMorganGenerator(
                radius=self.radius, fpSize=self.n_bits, includeChirality=self.use_chirality)
        return self._generator

    def transform(self, smiles: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Fingerprint a batch of SMILES in this process.

        Returns:
            ``X`` uint8 (n, n_bits) and ``valid`` bool (n,); rows RDKit cannot parse (or empty
            SMILES) are all zero and flagged False.
        """
        X = np.zeros((len(smiles), self.n_bits), dtype=np.uint8)
        valid = np.zeros(len(smiles), dtype=bool)
        gen = self.generator
        with BlockLogs():
            for i, smi in enumerate(smiles):
                mol = Chem.MolFromSmiles(smi) if smi else None
                if mol is None or mol.GetNumAtoms() == 0:
                    continue
                if self.counts:
                    X[i] = np.minimum(gen.GetCountFingerprintAsNumPy(mol), 255)
                else:
                    X[i] = gen.GetFingerprintAsNumPy(mol)
                valid[i] = True
        return X, valid


class MACCS:
    """The 167 MACCS structural keys (RDKit ``MACCSkeys``), uint8 0/1."""

    n_features = 167
    dtype = np.uint8

    def settings(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return "MACCS()"

    def transform(self, smiles: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        from rdkit import DataStructs
        from rdkit.Chem import MACCSkeys

        X = np.zeros((len(smiles), self.n_features), dtype=np.uint8)
        valid = np.zeros(len(smiles), dtype=bool)
        with BlockLogs():
            for i, smi in enumerate(smiles):
                mol = Chem.MolFromSmiles(smi) if smi else None
                if mol is None or mol.GetNumAtoms() == 0:
                    continue
                DataStructs.ConvertToNumpyArray(MACCSkeys.GenMACCSKeys(mol), X[i])
                valid[i] = True
        return X, valid


class RDKitDescriptors:
    """RDKit's 2D descriptors (``Descriptors._descList``: MolWt, LogP, TPSA, counts, ...), float32.

    A descriptor RDKit cannot compute for a molecule, or that comes out NaN/inf, is NaN here;
    callers impute it (see :class:`DescriptorScaler`). Values are raw, not normalised.
    """

    dtype = np.float32

    def __init__(self) -> None:
        from rdkit.Chem import Descriptors

        self.names = [name for name, _ in Descriptors._descList]

    @property
    def n_features(self) -> int:
        return len(self.names)

    def settings(self) -> dict[str, Any]:
        return {"names": hashlib.sha256(",".join(self.names).encode()).hexdigest()[:16], "n": len(self.names)}

    def __repr__(self) -> str:
        return f"RDKitDescriptors(n={self.n_features})"

    def transform(self, smiles: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        from rdkit.Chem import Descriptors

        functions = dict(Descriptors._descList)
        X = np.full((len(smiles), self.n_features), np.nan, dtype=np.float32)
        valid = np.zeros(len(smiles), dtype=bool)
        with BlockLogs(), np.errstate(all="ignore"):
            for i, smi in enumerate(smiles):
                mol = Chem.MolFromSmiles(smi) if smi else None
                if mol is None or mol.GetNumAtoms() == 0:
                    continue
                row = np.empty(self.n_features, dtype=np.float64)
                for j, name in enumerate(self.names):
                    try:
                        row[j] = float(functions[name](mol))
                    except Exception:  # RDKit raises assorted errors on odd molecules
                        row[j] = np.nan
                row[~np.isfinite(row) | (np.abs(row) > 1e30)] = np.nan
                X[i] = row.astype(np.float32)
                valid[i] = True
        return X, valid


class DescriptorScaler:
    """Robust, train-only normalisation of descriptors: impute NaN with the training median,
    subtract the median, divide by the inter-quartile range (std when the IQR is 0), clip to
    [-clip, clip]. The fitted statistics are plain lists, saved with the model.
    """

    def __init__(self, median: list[float], scale: list[float], clip: float = 6.0) -> None:
        self.median = np.asarray(median, dtype=np.float32)
        self.scale = np.asarray(scale, dtype=np.float32)
        self.clip = float(clip)

    @classmethod
    def fit(cls, X: np.ndarray, clip: float = 6.0) -> DescriptorScaler:
        with np.errstate(all="ignore"):
            median = np.nanmedian(X, axis=0)
            q1, q3 = np.nanpercentile(X, [25, 75], axis=0)
            scale = q3 - q1
            std = np.nanstd(X, axis=0)
        median = np.where(np.isfinite(median), median, 0.0)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, np.where(np.isfinite(std) & (std > 0), std, 1.0))
        return cls(median.astype(np.float32).tolist(), scale.astype(np.float32).tolist(), clip)

    def state(self) -> dict[str, Any]:
        return {"median": [float(v) for v in self.median], "scale": [float(v) for v in self.scale],
                "clip": self.clip}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DescriptorScaler:
        """The scaler saved by :meth:`state` (a model's ``data_info["descriptor_scaler"]``)."""
        return cls(state["median"], state["scale"], state["clip"])

    def transform(self, X: np.ndarray) -> tuple[np.ndarray, int]:
        """Scaled copy of ``X`` and the number of NaN/inf values imputed."""
        X = np.asarray(X, dtype=np.float32)
        bad = ~np.isfinite(X)
        X = np.where(bad, self.median, X)
        return np.clip((X - self.median) / self.scale, -self.clip, self.clip).astype(np.float32), int(bad.sum())


# --------------------------------------------------------------------------------------------------
# Parallel featurization

_worker_featurizer: Featurizer | None = None


def _init_worker(featurizer: Featurizer) -> None:
    global _worker_featurizer
    _worker_featurizer = featurizer


def _work(chunk: tuple[int, list[str]]) -> tuple[int, np.ndarray, np.ndarray]:
    start, smiles = chunk
    assert _worker_featurizer is not None
    X, valid = _worker_featurizer.transform(smiles)
    return start, X, valid


def default_n_jobs() -> int:
    """Worker processes used by default: ``min(os.cpu_count(), 8)``."""
    return max(1, min(os.cpu_count() or 1, 8))


def _pool_context() -> mp.context.BaseContext:
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else None)


def _work_item(item: tuple[Featurizer, int, list[str]]) -> tuple[int, np.ndarray, np.ndarray]:
    featurizer, start, smiles = item
    X, valid = featurizer.transform(smiles)
    return start, X, valid


def make_pool(n_jobs: int | None = None) -> Any:
    """A process pool to pass to :func:`featurize` across many calls (e.g. the chunks of a
    screening file), so workers start once; None when one process should be used."""
    n_jobs = default_n_jobs() if n_jobs is None else max(1, int(n_jobs))
    if n_jobs == 1 or mp.current_process().daemon:
        return None
    return _pool_context().Pool(n_jobs)


def featurize(featurizer: Featurizer, smiles: Sequence[str], n_jobs: int | None = None,
              progress: bool = True, chunk_size: int = CHUNK_SIZE,
              pool: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Featurize SMILES, in parallel for large inputs; the result equals the serial one exactly.

    Args:
        featurizer: e.g. :class:`ECFP`.
        smiles: SMILES strings.
        n_jobs: worker processes; default :func:`default_n_jobs`. Runs in-process when
            ``n_jobs == 1``, with fewer than :data:`MIN_PARALLEL` molecules, or inside a daemonic
            process.
        progress: show a tqdm progress bar (only when stderr is a terminal).
        chunk_size: molecules per work unit.
        pool: a pool from :func:`make_pool` to use (and keep) instead of starting one; any input
            size is then spread over it.

    Returns:
        ``X`` (n, n_features) uint8 and ``valid`` (n,) bool (False where RDKit cannot parse; that
        row is zeros).
    """
    from tqdm import tqdm

    smiles = list(smiles)
    n = len(smiles)
    n_jobs = default_n_jobs() if n_jobs is None else max(1, int(n_jobs))
    X = np.zeros((n, featurizer.n_features), dtype=getattr(featurizer, "dtype", np.uint8))
    valid = np.zeros(n, dtype=bool)
    chunks = [(s, smiles[s:s + chunk_size]) for s in range(0, n, chunk_size)]
    bar = tqdm(total=n, unit="mol", desc="featurizing", leave=False,
               disable=not progress or not sys.stderr.isatty())
    try:
        if pool is not None and len(chunks) > 1:
            items = [(featurizer, start, chunk) for start, chunk in chunks]
            for start, Xc, vc in pool.imap_unordered(_work_item, items):
                X[start:start + len(vc)], valid[start:start + len(vc)] = Xc, vc
                bar.update(len(vc))
        # daemonic processes (e.g. DataLoader workers) may not start a pool
        elif n_jobs == 1 or n < MIN_PARALLEL or mp.current_process().daemon:
            results = map(lambda c: (c[0], *featurizer.transform(c[1])), chunks)
            for start, Xc, vc in results:
                X[start:start + len(vc)], valid[start:start + len(vc)] = Xc, vc
                bar.update(len(vc))
        else:
            with _pool_context().Pool(min(n_jobs, len(chunks)), initializer=_init_worker,
                                      initargs=(featurizer,)) as pool:
                for start, Xc, vc in pool.imap_unordered(_work, chunks):
                    X[start:start + len(vc)], valid[start:start + len(vc)] = Xc, vc
                    bar.update(len(vc))
    finally:
        bar.close()
    return X, valid


# --------------------------------------------------------------------------------------------------
# On-disk cache


def cache_key(featurizer: Featurizer, smiles: Sequence[str]) -> str:
    """sha256 over the SMILES list, the featurizer's class and settings, and the RDKit version."""
    h = hashlib.sha256()
    meta = {"format": CACHE_FORMAT, "class": f"{type(featurizer).__module__}.{type(featurizer).__qualname__}",
            "settings": featurizer.settings(), "rdkit": rdkit.__version__, "n": len(smiles)}
    h.update(json.dumps(meta, sort_keys=True).encode())
    for smi in smiles:
        data = smi.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _load(path: os.PathLike[str] | str, n: int, n_features: int) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            X, valid = npz["X"], npz["valid"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if X.shape != (n, n_features) or valid.shape != (n,) or valid.dtype != bool:
        return None
    return X, valid


def featurize_cached(featurizer: Featurizer, smiles: Sequence[str],
                     **kw: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """:func:`featurize` with an on-disk cache under ``cache_dir("features")``.

    The entry ``<key>.npz`` (arrays ``X`` and ``valid``, no pickles) is written atomically, so
    concurrent writers are safe; an unreadable entry is recomputed.

    Args:
        featurizer: e.g. :class:`ECFP`.
        smiles: SMILES strings.
        **kw: passed to :func:`featurize` (``n_jobs``, ``progress``).

    Returns:
        ``(X, valid, hit)``; ``hit`` is True when the arrays came from the cache.
    """
    smiles = list(smiles)
    path = cache_dir("features") / f"{cache_key(featurizer, smiles)}.npz"
    if path.is_file():
        cached = _load(path, len(smiles), featurizer.n_features)
        if cached is not None:
            return (*cached, True)
    X, valid = featurize(featurizer, smiles, **kw)
    with atomic_path(path) as tmp:
        np.savez(tmp, X=X, valid=valid)
    return X, valid, False
