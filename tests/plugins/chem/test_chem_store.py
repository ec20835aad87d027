"""Training from the on-disk HDF5 feature store gives exactly the run trained from memory."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("rdkit")
pytest.importorskip("h5py")

from testutil import preserved_environ  # noqa: E402

from dltk.cli import main  # noqa: E402
from dltk.data import cache_dir, fetch  # noqa: E402
from dltk_chem.files import FILES  # noqa: E402
from dltk_chem.moleculenet import ESOL_TARGET  # noqa: E402


def test_hdf5_store_training_equals_memory(data_root: Path, tmp_path: Path) -> None:
    esol = pd.read_csv(fetch(FILES["esol"]))
    csv = tmp_path / "esol.csv"
    esol.sample(300, random_state=1)[["smiles", ESOL_TARGET]].to_csv(csv, index=False)
    metrics = {}
    with preserved_environ():
        for store in ("memory", "hdf5"):
            run = tmp_path / store
            argv = ["train", "--plugin", "chem", "--task", "csv", "--data.path", str(csv),
                    "--data.features", "ecfp+rdkit2d", "--data.store", store, "--data.store_chunk", "64",
                    "--trainer.max_epochs", "3", "--trainer.enable_progress_bar", "false", "--run-dir", str(run)]
            assert main(argv) == 0
            metrics[store] = json.loads((run / "metrics.json").read_text())
    assert metrics["hdf5"] == pytest.approx(metrics["memory"], abs=1e-6)
    assert metrics["memory"]["test/rmse"] > 0
    stores = sorted(p.name.rsplit("-", 1)[1] for p in (cache_dir("stores")).glob("*.h5"))
    assert stores == ["test.h5", "train.h5", "val.h5"]
