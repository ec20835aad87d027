"""Expression on AnnData: pbmc68k_reduced loading and split, baselines on hand-made cases, bad input
(missing label key, gene list), cell types and D-GEX end to end on the real data, predict on an h5ad.

pbmc68k_reduced (shipped in the scanpy wheel): 700 cells x 765 genes, obs["bulk_labels"] 10 types,
the largest "Dendritic" (240 cells), the smallest "CD4+/CD45RA+/CD25- Naive T" (8 cells).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from dltk.cli import main
from dltk.errors import DataError
from dltk_genomics.cell_datamodules import (
    ExpressionDataModule,
    ExpressionRegressionDataModule,
    linear_baseline,
    logistic_baseline,
)
from dltk_genomics.cell_models import ExpressionMLP
from testutil import preserved_environ

anndata = pytest.importorskip("anndata")
pytest.importorskip("scanpy")


def _toy_h5ad(path: Path, n: int = 60, label_key: str = "cell_type", missing: int = 0) -> Path:
    rng = np.random.default_rng(0)
    labels = np.array(["T", "B", "NK"])[np.arange(n) % 3]
    X = rng.normal(size=(n, 12)).astype(np.float32)
    X[:, 0] += 3 * (labels == "T")
    X[:, 1] += 3 * (labels == "B")
    obs = pd.DataFrame({label_key: pd.Categorical(labels), "batch": "a"}, index=[f"c{i}" for i in range(n)])
    if missing:
        obs.loc[obs.index[:missing], label_key] = np.nan
    adata = anndata.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(12)]))
    adata.write_h5ad(path)
    return path


# -- pbmc68k ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pbmc_dm() -> ExpressionDataModule:
    dm = ExpressionDataModule()
    dm.setup()
    return dm


def test_pbmc68k_split_and_info(pbmc_dm: ExpressionDataModule) -> None:
    dm = pbmc_dm
    info = dm.data_info()
    assert info["task_type"] == "multiclass" and info["task_names"] == ["bulk_labels"]
    assert len(info["class_names"]) == 10 and info["in_features"] == 765
    assert info["primary_metric"] == ["macro_f1", "max"]
    sizes = (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset))
    assert sizes == (455, 105, 140)
    assert sum(info["class_counts"]) == 455
    dendritic = info["class_names"].index("Dendritic")
    assert info["class_counts"][dendritic] == round(240 * 0.65)  # stratified
    # genes standardised with training statistics only
    x_train = dm.train_dataset.arrays["x"].numpy()
    np.testing.assert_allclose(x_train.mean(axis=0), 0.0, atol=1e-4)
    base = info["baseline"]
    assert 0.5 < base["macro_f1"] < 0.9 and 0.8 < base["accuracy"] < 0.95


def test_missing_label_key_lists_obs_keys(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--plugin", "genomics", "--task", "expression", "--data.label_key", "celltype",
            "--run-dir", str(tmp_path / "run")]
    with preserved_environ():
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dltk: error: ")
    assert "no obs column 'celltype'" in err
    assert "bulk_labels, n_genes, percent_mito" in err and "louvain" in err


def test_toy_h5ad_skips_unlabelled_and_small_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _toy_h5ad(tmp_path / "toy.h5ad", n=60, missing=3)
    dm = ExpressionDataModule(path=str(f), label_key="cell_type", use="X", min_cells=5)
    dm.setup()
    out = capsys.readouterr().out
    assert "skipped 3 cells without a 'cell_type' label (first: 'c0')" in out
    assert len(dm.train_dataset) + len(dm.val_dataset) + len(dm.test_dataset) == 57
    with pytest.raises(DataError, match="no obs column 'label'.*available obs keys: cell_type, batch"):
        ExpressionDataModule(path=str(f), label_key="label").setup()
    bad = tmp_path / "not.h5ad"
    bad.write_text("hello")
    with pytest.raises(DataError, match="cannot read as AnnData"):
        ExpressionDataModule(path=str(bad)).setup()


def test_logistic_baseline_hand_cases() -> None:
    X = np.array([[0.0], [0.1], [5.0], [5.1], [10.0], [10.1]] * 3)
    y = np.array([0, 0, 1, 1, 2, 2] * 3, dtype=np.float32)
    base = logistic_baseline(X * 1.0, y, X, y, 3)
    assert base == {"macro_f1": 1.0, "accuracy": 1.0, "balanced_accuracy": 1.0}
    # every test cell predicted as class 0 of 2 -> macro-F1 = (F1_0 + F1_1)/2 = (2/3 + 0)/2
    Xt = np.zeros((2, 1))
    yt = np.array([0, 1], dtype=np.float32)
    assert logistic_baseline(X, y, Xt, yt, 3)["macro_f1"] == pytest.approx((2 / 3 + 0 + 0) / 3)


def test_linear_baseline_exact_and_hand_metrics() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 3))
    W = np.array([[1.0, -2.0], [0.5, 0.0], [0.0, 3.0]])
    Y = X @ W + 0.25
    base = linear_baseline(X, Y, X[:10], Y[:10])
    assert base["rmse"] < 1e-10 and base["r2"] == pytest.approx(1.0)
    # constant-prediction case: a zero-feature fit predicts the training mean
    Yc = np.array([[0.0], [2.0], [4.0], [6.0]])
    res = linear_baseline(np.zeros((4, 1)), Yc, np.zeros((2, 1)), np.array([[1.0], [5.0]]))
    assert res["rmse"] == pytest.approx(2.0) and res["mae"] == pytest.approx(2.0) and res["r2"] == pytest.approx(-0.0)


def test_expression_mlp_example() -> None:
    kwargs, info, batch = ExpressionMLP.example()
    model = ExpressionMLP(**kwargs, data_info=info)
    loss = model.training_step(batch, 0)
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss)
    model.eval()
    assert model(batch).shape == (4, 3)
    model2 = ExpressionMLP(input_noise=0.5, batch_norm=False, data_info={**info, "baseline": {"macro_f1": 0.5}})
    probs = np.full((3, 3), 1 / 3, dtype=np.float32)
    probs[:, 0] += 0.1
    metrics = model2.test_metrics(probs, np.array([0.0, 0.0, math.nan], dtype=np.float32))
    assert metrics["baseline_macro_f1"] == 0.5 and metrics["accuracy"] == 1.0


# -- end to end ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def celltype_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("expr") / "run"
    with preserved_environ():
        code = main(["train", "--plugin", "genomics", "--task", "expression", "--run-dir", str(run),
                     "--trainer.max_epochs", "12", "--trainer.enable_progress_bar", "false"])
    assert code == 0
    return run


def test_celltype_run_beats_chance(celltype_run: Path) -> None:
    """12 epochs: macro-F1 > 0.45 over 10 classes (chance ~0.1, majority class 0.04), accuracy > 0.7;
    the logistic-regression baseline of the same split is in the metrics."""
    metrics = json.loads((celltype_run / "metrics.json").read_text())
    assert metrics["test/macro_f1"] > 0.45 and metrics["test/accuracy"] > 0.7
    assert 0.5 < metrics["test/baseline_macro_f1"] < 0.9
    assert {"test/f1/Dendritic", "test/balanced_accuracy", "test/auroc"} <= set(metrics)
    table = pd.read_csv(celltype_run / "predictions" / "test.csv")
    assert len(table) == 140 and {"cell", "true_bulk_labels", "pred_bulk_labels", "prob_Dendritic"} <= set(table)
    assert (celltype_run / "plots" / "confusion_matrix.png").is_file()


def test_celltype_predict_h5ad(celltype_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import scanpy as sc

    adata = sc.datasets.pbmc68k_reduced()[:20].copy()
    sub = anndata.AnnData(X=adata.raw.X[:, 5:], obs=adata.obs[[]],
                          var=pd.DataFrame(index=adata.raw.var_names[5:]))  # 5 genes missing
    inp = tmp_path / "cells.h5ad"
    sub.write_h5ad(inp)
    out = tmp_path / "pred.csv"
    with preserved_environ():
        assert main(["predict", "--run", str(celltype_run), "--input", str(inp), "--output", str(out)]) == 0
    assert "5 of 765 input genes absent" in capsys.readouterr().out
    table = pd.read_csv(out)
    assert len(table) == 20 and table["cell"].tolist() == list(adata.obs_names)
    probs = table.filter(like="prob_").to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)


def test_dgex_landmark_file_and_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import scanpy as sc

    genes = list(sc.datasets.pbmc68k_reduced().raw.var_names)
    landmarks = tmp_path / "landmarks.txt"
    landmarks.write_text("# landmark genes\n" + "\n".join(genes[:100]) + "\nNOT_A_GENE\n")
    dm = ExpressionRegressionDataModule(landmarks=str(landmarks))
    dm.setup()
    assert "1 landmark genes not in the data" in capsys.readouterr().out
    info = dm.data_info()
    assert info["in_features"] == 100 and len(info["task_names"]) == 665
    assert info["input_genes"] == sorted(genes[:100], key=genes.index)
    run = tmp_path / "run"
    with preserved_environ():
        assert main(["train", "--plugin", "genomics", "--task", "expression_dgex", "--run-dir", str(run),
                     "--trainer.max_epochs", "3", "--trainer.enable_progress_bar", "false"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    # D-GEX spirit: the MLP beats ordinary least squares from 153 landmarks (which overfits 455 cells)
    assert metrics["test/rmse"] < metrics["test/baseline_rmse"]
    assert metrics["test/r2"] > metrics["test/baseline_r2"]
    # dltk predict on an h5ad: every cell gets the run's target genes from its landmarks
    adata = sc.datasets.pbmc68k_reduced()[:20].copy()
    cells = anndata.AnnData(X=adata.raw.X, obs=adata.obs[[]], var=pd.DataFrame(index=adata.raw.var_names))
    cells.write_h5ad(tmp_path / "cells.h5ad")
    with preserved_environ():
        assert main(["predict", "--run", str(run), "--input", str(tmp_path / "cells.h5ad"), "--output",
                     str(tmp_path / "genes.csv")]) == 0
    table = pd.read_csv(tmp_path / "genes.csv")
    assert len(table) == 20 and table["cell"].tolist() == list(adata.obs_names)
    values = table.drop(columns="cell").to_numpy(dtype=float)  # the run's own (default) target genes
    assert values.shape[0] == 20 and values.shape[1] > 100 and np.isfinite(values).all()
    assert (run / "plots" / "parity_pooled.png").is_file()
    with pytest.raises(DataError, match="empty gene list"):
        empty = tmp_path / "empty.txt"
        empty.write_text("# none\n")
        ExpressionRegressionDataModule(landmarks=str(empty)).setup()
