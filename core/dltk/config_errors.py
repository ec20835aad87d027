"""jsonargparse's chained errors as one line: the key at fault, the innermost reason, and close
matches for a misspelt option (``dltk train`` exits 2 with this line, never a traceback)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import yaml

from dltk.errors import ConfigError


def value_from_configs(paths: Iterable[str], key: str) -> str | None:
    """The top-level ``key`` of the last of ``paths`` (YAML files) that sets it; a one-line error
    for a missing file, invalid YAML or a file that is not a mapping."""
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


def _chain(exc: BaseException) -> list[str]:
    chain: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 20:
        chain.append(" ".join(str(seen).split()))
        seen = seen.__cause__ or seen.__context__
    return chain


def _valid_keys(text: str) -> list[str]:
    """The init arguments of the class named in the error (and of its dltk bases)."""
    import inspect
    import re

    cls_match = re.search(r"class_path '([^']+)'", text)
    if not cls_match:
        return []
    module, _, cls_name = cls_match.group(1).rpartition(".")
    cls = getattr(sys.modules.get(module), cls_name, None)
    if cls is None:
        return []
    params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")]
    for base in cls.__mro__[1:]:
        if base.__module__.startswith("dltk"):
            params += [p for p in inspect.signature(base.__init__).parameters if p not in ("self", "kwargs", "args")]
    return sorted(set(params))


def _unknown_key(name: str, key: str | None, text: str) -> ConfigError:
    import difflib

    valid = _valid_keys(text)
    hint = ""
    if valid:
        close = difflib.get_close_matches(name.lstrip("-").split(".")[-1], valid, n=3)
        hint = f"; did you mean: {', '.join(close)}?" if close else f"; valid keys: {', '.join(valid)}"
    where = f"{key}." if key and not name.startswith("--") else ""
    return ConfigError(f"unknown config key {where}{name.lstrip('-')}{hint}")


def config_error(exc: BaseException) -> ConfigError:
    """One :class:`ConfigError` line for a jsonargparse / LightningCLI parsing error."""
    import re

    chain = _chain(exc)
    text = "\n".join(chain)
    keys = list(dict.fromkeys(re.findall(r'Parser key "([^"]+)"', text)))
    key = ".".join(keys) if keys else None
    unknown = re.search(r"Option '([^']+)' is not accepted|Unrecognized arguments: (\S+)", text)
    if unknown:
        return _unknown_key(next(g for g in unknown.groups() if g), key, text)
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
