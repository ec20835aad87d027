"""`dltk benchmark` (registry from the plugin contract, report format, resume) and `--ensemble K`,
on the toy plugin registered through an entry point in a temporary environment."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from plugin_env import PluginEnv
from sklearn.metrics import roc_auc_score

from dltk.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def bench_report(toy_plugin: PluginEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "toy"
    assert main(["benchmark", "toy_bench", "--seeds", "2", "--output", str(out)]) == 0
    return out


def test_benchmark_list_shows_plugin_benchmarks(toy_plugin: PluginEnv, capsys: pytest.CaptureFixture) -> None:
    assert main(["benchmark", "--list"]) == 0
    out = capsys.readouterr().out
    assert "toy_bench (toy)" in out and "Bayes 0.95" in out


def test_benchmark_report_json_format(bench_report: Path) -> None:
    report = json.loads((bench_report / "report.json").read_text())
    for key in ("benchmark", "metric", "higher_is_better", "mean", "std", "per_seed", "per_task",
                "published", "wall_seconds"):
        assert key in report, key
    assert report["benchmark"] == "toy_bench" and report["metric"] == "auroc" and report["higher_is_better"]
    assert report["published"] == {"Bayes": 0.95}
    assert len(report["per_seed"]) == 2
    # per-seed values are the runs' own metrics.json values; mean/std are computed from them
    runs = [json.loads((Path(r) / "metrics.json").read_text()) for r in report["runs"]]
    assert report["per_seed"] == [m["test/auroc"] for m in runs]
    assert report["mean"] == pytest.approx(statistics.fmean(report["per_seed"]))
    assert report["std"] == pytest.approx(statistics.stdev(report["per_seed"]))
    assert set(report["per_task"]) == {"alpha", "beta"}
    alpha = [m["test/auroc/alpha"] for m in runs]
    assert report["per_task"]["alpha"]["mean"] == pytest.approx(statistics.fmean(alpha))
    # seed_split: the two seeds saw different splits
    configs = [(Path(r) / "config.yaml").read_text() for r in report["runs"]]
    assert "split_seed: 0" in configs[0] and "split_seed: 1" in configs[1]
    assert report["mean"] > 0.7  # the toy signal is learnable: well above chance (0.5)


def test_benchmark_markdown_and_chart(bench_report: Path) -> None:
    md = (bench_report / "report.md").read_text()
    assert "| Bayes | 0.950 | made up for the tests |" in md
    assert "dltk (this run)" in md and "synthetic data, seeded split" in md
    assert (bench_report / "report.png").read_bytes()[:8] == PNG_MAGIC


def test_benchmark_resumes_completed_seeds(bench_report: Path, capsys: pytest.CaptureFixture) -> None:
    before = json.loads((bench_report / "report.json").read_text())
    assert main(["benchmark", "toy_bench", "--seeds", "2", "--output", str(bench_report)]) == 0
    assert capsys.readouterr().out.count("reusing completed run") == 2
    after = json.loads((bench_report / "report.json").read_text())
    assert after["per_seed"] == before["per_seed"]


def test_unknown_benchmark_is_a_one_line_error(toy_plugin: PluginEnv, capsys: pytest.CaptureFixture) -> None:
    assert main(["benchmark", "no_such_bench"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dltk: error: unknown benchmark 'no_such_bench'") and "toy_bench" in err
    assert len(err.splitlines()) == 1


@pytest.fixture(scope="module")
def ensemble_run(toy_plugin: PluginEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("ens") / "run"
    assert main(["train", "--plugin", "toy", "--ensemble", "3", "--seed", "5", "--trainer.max_epochs", "3",
                 "--run-dir", str(run)]) == 0
    return run


def test_ensemble_trains_members_and_averages(ensemble_run: Path) -> None:
    status = json.loads((ensemble_run / "run.json").read_text())
    assert status["status"] == "completed" and status["ensemble"] == 3
    info = json.loads((ensemble_run / "ensemble.json").read_text())
    assert info["seeds"] == [5, 6, 7]
    members = [pd.read_csv(ensemble_run / m / "predictions" / "test.csv") for m in info["members"]]
    table = pd.read_csv(ensemble_run / "predictions" / "test.csv")
    for task in ("alpha", "beta"):
        stacked = np.stack([m[f"pred_{task}"].to_numpy() for m in members])
        assert np.allclose(table[f"pred_{task}"], stacked.mean(0), atol=1e-5)
        assert np.allclose(table[f"std_{task}"], stacked.std(0), atol=1e-5)
        assert (table[f"std_{task}"] > 0).any()  # members differ: the spread is real
    metrics = json.loads((ensemble_run / "metrics.json").read_text())
    labelled = table["true_alpha"].notna()
    assert metrics["test/auroc/alpha"] == pytest.approx(
        roc_auc_score(table.loc[labelled, "true_alpha"], table.loc[labelled, "pred_alpha"]), abs=1e-6)


def test_ensemble_predict_has_uncertainty_columns(ensemble_run: Path, tmp_path: Path) -> None:
    inp = tmp_path / "in.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame(rng.normal(size=(5, 8)), columns=[f"x{i}" for i in range(8)]).to_csv(inp, index=False)
    assert main(["predict", "--run", str(ensemble_run), "--input", str(inp), "--output",
                 str(tmp_path / "out.csv")]) == 0
    out = pd.read_csv(tmp_path / "out.csv")
    assert {"alpha", "alpha_std", "beta", "beta_std"} <= set(out.columns)
    assert (out["alpha_std"] >= 0).all() and len(out) == 5


def test_explain_without_explainer_is_a_one_line_error(ensemble_run: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["explain", "--run", str(ensemble_run), "--anything", "x"]) == 2
    assert "does not provide explanations" in capsys.readouterr().err
