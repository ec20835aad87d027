"""Loading safely: opening a model never executes code.

- a checkpoint carrying a crafted pickle payload is refused by every command that reads one
  (test, predict, explain, train --resume), and the payload never runs;
- config ``class_path`` values may only name classes from dltk and the run's plugin;
- the source tree never unpickles: every torch.load is weights_only=True, every np.load refuses
  pickles, and no cache is written with pickle.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from plugin_env import PluginEnv

from dltk.cli import main

REPO = Path(__file__).resolve().parents[2]


class Payload:
    """Unpickling this object would create ``marker`` (os.system-style code execution)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def trained(toy_plugin: PluginEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("safe") / "run"
    assert main(["train", "--plugin", "toy", "--trainer.max_epochs", "2", "--run-dir", str(run)]) == 0
    return run


def _poisoned_copy(run: Path, tmp_path: Path) -> tuple[Path, Path]:
    copy = tmp_path / "poisoned"
    shutil.copytree(run, copy)
    marker = tmp_path / "PAYLOAD-RAN"
    state = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    state["hyper_parameters"]["evil"] = Payload(marker)
    for name in ("best.ckpt", "last.ckpt"):
        torch.save(state, copy / "checkpoints" / name)
    return copy, marker


@pytest.mark.parametrize("command", ["test", "predict", "explain", "resume"])
def test_crafted_pickle_payload_is_refused_not_executed(trained: Path, tmp_path: Path, command: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    run, marker = _poisoned_copy(trained, tmp_path)
    if command == "resume":  # a resumable (unfinished) run whose last checkpoint was tampered with
        (run / "run.json").write_text('{"status": "running"}')
    src = tmp_path / "in.csv"
    src.write_text("x0,x1,x2,x3,x4,x5,x6,x7\n" + ",".join(["0.1"] * 8) + "\n")
    argv = {"test": ["test", "--run", str(run)],
            "predict": ["predict", "--run", str(run), "--input", str(src), "--output", str(tmp_path / "o.csv")],
            "explain": ["explain", "--run", str(run)],
            "resume": ["train", "--resume", str(run)]}[command]
    code = main(argv)
    err = capsys.readouterr().err
    assert not marker.exists(), "the pickle payload was executed"
    if command == "explain" and "does not provide explanations" in err:
        assert code == 2  # the toy plugin has no explainer: refused before any loading
        return
    assert code == 2, err
    assert "refused to load checkpoint (weights_only=True)" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("class_path", ["subprocess.Popen", "builtins.eval", "os.system",
                                        "collections.OrderedDict"])
def test_class_path_outside_dltk_and_the_plugin_is_refused(toy_plugin: PluginEnv, tmp_path: Path, class_path: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", "--plugin", "toy", "--model.class_path", class_path, "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert class_path in err, err
    assert "refusing" in err or "not from dltk" in err, err
    assert not run.exists()


def test_run_config_naming_a_foreign_class_is_refused(trained: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "edited"
    shutil.copytree(trained, copy)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["data"]["class_path"] = "subprocess.Popen"
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["test", "--run", str(copy)]) == 2
    assert "refusing to import it" in capsys.readouterr().err


def _source_files() -> list[Path]:
    roots = [REPO / "core", REPO / "plugins"]
    return [p for root in roots for p in root.rglob("*.py") if ".venv" not in p.parts]


def test_source_never_unpickles() -> None:
    """Every torch.load passes weights_only=True; np.load never allows pickles; no pickle/joblib
    loads or dumps (caches are .npz / HDF5 / CSV)."""
    offenders = []
    for path in _source_files():
        text = path.read_text()
        for m in re.finditer(r"torch\.load\(([^()]*(\([^()]*\))*[^()]*)\)", text):
            if "weights_only=True" not in m.group(1):
                offenders.append(f"{path.relative_to(REPO)}: torch.load without weights_only=True")
        if re.search(r"allow_pickle\s*=\s*True", text):
            offenders.append(f"{path.relative_to(REPO)}: allow_pickle=True")
        if re.search(r"\b(pickle|cloudpickle|dill|joblib)\.(load|loads|dump|dumps)\(", text):
            offenders.append(f"{path.relative_to(REPO)}: pickle serialisation")
        if re.search(r"\.to_pickle\(|read_pickle\(", text):
            offenders.append(f"{path.relative_to(REPO)}: pandas pickle")
    assert not offenders, "\n".join(offenders)
    assert len(_source_files()) > 30  # the scan really covered the tree
