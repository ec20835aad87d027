"""The plugin contract, as checks anyone can run: ``dltk plugin check NAME`` or, in a plugin's own
tests, the ``dltk_contract`` pytest fixture (:mod:`dltk.testing`).

For a plugin ``P`` the checks are:

``spec``
    the entry point loads a :class:`~dltk.plugin.PluginSpec` named ``P`` with at least one task, in
    a fresh interpreter, without importing torch, Lightning or any of the plugin's ``requires``
    (``dltk plugins`` must stay light).
``classes``
    every datamodule in ``spec.datamodules`` subclasses :class:`dltk.base.BaseDataModule`, every
    model in ``spec.models`` subclasses :class:`dltk.base.BaseModel`.
``model:<name>``
    each model class has a classmethod ``example() -> (init kwargs, data_info, batch)``;
    ``cls(**kwargs, data_info=data_info)`` builds quickly, ``training_step(batch, 0)`` returns a
    finite scalar loss whose backward pass reaches the parameters, and ``forward`` in eval mode
    gives one output row per sample.
``preset:<task>``
    the task's YAML parses with ``dltk train --print-config``, names a registered datamodule and
    model, and ``dltk train`` runs a few steps on the CPU (one epoch of at most
    :data:`TRAIN_BATCHES` batches) to a completed run directory with finite test metrics.

The preset run is shrunk generically: the model's ``example()`` kwargs become ``--model.*``
overrides, and a datamodule class may offer
``contract_overrides(cls, tmp_dir: pathlib.Path) -> list[str]`` (extra ``dltk train`` arguments,
e.g. ``["--data.n_samples", "64"]`` or a path to a tiny input file it writes into ``tmp_dir``). A
preset that leaves a data setting to the user (``data.path: ""``) and fails to load without it
(and has no ``contract_overrides``) is reported as *skipped* with the reason, never as passed.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dltk.errors import ConfigError, DltkUserError

TRAIN_BATCHES = 2
"""Training (and validation) batches of the preset check."""

MAX_BUILD_SECONDS = 60.0
"""Upper bound for ``example()`` + build + one step. The aim is well under a second; the bound only
catches pathological cases (a pretrained-weight download, a full-size network) without making the
check flaky on loaded CI machines. The measured time is part of the check's detail line."""

Status = Literal["passed", "failed", "skipped"]


class ContractSkip(Exception):
    """A check that cannot run for a stated reason (reported as skipped)."""


@dataclass
class Check:
    """One contract check of one plugin."""

    plugin: str
    name: str
    run: Callable[[], str]
    """Runs the check; returns a short detail line; raises on failure, ContractSkip to skip."""

    @property
    def id(self) -> str:
        return f"{self.plugin}:{self.name}"


@dataclass
class Result:
    check: str
    status: Status
    detail: str
    seconds: float


# ------------------------------------------------------------------------------------------------
# discovery, isolated to one plugin
# ------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def isolated(name: str) -> Iterator[None]:
    """While active, :func:`dltk.discovery.discover` sees only the entry point(s) named ``name``
    (other installed plugins, healthy or broken, cannot interfere with the plugin under test)."""
    from dltk import discovery
    from dltk.plugin import ENTRY_POINT_GROUP

    original = discovery.entry_points

    def only(**kwargs: Any) -> Any:
        eps = original(**kwargs)
        if kwargs.get("group") == ENTRY_POINT_GROUP:
            return [ep for ep in eps if ep.name == name]
        return eps

    discovery.entry_points = only  # type: ignore[assignment]
    try:
        yield
    finally:
        discovery.entry_points = original  # type: ignore[assignment]


def plugin_state(name: str) -> tuple[Any, str | None]:
    """``(spec or None, why it cannot be checked)``; ``why`` is None for a checkable plugin."""
    from dltk.discovery import discover

    plugins = discover()
    if name not in plugins:
        return None, f"no plugin {name!r} installed (installed: {', '.join(plugins) or 'none'})"
    info = plugins[name]
    if info.error:
        return None, info.error
    if info.missing:
        return None, info.status
    return info.spec, None


def is_placeholder(error: str | None) -> bool:
    """A plugin that is registered but not written yet: no tasks, or its spec module is missing."""
    return bool(error) and ("declares no tasks" in error or
                            (error.startswith("ModuleNotFoundError") and ".spec" in error))


