"""The serving contract: how a datamodule turns an HTTP request into a prediction input.

``dltk serve`` (:mod:`dltk.serve`) knows nothing about molecules, sequences or images. A datamodule
declares three class methods on :class:`dltk.base.BaseDataModule`:

- ``request_schema()``: the JSON schema of a ``POST /predict`` body (None: the run is not servable);
- ``decode_request(payload)``: a validated body -> :class:`RequestRows` or :class:`RequestFiles`;
- ``decode_upload(files)``: the contents of a multipart upload -> the same (None: JSON only).

:class:`RequestRows` are lines of the plugin's own input table (what ``dltk predict`` reads), so
that rows of many requests can be batched into one table; :class:`RequestFiles` are whole files
(images, pose files) predicted one request at a time. Core writes either into a private temporary
directory under names it chooses itself: nothing in a request becomes a path or an import.

This module is light (no torch, no web framework), so plugins import it freely.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

SUFFIX = re.compile(r"^\.[a-z0-9]{1,8}(\.gz)?$")
"""The file suffixes a plugin may ask for (core checks; a request never chooses one)."""


class RequestError(ValueError):
    """A request the plugin cannot decode: answered 422 with this one-line message."""


class NotServable(RequestError):
    """The run's datamodule declares no request schema."""


@dataclass(frozen=True)
class RequestRows:
    """Rows of a table file in the plugin's own ``dltk predict`` input format.

    Attributes:
        suffix: the file suffix the plugin's ``predict_chunks`` reads (``.csv``, ``.txt``).
        lines: one text line per input row (no line breaks), already in the file's format.
        header: the header line of the file (None: no header).
        index_columns: output columns numbering rows in the file (``line``, ``row``); core rebases
            them so that each request reads as if it were its own file.
    """

    suffix: str
    lines: list[str]
    header: str | None = None
    index_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class RequestFiles:
    """Whole input files for the plugin's ``predict_file``.

    Attributes:
        files: ``(suffix, content)`` of each file; core names them ``000000<suffix>``, ...
        folder: predict the folder holding the files (True) or the one file itself (False).
    """

    files: list[tuple[str, bytes]] = field(default_factory=list)
    folder: bool = True


def b64decode(value: str, where: str) -> bytes:
    """Strict base64 (standard alphabet, padding optional; a ``data:...;base64,`` prefix allowed)."""
    if value.startswith("data:") and "," in value:
        value = value.split(",", 1)[1]
    value = value.strip()
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(f"{where}: not valid base64") from None


_TYPES: dict[str, tuple[type, ...]] = {"object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,),
                                       "integer": (int,), "number": (int, float), "null": (type(None),)}
_JSON_NAMES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number",
               type(None): "null"}


def _is(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    if kind == "number" and isinstance(value, float) and value != value:  # NaN is not JSON
        return False
    return isinstance(value, _TYPES[kind])


def validate(value: Any, schema: dict[str, Any], where: str = "body") -> None:
    """Check ``value`` against the subset of JSON schema the plugins declare (type, properties,
    required, additionalProperties, items, min/maxItems, min/maxLength, pattern, enum); raises a
    :class:`RequestError` naming the first field at fault."""
    kinds = schema.get("type") or []
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if kinds and not any(_is(value, kind) for kind in kinds):
        raise RequestError(f"{where}: expected {' or '.join(kinds)}, got {_JSON_NAMES.get(type(value), 'a value')}")
    if "enum" in schema and value not in schema["enum"]:
        raise RequestError(f"{where}: must be one of {schema['enum']}")
    if isinstance(value, dict):
        _validate_object(value, schema, where)
    elif isinstance(value, list):
        _check_length(len(value), schema, "minItems", "maxItems", where, "items")
        for i, item in enumerate(value):
            validate(item, schema.get("items", {}), f"{where}[{i}]")
    elif isinstance(value, str):
        _check_length(len(value), schema, "minLength", "maxLength", where, "characters")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise RequestError(f"{where}: does not match {schema['pattern']!r}")


def _validate_object(value: dict[str, Any], schema: dict[str, Any], where: str) -> None:
    props = schema.get("properties", {})
    if schema.get("additionalProperties", True) is False:
        unknown = sorted(set(value) - set(props))
        if unknown:
            raise RequestError(f"{where}: unknown field {unknown[0]!r} (expected: {', '.join(sorted(props))})")
    for name in schema.get("required", []):
        if name not in value:
            raise RequestError(f"{where}: missing required field {name!r}")
    for name, sub in props.items():
        if name in value:
            validate(value[name], sub, f"{where}.{name}")


def _check_length(n: int, schema: dict[str, Any], low: str, high: str, where: str, unit: str) -> None:
    if low in schema and n < schema[low]:
        raise RequestError(f"{where}: at least {schema[low]} {unit} required, got {n}")
    if high in schema and n > schema[high]:
        raise RequestError(f"{where}: at most {schema[high]} {unit} allowed, got {n}")
