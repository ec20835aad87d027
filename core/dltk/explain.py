"""``dltk explain``: run the plugin's explainer on a finished run.

The plugin names its explainer in :attr:`dltk.plugin.PluginSpec.explainer` as
``"module:function"``, with the signature ``function(run_dir, model, datamodule, options) ->
list[Path]``. The ``options`` parameter is annotated with a dataclass (see :mod:`dltk.options`):
core parses the command line into it and lists it under ``dltk explain --run DIR --help``.
"""

from __future__ import annotations

import importlib
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dltk import options as plugin_options
from dltk.errors import ConfigError


def explainer(run: Any) -> tuple[Callable[..., list[Path]], type | None]:
    """The run's plugin explainer function and its options dataclass (None: it takes none)."""
    plugin = run.plugin
    if not plugin.explainer:
        raise ConfigError(f"plugin {plugin.name!r} does not provide explanations")
    module_name, _, func_name = plugin.explainer.partition(":")
    if module_name.split(".", 1)[0] != plugin.package:
        raise ConfigError(f"explainer {plugin.explainer!r} is outside plugin package {plugin.package!r}")
    function = getattr(importlib.import_module(module_name), func_name)
    declared = typing.get_type_hints(function).get("options")
    return function, declared if isinstance(declared, type) else None


def explain(run: Any, argv: list[str], which: str | None = None) -> list[Path]:
    """Parse ``argv`` into the explainer's declared options and run it on the run's model (an
    ensemble run: its first member; a combined run is refused)."""
    if run.kind == "combined":
        run.require_single("explain")
    function, declared = explainer(run)
    parsed = plugin_options.parse(declared, list(argv), f"dltk explain ({run.plugin.name})")
    model = run.models(which)[0]
    paths = function(run.dir, model, run.datamodule(), parsed)
    for path in paths:
        print(f"dltk explain: wrote {path}")
    return paths