# ------------------------------------------------------------------------------------------------
# the checks
# ------------------------------------------------------------------------------------------------
_LIGHT_PROBE = r"""
import json, sys
from importlib.metadata import entry_points
name, heavy = sys.argv[1], json.loads(sys.argv[2])
eps = [ep for ep in entry_points(group="dltk.plugins") if ep.name == name]
spec = eps[0].load()
from dltk.plugin import PluginSpec
print(json.dumps({"is_spec": isinstance(spec, PluginSpec), "name": getattr(spec, "name", None),
                  "tasks": len(getattr(spec, "tasks", ()) or ()),
                  "imported": [m for m in heavy if m in sys.modules]}))
"""


def check_spec(name: str) -> str:
    spec, why = plugin_state(name)
    if spec is None:
        raise AssertionError(f"plugin {name!r} cannot be loaded: {why}")
    heavy = ["torch", "lightning", "pytorch_lightning", *[r.module for r in spec.requires]]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    proc = subprocess.run([sys.executable, "-c", _LIGHT_PROBE, name, json.dumps(heavy)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"loading the spec in a fresh interpreter failed: {proc.stderr.strip()[-500:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["is_spec"] and out["name"] == name, f"entry point {name!r} does not give PluginSpec {name!r}: {out}"
    assert out["tasks"] >= 1, "the spec declares no tasks"
    assert not out["imported"], f"loading the spec imported heavy module(s) {out['imported']}; import only dltk.plugin"
    for task in spec.tasks:
        path = spec.config_path(task)
        assert path.is_file(), f"task {task.name!r}: preset {task.config} not found in package {spec.package}"
    return f"light spec, {len(spec.tasks)} task(s), {len(spec.requires)} requirement(s) not imported"


def _import(target: str, package: str) -> type:
    import importlib

    module_name, _, attr = target.partition(":")
    if not attr:
        raise AssertionError(f"{target!r} is not of the form 'module:Class'")
    if module_name.split(".", 1)[0] != package:
        raise AssertionError(f"{target!r} is outside the plugin package {package!r}")
    return getattr(importlib.import_module(module_name), attr)


def check_classes(spec: Any) -> str:
    from dltk.base import BaseDataModule, BaseModel

    assert spec.models, "spec.models is empty: register every model class"
    assert spec.datamodules, "spec.datamodules is empty: register every datamodule class"
    for kind, table, base in (("datamodule", spec.datamodules, BaseDataModule), ("model", spec.models, BaseModel)):
        for key, target in table.items():
            cls = _import(target, spec.package)
            assert isinstance(cls, type) and issubclass(cls, base), \
                f"{kind} {key!r} ({target}) does not subclass dltk.base.{base.__name__}"
    return f"{len(spec.datamodules)} datamodule(s), {len(spec.models)} model(s) subclass the core bases"


def _example(cls: type) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    example = getattr(cls, "example", None)
    if example is None:
        raise AssertionError(f"{cls.__name__} has no classmethod example() -> (kwargs, data_info, batch)")
    out = example()
    assert isinstance(out, tuple) and len(out) == 3, f"{cls.__name__}.example() must return (kwargs, data_info, batch)"
    kwargs, info, batch = out
    assert isinstance(kwargs, dict) and isinstance(info, dict) and isinstance(batch, dict), \
        f"{cls.__name__}.example() must return three dicts"
    for key in ("task_names", "task_type"):
        assert key in info, f"{cls.__name__}.example() data_info lacks {key!r}"
    return kwargs, info, batch


def batch_size(batch: dict[str, Any]) -> int:
    from dltk.base import TARGET

    return int(batch[TARGET].shape[0])


def check_model(spec: Any, key: str) -> str:
    import torch

    from dltk.base import TARGET

    cls = _import(spec.models[key], spec.package)
    start = time.perf_counter()
    kwargs, info, batch = _example(cls)
    assert TARGET in batch, f"the example batch has no target key {TARGET!r}"
    n = batch_size(batch)
    assert 2 <= n <= 4, f"the example batch should hold 2-4 samples, got {n}"
    torch.manual_seed(0)
    model = cls(**kwargs, data_info=info)
    model.train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log() outside a Trainer
        loss = model.training_step(batch, 0)
    if isinstance(loss, dict):
        loss = loss["loss"]
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0, f"training_step must return a scalar tensor, got {loss!r}"
    assert torch.isfinite(loss), f"training_step loss is not finite: {loss.item()}"
    loss.backward()
    loss = loss.detach()
    params = [p for p in model.parameters() if p.requires_grad]
    assert params, "the model has no trainable parameters"
    with_grad = [p for p in params if p.grad is not None and torch.isfinite(p.grad).all()]
    assert with_grad, "the loss does not backpropagate to any parameter"
    assert any(float(p.grad.abs().sum()) > 0 for p in with_grad), "all gradients are zero"
    elapsed = time.perf_counter() - start
    assert elapsed < MAX_BUILD_SECONDS, f"example() + build + step took {elapsed:.1f} s (aim for well under 1 s)"
    model.eval()
    with torch.no_grad():
        out = model(batch)
    assert out.shape[0] == n, f"forward returned {tuple(out.shape)} for {n} samples"
    n_params = sum(p.numel() for p in params)
    slow = " (slow: aim for well under 1 s)" if elapsed > 1.0 else ""
    return f"{cls.__name__}: {n_params:,} parameters, loss {loss.item():.3f}, {elapsed * 1000:.0f} ms{slow}"


def _run_quiet(fn: Callable[[], Any]) -> tuple[Any, str]:
    """Run ``fn`` with stdout captured (stderr passes through)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        value = fn()
    return value, buf.getvalue()


def _scalar(value: Any) -> bool:
    return isinstance(value, (bool, int, float, str)) and not (isinstance(value, float) and math.isnan(value))


def preset_overrides(spec: Any, config: dict[str, Any], tmp_dir: Path) -> tuple[list[str], bool]:
    """Extra ``dltk train`` arguments that shrink a preset for the contract run, and whether the
    datamodule supplied its own (``contract_overrides``)."""
    from dltk.allowlist import AllowList

    allow = AllowList.for_plugin(spec.package)
    args: list[str] = []
    model_path = (config.get("model") or {}).get("class_path")
    if model_path:
        model_cls = allow.import_class(model_path, "model.class_path")
        try:
            kwargs = _example(model_cls)[0]
        except (NotImplementedError, AssertionError):
            kwargs = {}  # no usable example(): the model:<name> check reports it; run the preset as is
        if kwargs:
            for k, v in kwargs.items():
                if _scalar(v):
                    args += [f"--model.{k}", str(v).lower() if isinstance(v, bool) else str(v)]
    data_path = (config.get("data") or {}).get("class_path")
    own = False
    if data_path:
        data_cls = allow.import_class(data_path, "data.class_path")
        own_args = data_cls.contract_overrides(tmp_dir)
        if own_args is not None:
            args += [str(a) for a in own_args]
            own = True
    return args, own


Overrides = Callable[[str, Path], list[str]]
"""``(task name, temporary folder) -> extra dltk train arguments`` supplied by the caller (e.g. a CI
suite that shrinks a slow preset's features or writes a tiny input file into the folder)."""


def _printed_config(spec: Any, base: list[str]) -> dict[str, Any]:
    """The preset's ``--print-config``, with its classes checked against the spec's registries."""
    import yaml

    from dltk.train import train

    try:
        _, printed = _run_quiet(lambda: train(base + ["--print-config"]))
    except DltkUserError as exc:
        raise AssertionError(f"--print-config failed: {exc}") from exc
    config = yaml.safe_load(printed)
    assert isinstance(config, dict) and "model" in config and "data" in config, \
        "--print-config did not print a config with model and data"
    registered_data = {t.replace(":", ".") for t in spec.datamodules.values()}
    registered_models = {t.replace(":", ".") for t in spec.models.values()}
    assert config["data"]["class_path"] in registered_data, \
        f"preset data class {config['data']['class_path']} is not in spec.datamodules"
    assert config["model"]["class_path"] in registered_models, \
        f"preset model class {config['model']['class_path']} is not in spec.models"
    return config


def _check_run_dir(run_dir: Path) -> dict[str, float]:
    status = json.loads((run_dir / "run.json").read_text())
    assert status["status"] == "completed", f"run status {status['status']}: {status.get('error')}"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    top = {k: v for k, v in metrics.items() if k.count("/") == 1}
    assert top, "metrics.json holds no test metrics"
    bad = [k for k, v in top.items() if not isinstance(v, (int, float)) or not math.isfinite(v)]
    assert not bad, f"non-finite test metrics {bad}"
    for required in ("config.yaml", "checkpoints/best.ckpt", "environment.json"):
        assert (run_dir / required).is_file(), f"the run directory lacks {required}"
    return top


def _train_small(args: list[str], config: dict[str, Any], own: bool, run_dir: Path) -> None:
    """The few-batch run; a preset that needs user input (and has no contract_overrides) or data
    that is not available offline is a skip, not a failure."""
    from dltk.train import train

    data_cp = config["data"]["class_path"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _run_quiet(lambda: train(args))
    except DltkUserError as exc:
        blank = user_inputs(config)
        if not own and blank and not (run_dir / "checkpoints").exists():
            reason = " ".join(str(exc).split())[:120]
            raise ContractSkip(f"preset leaves {', '.join(blank)} to the user ({reason}); "
                               f"give {data_cp.rsplit('.', 1)[-1]} a contract_overrides(tmp_dir) "
                               f"classmethod to check it") from exc
        if "set DLTK_DATA_DIR" in str(exc) or "downloads are off" in str(exc):
            raise ContractSkip(f"data not available offline: {' '.join(str(exc).split())[:200]}") from exc
        raise AssertionError(f"dltk train {' '.join(args)} failed: {exc}") from exc


def check_preset(spec: Any, task_name: str, train: bool = True, overrides: Overrides | None = None) -> str:
    task = spec.task(task_name)
    base = ["--plugin", spec.name, "--task", task.name]
    config = _printed_config(spec, base)
    model_cp, data_cp = config["model"]["class_path"], config["data"]["class_path"]
    if not train:
        return f"--print-config ok ({model_cp.rsplit('.', 1)[-1]} on {data_cp.rsplit('.', 1)[-1]})"
    with tempfile.TemporaryDirectory(prefix=f"dltk-contract-{spec.name}-") as tmp:
        tmp_dir = Path(tmp)
        extra, own = preset_overrides(spec, config, tmp_dir)
        if overrides is not None:
            more = [str(a) for a in overrides(task.name, tmp_dir)]
            extra, own = extra + more, own or bool(more)
        run_dir = tmp_dir / "run"
        args = base + ["--run-dir", str(run_dir), "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu",
                       "--trainer.devices", "1",
                       "--trainer.limit_train_batches", str(TRAIN_BATCHES),
                       "--trainer.limit_val_batches", str(TRAIN_BATCHES),
                       "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                       "--trainer.log_every_n_steps", "1", "--data.num_workers", "0", *extra]
        start = time.perf_counter()
        _train_small(args, config, own, run_dir)
        elapsed = time.perf_counter() - start
        top = _check_run_dir(run_dir)
    shown = ", ".join(f"{k}={v:.3f}" for k, v in list(top.items())[:2])
    return f"{TRAIN_BATCHES}-batch run completed in {elapsed:.1f} s ({shown})"


def user_inputs(config: dict[str, Any]) -> list[str]:
    """``data.*`` settings a preset leaves empty for the user to fill in (e.g. ``data.path: ""``)."""
    args = (config.get("data") or {}).get("init_args") or {}
    return [f"data.{k}" for k, v in args.items() if v == "" or (k.endswith("path") and v is None)]


# ------------------------------------------------------------------------------------------------
# assembling and running
# ------------------------------------------------------------------------------------------------
def checks(name: str, train: bool = True, overrides: Overrides | None = None) -> list[Check]:
    """The contract checks of plugin ``name`` (one ``spec`` check only, when it cannot be loaded)."""
    with isolated(name):
        spec, _ = plugin_state(name)
    out = [Check(name, "spec", lambda: check_spec(name))]
    if spec is None:
        return out
    out.append(Check(name, "classes", lambda: check_classes(spec)))
    for key in spec.models:
        out.append(Check(name, f"model:{key}", lambda key=key: check_model(spec, key)))
    for task in spec.tasks:
        out.append(Check(name, f"preset:{task.name}", lambda t=task.name: check_preset(spec, t, train, overrides)))
    return out


def run_check(check: Check) -> Result:
    """Run one check with discovery isolated to its plugin; never raises."""
    start = time.perf_counter()
    try:
        with isolated(check.plugin):
            detail = check.run()
        status: Status = "passed"
    except ContractSkip as exc:
        status, detail = "skipped", str(exc)
    except Exception as exc:  # noqa: BLE001  (a failing check is a result, not a crash)
        status = "failed"
        detail = f"{type(exc).__name__}: {' '.join(str(exc).split())}" if str(exc) else type(exc).__name__
        if os.environ.get("DLTK_DEBUG"):
            detail += "\n" + traceback.format_exc()
    return Result(check.id, status, detail, time.perf_counter() - start)


def check_plugin(name: str, train: bool = True, only: str | None = None,
                 echo: Callable[[str], None] | None = print, overrides: Overrides | None = None) -> list[Result]:
    """Run every contract check of ``name`` (those whose name starts with ``only``, if given)."""
    results = []
    selected = [c for c in checks(name, train, overrides) if only is None or c.name.startswith(only)]
    if not selected:
        raise ConfigError(f"no contract check of {name!r} matches {only!r}")
    for check in selected:
        result = run_check(check)
        results.append(result)
        if echo is not None:
            mark = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}[result.status]
            echo(f"{mark} {result.check} ({result.seconds:.1f} s): {result.detail}")
    return results
