"""Training progress for logs that are files, not terminals.

A progress bar redrawn for every batch is right in a terminal and wrong in a SLURM log or a
``> train.log`` redirect, where it becomes megabytes of carriage returns. When standard output is
not a terminal (and the progress bar was not asked for explicitly), dltk turns the bar off and
prints one line per epoch instead::

    dltk: epoch 4/40  train/loss 0.1641  val/auroc 0.8522 (best 0.8551)  7.9 s
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from lightning.pytorch.callbacks import Callback


def wants_epoch_lines(enable_progress_bar: bool | None) -> bool:
    """True when the bar is off by request, or left to dltk and stdout is not a terminal."""
    if enable_progress_bar is None:
        return not sys.stdout.isatty()
    return not enable_progress_bar


class EpochLine(Callback):
    """Print one line per training epoch: the epoch-level train and validation metrics, the best
    value of the monitored metric so far and the epoch's wall time (rank zero only)."""

    def __init__(self, monitor: str | None = None, mode: str = "max") -> None:
        self.monitor, self.mode = monitor, mode
        self.best = math.nan
        self._start = time.perf_counter()

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        values: dict[str, float] = {}
        for key, value in trainer.callback_metrics.items():
            if key.count("/") != 1 or not key.startswith(("train/", "val/")) or key.endswith("_step"):
                continue
            try:
                values[key.removesuffix("_epoch")] = float(value)
            except (TypeError, ValueError):
                continue
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        parts += [f"{k} {v:.4f}" for k, v in sorted(values.items(), key=lambda kv: (kv[0][0] != "t", kv[0]))]
        current = values.get(self.monitor or "", math.nan)
        if not math.isnan(current):
            better = (current > self.best) if self.mode == "max" else (current < self.best)
            if math.isnan(self.best) or better:
                self.best = current
            parts.append(f"(best {self.monitor} {self.best:.4f})")
        parts.append(f"{time.perf_counter() - self._start:.1f} s")
        print("dltk: " + "  ".join(parts), flush=True)
