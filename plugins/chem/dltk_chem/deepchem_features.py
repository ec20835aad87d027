"""DeepChem molecular featurizers as dltk feature blocks: ``--data.features deepchem:Name(key=value,...)``.

A block ``deepchem:CircularFingerprint(radius=3,size=4096)`` builds ``deepchem.feat.CircularFingerprint``
with those keyword arguments and runs it through dltk's parallel, cached featurization
(:func:`dltk_chem.featurize.featurize_cached`), so it combines with the native blocks
(``ecfp+deepchem:PubChemFingerprint``). The argument string is parsed with :mod:`ast` (never
evaluated): the name must be an attribute of ``deepchem.feat`` that subclasses
``MolecularFeaturizer``, and every value must be a Python literal. Only featurizers that return one
fixed-length numeric vector per molecule qualify (graph featurizers do not).

DeepChem is imported on first use, never when this module is imported.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from dltk.errors import ConfigError

log = logging.getLogger("dltk.chem")

PREFIX = "deepchem:"
"""Feature blocks and split names starting with this prefix are DeepChem's."""

PROBE_SMILES = "CC(=O)Oc1ccccc1C(=O)O"
"""Aspirin: featurized once to learn a featurizer's output length and dtype."""


def require_deepchem(what: str) -> Any:
    """``import deepchem`` or a one-line ConfigError saying how to install it."""
    try:
        import deepchem
    except ImportError as exc:  # the optional extra is not installed
        raise ConfigError(f"{what} needs DeepChem: pip install 'dltk[deepchem]' ({exc})") from None
    return deepchem


def parse_call(text: str, option: str) -> tuple[str, dict[str, Any]]:
    """Parse ``Name`` or ``Name(key=literal, ...)`` without evaluating anything.

    Args:
        text: the part after ``deepchem:``.
        option: the option being parsed, for the error message (e.g. ``data.features``).

    Returns:
        ``(name, kwargs)``; the values are Python literals (numbers, strings, tuples, lists, ...).

    Raises:
        ConfigError: not a plain name or a call with literal keyword arguments.
    """
    where = f"{option}: {PREFIX}{text}"
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ConfigError(f"{where}: expected Name or Name(key=value, ...)") from None
    if isinstance(node, ast.Name):
        return node.id, {}
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.args:
        raise ConfigError(f"{where}: expected Name or Name(key=value, ...) with keyword arguments only")
    kwargs: dict[str, Any] = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise ConfigError(f"{where}: **kwargs is not allowed")
        try:
            kwargs[kw.arg] = ast.literal_eval(kw.value)
        except (ValueError, SyntaxError):
            raise ConfigError(f"{where}: the value of {kw.arg!r} must be a literal "
                              f"(number, string, list, ...)") from None
    return node.func.id, kwargs


def featurizer_class(name: str, option: str = "data.features") -> type:
    """``deepchem.feat.<name>``, checked to be a ``MolecularFeaturizer`` subclass."""
    dc = require_deepchem(f"{option} {PREFIX}{name}")
    import deepchem.feat as feat

    cls = getattr(feat, name, None) if not name.startswith("_") else None
    if not isinstance(cls, type) or not issubclass(cls, feat.MolecularFeaturizer) or cls is feat.MolecularFeaturizer:
        choices = sorted(n for n in dir(feat) if isinstance(getattr(feat, n), type)
                         and issubclass(getattr(feat, n), feat.MolecularFeaturizer) and n != "MolecularFeaturizer")
        raise ConfigError(f"{option}: {name!r} is not a molecular featurizer of deepchem {dc.__version__}; "
                          f"choose one of: {', '.join(choices)}")
    return cls


