"""Rebuilding a run's datamodule and model from its directory, safely.

Checkpoints are loaded with ``torch.load(weights_only=True)``: a checkpoint can carry tensors and
plain containers, never code. ``class_path`` values are imported only when they name a class
from ``dltk`` or from the run's plugin package (the allow-list).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml

from dltk.errors import ConfigError


def allowed_packages(plugin_package: str | None) -> tuple[str, ...]:
    return ("dltk",) + ((plugin_package,) if plugin_package else ())


def import_class(class_path: str, allowed: tuple[str, ...]) -> type:
    """Import ``package.module.Class`` if its top-level package is in ``allowed``."""
    top = class_path.split(".", 1)[0]
    if top not in allowed and not class_path.startswith("lightning.") and not class_path.startswith("torch."):
        raise ConfigError(f"class_path {class_path!r} is not from dltk or the active plugin "
                          f"({', '.join(allowed)}); refusing to import it")
    module_name, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import class_path {class_path!r}: {exc}") from exc


def read_run_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a dltk run directory (no config.yaml)")
    with open(path) as fh:
        return yaml.safe_load(fh)


def checkpoint_path(run_dir: Path, which: str = "best") -> Path:
    ckpt = run_dir / "checkpoints" / f"{which}.ckpt"
    if not ckpt.is_file():
        raise ConfigError(f"{run_dir}: no checkpoint {ckpt.name} in {ckpt.parent}")
    return ckpt


def load_checkpoint(path: Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)``; a checkpoint that needs unpickling code is refused."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path}: refused to load checkpoint (weights_only=True): {first}") from exc


def build_model(config: dict[str, Any], ckpt: dict[str, Any], allowed: tuple[str, ...]) -> Any:
    """Instantiate the model class named in ``config`` from the checkpoint's hyper-parameters."""
    model_cfg = config.get("model") or {}
    cls = import_class(model_cfg["class_path"], allowed)
    import inspect

    hparams = dict(ckpt.get("hyper_parameters") or {})
    written_by = hparams.get("_class_path")
    if isinstance(written_by, str) and written_by != model_cfg["class_path"]:
        raise ConfigError(f"the checkpoint was written by model {written_by}, not by the run's model "
                          f"{model_cfg['class_path']} (a checkpoint from another run or plugin?)")
    hparams = {k: v for k, v in hparams.items() if not k.startswith("_")}  # LightningCLI's _class_path, ...
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        hparams = {k: v for k, v in hparams.items() if k in params}
    if not hparams.get("data_info"):
        raise ConfigError("checkpoint has no data_info: it was not written by dltk train")
    try:
        model = cls(**hparams)
    except (TypeError, KeyError, ValueError) as exc:
        raise ConfigError(f"checkpoint hyper-parameters do not fit model {model_cfg['class_path']}: "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise ConfigError(f"checkpoint does not fit model {model_cfg['class_path']}: "
                          f"{str(exc).splitlines()[0]}") from exc
    model.eval()
    return model


def build_datamodule(config: dict[str, Any], allowed: tuple[str, ...]) -> Any:
    data_cfg = config.get("data") or {}
    cls = import_class(data_cfg["class_path"], allowed)
    return cls(**(data_cfg.get("init_args") or {}))
