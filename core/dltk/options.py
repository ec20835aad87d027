"""Plugin options for ``dltk predict`` and ``dltk explain``, declared by the plugin, parsed by core.

A plugin never parses a command line. It declares its options as a dataclass -- one field per
option, with a type, a default and a help text -- and core turns ``--name value`` arguments into an
instance, with the house error format (one line naming the option, exit code 2) and a ``--help``
that lists them::

    @dataclass
    class SlideOptions:
        level: int = option(0, "pyramid level to read (0 = full resolution)")
        tile: int = option(0, "tile size in pixels (0: the training size)")
        overlay: bool = option(False, "also write an overlay PNG")
        method: Literal["gradcam", "saliency"] = option("gradcam", "attribution method")
        smiles: list[str] = option(list, "a SMILES to explain (repeatable)", required=True)

Where they are declared:

- predict: :attr:`dltk.base.BaseDataModule.predict_options` (a class attribute naming the
  dataclass); :meth:`~dltk.base.BaseDataModule.predict_file` receives the parsed instance.
- explain: the ``options`` parameter of the plugin's explainer function, annotated with the
  dataclass (``def explain(run_dir, model, datamodule, options: ChemExplainOptions)``).

Supported field types: ``bool`` (``--flag``; ``--no-flag`` when the default is True), ``int``,
``float``, ``str``, ``Literal[...]`` (choices), ``X | None`` and ``list[X]`` (repeatable). A field
name ``min_tissue`` is the option ``--min-tissue`` (``--min_tissue`` is accepted too). A dataclass
``__post_init__`` that raises ``ValueError`` becomes a one-line error as well.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

from dltk.errors import ConfigError

_MISSING = dataclasses.MISSING


def option(default: Any = _MISSING, help: str = "", *, required: bool = False) -> Any:  # noqa: A002
    """A dataclass field with a help text. ``default`` may be a factory such as ``list``."""
    metadata = {"help": help, "required": required}
    if callable(default) and default in (list, dict):
        return dataclasses.field(default_factory=default, metadata=metadata)
    if default is _MISSING:
        return dataclasses.field(metadata={**metadata, "required": True})
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """One declared option, as core reads it from a dataclass field."""

    name: str
    flag: str
    kind: str  # "bool", "int", "float", "str", "choice"
    many: bool
    optional: bool
    choices: tuple[Any, ...]
    default: Any
    required: bool
    help: str

    def describe(self) -> str:
        if self.kind == "bool":
            head = f"--no-{self.flag[2:]}" if self.default is True else self.flag
        else:
            meta = "{" + ",".join(str(c) for c in self.choices) + "}" if self.kind == "choice" else self.kind.upper()
            head = f"{self.flag} {meta}" + (" (repeatable)" if self.many else "")
        default = "" if self.required or self.kind == "bool" or self.default in (None, [], "") \
            else f" (default {self.default})"
        required = " (required)" if self.required else ""
        return f"  {head:<34} {self.help}{default}{required}"


def _unwrap(tp: Any) -> tuple[Any, bool, bool]:
    """(base type, optional, many) of a field annotation."""
    optional = many = False
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        tp = args[0] if len(args) == 1 else str
        origin = typing.get_origin(tp)
    if origin in (list, tuple):
        many = True
        tp = (typing.get_args(tp) or (str,))[0]
    return tp, optional, many


def specs(cls: type) -> list[OptionSpec]:
    """The options a dataclass declares, in field order."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass; declare options as a dataclass")
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp, optional, many = _unwrap(hints[f.name])
        choices: tuple[Any, ...] = ()
        if typing.get_origin(tp) is Literal:
            kind, choices = "choice", typing.get_args(tp)
        elif tp in (bool, int, float, str):
            kind = tp.__name__
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: unsupported option type {hints[f.name]!r}")
        if f.default is not _MISSING:
            default = f.default
        elif f.default_factory is not _MISSING:
            default = f.default_factory()
        else:
            default = None
        required = bool(f.metadata.get("required")) or (f.default is _MISSING and f.default_factory is _MISSING)
        out.append(OptionSpec(f.name, "--" + f.name.replace("_", "-"), kind, many, optional, choices, default,
                              required, str(f.metadata.get("help", ""))))
    return out


