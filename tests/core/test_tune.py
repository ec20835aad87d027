"""``dltk tune`` on the toy plugin: pruning, outputs, best.yaml reproduction, MLflow tracking, bad
search spaces, a worker killed with SIGKILL and the study resumed, and (slow) a PostgreSQL storage."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from plugin_env import PluginEnv

from dltk.cli import main
from dltk.run import Run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _study(out: Path, name: str = "toy-toy", storage: str | None = None) -> optuna.Study:
    from optuna.storages.journal import JournalFileBackend

    store = storage or optuna.storages.JournalStorage(JournalFileBackend(str(out / "study.journal")))
    return optuna.load_study(study_name=name, storage=store)


def _assert_exact(study: optuna.Study, n: int, out: Path) -> list[optuna.trial.FrozenTrial]:
    """``n`` finished trials, each with its own run directory; no duplicate trial number."""
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(done) == n, [(t.number, t.state.name) for t in trials]
    assert len({t.number for t in trials}) == len(trials)
    dirs = [t.user_attrs["run_dir"] for t in done]
    assert len(set(dirs)) == n
    for run_dir in dirs:
        assert json.loads((out / run_dir / "run.json").read_text())["status"] == "completed"
    assert not [t for t in trials if t.state.name == "RUNNING"]
    return done


@pytest.fixture(scope="module")
def toy_study(toy_plugin: PluginEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-trial toy search (5 epochs each) tracked in an MLflow file store."""
    root = tmp_path_factory.mktemp("tune")
    out = root / "study"
    assert main(["tune", "--plugin", "toy", "--trials", "6", "--output", str(out), "--trainer.max_epochs", "5",
                 "--logger", "mlflow", "--tracking-uri", str(root / "mlruns")]) == 0
    return out


def test_search_prunes_and_writes_outputs(toy_study: Path) -> None:
    study = _study(toy_study)
    done = _assert_exact(study, 6, toy_study)
    states = [t.state.name for t in done]
    assert "PRUNED" in states and "COMPLETE" in states, states  # median pruning stopped some trials
    pruned = [t for t in done if t.state.name == "PRUNED"]
    assert all(max(t.intermediate_values) < 4 for t in pruned)  # stopped before the last epoch
    assert done[0].user_attrs["preset"] is True and done[0].params == {"model.hidden_dim": 32, "model.lr": 0.01,
                                                                       "model.dropout": 0.0}
    table = pd.read_csv(toy_study / "trials.csv")
    assert list(table["number"]) == list(range(6))
    for name in ("optimization_history", "param_importances", "slice", "parallel_coordinate"):
        assert (toy_study / "plots" / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
    summary = json.loads((toy_study / "summary.json").read_text())
    best = study.best_trial
    assert summary["best_trial"] == best.number and summary["best_value"] == pytest.approx(best.value)
    assert summary["best_value"] >= summary["preset_value"]
    # only the best trial was tested: its run has test metrics, no other trial has
    for trial in done:
        status = json.loads((toy_study / trial.user_attrs["run_dir"] / "run.json").read_text())
        assert status["tested"] is (trial.number == best.number)
        assert (toy_study / trial.user_attrs["run_dir"] / "metrics.json").is_file() is (trial.number == best.number)
    assert 0.5 < summary["best_trial_test_metrics"]["test/auroc"] <= 1.0
    # any trial is an ordinary run
    assert Run.open(toy_study / done[1].user_attrs["run_dir"]).preset.name == "toy"


def test_best_yaml_reproduces(toy_study: Path, tmp_path: Path) -> None:
    best = _study(toy_study).best_trial
    run = tmp_path / "again"
    assert main(["train", "--config", str(toy_study / "best.yaml"), "--run-dir", str(run), "--no-test"]) == 0
    again = json.loads((run / "run.json").read_text())["validation_metric"]["val/auroc"]
    assert again == pytest.approx(best.value, abs=1e-4)  # same seed, same CPU: the same run


def test_mlflow_store_holds_params_metrics_artifacts(toy_study: Path) -> None:
    from mlflow import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=(toy_study.parent / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("dltk-toy-toy")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("dltk.kind") == "tune"]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 6
    best = _study(toy_study).best_trial
    assert parent.data.metrics["best/val/auroc"] == pytest.approx(best.value)
    assert "best/test/auroc" in parent.data.metrics
    child = next(r for r in children if r.info.run_name == f"trial-{best.number:04d}")
    assert int(child.data.params["model.hidden_dim"]) == best.params["model.hidden_dim"]
    assert child.data.params["data.batch_size"] == "64"
    history = client.get_metric_history(child.info.run_id, "val/auroc")
    assert len(history) >= 2 and max(m.value for m in history) == pytest.approx(best.value, abs=1e-6)
    artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
    assert {"config.yaml", "run.json"} <= artifacts
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "plots")} >= {"plots/optimization_history.png"}


