"""``dltk tune``: check the space, open (or resume) the study, run the workers, write the outputs.

A new study starts with trial 0, the preset itself, trained in this process: its validation metric
fixes the study's direction and is the baseline of the summary. Workers then share the study
(:mod:`dltk.tune.worker`); ``--workers K`` starts K worker processes of this same command. Running
the same command again resumes the study where it stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from dltk.config_errors import value_from_configs
from dltk.errors import ConfigError
from dltk.tune.space import Space, flatten_config, load_space, parse_space
from dltk.tune.worker import Context, make_pruner, open_storage, study_lock, trial_log, work


def _space(ns: argparse.Namespace, plugin: Any, preset: Any) -> Space:
    if ns.space:
        return load_space(ns.space)
    if not preset.space:
        raise ConfigError(f"preset {plugin.name}/{preset.name} has no default search space; pass --space FILE.yaml "
                          f"(format: docs/tuning.md)")
    return parse_space(dict(preset.space), f"preset {plugin.name}/{preset.name} (default space)")


def context(ns: argparse.Namespace, rest: list[str]) -> Context:
    """Read and check the command line (one-line errors, before any trial)."""
    from dltk.discovery import get_plugin

    plugin_name = ns.plugin or value_from_configs(ns.config, "plugin")
    if not plugin_name:
        raise ConfigError("dltk tune needs --plugin NAME (see `dltk plugins`)")
    if ns.trials is None or ns.trials < 1:
        raise ConfigError("dltk tune needs --trials N (N >= 1)")
    if ns.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {ns.workers}")
    if ns.timeout is not None and ns.timeout <= 0:
        raise ConfigError(f"--timeout must be > 0 seconds, got {ns.timeout}")
    plugin = get_plugin(plugin_name)
    preset = plugin.task(ns.task or value_from_configs(ns.config, "task"))
    base = ["--plugin", plugin.name, "--task", preset.name]
    for path in ns.config:
        base += ["--config", path]
    if ns.seed is not None:
        base += ["--seed", str(ns.seed)]
    tracking = ["--logger", "mlflow"] + (["--tracking-uri", ns.tracking_uri] if ns.tracking_uri else []) \
        if ns.logger == "mlflow" else []
    return Context(plugin.name, preset.name, base + list(rest), _space(ns, plugin, preset), ns.trials,
                   Path(ns.output or f"tune-results/{plugin.name}-{preset.name}"),
                   ns.study or f"{plugin.name}-{preset.name}", ns.storage, ns.seed or 0,
                   time.time() + ns.timeout if ns.timeout else None, tracking, pruner=ns.pruner,
                   tracking_uri=ns.tracking_uri)


def resolved_settings(ctx: Context) -> dict[str, Any]:
    """The preset's resolved config (with the command's --config files and overrides), flat."""
    import yaml

    from dltk.train import train

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        train(ctx.base_argv + ["--print-config"])
    return flatten_config(yaml.safe_load(buf.getvalue()) or {})


def _preset_trial(ctx: Context, storage: Any, settings: dict[str, Any]) -> Any:
    """Train trial 0 (the preset), then create the study with its direction and add the trial."""
    import optuna

    from dltk import rundir
    from dltk.train import train
    from dltk.tune.pruning import TrialPruning

    parent = _parent_run(ctx) if ctx.tracking_args else None
    values = ctx.space.preset_values(settings)
    run_dir = ctx.trial_dir(0)
    if run_dir.exists():  # an unfinished trial 0 of a study that was never created
        shutil.rmtree(run_dir)
    print(f"dltk tune: trial 0 is the preset {ctx.plugin}/{ctx.preset} itself"
          f"{': ' + ', '.join(f'{k}={v}' for k, v in values.items()) if values else ''}", flush=True)
    pruning = TrialPruning(None)
    start = time.perf_counter()
    with trial_log(run_dir):
        train(ctx.base_argv + ["--run-dir", str(run_dir), "--no-test", *ctx.tracking_args],
              callbacks=(pruning,), parent_run_id=parent)
    status = rundir.read_status(run_dir)
    monitor, score = next(iter((status.get("validation_metric") or {"value": None}).items()))
    if score is None:
        raise ConfigError(f"{run_dir}: the preset run recorded no validation metric; dltk tune needs a "
                          f"validation split")
    direction = "maximize" if status.get("validation_mode", "max") == "max" else "minimize"
    study = optuna.create_study(study_name=ctx.study_name, storage=storage, direction=direction,
                                sampler=optuna.samplers.TPESampler(seed=ctx.seed), pruner=make_pruner(ctx.n_trials, ctx.pruner))
    for key, value in {"monitor": monitor, "plugin": ctx.plugin, "preset": ctx.preset,
                       "mlflow_parent_run_id": parent}.items():
        study.set_user_attr(key, value)
    study.add_trial(optuna.trial.create_trial(
        params=values, distributions=ctx.space.distributions(values), value=score,
        intermediate_values=pruning.values, user_attrs={"run_dir": "trials/trial-0000", "preset": True}))
    print(f"dltk tune: trial 0 (1 of {ctx.n_trials} done): preset  {monitor} {score:.4f}  "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    return study


def _parent_run(ctx: Context) -> str:
    return ctx.tracking().parent_run(ctx.plugin, ctx.preset, f"tune-{ctx.study_name}",
                                    {"trials": ctx.n_trials, "study": ctx.study_name,
                                     "space": ", ".join(p.key for p in ctx.space.params)})


def open_study(ctx: Context, settings: dict[str, Any] | None) -> Any:
    """Load the study (resume), or start it with the preset trial; ``settings`` None: load only."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(ctx)
    with study_lock(ctx.output):
        try:
            study = optuna.load_study(study_name=ctx.study_name, storage=storage)
        except KeyError:
            if settings is None:
                raise ConfigError(f"study {ctx.study_name!r} not found in its storage") from None
            return _preset_trial(ctx, storage, settings)
    from dltk.tune.worker import counts

    if settings is not None:
        n = counts(study)
        print(f"dltk tune: resuming study {ctx.study_name!r}: {n['done']} of {ctx.n_trials} trials done, "
              f"{n['failed']} failed, {n['running']} running", flush=True)
    return study


