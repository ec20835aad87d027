"""``dltk export``: the exported model (ONNX through onnxruntime, TorchScript through torch.jit.load)
gives the Lightning model's outputs on a batch of real inputs, within 1e-5; the JSON beside it
describes inputs (dynamic batch), outputs, preprocessing and labels.

Runs: the toy plugin (classification), chem's fingerprint MLP on ESOL (real data, regression: the
target de-standardisation is inside the export), chem's D-MPNN (graph inputs whose rows are atoms
and bonds, not samples), and, when those plugins are installed, the genomics tf_binding CNN and the
imaging cell_phenotype classifier.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from plugin_env import PluginEnv
from testutil import preserved_environ

from dltk import contract
from dltk.cli import main
from dltk.discovery import discover
from dltk.export import run_exported, sample_batch
from dltk.run import Run

FAST = ["--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false"]


def lightning_outputs(run: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A test batch of the run's data and the Lightning model's post-processed outputs on it,
    computed here independently of dltk.export."""
    handle = Run.open(run)
    model = handle.model("best").eval()
    batch = sample_batch(handle.datamodule())
    with torch.no_grad():
        expected = model.postprocess(model(batch)).numpy()
    return {k: v.numpy() for k, v in batch.items() if isinstance(v, torch.Tensor)}, expected


def export_and_compare(run: Path, fmt: str, tmp_path: Path) -> dict:
    out = tmp_path / f"exported-{fmt}" / ("model.onnx" if fmt == "onnx" else "model.pt")
    assert main(["export", "--run", str(run), "--format", fmt, "--output", str(out)]) == 0
    desc = json.loads(out.with_name(out.name + ".json").read_text())
    names = [i["name"] for i in desc["inputs"]]
    batch, expected = lightning_outputs(run)
    got = run_exported(fmt, out, {n: batch[n] for n in names})
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert desc["check"]["max_abs_diff"] <= 1e-5
    assert desc["model_file"] == out.name and desc["format"] == fmt
    assert desc["outputs"][0]["shape"][0] == "batch" and desc["outputs"][0]["shape"][1:] == list(expected.shape[1:])
    for spec in desc["inputs"]:
        assert spec["dtype"] == str(batch[spec["name"]].dtype)
        assert spec["shape"][1:] == list(batch[spec["name"]].shape[1:])
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # atomic writes, no leftovers
    return desc


# ------------------------------------------------------------------------------------------------
# toy plugin