BAD_SPACES = {
    "model.hiden_dim: {type: int, low: 4, high: 8}\n": "unknown key 'model.hiden_dim'",
    "model.lr: {type: float, low: 0.1, high: 0.01}\n": "'low' (0.1) must be below 'high' (0.01)",
    "model.lr: {type: float, low: 0.0, high: 0.1, log: true}\n": "log-scaled range needs low > 0",
    "model.lr: {type: decimal, low: 0.0, high: 0.1}\n": "'type' must be one of float, int, categorical",
    "model.hidden_dim: {type: int, low: 4.5, high: 8}\n": "'low' must be an integer",
    "model.dropout: {type: float, low: 0, high: 0.5, when: {model.lr: 0.1}}\n": "not an earlier key",
    "model.lr: {type: float, low: 0.1\n": "not valid YAML",
    "epochs: [1, 2]\n": "keys are model.*, data.* or trainer.* settings",
}


@pytest.mark.parametrize("text", list(BAD_SPACES))
def test_bad_space_is_one_line_error(toy_plugin: PluginEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     text: str) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(text)
    out = tmp_path / "study"
    assert main(["tune", "--plugin", "toy", "--trials", "3", "--space", str(space), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("dltk: error: "), err
    assert str(space) in err and BAD_SPACES[text] in err, err
    assert not (out / "trials").exists()  # before any trial


def _running_trial_pid(out: Path, deadline: float) -> int:
    """The worker pid of a trial that is training right now (its run.json says running)."""
    while time.time() < deadline:
        for status in sorted((out / "trials").glob("trial-*/run.json")):
            if status.parent.name == "trial-0000":
                continue
            try:
                data = json.loads(status.read_text())
            except (json.JSONDecodeError, OSError):
                continue
            if data.get("status") == "running" and (status.parent / "logs" / "metrics.csv").is_file():
                return int(data["pid"])
        time.sleep(0.05)
    raise AssertionError("no trial started training in time")


def test_killed_worker_then_resume_reaches_n(toy_env: PluginEnv, tmp_path: Path) -> None:
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "dltk.cli", "tune", "--plugin", "toy", "--trials", "3", "--workers", "2",
           "--output", str(out), "--no-test", "--trainer.max_epochs", "12"]
    env = toy_env.environ(MPLBACKEND="Agg")
    parent = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim = _running_trial_pid(out, time.time() + 240)
    assert victim != parent.pid
    os.kill(victim, signal.SIGKILL)
    log, _ = parent.communicate(timeout=300)
    assert f"exited with code {-signal.SIGKILL}" in log, log
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    study = _study(out)
    _assert_exact(study, 3, out)
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert [t.user_attrs["worker"] for t in failed] == [f"{socket.gethostname()}:{victim}"]


def _as_server_user() -> list[str]:
    """initdb refuses to run as root: as root, run the server as the ``postgres`` user."""
    if os.geteuid() != 0:
        return []
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user for initdb")
    if not shutil.which("runuser"):
        pytest.skip("running as root without runuser")
    return ["runuser", "-u", "postgres", "--"]


@pytest.mark.slow
def test_postgresql_storage(toy_plugin: PluginEnv, tmp_path: Path) -> None:
    import pwd
    import tempfile

    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found")
    prefix = _as_server_user()
    server = Path(tempfile.mkdtemp(prefix="dltk-pg-"))
    if prefix:
        entry = pwd.getpwnam("postgres")
        os.chown(server, entry.pw_uid, entry.pw_gid)
    data, port = server / "data", 55432 + os.getpid() % 1000
    subprocess.run([*prefix, initdb, "-D", str(data), "-U", "dltk", "--auth=trust"], check=True, capture_output=True)
    subprocess.run([*prefix, pg_ctl, "-D", str(data), "-l", str(server / "pg.log"), "-w", "start", "-o",
                    f"-p {port} -k {server} -c listen_addresses=''"], check=True, capture_output=True)
    try:
        url = f"postgresql+psycopg2://dltk@/postgres?host={server}&port={port}"
        out = tmp_path / "study"
        args = ["tune", "--plugin", "toy", "--trials", "4", "--output", str(out), "--storage", url,
                "--trainer.max_epochs", "3", "--no-test"]
        assert main(args) == 0
        assert main(args[:4] + ["5"] + args[5:]) == 0  # the same study, one more trial: resumed
        _assert_exact(_study(out, storage=url), 5, out)
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(server, ignore_errors=True)

BUILT_IN = [("chem", "tox21_challenge"), ("genomics", "tf_binding"), ("imaging", "cell_phenotype"),
            ("video", "pose_behavior")]


@pytest.mark.parametrize(("plugin", "preset"), BUILT_IN)
def test_built_in_presets_ship_a_space(plugin: str, preset: str) -> None:
    from dltk.discovery import get_plugin
    from dltk.tune.space import parse_space

    spec = get_plugin(plugin).task(preset)
    space = parse_space(dict(spec.space), preset)
    assert len(space.params) >= 3


@pytest.mark.slow
@pytest.mark.parametrize(("plugin", "preset"), BUILT_IN)
def test_built_in_spaces_name_settings_of_their_preset(plugin: str, preset: str) -> None:
    from dltk.discovery import get_plugin
    from dltk.tune.command import resolved_settings
    from dltk.tune.space import parse_space
    from dltk.tune.worker import Context

    space = parse_space(dict(get_plugin(plugin).task(preset).space), preset)
    settings = resolved_settings(Context(plugin, preset, ["--plugin", plugin, "--task", preset], space, 1,
                                         Path("unused"), "unused"))
    space.check_keys(settings, preset)
    assert space.preset_values(settings)  # trial 0 is the preset


def test_benchmark_with_mlflow_logs_test_metrics(toy_plugin: PluginEnv, tmp_path: Path) -> None:
    """``dltk benchmark --logger mlflow``: each seed's train run is tracked, test metrics included."""
    from mlflow import MlflowClient

    store = tmp_path / "mlruns"
    assert main(["benchmark", "toy_bench_narrow", "--seeds", "1", "--output", str(tmp_path / "bench"),
                 "--logger", "mlflow", "--tracking-uri", str(store)]) == 0
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("dltk-toy-toy").experiment_id])
    metrics = json.loads((tmp_path / "bench" / "runs" / "seed0" / "metrics.json").read_text())
    assert run.data.metrics["test/auroc"] == pytest.approx(metrics["test/auroc"])
    assert "val/auroc.alpha" in run.data.metrics  # per-task keys, file-store safe
    assert run.data.params["trainer.max_epochs"] == "3"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "metrics.json", "plots"} <= artifacts


def test_mlflow_logger_named_in_a_config(toy_plugin: PluginEnv, tmp_path: Path) -> None:
    """A config's ``trainer.logger`` may be dltk's MLflow logger; it gets the artifacts too."""
    from mlflow import MlflowClient

    store = tmp_path / "mlruns"
    config = tmp_path / "tracked.yaml"
    config.write_text("trainer:\n  logger:\n    - class_path: dltk.mlflow_logger.DltkMLFlowLogger\n"
                      f"      init_args:\n        experiment_name: from-config\n        tracking_uri: {store}\n")
    assert main(["train", "--plugin", "toy", "--config", str(config), "--run-dir", str(tmp_path / "run"),
                 "--trainer.max_epochs", "2"]) == 0
    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("from-config").experiment_id])
    assert {"test/auroc", "val/auroc", "val/auroc.alpha", "train/loss"} <= set(run.data.metrics)
    assert {"config.yaml", "metrics.json", "plots"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
