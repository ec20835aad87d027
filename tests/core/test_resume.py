"""Crash and resume: a seeded CPU training killed with SIGKILL at several points (after an epoch,
mid-epoch, half-way through a checkpoint write, before the first checkpoint) and continued with
``dltk train --resume`` ends with exactly the test metrics, per-epoch validation scores and files
of an uninterrupted run. The toy model uses dropout, so the random state must be restored too."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from plugin_env import PluginEnv, dltk_script

from dltk.cli import main

ARGS = ["train", "--plugin", "toy", "--trainer.max_epochs", "6", "--model.hidden_dim", "16",
        "--model.dropout", "0.3"]


def _run(env_: PluginEnv, cwd: Path, args: list[str], fault: str | None = None) -> subprocess.CompletedProcess:
    env = env_.environ(OMP_NUM_THREADS="1")
    env.pop("DLTK_RUN_DIR", None)
    env.pop("DLTK_FAULT_INJECT", None)
    if fault:
        env["DLTK_FAULT_INJECT"] = fault
    return subprocess.run([dltk_script(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _files(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*")
                  if p.is_file() and "tensorboard" not in p.parts)


@pytest.fixture(scope="module")
def reference(toy_env: PluginEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("resume")
    proc = _run(toy_env, root, ARGS + ["--run-dir", "full"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root / "full"


@pytest.mark.parametrize("fault, epochs_done", [
    ("epoch_end:3", 2),         # killed at the end of epoch 3, before its checkpoint: redo epoch 3
    ("batch:20", 3),            # killed mid-epoch 4 (6 batches per epoch): redo epoch 4
    ("checkpoint_write:4", 1),  # killed half-way through epoch 2's second checkpoint file: epoch 1's survives
    ("checkpoint_write:1", 0),  # killed before any checkpoint exists: start again
])
def test_killed_run_resumes_to_the_uninterrupted_result(toy_env: PluginEnv, reference: Path, fault: str,
                                                       epochs_done: int) -> None:
    root = reference.parent
    run = root / f"killed-{fault.replace(':', '-')}"
    proc = _run(toy_env, root, ARGS + ["--run-dir", run.name], fault)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    status = json.loads((run / "run.json").read_text())
    assert status["status"] == "running"  # a killed run is never mistaken for a finished one
    assert not (run / "metrics.json").exists()
    if fault.startswith("checkpoint_write"):
        assert list((run / "checkpoints").glob(".*.tmp"))  # the interrupted write, never renamed into place

    proc = _run(toy_env, root, ["train", "--resume", run.name])
    assert proc.returncode == 0, proc.stderr[-2000:]
    if epochs_done:
        assert f"from last.ckpt: {epochs_done} epoch(s) done" in proc.stdout
    else:
        assert "no checkpoint yet" in proc.stdout
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    assert json.loads((run / "metrics.json").read_text()) == json.loads((reference / "metrics.json").read_text())
    assert _files(run) == _files(reference)
    ours = pd.read_csv(run / "logs" / "metrics.csv").groupby("epoch")["val/auroc"].max()
    theirs = pd.read_csv(reference / "logs" / "metrics.csv").groupby("epoch")["val/auroc"].max()
    pd.testing.assert_series_equal(ours, theirs)
    assert (pd.read_csv(run / "predictions" / "test.csv")
            .equals(pd.read_csv(reference / "predictions" / "test.csv")))


def test_resume_refuses_completed_and_foreign_directories(reference: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--resume", str(reference)]) == 2
    assert "already completed" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "not a dltk run directory" in capsys.readouterr().err


def test_two_runs_started_at_once_never_share_a_directory(toy_env: PluginEnv, tmp_path: Path) -> None:
    """Two trainings started in the same second with default run directories claim different ones;
    two on the same explicit directory: exactly one runs, the other is refused with exit 2."""
    env = toy_env.environ(OMP_NUM_THREADS="1")
    env.pop("DLTK_RUN_DIR", None)
    cmd = [dltk_script(), "train", "--plugin", "toy", "--trainer.max_epochs", "1"]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2
    assert all(json.loads((r / "run.json").read_text())["status"] == "completed" for r in runs)

    same = [subprocess.Popen(cmd + ["--run-dir", "shared"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    codes = sorted(p.wait(timeout=300) for p in same)
    assert codes == [0, 2]
    assert json.loads((tmp_path / "shared" / "run.json").read_text())["status"] == "completed"
