"""DeepChem splitters as dltk splits: ``--data.split deepchem:ScaffoldSplitter`` (or ``Butina``,
``Fingerprint``, ``MaxMin``, ``RandomStratified`` ..., with literal arguments:
``deepchem:ButinaSplitter(cutoff=0.4)``, ``deepchem:ScaffoldSplitter(frac_train=0.7,frac_valid=0.15,frac_test=0.15)``).

The splitter runs on a ``dc.data.NumpyDataset`` whose ``ids`` are the SMILES, ``y`` the labels
(missing = 0) and ``w`` the labelled mask (DeepChem's convention), with the datamodule's fractions
and ``split_seed``. SMILES RDKit cannot parse are not shown to DeepChem (several splitters raise on
them); they go to the training part, where featurization drops and counts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dltk.errors import ConfigError
from dltk_chem.deepchem_features import PREFIX, parse_call, require_deepchem

FRACTIONS = ("frac_train", "frac_valid", "frac_test")


def splitter(spec: str) -> tuple[Any, dict[str, float]]:
    """The DeepChem splitter named by ``deepchem:Name(...)`` and the fractions given in it.

    Returns:
        ``(splitter object, {frac_*: value})``; constructor arguments are the non-``frac_*`` ones.
    """
    name, kwargs = parse_call(spec[len(PREFIX):], "data.split")
    require_deepchem(f"data.split {spec}")
    import deepchem.splits as splits

    cls = getattr(splits, name, None) if not name.startswith("_") else None
    if not isinstance(cls, type) or not issubclass(cls, splits.Splitter) or cls is splits.Splitter:
        choices = sorted(n for n in dir(splits) if n.endswith("Splitter") and n != "Splitter")
        raise ConfigError(f"data.split: {name!r} is not a DeepChem splitter; choose one of: {', '.join(choices)}")
    fractions = {k: float(kwargs.pop(k)) for k in FRACTIONS if k in kwargs}
    try:
        return cls(**kwargs), fractions
    except TypeError as exc:
        raise ConfigError(f"data.split: {spec}: {exc}") from None


def split_indices(spec: str, smiles: Sequence[str], y: np.ndarray, fractions: Sequence[float] = (0.8, 0.1, 0.1),
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/validation/test row indices chosen by a DeepChem splitter.

    Args:
        spec: ``deepchem:Name`` or ``deepchem:Name(key=value, ...)``; ``frac_*`` given there
            override ``fractions``.
        smiles: one SMILES per row (the dataset's ``ids``, as DeepChem's loaders set them).
        y: labels ``(n, tasks)`` with NaN = missing.
        fractions: train, validation, test.
        seed: passed to ``split(seed=...)`` (deterministic splitters such as scaffold ignore it).

    Returns:
        Three sorted int64 index arrays covering every row once.
    """
    from rdkit import Chem
    from rdkit.rdBase import BlockLogs

    import deepchem as dc

    obj, given = splitter(spec)
    frac = dict(zip(FRACTIONS, (float(f) for f in fractions), strict=True)) | given
    if abs(sum(frac.values()) - 1.0) > 1e-6:
        raise ConfigError(f"data.split: {spec}: fractions must sum to 1, got {frac}")
    with BlockLogs():
        ok = np.array([bool(s) and Chem.MolFromSmiles(s) is not None for s in smiles], dtype=bool)
    rows = np.flatnonzero(ok)
    y = np.asarray(y, dtype=np.float64).reshape(len(smiles), -1)[rows]
    dataset = dc.data.NumpyDataset(X=np.zeros((len(rows), 1), dtype=np.float32), y=np.nan_to_num(y, nan=0.0),
                                   w=(~np.isnan(y)).astype(np.float64),
                                   ids=np.asarray([smiles[i] for i in rows], dtype=object))
    parts = obj.split(dataset, seed=seed, **frac)
    out = [np.sort(rows[np.asarray(p, dtype=np.int64)]) for p in parts]
    out[0] = np.sort(np.concatenate([out[0], np.flatnonzero(~ok)]))
    covered = np.concatenate(out)
    if len(covered) != len(smiles) or len(np.unique(covered)) != len(smiles):
        raise ConfigError(f"data.split: {spec} did not assign every row exactly once "
                          f"({len(np.unique(covered))} of {len(smiles)})")
    return out[0], out[1], out[2]
