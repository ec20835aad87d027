"""DeepChem inside dltk (docs/deepchem.md): featurizers, splitters, datasets and models.

Skipped when DeepChem is not installed (``pip install 'dltk[deepchem]'``; CI installs it).
Importing DeepChem takes ~10 s, so everything lives in this one module.

The training test uses 1,500 real MoleculeNet Tox21 rows (two well-populated assays, NR-AhR and
SR-MMP), DeepChem's CircularFingerprint (1024 bits), DeepChem's ScaffoldSplitter and DeepChem's
MultitaskClassifier network (one hidden layer of 256) for 4 epochs: its test mean ROC-AUC on the
scaffold test split must be >= 0.65 (chance 0.5; it gets 0.712, seed 0, CPU; about 30 s).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("rdkit")
dc = pytest.importorskip("deepchem", reason="DeepChem is not installed: pip install 'dltk[deepchem]'")

from testutil import preserved_environ  # noqa: E402
from dltk.cli import main  # noqa: E402
from dltk.errors import ConfigError  # noqa: E402
from dltk_chem.deepchem_data import read_dataset, write_disk_dataset  # noqa: E402
from dltk_chem.deepchem_features import DeepChemFeaturizer, parse_call  # noqa: E402
from dltk_chem.deepchem_splits import split_indices  # noqa: E402
from dltk_chem.featurize import featurize, featurize_cached  # noqa: E402

MIN_AUROC = 0.65  # chance: 0.5
SMILES = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "not a smiles", "", "CN1CCC[C@H]1c1cccnc1",
          "O=C(O)CCc1ccccc1", "Clc1ccc(Cl)cc1", "CCN(CC)CC", "C1CCCCC1N"]


@pytest.fixture(scope="module")
def tox21_rows(data_root: Path) -> pd.DataFrame:
    table = pd.read_csv(data_root / "chem" / "moleculenet" / "tox21.csv.gz")
    return table.dropna(subset=["NR-AhR", "SR-MMP"], how="all").head(1500).reset_index(drop=True)


def test_parse_is_literal_only() -> None:
    assert parse_call("CircularFingerprint(radius=3, size=4096)", "x") == ("CircularFingerprint",
                                                                          {"radius": 3, "size": 4096})
    for bad in ("CircularFingerprint(radius=__import__('os'))", "os.system('x')", "A(1)", "A(**k)"):
        with pytest.raises(ConfigError):
            parse_call(bad, "data.features")
    with pytest.raises(ConfigError, match="not a molecular featurizer"):
        DeepChemFeaturizer.parse("deepchem:NumpyDataset")
    with pytest.raises(ConfigError, match="fixed-length"):
        DeepChemFeaturizer.parse("deepchem:ConvMolFeaturizer")


@pytest.mark.parametrize("block,reference", [
    ("deepchem:CircularFingerprint(radius=3,size=4096)", lambda: dc.feat.CircularFingerprint(radius=3, size=4096)),
    ("deepchem:MACCSKeysFingerprint", lambda: dc.feat.MACCSKeysFingerprint()),
])
def test_featurizer_equals_deepchem_bit_for_bit(block: str, reference, tmp_path: Path) -> None:
    f = DeepChemFeaturizer.parse(block)
    X, valid, hit = featurize_cached(f, SMILES)
    assert not hit
    assert valid.tolist() == [True, True, True, False, False, True, True, True, True, True]
    own = reference().featurize([s for s, ok in zip(SMILES, valid) if ok])
    assert X.dtype == own.dtype and np.array_equal(X[valid], own)
    assert not X[~valid].any()
    X2, valid2, hit2 = featurize_cached(f, SMILES)  # cached in DLTK_CACHE like the native blocks
    assert hit2 and np.array_equal(X2, X) and np.array_equal(valid2, valid)
    X3, _ = featurize(f, SMILES * 3, n_jobs=2, chunk_size=7, progress=False, pool=None)  # fork workers
    assert np.array_equal(X3[: len(SMILES)], X)


@pytest.mark.parametrize("name", ["ScaffoldSplitter", "ButinaSplitter", "FingerprintSplitter", "MaxMinSplitter",
                                  "RandomStratifiedSplitter"])
def test_splitter_gives_deepchems_indices(name: str, tox21_rows: pd.DataFrame) -> None:
    rows = tox21_rows.head(300)
    y = rows[["NR-AhR", "SR-MMP"]].to_numpy(dtype=float)
    smiles = rows["smiles"].tolist()
    ours = split_indices(f"deepchem:{name}", smiles, y, (0.8, 0.1, 0.1), seed=3)
    dataset = dc.data.NumpyDataset(X=np.zeros((len(smiles), 1)), y=np.nan_to_num(y), w=(~np.isnan(y)).astype(float),
                                   ids=np.asarray(smiles, dtype=object))
    theirs = getattr(dc.splits, name)().split(dataset, frac_train=0.8, frac_valid=0.1, frac_test=0.1, seed=3)
    for a, b in zip(ours, theirs, strict=True):
        assert np.array_equal(a, np.sort(np.asarray(b)))
    assert sum(len(p) for p in ours) == len(smiles)


def test_disk_dataset_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.random((20, 8)).astype(np.float32)
    y = (rng.random((20, 3)) < 0.3).astype(np.float64)
    w = (rng.random((20, 3)) < 0.8).astype(np.float64)
    ids = [f"mol-{i}" for i in range(20)]
    path = write_disk_dataset(tmp_path / "ds", X, y, w, ids, ["a", "b", "c"])
    theirs = dc.data.DiskDataset(str(path))  # DeepChem opens what dltk wrote
    assert np.array_equal(theirs.X, X) and np.array_equal(theirs.y, y) and np.array_equal(theirs.w, w)
    assert list(theirs.ids) == ids and list(theirs.get_task_names()) == ["a", "b", "c"]
    ours = read_dataset(path)  # and dltk reads it back without unpickling
    assert np.array_equal(ours.X, X) and np.array_equal(ours.w, w) and ours.ids == ids
    assert np.array_equal(np.isnan(ours.y), w == 0) and np.array_equal(ours.y[w > 0], y[w > 0])
    # a DiskDataset written by DeepChem itself (ids pickled as Python objects): X, y, w read, ids renamed
    made = dc.data.DiskDataset.from_numpy(X, y, w, np.asarray(ids, dtype=object), data_dir=str(tmp_path / "dc"))
    back = read_dataset(made.data_dir)
    assert np.array_equal(back.X, X) and np.array_equal(back.w, w) and len(back.ids) == 20
    np.savez(tmp_path / "numpy.npz", X=X, y=y, w=w, ids=np.asarray(ids))
    npz = read_dataset(tmp_path / "numpy.npz")
    assert np.array_equal(npz.X, X) and npz.ids == ids and np.isnan(npz.y).sum() == (w == 0).sum()


def test_deepchem_model_trains_beats_chance_and_predicts(tox21_rows: pd.DataFrame, tmp_path: Path) -> None:
    csv = tmp_path / "tox21.csv"
    tox21_rows[["smiles", "NR-AhR", "SR-MMP"]].to_csv(csv, index=False)
    run = tmp_path / "run"
    args = ["train", "--plugin", "chem", "--task", "csv", "--data.path", str(csv),
            "--data.target_columns", "NR-AhR,SR-MMP", "--data.features", "deepchem:CircularFingerprint(size=1024)",
            "--data.split", "deepchem:ScaffoldSplitter", "--model", "dltk_chem.deepchem_models.DeepChemModel",
            "--model.network", "MultitaskClassifier", "--model.network_args", '{"layer_sizes": [256]}',
            "--trainer.max_epochs", "4", "--run-dir", str(run)]
    with preserved_environ():
        assert main(args) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test/auroc"] >= MIN_AUROC, metrics
    out = tmp_path / "pred.csv"
    (tmp_path / "new.csv").write_text("smiles\nCCO\nnot_a_smiles\nc1ccc2cc3ccccc3cc2c1\n")
    with preserved_environ():
        assert main(["predict", "--run", str(run), "--input", str(tmp_path / "new.csv"), "--output", str(out)]) == 0
    pred = pd.read_csv(out)
    assert len(pred) == 3 and pred["NR-AhR"].notna().sum() == 2
    assert 0 <= pred["NR-AhR"].min() and pred["NR-AhR"].max() <= 1
    exported = __import__("dltk_chem.deepchem_datamodule", fromlist=["x"]).export_disk_datasets(run, tmp_path / "dc")
    train = dc.data.DiskDataset(str(exported["train"]))
    assert train.X.shape[1] == 1024 and set(np.unique(train.w)) <= {0.0, 1.0}


def test_help_imports_neither_torch_nor_deepchem() -> None:
    code = ("import sys; from dltk.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass\n"
            "main(['plugins'])\nprint(sorted(m for m in ('torch', 'deepchem', 'lightning') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
    assert "optional deepchem (installed)" in out
