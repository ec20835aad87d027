"""The public handle on a run directory: :class:`Run`.

Every verb after training -- ``test``, ``predict``, ``explain``, ``export``, ``combine``,
``benchmark``, ``serve``, ``tune`` -- opens a run with :meth:`Run.open` and asks it for what it
needs; nothing else reads a run directory's layout::

    from dltk.run import Run

    run = Run.open("runs/chem-tox21_challenge-20261129-120000")
    run.plugin.name, run.preset.name, run.status["status"]
    models = run.models("best")        # [model] -- or every member of an ensemble run
    datamodule = run.datamodule()      # rebuilt from config.yaml, nothing loaded yet

Three kinds of run share the interface:

- :class:`Run`: one trained model (``checkpoints/best.ckpt``, ``last.ckpt``);
- :class:`EnsembleRun`: ``dltk train --ensemble K`` -- K members under ``members/<k>/``, averaged;
- :class:`CombinedRun`: ``dltk combine`` -- runs of different models averaged; each member is
  itself a :class:`Run` (with its own datamodule), listed in ``combine.json``.

Checkpoints are loaded with ``torch.load(weights_only=True)`` and class paths are imported only
through the run's :class:`~dltk.allowlist.AllowList`.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from dltk import rundir
from dltk.allowlist import AllowList
from dltk.errors import ConfigError
from dltk.loading import build_datamodule, build_model, checkpoint_path, load_checkpoint, read_run_config
from dltk.plugin import PluginSpec, PresetSpec

Which = Literal["best", "last"]
COMBINE_FILE = "combine.json"
ENSEMBLE_FILE = "ensemble.json"


class Run:
    """A finished (or unfinished) run directory.

    Attributes:
        dir: the run directory.
        config: the resolved ``config.yaml`` (a dict).
        plugin: the plugin that trained it (discovered by name).
        preset: the plugin's preset (``--task``) it was trained from.
        allow: the class-path allow-list for this run's plugin.
    """

    kind = "single"

    def __init__(self, path: Path, config: dict[str, Any], plugin: PluginSpec, preset: PresetSpec) -> None:
        self.dir = path
        self.config = config
        self.plugin = plugin
        self.preset = preset
        self.allow = AllowList.for_plugin(plugin.package)

    # -- opening ------------------------------------------------------------------------------
    @staticmethod
    def open(path: str | Path) -> Run:
        """Open ``path`` as the right kind of run; a one-line :class:`ConfigError` otherwise."""
        from dltk.discovery import get_plugin

        run_dir = Path(path)
        if not run_dir.is_dir():
            raise ConfigError(f"run directory not found: {path}")
        config = read_run_config(run_dir)
        if not isinstance(config, dict) or not config.get("plugin"):
            raise ConfigError(f"{run_dir / 'config.yaml'}: not a dltk run config (no 'plugin' key)")
        plugin = get_plugin(str(config["plugin"]))
        preset = plugin.task(config.get("task"))
        if (run_dir / COMBINE_FILE).is_file():
            return CombinedRun(run_dir, config, plugin, preset)
        if (run_dir / "members").is_dir() and not (run_dir / "checkpoints").is_dir():
            return EnsembleRun(run_dir, config, plugin, preset)
        return Run(run_dir, config, plugin, preset)

    # -- what the directory records -------------------------------------------------------------
    @property
    def status(self) -> dict[str, Any]:
        """``run.json`` (status, times, command, error); empty for a directory without one."""
        try:
            return rundir.read_status(self.dir)
        except ConfigError:
            return {}

    @property
    def metrics(self) -> dict[str, float]:
        """The final test metrics (``metrics.json``); empty before the run has been tested."""
        path = self.dir / "metrics.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    @property
    def name(self) -> str:
        return f"{self.dir} ({self.plugin.name}/{self.preset.name})"

    def default_checkpoint(self) -> Which:
        """The checkpoint used when none is asked for (``best``; a combined run: its recorded one)."""
        return "best"

    def checkpoint(self, which: Which | None = None) -> Path:
        """Path of the ``best`` or ``last`` checkpoint (a one-line error when it is missing)."""
        return checkpoint_path(self.dir, which or self.default_checkpoint())

    # -- what it rebuilds -------------------------------------------------------------------------
    def models(self, which: Which | None = None) -> list[Any]:
        """The trained model(s) in eval mode: ``[model]``, or every member of an ensemble run."""
        ckpt = load_checkpoint(self.checkpoint(which))
        return [build_model(self.config, ckpt, self.allow)]

    def model(self, which: Which | None = None, command: str = "this command") -> Any:
        """The one model of a single run (an ensemble or combined run: a one-line error naming
        ``command``)."""
        self.require_single(command)
        return self.models(which)[0]

    def datamodule(self) -> Any:
        """A new datamodule built from ``config.yaml`` (nothing read until ``setup``)."""
        return build_datamodule(self.config, self.allow)

    @cached_property
    def datamodule_class(self) -> type:
        """The datamodule's class (its declared options, hooks), without building it."""
        return self.allow.import_class(str((self.config.get("data") or {}).get("class_path")), "data.class_path")

    def require_single(self, command: str) -> None:
        """Refuse a run that is not one model, for verbs that need one (explain, export)."""


