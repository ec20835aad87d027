"""The bad-input catalogue's data model: one :class:`Case` per malformed input.

A case writes its malformed file(s) into a fresh temporary folder (the working directory of the
command) and returns the ``dltk`` command line to run on them. The catalogue test asserts, for
every case, the behaviour users rely on:

- exit code 2 and exactly one stderr line ``dltk: error: ...`` holding the case's ``needles``
  (the file and the row / field / key at fault), no traceback; or, for a documented *skip*
  (``skip`` set), exit code 0 and the counted skip reported on stdout;
- nothing left looking complete: no ``run.json`` reading ``completed`` for a failed command, no
  output file for a failed ``predict``.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Context:
    """What a case builder gets: its temporary folder, the real data mirror and shared runs."""

    tmp: Path
    data_root: Path
    runs: Callable[[str], Path]  # runs("chem") -> a tiny finished run of that plugin (built once)

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def truncated_gzip(self, name: str, text: str) -> Path:
        data = gzip.compress(text.encode())
        return self.write(name, data[: len(data) // 2])


@dataclass
class Case:
    """One malformed input.

    Args:
        id: short name (the pytest id).
        build: writes the input(s) under ``ctx.tmp`` and returns the command line (without ``dltk``).
        needles: substrings the one-line error (or, for a skip, stdout) must contain; ``{tmp}`` is
            replaced by the temporary folder.
        plugin: the plugin the case needs (skipped when it is not installed and healthy).
        skip: for a documented skip: the command succeeds and reports the count on stdout.
    """

    id: str
    build: Callable[[Context], list[str]]
    needles: tuple[str, ...]
    plugin: str | None = None
    skip: bool = False
    marks: tuple = field(default_factory=tuple)


TRAIN_TAIL = ["--trainer.max_epochs", "1", "--run-dir", "run"]
