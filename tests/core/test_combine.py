"""`dltk combine`: equal-weight averages of runs of different models on the same test split, and
benchmarks declared as such averages (``BenchmarkSpec.combine``), on the toy plugin."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from plugin_env import PluginEnv
from sklearn.metrics import roc_auc_score

from dltk.cli import main

TASKS = ("alpha", "beta")


@pytest.fixture(scope="module")
def member_runs(toy_plugin: PluginEnv, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two different models on the same split, and a third on another split."""
    root = tmp_path_factory.mktemp("members")
    specs = {"narrow": ["--seed", "0"], "wide": ["--seed", "1", "--model.hidden_dim", "64", "--model.dropout", "0.2"],
             "other_split": ["--seed", "0", "--data.split_seed", "7"]}
    for name, args in specs.items():
        assert main(["train", "--plugin", "toy", "--trainer.max_epochs", "3", *args, "--run-dir",
                     str(root / name)]) == 0
    return [root / name for name in specs]


@pytest.fixture(scope="module")
def combined(member_runs: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("combined") / "avg"
    assert main(["combine", str(member_runs[0]), str(member_runs[1]), "--output", str(out)]) == 0
    return out


def test_combined_predictions_are_the_members_average(member_runs: list[Path], combined: Path) -> None:
    members = [pd.read_csv(m / "predictions" / "test.csv") for m in member_runs[:2]]
    table = pd.read_csv(combined / "predictions" / "test.csv")
    assert len(table) == len(members[0]) > 0
    metrics = json.loads((combined / "metrics.json").read_text())
    for task in TASKS:
        stacked = np.stack([m[f"pred_{task}"].to_numpy() for m in members])
        assert np.allclose(table[f"pred_{task}"], stacked.mean(0), atol=1e-5)
        assert np.allclose(table[f"std_{task}"], stacked.std(0), atol=1e-5)
        assert (table[f"std_{task}"] > 0).any()  # two different models: a real spread
        labelled = table[f"true_{task}"].notna()
        assert metrics[f"test/auroc/{task}"] == pytest.approx(
            roc_auc_score(table.loc[labelled, f"true_{task}"], table.loc[labelled, f"pred_{task}"]), abs=1e-5)
    assert metrics["test/auroc"] > 0.7  # as the members, well above chance


def test_combine_record_has_member_and_validation_metrics(member_runs: list[Path], combined: Path) -> None:
    status = json.loads((combined / "run.json").read_text())
    assert status["status"] == "completed" and status["combined"] is True
    record = json.loads((combined / "combine.json").read_text())
    assert [Path(m) for m in record["members"]] == [m.resolve() for m in member_runs[:2]]
    assert record["weights"] == "equal" and record["primary_metric"] == "auroc"
    own = [json.loads((m / "metrics.json").read_text()) for m in member_runs[:2]]
    assert [r["auroc"] for r in record["member_test"]] == pytest.approx([m["test/auroc"] for m in own], abs=1e-6)
    # the members share their validation split too, so the average is scored on it as well
    assert 0.5 < record["val"]["auroc"] <= 1 and len(record["member_val"]) == 2


def test_test_and_predict_accept_a_combined_run(member_runs: list[Path], combined: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    assert main(["test", "--run", str(combined)]) == 0
    assert f"{json.loads((combined / 'metrics.json').read_text())['test/auroc']:.3f}" in capsys.readouterr().out
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(6, 8)), columns=[f"x{i}" for i in range(8)]).astype(str)
    frame.loc[2, "x3"] = "oops"  # a row no member can use keeps its error
    frame.to_csv(tmp_path / "in.csv", index=False)
    outputs = {}
    for name, run in (("a", member_runs[0]), ("b", member_runs[1]), ("avg", combined)):
        assert main(["predict", "--run", str(run), "--input", str(tmp_path / "in.csv"), "--output",
                     str(tmp_path / f"{name}.csv")]) == 0
        outputs[name] = pd.read_csv(tmp_path / f"{name}.csv")
    avg = outputs["avg"]
    assert len(avg) == 6 and avg.loc[2, "error"] == "missing or non-numeric feature"
    assert avg["alpha"].isna().sum() == 1
    ok = avg["error"].isna()
    for task in TASKS:
        expected = (outputs["a"].loc[ok, task] + outputs["b"].loc[ok, task]) / 2
        assert np.allclose(avg.loc[ok, task], expected, atol=1e-5)
        assert (avg.loc[ok, f"{task}_std"] >= 0).all()


