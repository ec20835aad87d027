"""Tox21 Challenge 2014 end to end on the real data: one short training run, then its artifacts.

The run (``dltk train --plugin chem --trainer.max_epochs 3 --model.hidden_dim 512``; the default task
``tox21_challenge``: train + leaderboard, 10% validation grouped by structure, test on the final set)
takes about a minute on two CPU cores. Acceptance margins on the 645 scoreable final-set
compounds: mean ROC-AUC over the 12 assays >= 0.70 (chance is 0.5; the published DeepTox figure
is 0.846 after full training, this run gets about 0.78), and every assay > 0.55.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("rdkit")

from sklearn.metrics import average_precision_score, roc_auc_score  # noqa: E402

from testutil import preserved_environ
from dltk.cli import main  # noqa: E402
from dltk_chem.files import TOX21_ASSAYS  # noqa: E402
from dltk_chem.tox21_challenge import load_tox21_challenge  # noqa: E402

MIN_MEAN_AUROC = 0.70  # chance: 0.5
MIN_ASSAY_AUROC = 0.55
UNPARSABLE_FINAL = {"NCGC00357062-01", "NCGC00357026-01"}  # the 2 final-set SMILES RDKit rejects
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"




@pytest.fixture(scope="module")
def tox21_run(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("tox21") / "run"
    with preserved_environ():
        code = main(["train", "--plugin", "chem", "--trainer.max_epochs", "3", "--model.hidden_dim", "512",
                     "--run-dir", str(run)])
    assert code == 0
    return run


@pytest.fixture(scope="module")
def metrics(tox21_run: Path) -> dict[str, float]:
    return json.loads((tox21_run / "metrics.json").read_text())


@pytest.fixture(scope="module")
def predictions(tox21_run: Path) -> pd.DataFrame:
    return pd.read_csv(tox21_run / "predictions" / "test.csv")


def test_run_completed(tox21_run: Path, metrics: dict[str, float]) -> None:
    status = json.loads((tox21_run / "run.json").read_text())
    assert status["status"] == "completed"
    assert status["plugin"] == "chem" and status["task"] == "tox21_challenge"
    assert status["test_metric"]["test/auroc"] == metrics["test/auroc"]
    for name in ("config.yaml", "checkpoints/best.ckpt", "checkpoints/last.ckpt", "logs/metrics.csv",
                 "environment.json"):
        assert (tox21_run / name).is_file(), name
    env = json.loads((tox21_run / "environment.json").read_text())
    assert env["packages"]["rdkit"]
    log = pd.read_csv(tox21_run / "logs" / "metrics.csv")
    assert sorted(log["epoch"].dropna().unique()) == [0, 1, 2]
    assert log["val/auroc"].notna().sum() == 3


def test_final_set_auroc_beats_chance(metrics: dict[str, float]) -> None:
    per_assay = {a: metrics[f"test/auroc/{a}"] for a in TOX21_ASSAYS}
    assert metrics["test/auroc"] >= MIN_MEAN_AUROC, metrics["test/auroc"]
    weak = {a: round(v, 3) for a, v in per_assay.items() if not v > MIN_ASSAY_AUROC}
    assert not weak, weak
    assert metrics["test/auroc"] == pytest.approx(np.mean(list(per_assay.values())), abs=1e-9)


def test_metrics_equal_sklearn_recomputation(metrics: dict[str, float], predictions: pd.DataFrame) -> None:
    """Each assay over its labelled final-set compounds only; the mean over the 12 assays."""
    auroc, auprc = [], []
    for assay in TOX21_ASSAYS:
        labelled = predictions[f"true_{assay}"].notna()
        y, p = predictions.loc[labelled, f"true_{assay}"], predictions.loc[labelled, f"pred_{assay}"]
        auroc.append(roc_auc_score(y, p))
        auprc.append(average_precision_score(y, p))
        assert metrics[f"test/auroc/{assay}"] == pytest.approx(auroc[-1], abs=1e-6), assay
        assert metrics[f"test/auprc/{assay}"] == pytest.approx(auprc[-1], abs=1e-6), assay
    assert metrics["test/auroc"] == pytest.approx(np.mean(auroc), abs=1e-6)
    assert metrics["test/auprc"] == pytest.approx(np.mean(auprc), abs=1e-6)


def test_predictions_csv_holds_the_645_scoreable_final_compounds(predictions: pd.DataFrame) -> None:
    expected = ["id", "smiles"] + [f"{kind}_{a}" for a in TOX21_ASSAYS for kind in ("true", "pred")]
    assert list(predictions.columns) == expected
    assert len(predictions) == 645  # 647 final-set compounds, 2 unparsable dropped
    assert predictions["id"].is_unique
    assert not UNPARSABLE_FINAL & set(predictions["id"])
    pred = predictions[[f"pred_{a}" for a in TOX21_ASSAYS]]
    assert pred.notna().all().all() and ((pred >= 0) & (pred <= 1)).all().all()
    # the true labels are the final set's (x = not tested = missing)
    final = load_tox21_challenge()["final"]
    labels = pd.DataFrame(final.y, index=final.ids, columns=TOX21_ASSAYS).loc[predictions["id"]]
    true = predictions[[f"true_{a}" for a in TOX21_ASSAYS]].to_numpy()
    np.testing.assert_array_equal(true, labels.to_numpy())
    smiles = dict(zip(final.ids, final.smiles))
    assert list(predictions["smiles"]) == [smiles[i] for i in predictions["id"]]


def test_plots_are_valid_pngs(tox21_run: Path) -> None:
    from PIL import Image

    for name in ("roc_curves.png", "learning_curves.png"):
        path = tox21_run / "plots" / name
        assert path.read_bytes()[:8] == PNG_MAGIC, name
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) > 100, (name, image.size)


def test_checkpoints_load_weights_only(tox21_run: Path) -> None:
    for which in ("best", "last"):
        ckpt = torch.load(tox21_run / "checkpoints" / f"{which}.ckpt", map_location="cpu", weights_only=True)
        hp = ckpt["hyper_parameters"]
        assert hp["hidden_dim"] == 512
        assert hp["data_info"]["task_names"] == TOX21_ASSAYS
        assert hp["data_info"]["task_type"] == "classification"
        linear = [v for k, v in ckpt["state_dict"].items() if k.endswith(".weight") and v.ndim == 2]
        assert tuple(linear[0].shape) == (512, hp["data_info"]["in_features"])
        assert tuple(linear[-1].shape) == (12, 512)


def test_predict_keeps_every_row(tox21_run: Path, predictions: pd.DataFrame, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Invalid and empty SMILES keep their row with an error; the valid ones get probabilities
    equal to those of predictions/test.csv for the same molecules."""
    known = predictions.iloc[:6]
    rows = [(str(i), s) for i, s in zip(known["id"], known["smiles"])]
    rows[2:2] = [("bad-1", "not_a_smiles"), ("empty", ""), ("bad-2", "C1CC")]
    source = tmp_path / "molecules.csv"
    pd.DataFrame(rows, columns=["name", "smiles"]).to_csv(source, index=False)
    output = tmp_path / "predicted.csv"

    assert main(["predict", "--run", str(tox21_run), "--input", str(source), "--output", str(output)]) == 0
    assert "9 rows, 6 predicted, 3 with errors" in capsys.readouterr().out
    result = pd.read_csv(output, keep_default_na=False, na_values=[""])
    assert len(result) == len(rows)
    assert list(result["line"]) == list(range(2, 2 + len(rows)))  # every input row, in order
    bad = result["line"].isin([4, 5, 6])
    assert result.loc[bad, "error"].notna().all()
    assert result.loc[result["line"] == 5, "error"].item() == "empty SMILES"
    assert "invalid SMILES" in result.loc[result["line"] == 4, "error"].item()
    assert result.loc[~bad, "error"].isna().all()
    assert result.loc[bad, TOX21_ASSAYS].isna().all().all()
    good = result.loc[~bad, TOX21_ASSAYS].to_numpy()
    assert ((good >= 0) & (good <= 1)).all()
    expected = known[[f"pred_{a}" for a in TOX21_ASSAYS]].to_numpy()
    np.testing.assert_allclose(good, expected, atol=1e-5)
