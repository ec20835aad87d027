"""The public run handle (:mod:`dltk.run`), declared plugin options (:mod:`dltk.options`),
:class:`~dltk.datainfo.DataInfo` and the one :class:`~dltk.allowlist.AllowList`, on the toy plugin."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pytest
import torch
from plugin_env import PluginEnv

from dltk.allowlist import AllowList
from dltk.cli import main
from dltk.datainfo import DataInfo
from dltk.errors import ConfigError
from dltk.options import help_text, option, parse
from dltk.run import CombinedRun, EnsembleRun, Run

FAST = ["--trainer.max_epochs", "2"]


@pytest.fixture(scope="module")
def runs(toy_plugin: PluginEnv, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("handle")
    out = {"single": root / "single", "wide": root / "wide", "ensemble": root / "ensemble", "combined": root / "avg"}
    assert main(["train", "--plugin", "toy", *FAST, "--run-dir", str(out["single"])]) == 0
    assert main(["train", "--plugin", "toy", *FAST, "--model.hidden_dim", "48", "--run-dir", str(out["wide"])]) == 0
    assert main(["train", "--plugin", "toy", *FAST, "--ensemble", "2", "--run-dir", str(out["ensemble"])]) == 0
    assert main(["combine", str(out["single"]), str(out["wide"]), "--output", str(out["combined"])]) == 0
    return out


def test_a_single_run(runs: dict[str, Path]) -> None:
    run = Run.open(runs["single"])
    assert type(run) is Run and run.kind == "single"
    assert (run.plugin.name, run.preset.name, run.status["status"]) == ("toy", "toy", "completed")
    assert run.metrics["test/auroc"] > 0.75  # two linear tasks: well above chance after 2 epochs
    models = run.models("best")
    assert len(models) == 1 and not models[0].training
    assert run.checkpoint("last").is_file()
    assert type(run.datamodule()).__name__ == "ToyDataModule" == run.datamodule_class.__name__
    assert run.model(command="export").task_names == ["alpha", "beta"]


def test_an_ensemble_run(runs: dict[str, Path]) -> None:
    run = Run.open(runs["ensemble"])
    assert isinstance(run, EnsembleRun) and [m.dir.name for m in run.members] == ["0", "1"]
    a, b = run.models("best")
    assert not torch.equal(a.state_dict()["net.0.weight"], b.state_dict()["net.0.weight"])  # two seeds
    with pytest.raises(ConfigError, match="ensemble run of 2 members; `dltk export` works on one model"):
        run.model(command="export")


def test_a_combined_run(runs: dict[str, Path]) -> None:
    run = Run.open(runs["combined"])
    assert isinstance(run, CombinedRun) and run.default_checkpoint() == "best"
    assert [m.dir.resolve() for m in run.members] == [runs["single"].resolve(), runs["wide"].resolve()]
    assert run.record["weights"] == "equal"
    with pytest.raises(ConfigError, match="combined run of models with different inputs"):
        run.models()
    with pytest.raises(ConfigError, match="`dltk explain` works on one model"):
        run.require_single("explain")


def test_what_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run directory not found"):
        Run.open(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="not a dltk run directory"):
        Run.open(tmp_path)


def test_a_run_written_in_the_old_layout_still_tests_and_predicts(runs: dict[str, Path], tmp_path: Path) -> None:
    """A run directory as dltk wrote it before the run handle existed, made here by hand: the
    checkpoint holds a plain ``data_info`` dict in its hyper-parameters (no DataInfo), the status
    file has only the old fields, there is no ensemble or combine record."""
    old = tmp_path / "old-run"
    (old / "checkpoints").mkdir(parents=True)
    shutil.copyfile(runs["single"] / "config.yaml", old / "config.yaml")
    state = torch.load(runs["single"] / "checkpoints" / "best.ckpt", weights_only=True)
    hyper = {"hidden_dim": 32, "lr": 0.01, "_class_path": "dltk_toy.models.ToyMLP",
             "data_info": {"task_names": ["alpha", "beta"], "task_type": "classification", "in_features": 8}}
    torch.save({"epoch": 1, "state_dict": state["state_dict"], "hyper_parameters": hyper},
               old / "checkpoints" / "best.ckpt")
    (old / "run.json").write_text(json.dumps({"status": "completed", "plugin": "toy", "task": "toy"}))
    run = Run.open(old)
    assert run.kind == "single" and run.status["status"] == "completed"
    from dltk import verbs

    assert verbs.test(old)["test/auroc"] == pytest.approx(verbs.test(runs["single"])["test/auroc"], abs=1e-9)
    rows = pd.DataFrame(np.random.default_rng(0).normal(size=(5, 8)), columns=[f"x{i}" for i in range(8)])
    rows.to_csv(tmp_path / "in.csv", index=False)
    assert main(["predict", "--run", str(old), "--input", str(tmp_path / "in.csv"), "--output",
                 str(tmp_path / "old.csv")]) == 0
    assert main(["predict", "--run", str(runs["single"]), "--input", str(tmp_path / "in.csv"), "--output",
                 str(tmp_path / "new.csv")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "old.csv"), pd.read_csv(tmp_path / "new.csv"))


def test_predict_help_lists_the_plugins_declared_options(runs: dict[str, Path],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--run", str(runs["single"]), "--help"]) == 0
    out = capsys.readouterr().out
    assert "--input" in out and "toy options (toy):" in out and "--chunk-size INT" in out and "default 1000" in out


def test_declared_predict_options_are_parsed_by_core(runs: dict[str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    rows = pd.DataFrame(np.random.default_rng(1).normal(size=(20, 8)), columns=[f"x{i}" for i in range(8)])
    rows.to_csv(tmp_path / "in.csv", index=False)
    base = ["predict", "--run", str(runs["single"]), "--input", str(tmp_path / "in.csv")]
    assert main([*base, "--output", str(tmp_path / "a.csv")]) == 0
    assert main([*base, "--output", str(tmp_path / "b.csv"), "--chunk-size", "7"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv"))
    capsys.readouterr()
    for bad, message in ((["--chunk-size", "x"], "option --chunk-size: expected an integer, got 'x'"),
                         (["--chunk-size", "0"], "--chunk-size must be >= 1"),
                         (["--chunk-sise", "5"], "unknown option --chunk-sise; did you mean --chunk-size?")):
        assert main([*base, "--output", str(tmp_path / "c.csv"), *bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
        assert not (tmp_path / "c.csv").exists()


def test_predict_requires_its_options(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--run", str(runs["single"])]) == 2
    assert "missing required option --input, --output" in capsys.readouterr().err


# -- dltk.options ---------------------------------------------------------------------------------
@dataclass
class Example:
    smiles: list[str] = option(list, "a molecule (repeatable)", required=True)
    method: Literal["gradcam", "saliency"] = option("gradcam", "attribution method")
    level: int = option(0, "pyramid level")
    fps: float | None = option(None, "frame rate")
    plot: bool = option(True, "write a plot")
    output_dir: str | None = option(None, "where to write")

    def __post_init__(self) -> None:
        if self.level < 0:
            raise ValueError(f"--level must be >= 0, got {self.level}")


def test_options_parse_every_supported_type() -> None:
    got = parse(Example, ["--smiles", "CCO", "--smiles=c1ccccc1", "--method", "saliency", "--level", "2",
                          "--fps", "29.97", "--no-plot", "--output_dir", "out"], "dltk x")
    assert got == Example(["CCO", "c1ccccc1"], "saliency", 2, 29.97, False, "out")
    assert parse(Example, ["--smiles", "C", "--output", "o"], "dltk x").output_dir == "o"  # unique abbreviation
    assert parse(None, [], "dltk x") is None


@pytest.mark.parametrize(("argv", "message"), [
    ([], "dltk x: missing required option --smiles"),
    (["--smiles", "C", "--method", "shap"], "option --method: expected one of gradcam, saliency, got 'shap'"),
    (["--smiles", "C", "--level", "1.5"], "option --level: expected an integer, got '1.5'"),
    (["--smiles", "C", "--fps", "fast"], "option --fps: expected a number, got 'fast'"),
    (["--smiles", "C", "--level", "-1"], "dltk x: --level must be >= 0, got -1"),
    (["--smiles", "C", "--levle", "1"], "unknown option --levle; did you mean --level?"),
    (["--smiles"], "option --smiles needs a value"),
    (["--smiles", "C", "stray"], "unexpected argument 'stray'"),
    (["--smiles", "C", "--plot=maybe"], "option --plot: expected true or false, got 'maybe'"),
])
def test_options_errors_are_one_line(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(Example, argv, "dltk x")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_options_without_a_declaration_refuse_any_option() -> None:
    with pytest.raises(ConfigError, match="unknown option --tile; it takes no plugin options"):
        parse(None, ["--tile", "5"], "dltk predict")


def test_options_help_lists_names_types_defaults() -> None:
    text = help_text(Example, "toy options")
    assert text.splitlines()[0] == "toy options:"
    assert "--smiles STR (repeatable)" in text and "(required)" in text
    assert "--method {gradcam,saliency}" in text and "(default gradcam)" in text
    assert "--no-plot" in text and "--fps FLOAT" in text


# -- DataInfo and the allow-list --------------------------------------------------------------------
def test_datainfo_is_typed_and_reads_like_the_old_dict() -> None:
    old = {"task_names": ["a"], "task_type": "multiclass", "class_names": ["x", "y"],
           "primary_metric": ["f1/x", "max"], "class_counts": [3, 4], "in_features": 6, "window": {"size": 4}}
    info = DataInfo.from_dict(old)
    assert info.task_type == "multiclass" and info.primary_metric == ("f1/x", "max")
    assert info.extra == {"in_features": 6, "window": {"size": 4}}
    assert info["in_features"] == 6 and info.get("target_mean") is None and "target_mean" not in info
    assert dict(info) == old and info.to_dict() == old
    with pytest.raises(ValueError, match="mode must be 'max' or 'min'"):
        DataInfo.from_dict({**old, "primary_metric": ["f1/x", "up"]})


def test_one_allow_list_for_training_and_loading() -> None:
    allow = AllowList.for_plugin("dltk_toy")
    for ok in ("dltk_toy.models.ToyMLP", "lightning.pytorch.callbacks.EarlyStopping",
               "torchmetrics.classification.BinaryAUROC", "torch.optim.AdamW"):
        assert allow.allows(ok)
    for refused in ("subprocess.Popen", "dltk_chem.models.MultitaskMLP", "builtins.eval"):
        with pytest.raises(ConfigError, match="refusing to import it"):
            allow.import_class(refused, "model.class_path")
    import dltk.loading
    import dltk.train

    assert dltk.loading.AllowList is dltk.train.AllowList is AllowList