@pytest.fixture(scope="module")
def toy_run(toy_plugin: PluginEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("toy-export") / "run"
    assert main(["train", "--plugin", "toy", "--run-dir", str(run), *FAST]) == 0
    return run


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_toy_round_trip(toy_run: Path, fmt: str, tmp_path: Path) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    desc = export_and_compare(toy_run, fmt, tmp_path)
    assert desc["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["batch", 8]}]
    assert desc["labels"] == {"task_type": "classification", "task_names": ["alpha", "beta"], "class_names": []}
    assert desc["preprocessing"]["data_class"] == "dltk_toy.datamodules.ToyDataModule"
    assert desc["preprocessing"]["data_info"]["in_features"] == 8
    assert desc["dynamic_batch"] and desc["check"]["batch_sizes"] == [64, 32]  # another batch size checked too


def test_onnx_dynamic_batch_and_probabilities(toy_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "m.onnx"
    assert main(["export", "--run", str(toy_run), "--format", "onnx", "--output", str(out)]) == 0
    x = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    probs = run_exported("onnx", out, {"x": x})
    assert probs.shape == (5, 2) and ((probs > 0) & (probs < 1)).all()  # sigmoid applied
    one = run_exported("onnx", out, {"x": x[:1]})
    np.testing.assert_allclose(one, probs[:1], atol=1e-6)


def test_multiclass_softmax_and_class_names(toy_plugin: PluginEnv, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    run = tmp_path / "run"
    assert main(["train", "--plugin", "toy", "--task", "toy_multiclass", "--run-dir", str(run), *FAST]) == 0
    desc = export_and_compare(run, "onnx", tmp_path)
    assert desc["labels"]["task_type"] == "multiclass"
    assert desc["labels"]["class_names"] == ["red", "green", "blue"]
    assert desc["outputs"][0]["shape"] == ["batch", 3]
    x = np.random.default_rng(1).normal(size=(7, desc["inputs"][0]["shape"][1])).astype(np.float32)
    probs = run_exported("onnx", tmp_path / "exported-onnx" / "model.onnx", {"x": x})
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)  # softmax inside the exported graph


def test_export_errors(toy_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--run", str(tmp_path / "nope"), "--format", "onnx"]) == 2
    assert "run directory not found" in capsys.readouterr().err
    assert main(["export", "--run", str(toy_run), "--format", "onnx", "--output", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dltk: error: ") and len(err.strip().splitlines()) == 1
    ensemble = tmp_path / "ens"
    (ensemble / "members" / "0").mkdir(parents=True)
    (ensemble / "config.yaml").write_text((toy_run / "config.yaml").read_text())
    assert main(["export", "--run", str(ensemble), "--format", "torchscript"]) == 2
    assert "ensemble run" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# chem (real data) and a second real plugin


def _healthy(name: str) -> None:
    info = discover().get(name)
    if info is None or not info.healthy:
        pytest.skip(f"plugin {name} not usable here: {info.status if info else 'not installed'}")


@pytest.fixture(scope="module")
def esol_run(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    _healthy("chem")
    run = tmp_path_factory.mktemp("esol-export") / "run"
    with preserved_environ():
        assert main(["train", "--plugin", "chem", "--task", "esol", "--run-dir", str(run), "--data.features", "ecfp",
                     "--model.hidden_dim", "64", *FAST]) == 0
    return run


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_chem_fingerprint_mlp(esol_run: Path, fmt: str, tmp_path: Path) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    desc = export_and_compare(esol_run, fmt, tmp_path)
    assert desc["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["batch", 2048]}]
    assert desc["labels"]["task_type"] == "regression"
    info = desc["preprocessing"]["data_info"]
    assert len(info["target_mean"]) == 1 and -4 < info["target_mean"][0] < -2  # ESOL log S, mean about -3
    assert desc["preprocessing"]["data_settings"]["features"] == "ecfp"


def tiny_smiles_csv(folder: Path) -> Path:
    """48 small molecules with their heavy-atom count as a regression target."""
    from rdkit import Chem

    smiles = ([("C" * n) for n in range(1, 9)] + [("C" * n + "O") for n in range(1, 9)]
              + [("c1ccccc1" + "C" * n) for n in range(8)] + [("C" * n + "C(=O)O") for n in range(8)]
              + [("C" * n + "N") for n in range(1, 9)] + [("OC" + "C" * n + "O") for n in range(8)])
    path = folder / "tiny.csv"
    path.write_text("smiles,heavy_atoms\n" + "".join(f"{s},{Chem.MolFromSmiles(s).GetNumHeavyAtoms()}\n"
                                                     for s in smiles))
    return path


def test_chem_dmpnn_graph_inputs(data_root: Path, tmp_path: Path) -> None:
    _healthy("chem")
    pytest.importorskip("onnxruntime")
    run = tmp_path / "run"
    with preserved_environ():
        assert main(["train", "--plugin", "chem", "--task", "csv_dmpnn", "--run-dir", str(run),
                     "--data.path", str(tiny_smiles_csv(tmp_path)), "--data.target_columns", "heavy_atoms",
                     "--data.batch_size", "8", "--model.hidden_dim", "32", "--model.ffn_hidden_dim", "32", *FAST]) == 0
    desc = export_and_compare(run, "onnx", tmp_path)
    shapes = {i["name"]: i["shape"] for i in desc["inputs"]}
    assert shapes["atom_x"][0] == "atom_x_rows" and shapes["num_atoms"] == ["batch"]


@pytest.mark.parametrize(("plugin_name", "task_name"), [("genomics", "tf_binding"), ("imaging", "cell_phenotype")])
def test_other_plugins(plugin_name: str, task_name: str, data_root: Path, tmp_path: Path) -> None:
    """A real sequence CNN (DeepBind on ENCODE peaks) and a real image classifier (timm backbone on
    BBBC048 cells), trained a few batches, with the datamodule's own contract_overrides for size."""
    _healthy(plugin_name)
    pytest.importorskip("onnxruntime")
    import yaml

    from dltk.discovery import get_plugin
    from dltk.allowlist import AllowList

    plugin = get_plugin(plugin_name)
    if task_name not in [t.name for t in plugin.tasks]:
        pytest.skip(f"{plugin_name} has no {task_name} task")
    preset = yaml.safe_load(plugin.config_path(plugin.task(task_name)).read_text())
    data_cls = AllowList.for_plugin(plugin.package).import_class(preset["data"]["class_path"])
    small = data_cls.contract_overrides(tmp_path) or []
    run = tmp_path / "run"
    with preserved_environ(), contract.isolated(plugin_name):
        assert main(["train", "--plugin", plugin_name, "--task", task_name, "--run-dir", str(run),
                     "--trainer.limit_train_batches", "3", *FAST, *small]) == 0
    batch, expected = lightning_outputs(run)
    for fmt in ("onnx", "torchscript"):
        desc = export_and_compare(run, fmt, tmp_path)
        first = desc["inputs"][0]["shape"][0]
        model_file = tmp_path / f"exported-{fmt}" / desc["model_file"]
        if desc["dynamic_batch"]:  # then another batch size must work too
            assert first == "batch"
            got = run_exported(fmt, model_file, {"x": batch["x"][:5]})
            np.testing.assert_allclose(got, expected[:5], atol=1e-5, rtol=1e-5)
        else:  # the model's forward fixed the batch size when traced: the JSON must say so
            assert first == len(expected)
