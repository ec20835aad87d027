"""The one allow-list of ``class_path`` values a config may name.

A YAML ``class_path`` imports arbitrary code, so dltk imports a class only when its top-level
package is dltk itself, the run's plugin package, or one of a few libraries whose classes configs
legitimately name (Lightning callbacks and loggers, torch optimisers, torchmetrics metrics). The
same :class:`AllowList` is used when training (before anything is imported, on the preset, the
``--config`` files and the command-line overrides) and when loading a run (``dltk test``,
``predict``, ``explain``, ``export``, ``serve``), so that a run that trained can always be opened
and nothing that could not have trained can be loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dltk.errors import ConfigError

THIRD_PARTY = ("lightning", "torch", "torchmetrics")
"""Besides dltk and the active plugin, configs may name classes from these packages."""


def class_paths(obj: Any) -> Iterator[str]:
    """Every ``class_path`` string inside a parsed YAML/JSON value."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "class_path" and isinstance(value, str):
                yield value
            else:
                yield from class_paths(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from class_paths(value)


@dataclass(frozen=True)
class AllowList:
    """Top-level packages whose classes may be imported from a config.

    Args:
        packages: top-level import names, e.g. ``("dltk", "dltk_chem", "lightning", ...)``.
    """

    packages: tuple[str, ...]

    @classmethod
    def for_plugin(cls, package: str | None) -> AllowList:
        """dltk, the plugin's package (when given) and :data:`THIRD_PARTY`."""
        return cls(("dltk", *((package,) if package else ()), *THIRD_PARTY))

    def allows(self, class_path: str) -> bool:
        return class_path.split(".", 1)[0] in self.packages

    def check(self, class_path: str, origin: str = "") -> None:
        """Raise a one-line :class:`ConfigError` naming ``origin`` if ``class_path`` is refused."""
        if not self.allows(class_path):
            where = f"{origin}: " if origin else ""
            raise ConfigError(f"{where}class_path {class_path!r} is not from {', '.join(self.packages)}; "
                              "refusing to import it")

    def import_class(self, class_path: str, origin: str = "") -> type:
        """Import ``package.module.Class`` after :meth:`check`."""
        self.check(class_path, origin)
        module_name, _, name = class_path.rpartition(".")
        try:
            return getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigError(f"cannot import class_path {class_path!r}: {exc}") from exc

    def check_files(self, paths: Iterable[str | Path]) -> None:
        """Check every ``class_path`` in YAML config files (read with ``yaml.safe_load``)."""
        import yaml

        for path in paths:
            data = yaml.safe_load(Path(path).read_text()) or {}
            for class_path in class_paths(data):
                self.check(class_path, str(path))

    def check_overrides(self, overrides: list[str]) -> None:
        """Check class paths given on the command line (``--model.class_path X``, ``--data X``,
        ``--trainer.callbacks+ X`` or an inline YAML mapping/list)."""
        import yaml

        for i, arg in enumerate(overrides):
            key, eq, value = arg.partition("=")
            if not eq and i + 1 < len(overrides):
                value = overrides[i + 1]
            if not (key.endswith(".class_path") or key in ("--model", "--data") or key.endswith("callbacks+")
                    or key.endswith(".logger") or key.endswith("logger+")):
                continue
            stripped = value.strip()
            if stripped.startswith(("{", "[")):
                try:
                    found = list(class_paths(yaml.safe_load(stripped)))
                except yaml.YAMLError:
                    found = []
            else:
                found = [stripped] if "." in stripped else []
            for class_path in found:
                self.check(class_path, key)
