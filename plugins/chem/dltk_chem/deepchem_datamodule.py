"""Train on DeepChem datasets (:class:`DeepChemDataModule`) and export a dltk run's splits as
DeepChem DiskDatasets (:func:`export_disk_datasets`).

Training on a DeepChem dataset::

    dltk train --plugin chem --task csv \\
        --data dltk_chem.deepchem_datamodule.DeepChemDataModule \\
        --data.path train_dir --data.valid_path valid_dir --data.test_path test_dir

Exporting a run's splits for DeepChem code (Python)::

    from dltk_chem.deepchem_datamodule import export_disk_datasets
    paths = export_disk_datasets("runs/chem/...", "exported")   # {"train": ..., "valid": ..., "test": ...}
    import deepchem as dc
    train = dc.data.DiskDataset(str(paths["train"]))
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from dltk.base import INPUT, TARGET, TensorDictDataset
from dltk.data.splits import random_split
from dltk.errors import ConfigError
from dltk_chem.datamodules import FingerprintDataModule
from dltk_chem.deepchem_data import DeepChemArrays, read_dataset, write_disk_dataset
from dltk_chem.tables import infer_task_type

log = logging.getLogger("dltk.chem")

PARTS = ("train", "val", "test")
DEEPCHEM_NAMES = {"train": "train", "val": "valid", "test": "test"}


class DeepChemDataModule(FingerprintDataModule):
    """A DeepChem ``DiskDataset`` directory or saved ``NumpyDataset`` (``.npz``) as a dltk datamodule.

    ``X`` is used as it is (DeepChem already featurized it); ``w == 0`` marks a missing label.

    Args:
        path: the training dataset; when ``valid_path``/``test_path`` are not given, it is split
            at random 80/10/10 with ``split_seed``.
        valid_path: the validation dataset (e.g. the second of a MoleculeNet loader's splits).
        test_path: the test dataset.
        features: the featurizer that made ``X`` in dltk's ``--data.features`` syntax (e.g.
            ``deepchem:CircularFingerprint(size=2048)``); needed only for ``dltk predict`` on SMILES
            files, and checked against ``X``'s width.
        task_type: ``auto`` (classification when every label is 0/1), ``classification`` or ``regression``.
        **kwargs: ``batch_size``, ``num_workers``, ``split_seed``, ``n_jobs``.
    """

    def __init__(self, path: str = "", valid_path: str | None = None, test_path: str | None = None,
                 features: str = "", task_type: Literal["auto", "classification", "regression"] = "auto",
                 **kwargs: Any) -> None:
        kwargs.pop("store", None)
        super().__init__(features=features or "ecfp", **kwargs)
        self.path, self.valid_path, self.test_path = path, valid_path, test_path
        self.features_given = bool(features)
        self.requested_task_type = task_type
        self.part_ids: dict[str, list[str]] = {}
        self.in_features = 0

    def read_parts(self) -> dict[str, DeepChemArrays]:
        """The train/val/test arrays: three datasets, or one split at random."""
        if not self.path:
            raise ConfigError("DeepChemDataModule needs --data.path (a DiskDataset directory or a .npz)")
        if self.valid_path and self.test_path:
            return {"train": read_dataset(self.path), "val": read_dataset(self.valid_path),
                    "test": read_dataset(self.test_path)}
        if self.valid_path or self.test_path:
            raise ConfigError("give both --data.valid_path and --data.test_path, or neither (random 80/10/10)")
        whole = read_dataset(self.path)
        parts = random_split(len(whole.X), (0.8, 0.1, 0.1), seed=self.split_seed)
        return {name: DeepChemArrays(whole.X[idx], whole.y[idx], whole.w[idx], [whole.ids[i] for i in idx],
                                     whole.tasks) for name, idx in zip(PARTS, parts, strict=True)}

    def load(self) -> None:
        parts = self.read_parts()
        widths = {p: a.X.shape[1] for p, a in parts.items()}
        tasks = {p: tuple(a.tasks) for p, a in parts.items()}
        if len(set(widths.values())) != 1 or len(set(tasks.values())) != 1:
            raise ConfigError(f"the datasets differ in feature width {widths} or tasks {tasks}")
        self.in_features = widths["train"]
        fingerprints = self.representation
        if self.features_given and fingerprints.n_features != self.in_features:
            raise ConfigError(f"data.features {fingerprints.features} gives {fingerprints.n_features} values, "
                              f"the dataset's X has {self.in_features}")
        self.dropped = {p: 0 for p in parts}
        self.task_names = list(parts["train"].tasks)
        self.task_type = self.resolve_task_type(parts["train"].y)
        datasets_ = {p: TensorDictDataset(**{INPUT: a.X.astype(np.float32), TARGET: a.y}) for p, a in parts.items()}
        self.train_dataset, self.val_dataset, self.test_dataset = (datasets_[p] for p in PARTS)
        self.part_ids = {p: a.ids for p, a in parts.items()}
        self._test_records = pd.DataFrame({"id": parts["test"].ids})
        self.fit_label_stats(parts["train"].y)
        log.info("DeepChem dataset: %s rows, %d features, %d tasks (%s)",
                 {p: len(a.X) for p, a in parts.items()}, self.in_features, len(self.task_names), self.task_type)

    def resolve_task_type(self, y: np.ndarray) -> Literal["classification", "regression"]:
        if self.requested_task_type == "auto":
            return infer_task_type(y)
        return self.requested_task_type

    def extra_info(self) -> dict[str, Any]:
        fingerprints = self.representation
        info: dict[str, Any] = {"in_features": self.in_features,
                                "features": fingerprints.features if self.features_given else "",
                                "ecfp": fingerprints.featurizer.settings()}
        info.update(self.label_info())
        return info

    def predict_chunks(self, path: str, data_info: dict[str, Any] | None = None,
                       **kwargs: Any) -> Iterator[tuple[pd.DataFrame, Any]]:
        """SMILES files, featurized with ``features`` (which must have been given for training)."""
        if not (data_info or {}).get("features", self.representation.features if self.features_given else ""):
            raise ConfigError("this run was trained on a DeepChem dataset without --data.features; dltk cannot "
                              "featurize new SMILES the same way (retrain with --data.features set)")
        return super().predict_chunks(path, data_info=data_info, **kwargs)

    @classmethod
    def contract_overrides(cls, tmp_dir: Path) -> list[str]:
        """Plugin contract runs: a generated 96-row DiskDataset (2 tasks that depend on the bits)."""
        rng = np.random.default_rng(0)
        X = (rng.random((96, 32)) < 0.3).astype(np.float32)
        y = np.stack([X[:, :3].max(axis=1), X[:, 3:5].max(axis=1)], axis=1)
        w = np.ones_like(y)
        w[::7, 1] = 0
        path = write_disk_dataset(Path(tmp_dir) / "deepchem-dataset", X, y, w, [f"m{i}" for i in range(96)],
                                  ["a", "b"])
        return ["--data.path", str(path), "--data.batch_size", "16"]


def _part_ids(dm: Any, part: str, n: int) -> list[str]:
    """The ids of a split's kept rows: held by a DeepChemDataModule, otherwise recomputed from the
    tables and the (cached) featurization validity of each feature block."""
    if getattr(dm, "part_ids", None):
        return list(dm.part_ids[part])
    from dltk_chem.featurize import featurize_cached

    table = dict(zip(PARTS, dm.load_tables(), strict=True))[part]
    valid = np.ones(len(table), dtype=bool)
    for block in dm.representation.blocks.values():
        valid &= featurize_cached(block, table.smiles, n_jobs=dm.n_jobs)[1]
    ids = [str(table.ids[i]) for i in np.flatnonzero(valid)]
    if len(ids) != n:
        raise ConfigError(f"cannot match the {part} split's {n} rows to their ids ({len(ids)} found)")
    return ids


def export_disk_datasets(run_dir: str | Path, output: str | Path) -> dict[str, Path]:
    """Write a fingerprint run's train/validation/test splits as DeepChem DiskDatasets.

    ``X`` is the features the model saw (float32), ``y`` the labels with missing ones as 0 and
    ``w`` 1 where labelled, 0 where missing (DeepChem's convention), ``ids`` the records' ids.

    Args:
        run_dir: a dltk chem run directory (fingerprint features, in-memory store).
        output: a new folder; ``train``, ``valid`` and ``test`` are written inside it.

    Returns:
        ``{"train": path, "valid": path, "test": path}``.
    """
    from dltk.run import Run

    dm = Run.open(run_dir).datamodule()
    if not isinstance(dm, FingerprintDataModule):
        raise ConfigError(f"{run_dir}: export needs a fingerprint run (data {type(dm).__name__})")
    dm.setup()
    out: dict[str, Path] = {}
    output = Path(output)
    for part, dataset in zip(PARTS, (dm.train_dataset, dm.val_dataset, dm.test_dataset), strict=True):
        if not isinstance(dataset, TensorDictDataset):
            raise ConfigError(f"{run_dir}: export reads in-memory splits; this run uses an on-disk store")
        X, y = dataset.arrays[INPUT].numpy(), dataset.arrays[TARGET].numpy()
        labelled = ~np.isnan(y)
        ids = _part_ids(dm, part, len(X))
        name = DEEPCHEM_NAMES[part]
        out[name] = write_disk_dataset(output / name, X, np.where(labelled, y, 0.0), labelled.astype(np.float32),
                                       ids, dm.task_names)
    return out
