"""``dltk train``, ``dltk test`` and ``dltk predict``: a preset + YAML + overrides -> a run directory.

Training is built on :class:`lightning.pytorch.cli.LightningCLI` (jsonargparse): the task preset is
the parser's default config file, ``--config`` files and dotted overrides are applied on top, and
``--print-config`` prints the fully resolved config. Core adds the run directory, checkpointing on
the task's validation metric, loggers, the final test on the best checkpoint and the artifacts.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dltk import combine, rundir
from dltk.discovery import get_plugin
from dltk.errors import ConfigError, DltkUserError
from dltk.inference import ensemble_inference, run_inference  # noqa: F401  (run_inference re-exported)
from dltk.io import atomic_path, write_json, write_text
from dltk.plugin import PluginSpec, TaskSpec

RUN_DIR_ENV = "DLTK_RUN_DIR"


# ------------------------------------------------------------------------------------------------
# train
# ------------------------------------------------------------------------------------------------
def _train_preparser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dltk train", add_help=False)
    p.add_argument("--plugin")
    p.add_argument("--task")
    p.add_argument("--config", "-c", action="append", default=[])
    p.add_argument("--seed", type=int)
    p.add_argument("--run-dir")
    p.add_argument("--resume")
    p.add_argument("--ensemble", type=int, default=1)
    p.add_argument("--print-config", "--print_config", nargs="?", const=True, default=None)
    p.add_argument("-h", "--help", action="store_true")
    return p


def _prepare_resume(run_dir: Path, ns: argparse.Namespace) -> Path | None:
    """Check that ``run_dir`` is an unfinished run; return its last checkpoint (None: start over)."""
    if not (run_dir / "config.yaml").is_file() or not (run_dir / rundir.STATUS_FILE).is_file():
        raise ConfigError(f"--resume {run_dir}: not a dltk run directory (no config.yaml / run.json)")
    if ns.plugin or ns.task or ns.run_dir or ns.ensemble != 1:
        raise ConfigError("--resume takes the plugin, task and run directory from the run; "
                          "do not pass --plugin/--task/--run-dir/--ensemble with it")
    status = rundir.read_status(run_dir).get("status")
    if status == "completed":
        raise ConfigError(f"--resume {run_dir}: the run has already completed")
    for stale in (run_dir / "checkpoints").glob(".*.tmp"):  # a checkpoint write the kill interrupted
        stale.unlink()
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.is_symlink() or last.is_file():
        return last
    print(f"dltk: {run_dir} has no checkpoint yet; training it again from the start", flush=True)
    return None


def _from_configs(paths: Iterable[str], key: str) -> str | None:
    value = None
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config file must be a YAML mapping")
        value = data.get(key, value)
    return value


ALLOWED_THIRD_PARTY = ("lightning", "torch", "torchmetrics")
"""Besides dltk and the active plugin, configs may name classes from these (callbacks, optimisers)."""


def _class_paths(obj: Any) -> Iterable[str]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "class_path" and isinstance(value, str):
                yield value
            else:
                yield from _class_paths(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _class_paths(value)


def check_class_paths(config_files: Iterable[str], overrides: list[str], plugin: PluginSpec) -> None:
    """Refuse, before anything is imported, a class_path outside dltk, the plugin and Lightning."""
    allowed = ("dltk", plugin.package, *ALLOWED_THIRD_PARTY)
    found: list[tuple[str, str]] = []
    for path in config_files:
        data = yaml.safe_load(Path(path).read_text()) or {}
        found += [(path, cp) for cp in _class_paths(data)]
    for i, arg in enumerate(overrides):
        key, eq, value = arg.partition("=")
        if not eq and i + 1 < len(overrides):
            value = overrides[i + 1]
        if key.endswith(".class_path") or key in ("--model", "--data") or key.endswith("callbacks+"):
            if value.strip().startswith("{") or value.strip().startswith("["):
                try:
                    found += [(key, cp) for cp in _class_paths(yaml.safe_load(value))]
                except yaml.YAMLError:
                    pass
            elif "." in value:
                found.append((key, value))
    for origin, class_path in found:
        if class_path.split(".", 1)[0] not in allowed:
            raise ConfigError(f"{origin}: class_path {class_path!r} is not from dltk, plugin package "
                              f"{plugin.package!r} or Lightning; refusing to import it")


def _is_rank_zero() -> bool:
    """Global rank 0 of a (multi-node) job: torchrun sets RANK, SLURM sets SLURM_PROCID, Lightning's
    own launcher sets LOCAL_RANK/NODE_RANK."""
    for key in ("RANK", "SLURM_PROCID"):
        if key in os.environ:
            return int(os.environ[key]) == 0
    return int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0


def _make_cli_class() -> type:
    from lightning.fabric.plugins import CheckpointIO
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.cli import LightningCLI
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from dltk.progress import EpochLine, wants_epoch_lines
    from dltk.resilience import AtomicCheckpointIO, FaultInjection, RngState, set_aside_metrics_log

    class DltkCLI(LightningCLI):
        """LightningCLI that binds the data to the model and owns the run directory."""

        def __init__(self, *args: Any, plugin: PluginSpec, task: TaskSpec, run_dir: Path | None,
                     resume: bool = False, resume_epoch: int = 0, default_dir: bool = False,
                     **kwargs: Any) -> None:
            self.dltk_plugin, self.dltk_task, self.dltk_run_dir = plugin, task, run_dir
            self.dltk_resume, self.dltk_resume_epoch, self.dltk_default_dir = resume, resume_epoch, default_dir
            self.checkpoint_callback: ModelCheckpoint | None = None
            super().__init__(*args, **kwargs)

        def add_arguments_to_parser(self, parser: Any) -> None:
            parser.add_argument("--plugin", type=str, default=self.dltk_plugin.name,
                                help="dltk plugin (recorded so that the saved config reproduces the run)")
            parser.add_argument("--task", type=str, default=self.dltk_task.name, help="task preset")

        def instantiate_trainer(self, **kwargs: Any) -> Any:
            allowed = ("dltk", self.dltk_plugin.package)
            for what, obj in (("data", self.datamodule), ("model", self.model)):
                top = type(obj).__module__.split(".", 1)[0]
                if top not in allowed:
                    raise ConfigError(f"{what}.class_path {type(obj).__module__}.{type(obj).__name__} is "
                                      f"not from dltk or plugin package {self.dltk_plugin.package!r}")
            self.model.bind(self.datamodule.data_info())
            run_dir = self.dltk_run_dir
            assert run_dir is not None
            if _is_rank_zero():
                if self.dltk_resume:  # the run directory is ours already; keep the epochs done
                    set_aside_metrics_log(run_dir / "logs", self.dltk_resume_epoch)
                elif self.dltk_default_dir:
                    run_dir = self.dltk_run_dir = rundir.claim_default(self.dltk_plugin.name, self.dltk_task.name)
                else:
                    rundir.claim(run_dir)
                os.environ[RUN_DIR_ENV] = str(run_dir.resolve())
            monitor, mode = self.model.monitor
            self.checkpoint_callback = ModelCheckpoint(
                dirpath=run_dir / "checkpoints", filename="best", monitor=monitor, mode=mode,
                save_last=True, auto_insert_metric_name=False, enable_version_counter=False)
            loggers = [CSVLogger(run_dir, name="logs", version=""),
                       TensorBoardLogger(run_dir, name="tensorboard", version="", default_hp_metric=False)]
            kwargs.update(logger=loggers, default_root_dir=str(run_dir))
            extra = [self._get(self.config_init, c) for c in self._parser(self.subcommand).callback_keys]
            config = {**self._get(self.config_init, "trainer", default={}), **kwargs}
            callbacks = list(config.get("callbacks") or [])
            callbacks += [self.checkpoint_callback, RngState(), FaultInjection()]
            if wants_epoch_lines(config.get("enable_progress_bar")):  # a log file: a line per epoch, no bar
                config["enable_progress_bar"] = False
                callbacks.append(EpochLine(monitor, mode))
            config["callbacks"] = callbacks
            plugins = config.get("plugins")
            plugins = list(plugins) if isinstance(plugins, list | tuple) else ([plugins] if plugins else [])
            if not any(isinstance(p, CheckpointIO) for p in plugins):
                plugins.append(AtomicCheckpointIO())
            config["plugins"] = plugins
            return self._instantiate_trainer(config, extra)

    return DltkCLI


def _cli_error(exc: BaseException) -> ConfigError:
    """Turn jsonargparse's chained errors into one line: the key at fault, the innermost reason,
    and close matches for a misspelt option."""
    import difflib
    import inspect
    import re

    chain: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 20:
        chain.append(" ".join(str(seen).split()))
        seen = seen.__cause__ or seen.__context__
    text = "\n".join(chain)
    keys = list(dict.fromkeys(re.findall(r'Parser key "([^"]+)"', text)))
    key = ".".join(keys) if keys else None
    unknown = re.search(r"Option '([^']+)' is not accepted|Unrecognized arguments: (\S+)", text)
    if unknown:
        name = next(g for g in unknown.groups() if g)
        hint = ""
        cls_match = re.search(r"class_path '([^']+)'", text)
        if cls_match:
            module, _, cls_name = cls_match.group(1).rpartition(".")
            cls = getattr(sys.modules.get(module), cls_name, None)
            if cls is not None:
                params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")]
                for base in cls.__mro__[1:]:
                    if base.__module__.startswith("dltk"):
                        params += [p for p in inspect.signature(base.__init__).parameters
                                   if p not in ("self", "kwargs", "args")]
                valid = sorted(set(params))
                close = difflib.get_close_matches(name.lstrip("-").split(".")[-1], valid, n=3)
                hint = f"; did you mean: {', '.join(close)}?" if close else f"; valid keys: {', '.join(valid)}"
        where = f"{key}." if key and not name.startswith("--") else ""
        return ConfigError(f"unknown config key {where}{name.lstrip('-')}{hint}")
    for message in reversed(chain):
        for expected, got in re.findall(r"Expected a (.+?)\.? (?:Got value|Given value): (\S+)", message):
            if "NoneType" in expected:
                continue
            expected = re.sub(r"<class '(\w+)'>", r"\1", expected).replace("typing.", "")
            return ConfigError(f"config key {key}: expected {expected}, got {got.rstrip('.')!r}")
    innermost = next((m for m in reversed(chain) if m and "Union subtypes" not in m), chain[-1])
    for m in chain:
        if "Expected a" in m or "Got value" in m or "invalid" in m.lower():
            innermost = m
            break
    prefix = f"config key {key}: " if key and key not in innermost else ""
    return ConfigError(f"{prefix}{innermost[:300]}")


def train(argv: list[str]) -> Path | None:
    """Run ``dltk train``; return the run directory (None for --help / --print-config)."""
    launched = time.strftime("%Y-%m-%dT%H:%M:%S")  # before data loading: run times include it
    ns, rest = _train_preparser().parse_known_args(argv)
    resume_ckpt: Path | None = None
    resume_epoch = 0
    if ns.resume:
        resume_dir = Path(ns.resume)
        resume_ckpt = _prepare_resume(resume_dir, ns)
        if resume_ckpt is not None:
            from dltk.loading import load_checkpoint

            resume_epoch = int(load_checkpoint(resume_ckpt).get("epoch", -1)) + 1
        ns.config = [str(resume_dir / "config.yaml")] + list(ns.config)
        ns.run_dir = str(resume_dir)
    plugin_name = ns.plugin or _from_configs(ns.config, "plugin")
    if ns.help and not plugin_name:
        print(TRAIN_HELP)
        return None
    if not plugin_name:
        raise ConfigError("dltk train needs --plugin NAME (see `dltk plugins`)")
    plugin = get_plugin(plugin_name)
    task = plugin.task(ns.task or _from_configs(ns.config, "task"))
    preset = plugin.config_path(task)

    check_class_paths([str(preset), *ns.config], rest, plugin)
    args: list[str] = []
    for path in ns.config:
        args += ["--config", path]
    args += ["--plugin", plugin.name, "--task", task.name]
    if ns.seed is not None:
        args += ["--seed_everything", str(ns.seed)]
    args += rest
    if ns.help:
        args.append("--help")
    if ns.print_config is not None:
        args.append("--print_config" if ns.print_config is True else f"--print_config={ns.print_config}")

    if ns.ensemble > 1 and not ns.help and ns.print_config is None:
        run_dir = Path(ns.run_dir) if ns.run_dir else rundir.default_run_dir(plugin.name, task.name)
        return train_ensemble(argv, ns, plugin, task, run_dir)
    if ns.ensemble < 1:
        raise ConfigError(f"--ensemble must be >= 1, got {ns.ensemble}")

    inherited = os.environ.get(RUN_DIR_ENV) if not _is_rank_zero() else None
    default_dir = False
    if inherited:
        run_dir = Path(inherited)
    elif ns.run_dir:
        run_dir = Path(ns.run_dir)
    else:
        run_dir = rundir.default_run_dir(plugin.name, task.name)  # claimed (atomically) by the CLI
        default_dir = True

    _quiet_lightning()
    from jsonargparse import ArgumentParser  # noqa: F401  (imported for its error type below)

    cli_class = _make_cli_class()
    try:
        cli = cli_class(
            model_class=_base("BaseTask"), datamodule_class=_base("BaseDataModule"),
            subclass_mode_model=True, subclass_mode_data=True,
            save_config_callback=None, seed_everything_default=0, run=False, args=args,
            parser_kwargs={"default_config_files": [str(preset)], "exit_on_error": False,
                           "prog": "dltk train"},
            trainer_defaults={"accelerator": "auto", "devices": 1},
            plugin=plugin, task=task, run_dir=run_dir, resume=ns.resume is not None, resume_epoch=resume_epoch,
            default_dir=default_dir,
        )
    except SystemExit as exc:  # --help / --print_config printed and exited
        if exc.code in (0, None):
            return None
        raise ConfigError("invalid arguments (see the message above)") from exc
    except DltkUserError:
        raise
    except (argparse.ArgumentError, TypeError, ValueError, KeyError) as exc:
        raise _cli_error(exc) from exc
    except Exception as exc:
        if type(exc).__module__.startswith("jsonargparse"):
            raise _cli_error(exc) from exc
        raise

    run_dir = cli.dltk_run_dir
    rank_zero = cli.trainer.global_rank == 0
    seed = cli.config.get("seed_everything")
    if rank_zero:
        write_text(run_dir / "config.yaml", cli.parser.dump(cli.config, skip_none=False))
        if ns.resume:
            rundir.write_status(run_dir, "running", resumed=time.strftime("%Y-%m-%dT%H:%M:%S"),
                                resumed_after_epochs=resume_epoch, error=None, traceback=None)
            if resume_ckpt is not None:
                print(f"dltk: resuming {run_dir} from {resume_ckpt.name}: {resume_epoch} epoch(s) done", flush=True)
        else:
            rundir.write_status(run_dir, "running", plugin=plugin.name, task=task.name, seed=seed,
                                started=launched, command=sys.argv)
        print(f"dltk: run directory {run_dir}", flush=True)
    try:
        cli.trainer.fit(cli.model, datamodule=cli.datamodule,
                        ckpt_path=str(resume_ckpt) if resume_ckpt is not None else None)
        if not rank_zero:
            return run_dir
        if cli.trainer.interrupted:
            raise KeyboardInterrupt
        if ns.resume:
            from dltk.resilience import merge_metrics_log

            merge_metrics_log(run_dir / "logs")
        write_json(run_dir / "environment.json",
                   rundir.environment_record(seed, [r.pip_name for r in plugin.requires]))
        best = cli.checkpoint_callback.best_model_path if cli.checkpoint_callback else ""
        ckpt = Path(best) if best else run_dir / "checkpoints" / "last.ckpt"
        metrics = finish_run(run_dir, plugin, task, cli.datamodule, cli.model, ckpt)
        rundir.write_status(run_dir, "completed", finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
                            best_checkpoint=str(ckpt.resolve().relative_to(run_dir.resolve())),
                            test_metric={k: metrics[k] for k in metrics if k.count("/") == 1})
    except BaseException as exc:
        if rank_zero:
            rundir.write_status(run_dir, "failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0],
                                traceback=traceback.format_exc(limit=20))
        raise
    finally:
        if rank_zero:
            os.environ.pop(RUN_DIR_ENV, None)
    print(f"dltk: run completed: {run_dir}")
    return run_dir


def _base(name: str) -> type:
    import dltk.base

    return getattr(dltk.base, name)


def _quiet_lightning() -> None:
    import logging
    import warnings

    # "Seed set to N" (fabric.utilities.seed) would precede a one-line user error on stderr
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.fabric.utilities.seed"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter.*")
    warnings.filterwarnings("ignore", message=".*isinstance.*treespec.*")


def _strip_options(argv: list[str], names: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        key = arg.split("=", 1)[0]
        if key in names:
            skip = "=" not in arg
            continue
        out.append(arg)
    return out


def train_ensemble(argv: list[str], ns: argparse.Namespace, plugin: PluginSpec, task: TaskSpec,
                   run_dir: Path) -> Path:
    """``--ensemble K``: train K members (seeds s, s+1, ...) under ``RUN/members/<k>/``, then test
    their average; predictions carry the members' standard deviation as an uncertainty column."""
    import shutil

    from dltk.loading import allowed_packages, build_datamodule, read_run_config

    rundir.claim(run_dir)
    base_seed = ns.seed if ns.seed is not None else int(_from_configs(ns.config, "seed_everything") or 0)
    rundir.write_status(run_dir, "running", plugin=plugin.name, task=task.name, ensemble=ns.ensemble,
                        seed=base_seed, started=time.strftime("%Y-%m-%dT%H:%M:%S"), command=sys.argv)
    member_argv = _strip_options(argv, ("--ensemble", "--run-dir", "--seed"))
    try:
        members = []
        for k in range(ns.ensemble):
            member = run_dir / "members" / str(k)
            print(f"dltk: ensemble member {k + 1}/{ns.ensemble} (seed {base_seed + k}) -> {member}", flush=True)
            train(member_argv + ["--seed", str(base_seed + k), "--run-dir", str(member)])
            members.append(member)
        shutil.copyfile(members[0] / "config.yaml", run_dir / "config.yaml")
        shutil.copyfile(members[0] / "environment.json", run_dir / "environment.json")
        config = read_run_config(run_dir)
        models = _load_run_models(run_dir, config, plugin, "best")
        datamodule = build_datamodule(config, allowed_packages(plugin.package))
        print(f"dltk: testing the average of {len(models)} members")
        metrics = evaluate(run_dir, plugin, task, datamodule, models)
        member_metrics = [json_load(m / "metrics.json") for m in members]
        write_json(run_dir / "ensemble.json", {"members": [str(m.relative_to(run_dir)) for m in members],
                                               "seeds": [base_seed + k for k in range(ns.ensemble)],
                                               "member_metrics": member_metrics})
        rundir.write_status(run_dir, "completed", finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
                            test_metric={k: metrics[k] for k in metrics if k.count("/") == 1})
    except BaseException as exc:
        rundir.write_status(run_dir, "failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0],
                            traceback=traceback.format_exc(limit=20))
        raise
    print(f"dltk: ensemble run completed: {run_dir}")
    return run_dir


