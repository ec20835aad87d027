"""The toy plugin end to end, in-process: ``dltk train`` -> run directory -> ``dltk test`` / ``predict``.

The toy plugin (``tests/core/toy_plugin``) is a third-party-style package registered through an
entry point in a temporary environment; its data are generated in memory, so a run takes seconds.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from plugin_env import PluginEnv, dltk_script
from sklearn.metrics import roc_auc_score

from dltk.cli import main
from dltk.errors import ConfigError
from dltk.loading import load_checkpoint

TASKS = ["alpha", "beta"]
RUN_FILES = ["run.json", "config.yaml", "checkpoints/best.ckpt", "checkpoints/last.ckpt", "metrics.json",
             "predictions/test.csv", "logs/metrics.csv", "plots/roc_curves.png", "plots/pr_curves.png",
             "plots/learning_curves.png", "environment.json"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def toy_run(toy_plugin: PluginEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One toy training run (the preset's hidden_dim is 32; overridden to 16)."""
    run = tmp_path_factory.mktemp("toy") / "run"
    assert main(["train", "--plugin", "toy", "--model.hidden_dim", "16", "--run-dir", str(run)]) == 0
    return run


def sklearn_auroc(predictions: pd.DataFrame, tasks: list[str]) -> dict[str, float]:
    """Per-task ROC-AUC over the labelled rows of a predictions CSV, and their mean."""
    out = {}
    for task in tasks:
        labelled = predictions[f"true_{task}"].notna()
        out[f"test/auroc/{task}"] = roc_auc_score(predictions.loc[labelled, f"true_{task}"],
                                                  predictions.loc[labelled, f"pred_{task}"])
    out["test/auroc"] = float(np.mean(list(out.values())))
    return out


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dltk: error: "), err
    assert "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------------------------------------
# the run directory


def test_run_dir_contents(toy_run: Path) -> None:
    for name in RUN_FILES:
        assert (toy_run / name).is_file(), name
    assert list((toy_run / "tensorboard").glob("events.out.tfevents.*"))
    for png in (toy_run / "plots").glob("*.png"):
        assert png.read_bytes()[:8] == PNG_MAGIC, png
    leftovers = [p for p in toy_run.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]
    assert not leftovers, leftovers  # atomic writes leave no temporary files
    status = json.loads((toy_run / "run.json").read_text())
    assert status["status"] == "completed"
    assert status["plugin"] == "toy" and status["task"] == "toy" and status["seed"] == 0
    assert status["best_checkpoint"] == "checkpoints/best.ckpt"
    metrics = json.loads((toy_run / "metrics.json").read_text())
    assert status["test_metric"] == {"test/auroc": metrics["test/auroc"], "test/auprc": metrics["test/auprc"]}
    env = json.loads((toy_run / "environment.json").read_text())
    assert env["seed"] == 0 and env["device"] == "cpu"
    assert env["packages"]["torch"] and env["packages"]["lightning"]
    log = pd.read_csv(toy_run / "logs" / "metrics.csv")
    assert sorted(log["epoch"].dropna().unique()) == [0, 1, 2, 3]  # the preset's 4 epochs
    assert {"train/loss", "val/loss", "val/auroc", "val/auroc/alpha", "val/auroc/beta"} <= set(log.columns)


def test_metrics_match_sklearn_recomputation(toy_run: Path) -> None:
    metrics = json.loads((toy_run / "metrics.json").read_text())
    predictions = pd.read_csv(toy_run / "predictions" / "test.csv")
    assert list(predictions.columns) == ["id", "true_alpha", "pred_alpha", "true_beta", "pred_beta"]
    assert len(predictions) == 120  # 20% of 600 samples
    assert predictions["id"].is_unique
    for task in TASKS:
        true = predictions[f"true_{task}"]
        assert 0 < true.isna().sum() < len(true)  # some labels are missing, and those rows are kept
        assert set(true.dropna().unique()) == {0.0, 1.0}
        assert predictions[f"pred_{task}"].between(0, 1).all()
    expected = sklearn_auroc(predictions, TASKS)
    assert set(metrics) == {f"test/{m}{suffix}" for m in ("auroc", "auprc")
                            for suffix in ("", "/alpha", "/beta")}
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-6), key
    assert metrics["test/auroc"] > 0.8  # a linear signal the MLP learns in 4 epochs (chance is 0.5)


def test_dotted_override_in_config_and_checkpoint(toy_run: Path) -> None:
    config = yaml.safe_load((toy_run / "config.yaml").read_text())
    assert config["plugin"] == "toy" and config["task"] == "toy"
    assert config["model"]["class_path"] == "dltk_toy.models.ToyMLP"
    assert config["model"]["init_args"]["hidden_dim"] == 16
    assert config["trainer"]["max_epochs"] == 4
    for which in ("best", "last"):
        ckpt = torch.load(toy_run / "checkpoints" / f"{which}.ckpt", map_location="cpu", weights_only=True)
        hp = ckpt["hyper_parameters"]
        assert hp["hidden_dim"] == 16
        assert hp["data_info"]["task_names"] == TASKS and hp["data_info"]["in_features"] == 8
        assert tuple(ckpt["state_dict"]["net.0.weight"].shape) == (16, 8)


