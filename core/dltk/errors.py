"""User-facing errors.

Anything raised as a :class:`DltkUserError` is printed by the CLI as one line and exits with code 2
(``--debug`` shows the traceback). Messages name the file, row, column or key at fault.
"""

from __future__ import annotations

from pathlib import Path


class DltkUserError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""

    exit_code = 2


class DataError(DltkUserError):
    """A data file is missing, malformed or unusable.

    Args:
        path: the file at fault.
        message: what is wrong.
        row: 1-based line/row number in the file, when known.
        field: column, field or key name, when known.
    """

    def __init__(self, path: str | Path | None, message: str, *, row: int | None = None,
                 field: str | None = None) -> None:
        self.path = None if path is None else str(path)
        self.row = row
        self.field = field
        where = []
        if self.path is not None:
            where.append(self.path)
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ": ".join([", ".join(where)]) + ": " if where else ""
        super().__init__(prefix + message)


class ConfigError(DltkUserError):
    """Unknown plugin, task or config key, or a config value of the wrong type."""


class ChecksumError(DataError):
    """A downloaded or mirrored file does not match its registered sha256."""