def help_text(cls: type | None, title: str) -> str:
    """The ``--help`` section listing a dataclass's options (an empty string for None)."""
    if cls is None:
        return ""
    lines = [f"{title}:"] + [s.describe() for s in specs(cls)]
    return "\n".join(lines) + "\n"


def _convert(spec: OptionSpec, raw: str, command: str) -> Any:
    try:
        if spec.kind == "int":
            return int(raw)
        if spec.kind == "float":
            return float(raw)
        if spec.kind == "choice":
            for choice in spec.choices:
                if str(choice) == raw:
                    return choice
            raise ValueError
        return raw
    except ValueError:
        expected = {"int": "an integer", "float": "a number"}.get(
            spec.kind, f"one of {', '.join(str(c) for c in spec.choices)}")
        raise ConfigError(f"{command}: option {spec.flag}: expected {expected}, got {raw!r}") from None


def _lookup(by_flag: dict[str, OptionSpec], key: str, command: str) -> tuple[OptionSpec, bool]:
    """The spec for ``--key`` (and whether it is a ``--no-`` negation); unknown keys are an error."""
    norm = "--" + key[2:].replace("_", "-")
    if norm in by_flag:
        return by_flag[norm], False
    if norm.startswith("--no-") and "--" + norm[5:] in by_flag and by_flag["--" + norm[5:]].kind == "bool":
        return by_flag["--" + norm[5:]], True
    prefixed = [flag for flag in by_flag if flag.startswith(norm)]
    if len(prefixed) == 1:  # a unique abbreviation, as argparse accepts (--output for --output-dir)
        return by_flag[prefixed[0]], False
    if len(prefixed) > 1:
        raise ConfigError(f"{command}: option {key} is ambiguous: {', '.join(prefixed)}")
    import difflib

    close = difflib.get_close_matches(norm, list(by_flag), n=2)
    hint = f"; did you mean {' or '.join(close)}?" if close else \
        (f"; valid options: {', '.join(by_flag)}" if by_flag else "; it takes no plugin options")
    raise ConfigError(f"{command}: unknown option {key}{hint}")


def parse(cls: type | None, argv: list[str], command: str) -> Any:
    """Parse ``argv`` into an instance of ``cls`` (None when ``cls`` is None and ``argv`` is empty).

    Every error -- an unknown option, a missing value, a wrong type, a missing required option, or
    a ``ValueError`` from the dataclass's ``__post_init__`` -- is a one-line :class:`ConfigError`
    that starts with ``command`` and names the option."""
    by_flag = {s.flag: s for s in specs(cls)} if cls is not None else {}
    values: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise ConfigError(f"{command}: unexpected argument {arg!r} (options are --name value)")
        key, eq, inline = arg.partition("=")
        spec, negated = _lookup(by_flag, key, command)
        if spec.kind == "bool":
            if eq:
                if inline.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ConfigError(f"{command}: option {spec.flag}: expected true or false, got {inline!r}")
                values[spec.name] = inline.lower() in ("true", "1", "yes")
            else:
                values[spec.name] = not negated
            i += 1
            continue
        if eq:
            raw = inline
            i += 1
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            raw = argv[i + 1]
            i += 2
        else:
            raise ConfigError(f"{command}: option {spec.flag} needs a value")
        value = _convert(spec, raw, command)
        if spec.many:
            values.setdefault(spec.name, []).append(value)
        else:
            values[spec.name] = value
    if cls is None:
        return None
    missing = [s.flag for s in by_flag.values() if s.required and s.name not in values]
    if missing:
        raise ConfigError(f"{command}: missing required option {', '.join(missing)}")
    try:
        return cls(**values)
    except ValueError as exc:
        raise ConfigError(f"{command}: {' '.join(str(exc).split())}") from exc