def test_print_config_prints_resolved_yaml_and_creates_nothing(toy_plugin: PluginEnv, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    argv = ["train", "--plugin", "toy", "--model.lr", "0.05", "--run-dir", str(run), "--print-config"]
    assert main(argv) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    model = config["model"]
    assert model["class_path"] == "dltk_toy.models.ToyMLP"
    # preset values, the override, and class defaults the preset does not mention, all resolved
    assert model["init_args"]["hidden_dim"] == 32
    assert model["init_args"]["lr"] == 0.05
    assert model["init_args"]["optimizer"] == "adamw"
    assert model["init_args"]["scheduler"] == "none"
    assert config["data"]["init_args"]["n_samples"] == 600
    assert config["data"]["init_args"]["missing_fraction"] == 0.15
    assert config["trainer"]["max_epochs"] == 4
    assert config["plugin"] == "toy" and config["task"] == "toy"
    assert list(tmp_path.iterdir()) == []


def test_config_yaml_reproduces_the_run(toy_run: Path, tmp_path: Path) -> None:
    """Same config, same seed, CPU: the same test metrics and predictions."""
    other = tmp_path / "other"
    assert main(["train", "--config", str(toy_run / "config.yaml"), "--run-dir", str(other)]) == 0
    assert json.loads((other / "run.json").read_text())["status"] == "completed"
    first = json.loads((toy_run / "metrics.json").read_text())
    second = json.loads((other / "metrics.json").read_text())
    assert second.keys() == first.keys()
    for key in first:
        assert second[key] == pytest.approx(first[key], abs=1e-6), key
    pd.testing.assert_frame_equal(pd.read_csv(other / "predictions" / "test.csv"),
                                  pd.read_csv(toy_run / "predictions" / "test.csv"), atol=1e-6)
    configs = [yaml.safe_load((run / "config.yaml").read_text()) for run in (toy_run, other)]
    assert configs[0] == configs[1]


def test_existing_run_dir_is_refused(toy_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (toy_run / "run.json").read_text()
    assert main(["train", "--plugin", "toy", "--run-dir", str(toy_run)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(toy_run) in line and "already holds a run" in line
    assert (toy_run / "run.json").read_text() == before


# ------------------------------------------------------------------------------------------------
# dltk test / dltk predict


def test_test_command_prints_the_same_metrics(toy_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p: p.stat().st_mtime_ns for p in toy_run.rglob("*") if p.is_file()}
    assert main(["test", "--run", str(toy_run)]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((toy_run / "metrics.json").read_text())
    printed = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in (*TASKS, "mean") and len(parts) >= 2:
            printed[parts[0]] = parts[1]
    assert printed == {"alpha": f"{metrics['test/auroc/alpha']:.3f}",
                       "beta": f"{metrics['test/auroc/beta']:.3f}",
                       "mean": f"{metrics['test/auroc']:.3f}"}
    assert f"test/auprc={metrics['test/auprc']:.3f}" in out
    from dltk import verbs

    again = verbs.test(str(toy_run))
    for key in metrics:
        assert again[key] == pytest.approx(metrics[key], abs=1e-6), key
    assert {p: p.stat().st_mtime_ns for p in toy_run.rglob("*") if p.is_file()} == before  # nothing rewritten


def test_predict_on_a_file(toy_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Predictions for the test samples equal those in predictions/test.csv; bad rows keep an error."""
    from dltk.data.splits import random_split
    from dltk_toy.datamodules import make_data

    X, _ = make_data(600, 8, 0.3, 0.15, 0)
    test_idx = random_split(600, (0.6, 0.2, 0.2), seed=0)[2]
    table = pd.DataFrame(X[test_idx], columns=[f"x{i}" for i in range(8)]).astype(str)
    table.insert(0, "id", [f"s{i}" for i in test_idx])
    bad = pd.DataFrame([{"id": "bad-text", **{f"x{i}": "0.1" for i in range(8)}, "x3": "abc"},
                        {"id": "bad-blank", **{f"x{i}": "0.1" for i in range(8)}, "x0": ""}])
    table = pd.concat([table.iloc[:5], bad, table.iloc[5:]], ignore_index=True)
    source = tmp_path / "input.csv"
    table.to_csv(source, index=False)
    output = tmp_path / "out" / "predicted.csv"

    assert main(["predict", "--run", str(toy_run), "--input", str(source), "--output", str(output)]) == 0
    assert "122 rows, 120 predicted, 2 with errors" in capsys.readouterr().out
    result = pd.read_csv(output, keep_default_na=False, na_values=[""])
    assert list(result["id"]) == list(table["id"])  # every row, in order
    errors = result.set_index("id")["error"]
    assert errors[["bad-text", "bad-blank"]].notna().all()
    assert errors.drop(["bad-text", "bad-blank"]).isna().all()
    scored = result[result["error"].isna()].set_index("id")
    assert result.loc[result["error"].notna(), TASKS].isna().all().all()
    reference = pd.read_csv(toy_run / "predictions" / "test.csv").set_index("id")
    for task in TASKS:
        assert scored[task].between(0, 1).all()
        np.testing.assert_allclose(scored.loc[reference.index, task], reference[f"pred_{task}"], atol=1e-5)


def test_checkpoint_loads_weights_only(toy_run: Path) -> None:
    state = load_checkpoint(toy_run / "checkpoints" / "best.ckpt")
    assert "state_dict" in state and state["hyper_parameters"]["data_info"]["task_type"] == "classification"


@pytest.mark.parametrize("command", [
    ["test", "--run", "{missing}"],
    ["predict", "--run", "{run}", "--input", "{missing}", "--output", "{out}"],
], ids=["test-missing-run", "predict-missing-input"])
def test_test_and_predict_bad_paths(toy_run: Path, tmp_path: Path, command: list[str],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    values = {"missing": str(tmp_path / "does-not-exist"), "run": str(toy_run),
              "out": str(tmp_path / "o.csv")}
    assert main([c.format(**values) for c in command]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert values["missing"] in line
    assert not (tmp_path / "o.csv").exists()


# ------------------------------------------------------------------------------------------------
# bad input: one line, exit code 2, no run directory


@pytest.mark.parametrize(("args", "needles"), [
    (["--plugin", "toy", "--model.hiden_dim", "3"], ["model.hiden_dim", "hidden_dim"]),
    (["--plugin", "toy", "--trainer.max_epochs", "abc"], ["trainer.max_epochs", "abc"]),
    (["--plugin", "toy", "--data.batch_size", "1.5"], ["data.batch_size", "1.5"]),
    (["--plugin", "toy", "--model.optimizer", "rmsprop"], ["model.optimizer", "rmsprop"]),
    (["--plugin", "toy", "--task", "nope"], ["no preset (--task) 'nope'", "toy, toy_regression, toy_multiclass"]),
    (["--plugin", "nope"], ["unknown plugin 'nope'", "toy"]),
    ([], ["--plugin"]),
    (["--plugin", "toy", "--config", "{tmp}/missing.yaml"], ["missing.yaml"]),
], ids=["unknown-key", "wrong-type", "float-for-int", "bad-choice", "unknown-task", "unknown-plugin",
        "no-plugin", "missing-config"])
def test_bad_train_arguments(toy_plugin: PluginEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str], args: list[str], needles: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    args = [a.format(tmp=tmp_path) for a in args]
    run = tmp_path / "run"
    assert main(["train", *args, "--run-dir", str(run)]) == 2
    line = one_error_line(capsys.readouterr().err)
    for needle in needles:
        assert needle in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no run directory, no runs/
    with pytest.raises(ConfigError):
        main(["--debug", "train", *args, "--run-dir", str(run)])
    assert not run.exists()


# ------------------------------------------------------------------------------------------------
# DDP (subprocess: strategy=ddp re-launches the command line, which must not be pytest)


def test_ddp_two_cpu_processes(toy_env: PluginEnv, tmp_path: Path) -> None:
    """``--trainer.strategy ddp --trainer.devices 2`` on the CPU: rank 1 inherits rank 0's run
    directory (the default, timestamped one), only rank 0 writes artifacts, the run completes."""
    env = toy_env.environ(OMP_NUM_THREADS="1")
    env.pop("DLTK_RUN_DIR", None)
    proc = subprocess.run(
        [dltk_script(), "train", "--plugin", "toy", "--trainer.strategy", "ddp", "--trainer.devices", "2",
         "--trainer.accelerator", "cpu", "--trainer.max_epochs", "2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1, runs
    run = runs[0]
    assert run.name.startswith("toy-toy-")
    status = json.loads((run / "run.json").read_text())
    assert status["status"] == "completed", status
    metrics = json.loads((run / "metrics.json").read_text())
    assert not math.isnan(metrics["test/auroc"]) and metrics["test/auroc"] > 0.7
    predictions = pd.read_csv(run / "predictions" / "test.csv")
    assert len(predictions) == 120
    for key, value in sklearn_auroc(predictions, TASKS).items():
        assert metrics[key] == pytest.approx(value, abs=1e-6), key
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1  # rank 0 only
    assert proc.stdout.count("dltk: run completed") == 1