def json_load(path: Path) -> Any:
    import json

    return json.loads(Path(path).read_text())


# ------------------------------------------------------------------------------------------------
# evaluation shared by train / test
# ------------------------------------------------------------------------------------------------
def evaluate(run_dir: Path, plugin: PluginSpec, task: TaskSpec, datamodule: Any, model: Any,
             write: bool = True) -> dict[str, float]:
    """Test ``model`` (or the average of a list of models) on the datamodule's test split; write
    predictions, metrics and plots (through the model's and datamodule's evaluation hooks)."""
    from dltk import plots

    models = model if isinstance(model, list) else [model]
    model = models[0]
    datamodule.setup("test")
    values = model.evaluate_run(datamodule, models, run_dir if write else None)
    if values is None:
        preds, std, target = ensemble_inference(models, datamodule.test_dataloader())
        values = model.test_metrics(preds, target)
        if write:
            write_test_outputs(run_dir, f"{plugin.name} / {task.name}: test", datamodule, model, preds, std,
                               target)
    metrics = {f"test/{k}": v for k, v in values.items()}
    if write:
        write_json(run_dir / "metrics.json", metrics)
        plots.learning_curves(run_dir / "logs" / "metrics.csv", run_dir / "plots" / "learning_curves.png",
                              f"val/{model.primary_metric[0]}", model.primary_metric[1])
    print_summary(metrics, model, task)
    return metrics