def test_runs_on_different_splits_are_refused_before_writing(member_runs: list[Path], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "nope"
    assert main(["combine", str(member_runs[0]), str(member_runs[2]), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "test splits differ" in err and str(member_runs[2]) in err
    assert not out.exists()
    assert main(["combine", str(member_runs[0]), "--output", str(out)]) == 2
    assert "at least two runs" in capsys.readouterr().err and not out.exists()


def test_one_model_commands_refuse_a_combined_run(combined: Path, capsys: pytest.CaptureFixture) -> None:
    for argv in (["explain", "--run", str(combined), "--x", "1"],
                 ["export", "--run", str(combined), "--format", "onnx"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "is a combined run of 2 runs" in err and len(err.strip().splitlines()) == 1
    assert main(["combine", str(combined), str(combined), "--output", str(combined.parent / "x")]) == 2
    assert "is itself a combined run" in capsys.readouterr().err


def test_benchmark_of_combined_members(toy_plugin: PluginEnv, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bench"
    assert main(["benchmark", "toy_combined", "--output", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["members"]) == {"toy_bench_narrow", "toy_bench_wide"}
    for name, member in report["members"].items():
        own = json.loads((out / "members" / name / "report.json").read_text())
        assert member["per_seed"] == own["per_seed"] and len(own["per_seed"]) == 2
    # each seed's run is the average of that seed's member runs
    for seed, run in enumerate(report["runs"]):
        record = json.loads((Path(run) / "combine.json").read_text())
        assert [Path(m).parent.parent.name for m in record["members"]] == ["toy_bench_narrow", "toy_bench_wide"]
        assert all(Path(m).name == f"seed{seed}" for m in record["members"])
        assert report["per_seed"][seed] == json.loads((Path(run) / "metrics.json").read_text())["test/auroc"]
    assert set(report["validation"]) == {"toy_bench_narrow", "toy_bench_wide", "average"}
    assert report["wall_seconds"] >= sum(m["wall_seconds"] for m in report["members"].values())
    # one ensemble of all 2 x 2 member runs, from the same trained models
    pooled = report["pooled"]
    assert pooled["n_members"] == 4 and Path(pooled["run"]).name == "all"
    assert pooled["value"] == json.loads((Path(pooled["run"]) / "metrics.json").read_text())["test/auroc"]
    assert 0.5 < pooled["validation"] <= 1
    md = (out / "report.md").read_text()
    assert "## Members" in md and "| **average** |" in md and "one ensemble of all 4 member runs" in md
    assert md.index("one ensemble of all 4") < md.index("| Bayes |")  # in the overall table

    # a third seed: the completed seeds are reused, the pooled ensemble is remade from all 6 runs
    capsys.readouterr()
    assert main(["benchmark", "toy_combined", "--seeds", "3", "--output", str(out)]) == 0
    assert capsys.readouterr().out.count("reusing completed run") == 2 * 2 + 2  # members' seeds + averages
    again = json.loads((out / "report.json").read_text())
    assert again["per_seed"][:2] == report["per_seed"] and len(again["per_seed"]) == 3
    assert again["pooled"]["n_members"] == 6


def test_a_family_runs_combined_members_only_inside_their_benchmark(toy_plugin: PluginEnv) -> None:
    from dltk import benchmark

    assert [b.name for _, b in benchmark.resolve("toy")] == ["toy_bench", "toy_combined"]
    assert [b.name for _, b in benchmark.resolve("toy_bench_wide")] == ["toy_bench_wide"]  # by name: on its own


def test_a_combined_run_keeps_its_checkpoint_and_names_missing_members(
        member_runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import shutil

    copies = []
    for run in member_runs[:2]:
        copy = tmp_path / run.name
        shutil.copytree(run, copy)
        (copy / "checkpoints" / "best.ckpt").unlink()  # only last.ckpt is left
        copies.append(copy)
    out = tmp_path / "last"
    assert main(["combine", *map(str, copies), "--checkpoint", "last", "--output", str(out)]) == 0
    assert json.loads((out / "combine.json").read_text())["checkpoint"] == "last"
    capsys.readouterr()
    assert main(["test", "--run", str(out)]) == 0  # with the recorded checkpoint, not "best"
    assert f"{json.loads((out / 'metrics.json').read_text())['test/auroc']:.3f}" in capsys.readouterr().out
    shutil.move(str(copies[1]), str(tmp_path / "moved"))
    assert main(["test", "--run", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out) in err and "not found (moved or deleted?)" in err
    assert main(["combine", str(member_runs[0]), str(member_runs[1]), "--output", str(out)]) == 2
    assert "already holds a run; choose another --output" in capsys.readouterr().err


def test_rows_must_agree_beyond_the_targets() -> None:
    """Equal targets in another row order are refused by the records check."""
    from types import SimpleNamespace

    from dltk.combine import _same_records
    from dltk.errors import ConfigError

    def member(ids: list[str]) -> SimpleNamespace:
        table = pd.DataFrame({"id": ids, "smiles": [f"C{i}" for i in ids]})
        return SimpleNamespace(name=f"run-{''.join(ids)}", datamodule=SimpleNamespace(test_records=lambda: table))

    _same_records([member(["1", "2", "3"]), member(["1", "2", "3"])])
    with pytest.raises(ConfigError, match="their test rows differ .*first: row 1, id '3' vs '2'"):
        _same_records([member(["1", "2", "3"]), member(["1", "3", "2"])])
