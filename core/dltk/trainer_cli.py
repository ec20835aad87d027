"""The LightningCLI that ``dltk train`` builds: the data bound to the model, the run directory
claimed, checkpointing on the model's validation metric, CSV + TensorBoard loggers (plus any the
config adds, e.g. MLflow), atomic checkpoint writes and the resume callbacks."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from dltk import rundir
from dltk.errors import ConfigError
from dltk.mlflow_logger import run_logger
from dltk.plugin import PluginSpec, PresetSpec
from dltk.progress import EpochLine, wants_epoch_lines
from dltk.resilience import AtomicCheckpointIO, FaultInjection, RngState, set_aside_metrics_log
from dltk.tracking import Tracking

RUN_DIR_ENV = "DLTK_RUN_DIR"
"""Rank zero publishes the claimed run directory here; DDP's other ranks read it."""


def is_rank_zero() -> bool:
    """Global rank 0 of a (multi-node) job: torchrun sets RANK, SLURM sets SLURM_PROCID, Lightning's
    own launcher sets LOCAL_RANK/NODE_RANK."""
    for key in ("RANK", "SLURM_PROCID"):
        if key in os.environ:
            return int(os.environ[key]) == 0
    return int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0


def quiet_lightning() -> None:
    """Silence Lightning's start-up chatter ("Seed set to N" would precede a one-line user error
    on stderr) and warnings that do not concern dltk users."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.fabric.utilities.seed"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter.*")
    warnings.filterwarnings("ignore", message=".*isinstance.*treespec.*")


def _with_plugin_defaults(config: dict[str, Any]) -> list[Any]:
    """Lightning ``plugins`` of the trainer config, with atomic checkpoint writes unless the
    config brings its own checkpoint IO."""
    plugins = config.get("plugins")
    plugins = list(plugins) if isinstance(plugins, list | tuple) else ([plugins] if plugins else [])
    if not any(isinstance(p, CheckpointIO) for p in plugins):
        plugins.append(AtomicCheckpointIO())
    return plugins


class DltkCLI(LightningCLI):
    """LightningCLI that binds the data to the model and owns the run directory.

    Args:
        plugin: the plugin being trained.
        task: the preset.
        run_dir: where the run goes (claimed at trainer instantiation).
        resume: the run directory is an unfinished run being resumed.
        resume_epoch: epochs the resumed run has done.
        default_dir: ``run_dir`` is the default name: claim the next free one.
        callbacks: extra callbacks of this process (not part of the saved config).
        tracking: ``--logger mlflow``: where the run is tracked.
    """

    def __init__(self, *args: Any, plugin: PluginSpec, task: PresetSpec, run_dir: Path,
                 resume: bool = False, resume_epoch: int = 0, default_dir: bool = False,
                 callbacks: tuple[Any, ...] = (), tracking: Tracking | None = None, **kwargs: Any) -> None:
        self.dltk_plugin, self.dltk_task, self.dltk_run_dir = plugin, task, run_dir
        self.dltk_resume, self.dltk_resume_epoch, self.dltk_default_dir = resume, resume_epoch, default_dir
        self.dltk_callbacks, self.dltk_tracking = callbacks, tracking
        self.checkpoint_callback: ModelCheckpoint | None = None
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_argument("--plugin", type=str, default=self.dltk_plugin.name,
                            help="dltk plugin (recorded so that the saved config reproduces the run)")
        parser.add_argument("--task", type=str, default=self.dltk_task.name, help="preset (--task NAME)")

    def _check_components(self) -> None:
        allowed = ("dltk", self.dltk_plugin.package)
        for what, obj in (("data", self.datamodule), ("model", self.model)):
            if type(obj).__module__.split(".", 1)[0] not in allowed:
                raise ConfigError(f"{what}.class_path {type(obj).__module__}.{type(obj).__name__} is "
                                  f"not from dltk or plugin package {self.dltk_plugin.package!r}")

    def _claim_run_dir(self) -> Path:
        run_dir = self.dltk_run_dir
        if is_rank_zero():
            if self.dltk_resume:  # the run directory is ours already; keep the epochs done
                set_aside_metrics_log(run_dir / "logs", self.dltk_resume_epoch)
            elif self.dltk_default_dir:
                run_dir = self.dltk_run_dir = rundir.claim_default(self.dltk_plugin.name, self.dltk_task.name)
            else:
                rundir.claim(run_dir)
            os.environ[RUN_DIR_ENV] = str(run_dir.resolve())
        return run_dir

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        self._check_components()
        self.model.bind(self.datamodule.data_info())
        run_dir = self._claim_run_dir()
        monitor, mode = self.model.monitor
        self.checkpoint_callback = ModelCheckpoint(
            dirpath=run_dir / "checkpoints", filename="best", monitor=monitor, mode=mode,
            save_last=True, auto_insert_metric_name=False, enable_version_counter=False)
        config = {**self._get(self.config_init, "trainer", default={}), **kwargs}
        given = config.get("logger")
        given = [] if given in (None, True, False) else (list(given) if isinstance(given, list | tuple) else [given])
        config["logger"] = [CSVLogger(run_dir, name="logs", version=""),
                            TensorBoardLogger(run_dir, name="tensorboard", version="", default_hp_metric=False),
                            *given]
        if self.dltk_tracking is not None:
            config["logger"].append(run_logger(self.dltk_tracking, run_dir, self.dltk_plugin.name,
                                               self.dltk_task.name))
        config["default_root_dir"] = str(run_dir)
        callbacks = list(config.get("callbacks") or [])
        callbacks += [self.checkpoint_callback, RngState(), FaultInjection(), *self.dltk_callbacks]
        if wants_epoch_lines(config.get("enable_progress_bar")):  # a log file: a line per epoch, no bar
            config["enable_progress_bar"] = False
            callbacks.append(EpochLine(monitor, mode))
        config["callbacks"] = callbacks
        config["plugins"] = _with_plugin_defaults(config)
        extra = [self._get(self.config_init, c) for c in self._parser(self.subcommand).callback_keys]
        return self._instantiate_trainer(config, extra)
