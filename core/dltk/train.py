"""``dltk train``: a preset + YAML + overrides -> a run directory.

Training is built on :class:`lightning.pytorch.cli.LightningCLI` (jsonargparse): the preset is the
parser's default config file, ``--config`` files and dotted overrides are applied on top, and
``--print-config`` prints the fully resolved config. Core adds the run directory, checkpointing on
the model's validation metric, loggers, the final test on the best checkpoint and the artifacts
(:mod:`dltk.trainer_cli`, :mod:`dltk.evaluate`); ``--ensemble K`` is :mod:`dltk.ensemble`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dltk import rundir
from dltk.allowlist import AllowList
from dltk.config_errors import config_error, value_from_configs
from dltk.discovery import get_plugin
from dltk.errors import ConfigError, DltkUserError
from dltk.io import write_json, write_text
from dltk.plugin import PluginSpec, PresetSpec
from dltk.tracking import DEFAULT_URI, Tracking


def _preparser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dltk train", add_help=False)
    p.add_argument("--plugin")
    p.add_argument("--task", "--preset", dest="task")
    p.add_argument("--config", "-c", action="append", default=[])
    p.add_argument("--seed", type=int)
    p.add_argument("--run-dir")
    p.add_argument("--resume")
    p.add_argument("--ensemble", type=int, default=1)
    p.add_argument("--print-config", "--print_config", nargs="?", const=True, default=None)
    p.add_argument("--no-test", action="store_true")
    p.add_argument("--logger", choices=["mlflow"])
    p.add_argument("--tracking-uri")
    p.add_argument("-h", "--help", action="store_true")
    return p


@dataclass
class Request:
    """What one ``dltk train`` command asks for, after the dltk-level flags are read."""

    ns: argparse.Namespace
    rest: list[str]
    plugin: PluginSpec
    task: PresetSpec
    preset: Path
    resume_ckpt: Path | None = None
    resume_epoch: int = 0
    callbacks: tuple[Any, ...] = ()
    tracking: Tracking | None = None

    @property
    def plain_run(self) -> bool:
        """A training run (not --help / --print-config)."""
        return not self.ns.help and self.ns.print_config is None


def _prepare_resume(run_dir: Path, ns: argparse.Namespace) -> Path | None:
    """Check that ``run_dir`` is an unfinished run; return its last checkpoint (None: start over)."""
    if not (run_dir / "config.yaml").is_file() or not (run_dir / rundir.STATUS_FILE).is_file():
        raise ConfigError(f"--resume {run_dir}: not a dltk run directory (no config.yaml / run.json)")
    if ns.plugin or ns.task or ns.run_dir or ns.ensemble != 1:
        raise ConfigError("--resume takes the plugin, task and run directory from the run; "
                          "do not pass --plugin/--task/--run-dir/--ensemble with it")
    if rundir.read_status(run_dir).get("status") == "completed":
        raise ConfigError(f"--resume {run_dir}: the run has already completed")
    for stale in (run_dir / "checkpoints").glob(".*.tmp"):  # a checkpoint write the kill interrupted
        stale.unlink()
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.is_symlink() or last.is_file():
        return last
    print(f"dltk: {run_dir} has no checkpoint yet; training it again from the start", flush=True)
    return None


def _request(argv: list[str]) -> Request | None:
    """Read the dltk-level flags; None when only the generic help was asked for."""
    ns, rest = _preparser().parse_known_args(argv)
    resume_ckpt, resume_epoch = None, 0
    if ns.resume:
        resume_dir = Path(ns.resume)
        resume_ckpt = _prepare_resume(resume_dir, ns)
        if resume_ckpt is not None:
            from dltk.loading import load_checkpoint

            resume_epoch = int(load_checkpoint(resume_ckpt).get("epoch", -1)) + 1
        ns.config = [str(resume_dir / "config.yaml")] + list(ns.config)
        ns.run_dir = str(resume_dir)
    plugin_name = ns.plugin or value_from_configs(ns.config, "plugin")
    if ns.help and not plugin_name:
        print(TRAIN_HELP)
        return None
    if not plugin_name:
        raise ConfigError("dltk train needs --plugin NAME (see `dltk plugins`)")
    if ns.ensemble < 1:
        raise ConfigError(f"--ensemble must be >= 1, got {ns.ensemble}")
    plugin = get_plugin(plugin_name)
    task = plugin.task(ns.task or value_from_configs(ns.config, "task"))
    return Request(ns, rest, plugin, task, plugin.config_path(task), resume_ckpt, resume_epoch)


def _cli_args(req: Request) -> list[str]:
    """The LightningCLI arguments: config files, plugin/task, seed, overrides, help flags."""
    ns = req.ns
    args: list[str] = []
    for path in ns.config:
        args += ["--config", path]
    args += ["--plugin", req.plugin.name, "--task", req.task.name]
    if ns.seed is not None:
        args += ["--seed_everything", str(ns.seed)]
    args += req.rest
    if ns.help:
        args.append("--help")
    if ns.print_config is not None:
        args.append("--print_config" if ns.print_config is True else f"--print_config={ns.print_config}")
    return args


def _build_cli(req: Request) -> Any:
    """Parse and instantiate (data, model, trainer); None after --help / --print-config."""
    from dltk.base import BaseDataModule, BaseModel
    from dltk.trainer_cli import RUN_DIR_ENV, DltkCLI, is_rank_zero, quiet_lightning

    inherited = os.environ.get(RUN_DIR_ENV) if not is_rank_zero() else None
    default_dir = not inherited and not req.ns.run_dir
    run_dir = Path(inherited or req.ns.run_dir or rundir.default_run_dir(req.plugin.name, req.task.name))
    quiet_lightning()
    try:
        return DltkCLI(
            model_class=BaseModel, datamodule_class=BaseDataModule,
            subclass_mode_model=True, subclass_mode_data=True,
            save_config_callback=None, seed_everything_default=0, run=False, args=_cli_args(req),
            parser_kwargs={"default_config_files": [str(req.preset)], "exit_on_error": False, "prog": "dltk train"},
            trainer_defaults={"accelerator": "auto", "devices": 1},
            plugin=req.plugin, task=req.task, run_dir=run_dir, resume=req.ns.resume is not None,
            resume_epoch=req.resume_epoch, default_dir=default_dir, callbacks=req.callbacks,
            tracking=req.tracking)
    except SystemExit as exc:  # --help / --print_config printed and exited
        if exc.code in (0, None):
            return None
        raise ConfigError("invalid arguments (see the message above)") from exc
    except DltkUserError:
        raise
    except (argparse.ArgumentError, TypeError, ValueError, KeyError) as exc:
        raise config_error(exc) from exc
    except Exception as exc:
        if type(exc).__module__.startswith("jsonargparse"):
            raise config_error(exc) from exc
        raise


def _record_start(cli: Any, req: Request, launched: str) -> None:
    """Rank zero: the resolved config and the ``running`` status."""
    run_dir = cli.dltk_run_dir
    write_text(run_dir / "config.yaml", cli.parser.dump(cli.config, skip_none=False))
    if req.ns.resume:
        rundir.write_status(run_dir, "running", resumed=time.strftime("%Y-%m-%dT%H:%M:%S"),
                            resumed_after_epochs=req.resume_epoch, error=None, traceback=None)
        if req.resume_ckpt is not None:
            print(f"dltk: resuming {run_dir} from {req.resume_ckpt.name}: {req.resume_epoch} epoch(s) done",
                  flush=True)
    else:
        rundir.write_status(run_dir, "running", plugin=req.plugin.name, task=req.task.name,
                            seed=cli.config.get("seed_everything"), started=launched, command=sys.argv)
    print(f"dltk: run directory {run_dir}", flush=True)


def _fit_and_test(cli: Any, req: Request) -> None:
    """Fit, then (rank zero) test the best checkpoint and mark the run completed."""
    from dltk.evaluate import finish_run

    run_dir = cli.dltk_run_dir
    cli.trainer.fit(cli.model, datamodule=cli.datamodule,
                    ckpt_path=str(req.resume_ckpt) if req.resume_ckpt is not None else None)
    if cli.trainer.global_rank != 0:
        return
    if cli.trainer.interrupted:
        raise KeyboardInterrupt
    if req.ns.resume:
        from dltk.resilience import merge_metrics_log

        merge_metrics_log(run_dir / "logs")
    write_json(run_dir / "environment.json",
               rundir.environment_record(cli.config.get("seed_everything"), [r.pip_name for r in req.plugin.requires]))
    callback = cli.checkpoint_callback
    best = callback.best_model_path if callback else ""
    ckpt = Path(best) if best else run_dir / "checkpoints" / "last.ckpt"
    monitor, mode = cli.model.monitor
    score = callback.best_model_score if callback is not None else None
    validation = {monitor: float(score)} if score is not None else {}
    if req.ns.no_test:
        metrics: dict[str, float] = {}
        print("dltk: --no-test: the test split was not evaluated", flush=True)
    else:
        metrics = finish_run(run_dir, req.plugin, req.task, cli.datamodule, cli.model, ckpt)
    rundir.write_status(run_dir, "completed", finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
                        best_checkpoint=str(ckpt.resolve().relative_to(run_dir.resolve())),
                        test_metric=rundir.headline(metrics), validation_metric=validation,
                        validation_mode=mode, tested=not req.ns.no_test)
    from dltk import tracking

    tracking.finish(list(cli.trainer.loggers), run_dir, metrics)


def train(argv: list[str], callbacks: tuple[Any, ...] = (), parent_run_id: str | None = None) -> Path | None:
    """Run ``dltk train``; return the run directory (None for --help / --print-config).

    Args:
        argv: the command line after ``dltk train``.
        callbacks: extra Lightning callbacks for this process's trainer (not saved in the config;
            ``dltk tune`` adds its pruning callback here).
        parent_run_id: with ``--logger mlflow``, nest the MLflow run under this run.
    """
    from dltk.trainer_cli import RUN_DIR_ENV

    launched = time.strftime("%Y-%m-%dT%H:%M:%S")  # before data loading: run times include it
    req = _request(argv)
    if req is None:
        return None
    req.callbacks = tuple(callbacks)
    if req.ns.logger == "mlflow":
        req.tracking = Tracking(req.ns.tracking_uri or DEFAULT_URI, parent_run_id)
    AllowList.for_plugin(req.plugin.package).check_files([str(req.preset), *req.ns.config])
    AllowList.for_plugin(req.plugin.package).check_overrides(req.rest)
    if req.ns.ensemble > 1 and req.plain_run:
        from dltk.ensemble import train_ensemble

        run_dir = Path(req.ns.run_dir) if req.ns.run_dir else rundir.default_run_dir(req.plugin.name, req.task.name)
        return train_ensemble(argv, req.ns, req.plugin, req.task, run_dir, train)
    cli = _build_cli(req)
    if cli is None:
        return None
    run_dir = cli.dltk_run_dir
    rank_zero = cli.trainer.global_rank == 0
    if rank_zero:
        _record_start(cli, req, launched)
    try:
        _fit_and_test(cli, req)
    except BaseException as exc:
        if rank_zero:
            rundir.record_failure(run_dir, exc)
        raise
    finally:
        if rank_zero:
            os.environ.pop(RUN_DIR_ENV, None)
    if rank_zero:
        print(f"dltk: run completed: {run_dir}")
    return run_dir


TRAIN_HELP = """usage: dltk train --plugin NAME [--task NAME] [--config FILE.yaml] [--seed N] [--run-dir DIR]
                  [--ensemble K] [--print-config] [--no-test] [--logger mlflow [--tracking-uri URI]]
                  [dotted overrides ...]
       dltk train --resume RUN_DIR [dotted overrides ...]

Train a plugin's preset, keep the best checkpoint on validation, test it, write a run directory.

  --plugin NAME       plugin to use (see `dltk plugins`)
  --task NAME         the plugin's preset (default: its first); --preset NAME is the same
  --config FILE       YAML config applied on top of the preset (repeatable); a run's config.yaml
                      reproduces that run
  --seed N            global seed (default 0)
  --run-dir DIR       where to write the run (default runs/<plugin>-<task>-<timestamp>)
  --resume RUN_DIR    continue an unfinished (killed) run from its last checkpoint: model, optimizer,
                      scheduler, epoch and random state; it ends as an uninterrupted run would
  --ensemble K        train K members (seeds N..N+K-1) and test their average; predictions get
                      the members' standard deviation as an uncertainty column
  --print-config      print the fully resolved config and exit
  --no-test           do not evaluate the test split (validation only; `dltk test --run DIR` later)
  --logger mlflow     also log params, per-epoch metrics, test metrics and artifacts to MLflow
  --tracking-uri URI  MLflow tracking URI (default ./mlruns, a local file store)
  overrides           e.g. --trainer.max_epochs 5 --model.hidden_dim 1024 --data.batch_size 256

`dltk train --plugin NAME --help` lists every option of that plugin's preset.
"""
