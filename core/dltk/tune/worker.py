"""One ``dltk tune`` worker: ask the study for a trial, train it as an ordinary run, tell the result.

Any number of workers (processes here, or SLURM tasks elsewhere) share one study in Optuna's
storage. Trial creation is serialised by a lock file in the output directory, so the study ends
with exactly the requested number of finished (complete or pruned) trials. A trial left
``RUNNING`` by a worker that died (``kill -9``) is marked failed: on this machine as soon as its
process is gone, on an RDB storage also by Optuna's heartbeat.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dltk.errors import ConfigError
from dltk.tune.space import Space, overrides

LOCK_FILE = "study.lock"
JOURNAL_FILE = "study.journal"


@dataclass
class Context:
    """Everything a worker needs (rebuilt from the same command line in each worker process)."""

    plugin: str
    preset: str
    base_argv: list[str]
    space: Space
    n_trials: int
    output: Path
    study_name: str
    storage_url: str | None = None
    seed: int = 0
    deadline: float | None = None
    tracking_args: list[str] = field(default_factory=list)
    parent_run_id: str | None = None
    pruner: str = "median"
    tracking_uri: str | None = None

    def tracking(self) -> Any:
        """The MLflow tracking of ``--logger mlflow`` (``--tracking-uri`` or the default store)."""
        from dltk.tracking import DEFAULT_URI, Tracking

        return Tracking(self.tracking_uri or DEFAULT_URI)

    def trial_dir(self, number: int) -> Path:
        return self.output / "trials" / f"trial-{number:04d}"


def open_storage(ctx: Context) -> Any:
    """Optuna storage: a journal file in the output directory, or an RDB URL (with heartbeats)."""
    import warnings

    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    if ctx.storage_url:
        try:
            return optuna.storages.RDBStorage(ctx.storage_url, heartbeat_interval=60, grace_period=180)
        except Exception as exc:  # bad URL, unreachable server, missing driver
            raise ConfigError(f"--storage {ctx.storage_url}: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    from optuna.storages.journal import JournalFileBackend

    ctx.output.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(ctx.output / JOURNAL_FILE)))


@contextlib.contextmanager
def study_lock(output: Path) -> Iterator[None]:
    """An exclusive lock on ``OUTPUT/study.lock`` (released by the OS if the holder dies)."""
    output.mkdir(parents=True, exist_ok=True)
    with open(output / LOCK_FILE, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def fail_dead_trials(study: Any) -> list[int]:
    """Mark failed the RUNNING trials whose worker process on this machine is gone (and, on an RDB
    storage with heartbeats, those whose heartbeat is stale); returns their numbers."""
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    fail_stale_trials(study)
    host, failed = socket.gethostname(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if worker_host == host and pid.isdigit() and not _alive(int(pid)):
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            failed.append(trial.number)
            print(f"dltk tune: trial {trial.number} was left running by worker pid {pid}, which stopped; "
                  f"marked failed", flush=True)
    return failed


def counts(study: Any) -> dict[str, int]:
    out = {"done": 0, "running": 0, "failed": 0}
    for trial in study.get_trials(deepcopy=False):
        state = trial.state.name
        if state in ("COMPLETE", "PRUNED"):
            out["done"] += 1
        elif state == "RUNNING":
            out["running"] += 1
        elif state == "FAIL":
            out["failed"] += 1
    return out


def next_trial(study: Any, ctx: Context) -> Any:
    """A new trial, or None when the study has ``n_trials`` finished trials, the deadline passed,
    or as many trials failed as were asked for."""
    while True:
        with study_lock(ctx.output):
            fail_dead_trials(study)
            n = counts(study)
            if n["done"] >= ctx.n_trials or n["failed"] >= max(3, ctx.n_trials):
                return None
            if ctx.deadline is not None and time.time() >= ctx.deadline:
                return None
            if n["done"] + n["running"] < ctx.n_trials:
                trial = study.ask()
                trial.set_user_attr("worker", worker_id())
                return trial
        time.sleep(0.5)  # the last trials are running elsewhere; one of them may still fail


@contextlib.contextmanager
def trial_log(run_dir: Path) -> Iterator[None]:
    """A trial's output goes to ``trials/trial-NNNN.log``, not the terminal (Lightning's model
    summary, logged to stderr, is silenced: it is one table per trial)."""
    import logging

    summary = logging.getLogger("lightning.pytorch.callbacks.model_summary")
    level = summary.level
    summary.setLevel(logging.WARNING)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(run_dir.parent / f"{run_dir.name}.log", "w") as log, contextlib.redirect_stdout(log):
            yield
    finally:
        summary.setLevel(level)


def run_trial(ctx: Context, trial: Any, values: dict[str, Any]) -> float:
    """Train one trial as an ordinary run directory (``--no-test``); its best validation value."""
    import optuna

    from dltk import rundir
    from dltk.train import train
    from dltk.tune.pruning import TrialPruning

    run_dir = ctx.trial_dir(trial.number)
    trial.set_user_attr("run_dir", str(run_dir.relative_to(ctx.output)))
    argv = ctx.base_argv + overrides(values) + ["--run-dir", str(run_dir), "--no-test", *ctx.tracking_args]
    pruning = TrialPruning(trial)
    with trial_log(run_dir):
        train(argv, callbacks=(pruning,), parent_run_id=ctx.parent_run_id)
    if pruning.pruned_at is not None:
        raise optuna.TrialPruned(f"pruned at epoch {pruning.pruned_at}")
    value = rundir.read_status(run_dir).get("validation_metric") or {}
    score = next(iter(value.values()), math.nan)
    if score is None or math.isnan(score):
        raise RuntimeError(f"{run_dir}: no validation metric was recorded")
    return float(score)


def _tell(study: Any, ctx: Context, trial: Any) -> str:
    """Run ``trial`` and record its outcome; a word for the progress line."""
    import optuna
    from optuna.trial import TrialState

    from optuna.storages._heartbeat import get_heartbeat_thread

    values = ctx.space.suggest(trial)
    try:
        # what Study.optimize does: an RDB storage's heartbeat, recorded while the trial runs
        with get_heartbeat_thread(trial._trial_id, study._storage):  # noqa: SLF001
            value = run_trial(ctx, trial, values)
    except optuna.TrialPruned as exc:
        study.tell(trial, state=TrialState.PRUNED)
        return str(exc)
    except (ConfigError, KeyboardInterrupt):
        study.tell(trial, state=TrialState.FAIL)
        raise
    except Exception as exc:
        trial.set_user_attr("error", f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
        study.tell(trial, state=TrialState.FAIL)
        return f"failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    study.tell(trial, value)
    return "complete"


def progress_line(study: Any, ctx: Context, number: int, outcome: str, seconds: float) -> str:
    """``trial 7 (8 of 20 done): complete  val/auroc 0.8123  best 0.8311 (trial 3)  14 s``."""
    monitor = study.user_attrs.get("monitor", "value")
    frozen = study.get_trials(deepcopy=False)[number]
    value = frozen.value
    if value is None and frozen.intermediate_values:
        value = frozen.intermediate_values[max(frozen.intermediate_values)]
    parts = [f"dltk tune: trial {number} ({counts(study)['done']} of {ctx.n_trials} done): {outcome}"]
    if value is not None:
        parts.append(f"{monitor} {value:.4f}")
    try:
        best = study.best_trial
        parts.append(f"best {best.value:.4f} (trial {best.number})")
    except ValueError:
        pass
    parts.append(f"{seconds:.0f} s")
    return "  ".join(parts)


def work(ctx: Context, index: int = 0, threads: int | None = None) -> int:
    """Run trials until the study is done; returns the number of trials this worker ran."""
    import optuna

    if threads:
        import torch

        torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=ctx.study_name, storage=open_storage(ctx),
                              sampler=optuna.samplers.TPESampler(seed=ctx.seed + index),
                              pruner=make_pruner(ctx.n_trials, ctx.pruner))
    ran = 0
    while (trial := next_trial(study, ctx)) is not None:
        start = time.perf_counter()
        outcome = _tell(study, ctx, trial)
        ran += 1
        print(progress_line(study, ctx, trial.number, outcome, time.perf_counter() - start), flush=True)
    return ran


def make_pruner(n_trials: int, kind: str = "median") -> Any:
    """Median pruning after a few finished trials, from the second validation epoch on (or none)."""
    import optuna

    if kind == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=min(5, max(2, n_trials // 4)), n_warmup_steps=1)
