"""The multiclass task type of the core contract: metrics against scikit-learn and hand-computed
cases, the masked cross-entropy, and a toy multiclass run end to end (train -> test.csv with class
names and probabilities, confusion matrix, primary metric override, predict)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from plugin_env import PluginEnv
from sklearn.metrics import balanced_accuracy_score, f1_score

from dltk.base import masked_loss
from dltk.cli import main
from dltk.metrics import MultitaskMetrics, compute_metrics

CLASSES = ["red", "green", "blue"]


def test_multiclass_metrics_hand_computed() -> None:
    # true: r r r g g b ; pred: r r g g b b ; one unlabelled row (NaN) must not count
    target = torch.tensor([0, 0, 0, 1, 1, 2, float("nan")])
    pred_idx = [0, 0, 1, 1, 2, 2, 0]
    probs = torch.full((7, 3), 0.1)
    probs[torch.arange(7), torch.tensor(pred_idx)] = 0.8
    m = compute_metrics(probs, target, "multiclass", ["colour"], CLASSES)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # recalls: red 2/3, green 1/2, blue 1/1 -> balanced accuracy 13/18
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    # F1: red P=1 R=2/3 -> 0.8 ; green P=1/2 R=1/2 -> 0.5 ; blue P=1/2 R=1 -> 2/3
    assert m["f1/red"] == pytest.approx(0.8)
    assert m["f1/green"] == pytest.approx(0.5)
    assert m["f1/blue"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_multiclass_metrics_per_frame_shapes_match_flat() -> None:
    """(N, T, C) predictions with (N, T) targets equal the flattened computation, and the
    accumulating metric (as used in validation) agrees with the functional one."""
    gen = torch.Generator().manual_seed(1)
    probs = torch.softmax(torch.randn(4, 25, 3, generator=gen), dim=-1)
    target = torch.randint(0, 3, (4, 25), generator=gen).float()
    target[0, :5] = float("nan")
    seq = compute_metrics(probs, target, "multiclass", ["behaviour"], CLASSES)
    flat = compute_metrics(probs.reshape(-1, 3), target.reshape(-1), "multiclass", ["behaviour"], CLASSES)
    assert seq == flat
    keep = ~torch.isnan(target.reshape(-1))
    t = target.reshape(-1)[keep].long().numpy()
    p = probs.reshape(-1, 3)[keep].argmax(1).numpy()
    assert seq["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(t, p))
    assert seq["macro_f1"] == pytest.approx(f1_score(t, p, average="macro"))
    acc = MultitaskMetrics("multiclass", ["behaviour"], CLASSES)
    acc.update(probs[:2], target[:2])
    acc.update(probs[2:], target[2:])
    assert acc.compute() == pytest.approx(seq)


def test_masked_cross_entropy_ignores_nan_and_weights_classes() -> None:
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [5.0, -5.0, 0.0]])
    target = torch.tensor([0.0, 2.0, float("nan")])
    loss = masked_loss(logits, target, "multiclass")
    expected = torch.nn.functional.cross_entropy(logits[:2], torch.tensor([0, 2]))
    assert loss.item() == pytest.approx(expected.item())
    weight = torch.tensor([1.0, 1.0, 3.0])
    weighted = masked_loss(logits, target, "multiclass", class_weight=weight)
    assert weighted.item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits[:2], torch.tensor([0, 2]), weight=weight).item())
    assert weighted.item() != pytest.approx(loss.item())
    all_missing = masked_loss(logits, torch.full((3,), float("nan")), "multiclass")
    assert all_missing.item() == 0.0


@pytest.fixture(scope="module")
def multiclass_run(toy_plugin: PluginEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("toy-mc") / "run"
    assert main(["train", "--plugin", "toy", "--task", "toy_multiclass", "--trainer.max_epochs", "8",
                 "--run-dir", str(run)]) == 0
    return run


def test_multiclass_run_end_to_end(multiclass_run: Path) -> None:
    run = multiclass_run
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    for name in ("plots/confusion_matrix.png", "plots/learning_curves.png", "predictions/test.csv"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    table = pd.read_csv(run / "predictions" / "test.csv", keep_default_na=False)
    assert {"id", "true_colour", "pred_colour", "prob_red", "prob_green", "prob_blue"} <= set(table.columns)
    probs = table[["prob_red", "prob_green", "prob_blue"]].to_numpy(float)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (table["pred_colour"] == np.asarray(CLASSES)[probs.argmax(1)]).all()
    labelled = table[table["true_colour"] != ""]
    assert len(labelled) < len(table)  # 10% of labels are missing and must not count
    bal = balanced_accuracy_score(labelled["true_colour"], labelled["pred_colour"])
    assert metrics["test/balanced_accuracy"] == pytest.approx(bal, abs=1e-6)
    # learnable: three classes, chance balanced accuracy 1/3
    assert metrics["test/balanced_accuracy"] > 0.6
    # the primary-metric override selects checkpoints on validation balanced accuracy
    ckpt = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True, map_location="cpu")
    monitors = [v.get("monitor") for k, v in ckpt["callbacks"].items() if k.startswith("ModelCheckpoint")]
    assert monitors == ["val/balanced_accuracy"]
    assert not math.isnan(metrics["test/macro_f1"])


def test_multiclass_predict_writes_class_and_probabilities(multiclass_run: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(5, 8)), columns=[f"x{i}" for i in range(8)]).astype(object)
    frame.loc[2, "x3"] = "oops"
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    frame.to_csv(src, index=False)
    assert main(["predict", "--run", str(multiclass_run), "--input", str(src), "--output", str(out)]) == 0
    pred = pd.read_csv(out, keep_default_na=False)
    assert list(pred.columns[-4:]) == ["colour", "prob_red", "prob_green", "prob_blue"]
    assert pred.loc[2, "error"] != "" and pred.loc[2, "colour"] == ""
    assert set(pred.loc[pred["error"] == "", "colour"]) <= set(CLASSES)
