"""Search spaces for ``dltk tune``: parsed and checked before any trial starts.

A space is a mapping of config keys to ranges (a ``--space`` YAML file, or a preset's
:attr:`dltk.plugin.PresetSpec.space`)::

    model.lr:          {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    model.hidden_dim:  {type: int, low: 128, high: 2048, log: true}
    model.num_layers:  {type: int, low: 1, high: 3}
    model.dropout:     {type: float, low: 0.0, high: 0.6, step: 0.1}
    data.features:     {type: categorical, choices: [ecfp, ecfp+maccs, ecfp+maccs+rdkit2d]}
    data.radius:       {type: int, low: 1, high: 3, when: {data.features: [ecfp, ecfp+maccs]}}

Keys are ``model.*``, ``data.*`` or ``trainer.*`` settings of the preset's resolved config
(``model.hidden_dim`` means ``model.init_args.hidden_dim``). A plain list is a categorical. ``when``
samples a key only when earlier keys have one of the given values. An unknown key or a malformed
range is a one-line :class:`~dltk.errors.ConfigError` naming the file and the key.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dltk.errors import ConfigError

TYPES = ("float", "int", "categorical")
FIELDS = {"type", "low", "high", "log", "step", "choices", "when"}


@dataclass(frozen=True)
class Param:
    """One searched setting."""

    key: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def distribution(self) -> Any:
        import optuna.distributions as d

        if self.type == "categorical":
            return d.CategoricalDistribution(list(self.choices))
        if self.type == "int":
            return d.IntDistribution(int(self.low or 0), int(self.high or 0), log=self.log, step=int(self.step or 1))
        return d.FloatDistribution(float(self.low or 0.0), float(self.high or 0.0), log=self.log, step=self.step)

    def active(self, values: dict[str, Any]) -> bool:
        return all(values.get(key) in allowed for key, allowed in self.when.items())

    def suggest(self, trial: Any) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(self.key, int(self.low or 0), int(self.high or 0), log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_float(self.key, float(self.low or 0.0), float(self.high or 0.0), log=self.log,
                                   step=self.step)

    def contains(self, value: Any) -> bool:
        if self.type == "categorical":
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return float(self.low or 0) <= value <= float(self.high or 0) and (self.type == "float" or value == int(value))


@dataclass(frozen=True)
class Space:
    """An ordered search space; ``origin`` names its file (or preset) in errors."""

    params: tuple[Param, ...]
    origin: str

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Sample the active keys, in order."""
        values: dict[str, Any] = {}
        for param in self.params:
            if param.active(values):
                values[param.key] = param.suggest(trial)
        return values

    def distributions(self, values: dict[str, Any]) -> dict[str, Any]:
        return {p.key: p.distribution() for p in self.params if p.key in values}

    def preset_values(self, flat: dict[str, Any]) -> dict[str, Any]:
        """The preset's own values of the searched keys that lie inside the space (trial 0)."""
        values: dict[str, Any] = {}
        for param in self.params:
            if param.active(values) and param.key in flat and param.contains(flat[param.key]):
                values[param.key] = flat[param.key]
        return values

    def check_keys(self, flat: dict[str, Any], what: str) -> None:
        """Every key must be a setting of the resolved config ``flat`` (``model.x`` style)."""
        for param in self.params:
            if param.key not in flat:
                close = difflib.get_close_matches(param.key, list(flat), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"{self.origin}: unknown key {param.key!r} (not a setting of {what}){hint}")


def overrides(values: dict[str, Any]) -> list[str]:
    """``dltk train`` arguments setting ``values`` (``--model.lr 0.001``)."""
    out: list[str] = []
    for key, value in values.items():
        out += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    return out


def flatten_config(config: dict[str, Any]) -> dict[str, Any]:
    """A resolved config as ``model.hidden_dim`` / ``data.batch_size`` / ``trainer.max_epochs`` keys."""
    flat: dict[str, Any] = {}
    for section in ("model", "data", "trainer"):
        body = config.get(section) or {}
        if isinstance(body, dict) and "class_path" in body:
            body = body.get("init_args") or {}
        if isinstance(body, dict):
            flat.update({f"{section}.{key}": value for key, value in body.items()})
    return flat


