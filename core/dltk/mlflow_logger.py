"""Lightning's MLFlowLogger with metric keys every MLflow store accepts.

MLflow's file store keeps a metric as a file named by its key, so ``val/auprc`` and the per-task
``val/auprc/alpha`` cannot both exist there; per-task keys are logged as ``val/auprc.alpha``.
``--logger mlflow`` uses this class; a config names it as ``dltk.mlflow_logger.DltkMLFlowLogger``
(the same arguments as Lightning's ``MLFlowLogger``; a plain path as ``tracking_uri`` is a file store).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger

from dltk.tracking import Tracking
from dltk.tracking import tracking_uri as _uri


def metric_key(key: str) -> str:
    """``val/auprc/alpha`` -> ``val/auprc.alpha``; keys with at most one ``/`` are unchanged."""
    stage, sep, rest = key.partition("/")
    return stage + sep + rest.replace("/", ".")


class DltkMLFlowLogger(MLFlowLogger):
    """The MLflow logger of ``--logger mlflow`` (default tracking URI: ``./mlruns``)."""

    def __init__(self, experiment_name: str = "lightning_logs", run_name: str | None = None,
                 tracking_uri: str | None = None, tags: dict[str, Any] | None = None, **kwargs: Any) -> None:
        uri = _uri(tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))
        super().__init__(experiment_name=experiment_name, run_name=run_name, tracking_uri=uri, tags=tags, **kwargs)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:  # type: ignore[override]
        super().log_metrics({metric_key(k): v for k, v in metrics.items()}, step)


def run_logger(tracking: Tracking, run_dir: Path, plugin: str, preset: str) -> DltkMLFlowLogger:
    """The logger ``--logger mlflow`` adds to the run in ``run_dir`` (experiment created first, so
    that parallel workers do not race to create it)."""
    tracking.experiment_id(plugin, preset)
    return DltkMLFlowLogger(experiment_name=tracking.experiment_name(plugin, preset), run_name=run_dir.name,
                            tracking_uri=tracking.uri, tags=tracking.tags(run_dir, plugin, preset))