class DeepChemFeaturizer:
    """A DeepChem ``MolecularFeaturizer`` behind dltk's featurizer protocol
    (``n_features``, ``dtype``, ``settings()``, ``transform(smiles) -> (X, valid)``).

    Values are DeepChem's, unchanged (same dtype). A molecule DeepChem fails on (it returns an
    empty array, or a vector with NaN/inf) is flagged invalid: the datamodule drops and counts it,
    naming the rows.

    Args:
        name: the class name in ``deepchem.feat``.
        kwargs: its constructor's keyword arguments (literals).
    """

    def __init__(self, name: str, kwargs: dict[str, Any] | None = None) -> None:
        self.name = name
        self.kwargs = dict(kwargs or {})
        self._featurizer: Any = None
        cls = featurizer_class(name)
        from rdkit.rdBase import BlockLogs

        try:
            self._featurizer = cls(**self.kwargs)
            with BlockLogs():
                probe = np.asarray(self._featurizer.featurize([PROBE_SMILES]))
        except (TypeError, ValueError, ImportError) as exc:  # bad arguments, or an extra package missing
            raise ConfigError(f"data.features: {PREFIX}{name}: {exc}") from None
        if probe.ndim != 2 or probe.shape[0] != 1 or probe.dtype == object or probe.shape[1] == 0:
            raise ConfigError(f"data.features: {PREFIX}{name} does not return one fixed-length numeric vector "
                              f"per molecule (got shape {probe.shape}, dtype {probe.dtype}); use a "
                              "fingerprint or descriptor featurizer")
        self.n_features = int(probe.shape[1])
        self.dtype = probe.dtype

    @classmethod
    def parse(cls, block: str) -> DeepChemFeaturizer:
        """Build from a ``deepchem:Name(key=value,...)`` feature block."""
        name, kwargs = parse_call(block[len(PREFIX):], "data.features")
        return cls(name, kwargs)

    def settings(self) -> dict[str, Any]:
        """What determines the output: class, arguments and the DeepChem version (cache key)."""
        import deepchem

        return {"class": self.name, "kwargs": {k: repr(v) for k, v in sorted(self.kwargs.items())},
                "deepchem": deepchem.__version__}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{PREFIX}{self.name}({args})"

    def __getstate__(self) -> dict[str, Any]:  # rebuilt in each worker process
        return {**self.__dict__, "_featurizer": None}

    @property
    def featurizer(self) -> Any:
        """The DeepChem featurizer object (rebuilt after unpickling in a worker)."""
        if self._featurizer is None:
            self._featurizer = featurizer_class(self.name)(**self.kwargs)
        return self._featurizer

    def transform(self, smiles: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Featurize with DeepChem; rows it fails on are zeros and flagged False."""
        from rdkit.rdBase import BlockLogs

        X = np.zeros((len(smiles), self.n_features), dtype=self.dtype)
        valid = np.zeros(len(smiles), dtype=bool)
        if not len(smiles):
            return X, valid
        dc_log = logging.getLogger("deepchem")
        level = dc_log.level
        dc_log.setLevel(logging.ERROR)  # DeepChem warns per failed molecule; dltk counts and names them
        try:
            with BlockLogs():
                out = self.featurizer.featurize([s or "" for s in smiles])
        finally:
            dc_log.setLevel(level)
        for i, row in enumerate(out):
            row = np.asarray(row)
            if smiles[i] and smiles[i].strip() and row.shape == (self.n_features,) and row.dtype != object and np.isfinite(row).all():
                X[i] = row
                valid[i] = True
        failed = np.flatnonzero(~valid)
        if len(failed):
            log.info("%s failed on %d of %d molecules (e.g. %s)", self, len(failed), len(smiles),
                     ", ".join(repr(smiles[i]) for i in failed[:3]))
        return X, valid


def deepchem_blocks(names: Sequence[str]) -> dict[str, DeepChemFeaturizer]:
    """The DeepChem featurizers among ``--data.features`` blocks, keyed by block name."""
    return {name: DeepChemFeaturizer.parse(name) for name in names if name.startswith(PREFIX)}