def _number(origin: str, key: str, spec: dict[str, Any], name: str, kind: str) -> float:
    value = spec.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(f"{origin}: {key}: {name!r} must be a number, got {value!r}")
    if kind == "int" and value != int(value):
        raise ConfigError(f"{origin}: {key}: {name!r} must be an integer for type int, got {value!r}")
    return value


def _param(origin: str, key: str, spec: Any, earlier: dict[str, Param]) -> Param:
    if isinstance(spec, list):
        spec = {"type": "categorical", "choices": spec}
    if not isinstance(spec, dict):
        raise ConfigError(f"{origin}: {key}: expected a mapping with 'type' (float, int, categorical) or a "
                          f"list of choices, got {spec!r}")
    unknown = sorted(set(spec) - FIELDS)
    if unknown:
        raise ConfigError(f"{origin}: {key}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(FIELDS))})")
    kind = spec.get("type", "categorical" if "choices" in spec else None)
    if kind not in TYPES:
        raise ConfigError(f"{origin}: {key}: 'type' must be one of {', '.join(TYPES)}, got {kind!r}")
    when = _when(origin, key, spec.get("when") or {}, earlier)
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices or len(set(map(repr, choices))) != len(choices):
            raise ConfigError(f"{origin}: {key}: 'choices' must be a non-empty list without repeats, got {choices!r}")
        if any(isinstance(c, dict | list) for c in choices):
            raise ConfigError(f"{origin}: {key}: choices must be numbers, strings, booleans or null")
        return Param(key, kind, choices=tuple(choices), when=when)
    low, high = _number(origin, key, spec, "low", kind), _number(origin, key, spec, "high", kind)
    log, step = bool(spec.get("log", False)), spec.get("step")
    if low >= high:
        raise ConfigError(f"{origin}: {key}: 'low' ({low}) must be below 'high' ({high})")
    if log and low <= 0:
        raise ConfigError(f"{origin}: {key}: a log-scaled range needs low > 0, got low={low}")
    if step is not None:
        step = _number(origin, key, spec, "step", kind)
        if step <= 0 or log:
            raise ConfigError(f"{origin}: {key}: 'step' must be > 0 and cannot be combined with log")
    return Param(key, kind, low, high, log, step, when=when)


def _when(origin: str, key: str, when: Any, earlier: dict[str, Param]) -> dict[str, tuple[Any, ...]]:
    if not isinstance(when, dict):
        raise ConfigError(f"{origin}: {key}: 'when' must map earlier keys to values, got {when!r}")
    out: dict[str, tuple[Any, ...]] = {}
    for other, allowed in when.items():
        if other not in earlier:
            raise ConfigError(f"{origin}: {key}: 'when' names {other!r}, which is not an earlier key of the space")
        out[other] = tuple(allowed) if isinstance(allowed, list) else (allowed,)
    return out


def parse_space(data: Any, origin: str) -> Space:
    """Parse a space mapping (see the module docstring); a one-line ConfigError when malformed."""
    if isinstance(data, dict) and set(data) == {"space"}:
        data = data["space"]
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{origin}: a search space must be a non-empty mapping of config keys to ranges")
    params: dict[str, Param] = {}
    for raw_key, spec in data.items():
        key = str(raw_key).replace(".init_args.", ".")
        if key.split(".", 1)[0] not in ("model", "data", "trainer") or "." not in key:
            raise ConfigError(f"{origin}: {raw_key!r}: keys are model.*, data.* or trainer.* settings")
        if key in params:
            raise ConfigError(f"{origin}: {key!r} appears twice")
        params[key] = _param(origin, key, spec, params)
    return Space(tuple(params.values()), origin)


def load_space(path: str | Path) -> Space:
    """Read a ``--space`` YAML file."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--space {path}: file not found")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return parse_space(data, str(path))