def write_test_outputs(run_dir: Path, title: str, datamodule: Any, model: Any, preds: np.ndarray,
                       std: np.ndarray | None, target: np.ndarray) -> None:
    """Core's standard test outputs: ``predictions/test.csv`` (the datamodule's test records beside
    the model's output columns), the model's test plots and the datamodule's test artifacts."""
    import pandas as pd

    records = datamodule.test_records().reset_index(drop=True)
    columns = model.output_columns(preds, std, target)
    n_rows = len(next(iter(columns.values()))) if columns else len(records)
    if len(records) != n_rows:
        raise RuntimeError(f"{type(datamodule).__name__}.test_records() has {len(records)} rows for "
                           f"{n_rows} predictions")
    table = pd.concat([records, pd.DataFrame(columns)], axis=1)
    with atomic_path(run_dir / "predictions" / "test.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    model.write_test_plots(run_dir / "plots", preds, target, title)
    datamodule.test_artifacts(run_dir, preds, target)


def finish_run(run_dir: Path, plugin: PluginSpec, task: TaskSpec, datamodule: Any, model: Any,
               ckpt: Path) -> dict[str, float]:
    """Load the best checkpoint's weights (weights_only) into ``model`` and test it."""
    from dltk.loading import load_checkpoint

    state = load_checkpoint(ckpt)
    model.load_state_dict(state["state_dict"])
    print(f"dltk: testing best checkpoint {ckpt.name} (epoch {state.get('epoch')})")
    return evaluate(run_dir, plugin, task, datamodule, model)


def print_summary(metrics: dict[str, float], model: Any, task: TaskSpec) -> None:
    """Test table with published references beside ours: per task (per class for multiclass)."""
    primary = model.primary_metric[0]
    per_key = "f1" if model.task_type == "multiclass" else primary.split("/")[0]
    names = list(model.class_names or []) if model.task_type == "multiclass" else list(model.task_names)
    refs = [r for r in task.references if r.metric in (primary, per_key)]
    headers = ["task" if model.task_type != "multiclass" else "class", f"test {per_key}"] + [r.name for r in refs]
    rows = []
    shown = names if len(names) <= 24 else names[:20]
    for name in shown + ["mean" if per_key == primary else primary]:
        key = f"test/{per_key}/{name}"
        if name in ("mean", primary):
            key = f"test/{primary}"
        value = metrics.get(key, math.nan)
        row = [name, "n/a" if value is None or math.isnan(value) else f"{value:.3f}"]
        for ref in refs:
            rv = ref.values.get("mean" if name in ("mean", primary) else name)
            row.append("" if rv is None else f"{rv:.3f}")
        rows.append(row)
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
    line = "  ".join("-" * w for w in widths)
    print()
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print(line)
    for i, row in enumerate(rows):
        if i == len(rows) - 1:
            if len(shown) < len(names):
                print(f"... {len(names) - len(shown)} more (every value is in metrics.json)")
            print(line)
        print("  ".join(str(c).ljust(w) if j == 0 else str(c).rjust(w) for j, (c, w) in
                        enumerate(zip(row, widths))))
    others = [k for k in metrics if k.count("/") == 1 and k != f"test/{primary}"]
    if others:
        print("other test metrics: " + ", ".join(f"{k}={metrics[k]:.3f}" for k in others))
    for ref in refs:
        print(f"{ref.name}: {ref.citation}")
    print()


# ------------------------------------------------------------------------------------------------
# test / predict on an existing run
# ------------------------------------------------------------------------------------------------
def _open_run(run: str) -> tuple[Path, dict[str, Any], PluginSpec, TaskSpec]:
    from dltk.loading import read_run_config

    run_dir = Path(run)
    if not run_dir.is_dir():
        raise ConfigError(f"run directory not found: {run}")
    config = read_run_config(run_dir)
    plugin = get_plugin(str(config.get("plugin")))
    task = plugin.task(config.get("task"))
    return run_dir, config, plugin, task


def _load_run_model(run_dir: Path, config: dict[str, Any], plugin: PluginSpec, which: str) -> Any:
    from dltk.loading import allowed_packages, build_model, checkpoint_path, load_checkpoint

    ckpt = load_checkpoint(checkpoint_path(run_dir, which))
    return build_model(config, ckpt, allowed_packages(plugin.package))


def _load_run_models(run_dir: Path, config: dict[str, Any], plugin: PluginSpec, which: str) -> list[Any]:
    """The run's model, or every member of an ensemble run (``members/<k>/``)."""
    members_dir = run_dir / "members"
    if members_dir.is_dir():
        members = sorted((p for p in members_dir.iterdir() if p.is_dir()), key=lambda p: int(p.name))
        if not members:
            raise ConfigError(f"{run_dir}: ensemble run without members")
        return [_load_run_model(m, config, plugin, which) for m in members]
    return [_load_run_model(run_dir, config, plugin, which)]


def test(run: str, which: str | None = None) -> dict[str, float]:
    """Re-evaluate a finished run's checkpoint on its test split (nothing in the run is changed)."""
    from dltk.loading import allowed_packages, build_datamodule

    run_dir, config, plugin, task = _open_run(run)
    _quiet_lightning()
    if combine.members_of(run_dir) is not None:
        return combine.test(run_dir, which)
    which = which or "best"
    models = _load_run_models(run_dir, config, plugin, which)
    datamodule = build_datamodule(config, allowed_packages(plugin.package))
    return evaluate(run_dir, plugin, task, datamodule, models, write=False)


def predict(run: str, input_path: str, output_path: str, which: str | None = None,
            options: list[str] | None = None, **kwargs: Any) -> dict[str, int]:
    """Predict every row of ``input_path`` with the run's model; stream results into ``output_path``.

    A datamodule whose inputs are not rows of a table (images, slides, videos) handles the whole
    prediction in its ``predict_file`` hook; ``options`` are its plugin-specific options.
    """
    from dltk.loading import allowed_packages, build_datamodule

    run_dir, config, plugin, task = _open_run(run)
    if not Path(input_path).exists():
        raise ConfigError(f"input file not found: {input_path}")
    if combine.members_of(run_dir) is not None:
        return combine.predict(run_dir, input_path, output_path, which, options, **kwargs)
    which = which or "best"
    models = _load_run_models(run_dir, config, plugin, which)
    model = models[0]
    datamodule = build_datamodule(config, allowed_packages(plugin.package))
    counts = datamodule.predict_file(input_path, output_path, models, list(options or []))
    if counts is not None:
        print("dltk predict: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f" -> {output_path}")
        return counts
    if options:
        raise ConfigError(f"unknown predict option(s) for {plugin.name}/{task.name}: {' '.join(options)}")
    if not Path(input_path).is_file():
        raise ConfigError(f"input is not a file: {input_path}")
    chunks = score_chunks(models, datamodule.predict_chunks(input_path, data_info=model.data_info, **kwargs))
    return write_prediction_table(Path(output_path), model, chunks, with_std=len(models) > 1)


def score_chunks(models: list[Any], chunks: Iterable[tuple[Any, Any]]) -> Iterable[tuple[Any, Any, Any]]:
    """``(records, preds, std)`` for each ``(records, loader)`` chunk of a datamodule's
    ``predict_chunks``: the average of ``models`` over the usable rows (None when there are none)."""
    for records, loader in chunks:
        records = records.reset_index(drop=True)
        ok = records["error"].fillna("").eq("").to_numpy()
        if loader is not None and ok.any():
            preds, std, _ = ensemble_inference(models, loader)
            yield records, preds, std
        else:
            yield records, None, None


def write_prediction_table(out: Path, model: Any, chunks: Iterable[tuple[Any, Any, Any]],
                           with_std: bool) -> dict[str, int]:
    """Stream scored chunks into ``out`` (CSV, written atomically): each input row with its
    ``error`` (empty when scored) and the model's output columns; returns the row counts."""
    counts = {"rows": 0, "predicted": 0, "errors": 0}
    with atomic_path(out) as tmp:
        header = True
        for records, preds, std in chunks:
            ok = records["error"].fillna("").eq("").to_numpy()
            table = records.copy()
            if preds is not None:
                columns = model.output_columns(preds, std)
            else:
                probe = np.zeros((1, model.num_classes or model.num_tasks), np.float32)
                columns = {k: v[:0] for k, v in model.output_columns(probe, probe if with_std else None).items()}
            for name, values in columns.items():
                col = np.full(len(records), np.nan, dtype=object if values.dtype == object else np.float32)
                if len(values):
                    col[ok] = values
                table[name] = col
            table.to_csv(tmp, mode="a", header=header, index=False, float_format="%.6g")
            header = False
            counts["rows"] += len(records)
            counts["predicted"] += int(ok.sum())
            counts["errors"] += int((~ok).sum())
    print(f"dltk predict: {counts['rows']} rows, {counts['predicted']} predicted, "
          f"{counts['errors']} with errors (see the 'error' column) -> {out}")
    return counts


def explain(run: str, argv: list[str], which: str = "best") -> list[Path]:
    """Run the plugin's explainer (``PluginSpec.explainer``) on a finished run."""
    import importlib

    from dltk.loading import allowed_packages, build_datamodule

    run_dir, config, plugin, task = _open_run(run)
    combine.refuse_combined(run_dir, "explain")
    if not plugin.explainer:
        raise ConfigError(f"plugin {plugin.name!r} does not provide explanations")
    module_name, _, func_name = plugin.explainer.partition(":")
    if module_name.split(".", 1)[0] != plugin.package:
        raise ConfigError(f"explainer {plugin.explainer!r} is outside plugin package {plugin.package!r}")
    function = getattr(importlib.import_module(module_name), func_name)
    model = _load_run_models(run_dir, config, plugin, which)[0]  # an ensemble: its first member
    datamodule = build_datamodule(config, allowed_packages(plugin.package))
    paths = function(run_dir, model, datamodule, list(argv))
    for path in paths:
        print(f"dltk explain: wrote {path}")
    return paths


TRAIN_HELP = """usage: dltk train --plugin NAME [--task NAME] [--config FILE.yaml] [--seed N] [--run-dir DIR]
                  [--ensemble K] [--print-config] [dotted overrides ...]
       dltk train --resume RUN_DIR [dotted overrides ...]

Train a plugin's task preset, keep the best checkpoint on validation, test it, write a run directory.

  --plugin NAME       plugin to use (see `dltk plugins`)
  --task NAME         task preset (default: the plugin's first task)
  --config FILE       YAML config applied on top of the preset (repeatable); a run's config.yaml
                      reproduces that run
  --seed N            global seed (default 0)
  --run-dir DIR       where to write the run (default runs/<plugin>-<task>-<timestamp>)
  --resume RUN_DIR    continue an unfinished (killed) run from its last checkpoint: model, optimizer,
                      scheduler, epoch and random state; it ends as an uninterrupted run would
  --ensemble K        train K members (seeds N..N+K-1) and test their average; predictions get
                      the members' standard deviation as an uncertainty column
  --print-config      print the fully resolved config and exit
  overrides           e.g. --trainer.max_epochs 5 --model.hidden_dim 1024 --data.batch_size 256

`dltk train --plugin NAME --help` lists every option of that plugin's task.
"""
