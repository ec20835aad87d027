"""Lightning's MLFlowLogger with metric keys every MLflow store accepts.

MLflow's file store keeps a metric as a file named by its key, so ``val/auprc`` and the per-task
``val/auprc/alpha`` cannot both exist there; per-task keys are logged as ``val/auprc.alpha``.
"""

from __future__ import annotations

from collections.abc import Mapping
from lightning.pytorch.loggers import MLFlowLogger


def metric_key(key: str) -> str:
    """``val/auprc/alpha`` -> ``val/auprc.alpha``; keys with at most one ``/`` are unchanged."""
    stage, sep, rest = key.partition("/")
    return stage + sep + rest.replace("/", ".")


class DltkMLFlowLogger(MLFlowLogger):
    """The MLflow logger ``--logger mlflow`` adds to a run."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:  # type: ignore[override]
        super().log_metrics({metric_key(k): v for k, v in metrics.items()}, step)
