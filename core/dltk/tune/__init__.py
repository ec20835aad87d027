"""``dltk tune``: hyper-parameter search with Optuna over a plugin preset (docs/tuning.md).

This module only declares the command-line options (light: ``dltk --help`` imports it without
torch or Optuna). The work is in :mod:`dltk.tune.command` (the study: preset trial, workers,
resume), :mod:`dltk.tune.worker` (one worker's trials), :mod:`dltk.tune.space` (search spaces),
:mod:`dltk.tune.pruning` (the Lightning callback) and :mod:`dltk.tune.report` (outputs).
"""

from __future__ import annotations

import argparse

DESCRIPTION = (
    "Search a preset's hyper-parameters with Optuna (seeded TPE sampler, median pruning on the "
    "per-epoch validation metric). Trial 0 is the preset itself; every trial is an ordinary run "
    "directory under OUTPUT/trials/ trained with --no-test, so test data is never looked at during the "
    "search; only the best trial is tested, at the end. The study lives in Optuna storage (a journal "
    "file OUTPUT/study.journal, or --storage URL): re-running the same command resumes it. Outputs: "
    "best.yaml (dltk train --config best.yaml reproduces the best trial), trials.csv, plots/*.png, "
    "summary.json. Dotted overrides (--trainer.max_epochs 10 ...) apply to every trial.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``dltk tune`` (the docs' CLI reference is generated from them)."""
    p.add_argument("--plugin", help="plugin to tune (required)")
    p.add_argument("--task", "--preset", dest="task", help="the plugin's preset (default: its first)")
    p.add_argument("--config", "-c", action="append", default=[],
                   help="YAML config applied on top of the preset for every trial (repeatable)")
    p.add_argument("--space", help="search space YAML (default: the preset's own space)")
    p.add_argument("--trials", type=int, help="number of finished (complete or pruned) trials, "
                                              "trial 0 (the preset) included (required)")
    p.add_argument("--timeout", type=float,
                   help="seconds after which no new trial starts (running trials finish)")
    p.add_argument("--study", help="study name (default <plugin>-<preset>)")
    p.add_argument("--storage", help="Optuna RDB URL shared by several machines, e.g. "
                                     "postgresql://user:pw@host/db (default: OUTPUT/study.journal)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes on this machine (torch threads per worker = cores / K)")
    p.add_argument("--output", help="study directory (default tune-results/<plugin>-<preset>)")
    p.add_argument("--seed", type=int, help="sampler seed; also the training seed of every trial "
                                            "(default: the preset's)")
    p.add_argument("--pruner", choices=["median", "none"], default="median",
                   help="median: stop a trial whose validation metric is below the median of earlier trials "
                        "at the same epoch (after a few trials and the first epoch); none: never prune")
    p.add_argument("--no-test", action="store_true", help="do not test the best trial at the end")
    p.add_argument("--logger", choices=["mlflow"], help="track the study in MLflow: one parent run, "
                                                        "every trial nested under it")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default ./mlruns, a local file store)")
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, help=argparse.SUPPRESS)
