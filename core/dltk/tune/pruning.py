"""The per-epoch link between a training run and its Optuna trial: report the monitored validation
metric and stop a hopeless trial.

A pruned trial stops like an early-stopped run (``trainer.should_stop``), so its run directory is
an ordinary finished run; :func:`dltk.tune.worker.run_trial` then tells Optuna it was pruned.
"""

from __future__ import annotations

import math
from typing import Any

from lightning.pytorch.callbacks import Callback


class TrialPruning(Callback):
    """Report ``val/<primary metric>`` to ``trial`` after each validation epoch and stop the run
    when the study's pruner says so. With ``trial=None`` it only records the values (trial 0,
    the preset, which is added to the study after it ran)."""

    def __init__(self, trial: Any = None) -> None:
        self.trial = trial
        self.values: dict[int, float] = {}
        self.pruned_at: int | None = None

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        monitor = pl_module.monitor[0]
        value = trainer.callback_metrics.get(monitor)
        if value is None or math.isnan(float(value)):
            return
        epoch = int(trainer.current_epoch)
        self.values[epoch] = float(value)
        if self.trial is None:
            return
        self.trial.report(float(value), epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            trainer.should_stop = True