class EnsembleRun(Run):
    """``dltk train --ensemble K``: members ``members/0 .. K-1``, averaged with their spread."""

    kind = "ensemble"

    @cached_property
    def members(self) -> list[Run]:
        members_dir = self.dir / "members"
        dirs = sorted((p for p in members_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
        if not dirs:
            raise ConfigError(f"{self.dir}: ensemble run without members")
        return [Run(d, self.config, self.plugin, self.preset) for d in dirs]

    def checkpoint(self, which: Which | None = None) -> Path:
        return self.members[0].checkpoint(which)

    def models(self, which: Which | None = None) -> list[Any]:
        return [m.models(which)[0] for m in self.members]

    def require_single(self, command: str) -> None:
        raise ConfigError(f"{self.dir} is an ensemble run of {len(self.members)} members; `dltk {command}` works on "
                          f"one model: use a member, e.g. --run {self.members[0].dir}")


class CombinedRun(Run):
    """``dltk combine``: runs of different models of one plugin, averaged with equal weights."""

    kind = "combined"

    @cached_property
    def record(self) -> dict[str, Any]:
        """``combine.json``: members, their metrics, the checkpoint they were combined with."""
        return json.loads((self.dir / COMBINE_FILE).read_text())

    @cached_property
    def member_dirs(self) -> list[Path]:
        """The members' directories (relative to the combined run first, then as recorded)."""
        out = []
        for rel, absolute in zip(self.record["members_relative"], self.record["members"], strict=True):
            candidate = (self.dir / rel).resolve()
            out.append(candidate if candidate.is_dir() else Path(absolute))
        return out

    @property
    def members(self) -> list[Run]:
        runs = []
        for member in self.member_dirs:
            if not member.is_dir():
                raise ConfigError(f"{self.dir}: member run {member} not found (moved or deleted?); combined runs "
                                  "refer to their members' directories")
            runs.append(Run.open(member))
        return runs

    def default_checkpoint(self) -> Which:
        return "last" if self.record.get("checkpoint") == "last" else "best"

    def checkpoint(self, which: Which | None = None) -> Path:
        raise ConfigError(f"{self.dir} is a combined run: it has no checkpoint of its own (see its members)")

    def models(self, which: Which | None = None) -> list[Any]:
        raise ConfigError(f"{self.dir} is a combined run of models with different inputs; open its members "
                          "(CombinedRun.members) for their models")

    def require_single(self, command: str) -> None:
        raise ConfigError(f"{self.dir} is a combined run of {len(self.member_dirs)} runs; `dltk {command}` works on "
                          f"one model: use one of its members ({', '.join(str(m) for m in self.member_dirs)})")
