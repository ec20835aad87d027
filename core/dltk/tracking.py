"""Experiment tracking with MLflow: ``--logger mlflow [--tracking-uri URI]`` for ``dltk train``,
``dltk benchmark`` and ``dltk tune``.

A tracked run logs its resolved config as params (``model.hidden_dim``, ``data.batch_size``, ...),
the per-epoch metrics (Lightning's :class:`~lightning.pytorch.loggers.MLFlowLogger`), the final
test metrics, and the run directory's ``config.yaml``, ``run.json``, ``metrics.json`` and
``plots/`` as artifacts. ``dltk tune`` opens one parent run and nests every trial under it (the
``mlflow.parentRunId`` tag). An ``MLFlowLogger`` given in a config (``trainer.logger``) gets the
same params and artifacts at the end.

The default tracking URI is MLflow's local file store ``./mlruns``; MLflow 3 keeps that store in
maintenance mode behind ``MLFLOW_ALLOW_FILE_STORE``, which dltk sets (unless you did) for file
URIs. Any other URI (``sqlite:///mlflow.db``, ``http://server:5000``) is passed through.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dltk.errors import ConfigError

DEFAULT_URI = "./mlruns"
INSTALL_HINT = "pip install 'dltk[tune]'"


def tracking_uri(uri: str | None) -> str:
    """A URI MLflow accepts: a plain path becomes an absolute ``file:`` URI (and the file store is
    allowed); anything with a scheme is returned unchanged."""
    uri = uri or DEFAULT_URI
    if "://" in uri or uri.startswith("file:"):
        if uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        return uri
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return Path(uri).expanduser().resolve().as_uri()


def _require_mlflow() -> None:
    import importlib.util

    if importlib.util.find_spec("mlflow") is None:
        raise ConfigError(f"--logger mlflow needs MLflow: {INSTALL_HINT}")


@dataclass(frozen=True)
class Tracking:
    """Where and how a run is tracked.

    Args:
        uri: the MLflow tracking URI (a path is a local file store).
        parent_run_id: nest the run under this MLflow run (``dltk tune`` trials).
        experiment: the MLflow experiment (default ``dltk-<plugin>-<preset>``).
    """

    uri: str = DEFAULT_URI
    parent_run_id: str | None = None
    experiment: str | None = None

    def experiment_name(self, plugin: str, preset: str) -> str:
        return self.experiment or f"dltk-{plugin}-{preset}"

    def client(self) -> Any:
        _require_mlflow()
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=tracking_uri(self.uri))

    def experiment_id(self, plugin: str, preset: str) -> str:
        """The experiment's id, created when missing (a concurrent creation is tolerated)."""
        client = self.client()
        name = self.experiment_name(plugin, preset)
        found = client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(client.create_experiment(name))
        except Exception:  # another process created it first
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    def tags(self, run_dir: Path, plugin: str, preset: str) -> dict[str, str]:
        """The MLflow tags of one run directory (nested under the parent run when there is one)."""
        tags = {"dltk.run_dir": str(run_dir.resolve()), "dltk.plugin": plugin, "dltk.preset": preset}
        if self.parent_run_id:
            tags["mlflow.parentRunId"] = self.parent_run_id
        return tags

    def parent_run(self, plugin: str, preset: str, name: str, params: dict[str, Any]) -> str:
        """Open a parent run (``dltk tune``) and return its id."""
        client = self.client()
        run = client.create_run(self.experiment_id(plugin, preset), run_name=name,
                                tags={"dltk.plugin": plugin, "dltk.preset": preset, "dltk.kind": "tune"})
        log_params(client, run.info.run_id, params)
        return str(run.info.run_id)


def flat_config(config: dict[str, Any]) -> dict[str, Any]:
    """``model.hidden_dim``-style keys for the scalar settings of a resolved config (class paths
    as ``model.class_path``); lists and nested objects are left to the config artifact."""
    out: dict[str, Any] = {}
    for section, value in config.items():
        if not isinstance(value, dict):
            if value is None or isinstance(value, str | int | float | bool):
                out[section] = value
            continue
        if "class_path" in value:
            out[f"{section}.class_path"] = value["class_path"]
        body = value.get("init_args", value) if "class_path" in value else value
        for key, item in (body or {}).items():
            if item is None or isinstance(item, str | int | float | bool):
                out[f"{section}.{key}"] = item
    return out


def log_params(client: Any, run_id: str, params: dict[str, Any]) -> None:
    """Log params in batches of 100 (MLflow's limit); values cut at 500 characters."""
    from mlflow.entities import Param

    items = [Param(key=str(k)[:250], value=str(v)[:500]) for k, v in params.items()]
    for start in range(0, len(items), 100):
        client.log_batch(run_id, params=items[start:start + 100])


def finish(loggers: list[Any], run_dir: Path, metrics: dict[str, float]) -> None:
    """Log the resolved config as params, the test metrics and the run directory's config, status,
    metrics and plots as artifacts to every MLflow logger of a finished run."""
    try:
        from lightning.pytorch.loggers import MLFlowLogger
    except ImportError:  # pragma: no cover - lightning is a core dependency
        return
    tracked = [lg for lg in loggers if isinstance(lg, MLFlowLogger)]
    if not tracked:
        return
    from dltk.loading import read_run_config
    from dltk.rundir import headline

    config = read_run_config(run_dir) if (run_dir / "config.yaml").is_file() else {}
    for lg in tracked:
        client, run_id = lg.experiment, lg.run_id
        known = client.get_run(run_id).data.params
        log_params(client, run_id, {k: v for k, v in flat_config(config or {}).items() if k not in known})
        for key, value in headline(metrics).items():
            if value == value:  # NaN skipped
                client.log_metric(run_id, key, float(value))
        for name in ("config.yaml", "run.json", "metrics.json"):
            if (run_dir / name).is_file():
                client.log_artifact(run_id, str(run_dir / name))
        if (run_dir / "plots").is_dir():
            client.log_artifacts(run_id, str(run_dir / "plots"), "plots")
