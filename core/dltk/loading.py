"""Rebuilding a run's datamodule and model from its directory, safely.

Checkpoints are loaded with ``torch.load(weights_only=True)``: a checkpoint can carry tensors and
plain containers, never code. ``class_path`` values are imported only through the run's
:class:`~dltk.allowlist.AllowList`, and must name a :class:`~dltk.base.BaseModel` (model) or
:class:`~dltk.base.BaseDataModule` (data) subclass. :class:`dltk.run.Run` is the public way to
open a run; these are its building blocks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dltk.allowlist import AllowList
from dltk.errors import ConfigError


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


def _component(config: dict[str, Any], key: str, allow: AllowList) -> type:
    """The ``model``/``data`` class of a run config, checked against the allow-list and the base."""
    from dltk.base import BaseDataModule, BaseModel

    section = config.get(key) or {}
    class_path = section.get("class_path") if isinstance(section, dict) else None
    if not isinstance(class_path, str):
        raise ConfigError(f"run config has no {key}.class_path")
    cls = allow.import_class(class_path, f"{key}.class_path")
    base = BaseModel if key == "model" else BaseDataModule
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"{key}.class_path {class_path!r} is not a dltk {base.__name__} subclass")
    return cls


def build_model(config: dict[str, Any], ckpt: dict[str, Any], allow: AllowList) -> Any:
    """Instantiate the model class named in ``config`` from the checkpoint's hyper-parameters."""
    model_cfg = config.get("model") or {}
    cls = _component(config, "model", allow)
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


def build_datamodule(config: dict[str, Any], allow: AllowList) -> Any:
    """A new datamodule from the run config's ``data`` section (nothing is read until ``setup``)."""
    data_cfg = config.get("data") or {}
    cls = _component(config, "data", allow)
    return cls(**(data_cfg.get("init_args") or {}))