def _run_workers(ctx: Context, workers: int, argv: list[str]) -> list[int]:
    """``workers`` processes of this command in worker mode; their exit codes."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // workers)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    print(f"dltk tune: {workers} worker processes, {threads} torch thread(s) each", flush=True)
    procs = [subprocess.Popen([sys.executable, "-m", "dltk.cli", "tune", *argv, "--worker", str(i),
                               "--threads", str(threads)], env=env) for i in range(workers)]
    while any(p.poll() is None for p in procs):  # polling reaps a killed worker at once
        time.sleep(0.2)
    for i, proc in enumerate(procs):
        if proc.returncode:
            print(f"dltk tune: worker {i} (pid {proc.pid}) exited with code {proc.returncode}", flush=True)
    return [p.returncode for p in procs]


def tune(ns: argparse.Namespace, rest: list[str], argv: list[str]) -> int:
    """Run ``dltk tune``; returns the exit code."""
    ctx = context(ns, rest)
    if ns.worker is not None:  # a worker process started by the command below
        study = open_study(ctx, None)
        ctx.parent_run_id = study.user_attrs.get("mlflow_parent_run_id")
        work(ctx, ns.worker, ns.threads)
        return 0
    settings = resolved_settings(ctx)
    ctx.space.check_keys(settings, f"the resolved config of {ctx.plugin}/{ctx.preset}")
    study = open_study(ctx, settings)
    ctx.parent_run_id = study.user_attrs.get("mlflow_parent_run_id")
    if ns.workers == 1:  # one worker, this process; a SLURM array task samples with its own seed
        work(ctx, int(os.environ.get("SLURM_ARRAY_TASK_ID", "0") or 0))
    else:
        _run_workers(ctx, ns.workers, argv)
    from dltk.tune.report import finish

    return finish(study, ctx, test_best=not ns.no_test)
