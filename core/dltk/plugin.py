"""The plugin contract: what a plugin declares, read without importing its heavy code.

A plugin is an ordinary Python package with an entry point in the group ``dltk.plugins`` that
points at a :class:`PluginSpec` object in a *light* module (no torch, no domain libraries at import
time)::

    [project.entry-points."dltk.plugins"]
    chem = "dltk_chem.spec:plugin"

The spec names everything by string (``"package.module:Class"``) so that ``dltk plugins`` can list
plugins, tasks and their health without importing torch or the plugin's dependencies. The classes
themselves subclass :class:`dltk.base.BaseDataModule` and :class:`dltk.base.BaseModel`.

Note: "plugin" here means a dltk domain pack. Lightning's own "plugins" (precision, checkpoint IO)
are a different thing and are configured through ``--trainer.plugins`` as usual.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

ENTRY_POINT_GROUP = "dltk.plugins"


@dataclass(frozen=True)
class Requirement:
    """A package a plugin needs at run time.

    Args:
        module: the import name checked with :func:`importlib.util.find_spec` (never imported).
        package: the name to ``pip install``.
        purpose: what it enables, for an optional requirement (shown by ``dltk plugins``).
    """

    module: str
    package: str | None = None
    purpose: str = ""

    @property
    def pip_name(self) -> str:
        return self.package or self.module

    def is_installed(self) -> bool:
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            return False


@dataclass(frozen=True)
class Reference:
    """A published result to print and report beside ours.

    Args:
        name: the method, e.g. ``"DeepTox"``.
        citation: where the numbers come from, e.g. ``"Mayr et al. 2016, Front. Environ. Sci. 3:80"``.
        metric: the metric key these values are comparable to, e.g. ``"auroc"``.
        values: per-task values, keyed by task name, and ``"mean"`` for the overall figure.
    """

    name: str
    citation: str
    metric: str
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PresetSpec:
    """A named preset: dataset + model + metrics + trainer defaults, as a YAML config.

    Chosen on the command line with ``--task NAME`` (or ``--preset NAME``) and recorded as ``task:``
    in a run's ``config.yaml``: the flag and the key keep their historical name. (A *task* in the
    glossary is one predicted label column; see docs/architecture.md.)

    Args:
        name: lower_snake name used with ``--task``.
        summary: one line for ``dltk plugins``.
        config: path of the preset YAML inside the plugin package (e.g. ``"configs/tox21.yaml"``).
            It holds ``data`` and ``model`` (``class_path`` + ``init_args``) and ``trainer`` settings.
        references: published results to show beside ours.
        space: the preset's default hyper-parameter search space for ``dltk tune``: a mapping of
            ``model.*`` / ``data.*`` / ``trainer.*`` keys to ranges, in the format of a
            ``--space`` YAML file (docs/tuning.md), e.g.
            ``{"model.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}``.
    """

    name: str
    summary: str
    config: str
    references: tuple[Reference, ...] = ()
    space: dict[str, Any] = field(default_factory=dict)


TaskSpec = PresetSpec
"""The former name of :class:`PresetSpec`, kept so that existing plugins import unchanged."""


@dataclass(frozen=True)
class BenchmarkSpec:
    """A published protocol that ``dltk benchmark NAME`` reproduces over several seeds.

    Args:
        name: lower_snake name, unique across plugins (``dltk benchmark --list``).
        summary: one line.
        task: the plugin task whose preset the benchmark starts from.
        overrides: extra ``dltk train`` arguments (dotted overrides / flags) for this benchmark.
        metric: the test metric reported, e.g. ``"auroc"`` or ``"rmse"`` (``test/<metric>``).
        higher_is_better: direction of ``metric``.
        references: published numbers shown beside ours, each with its citation.
        protocol: how data is split and how hyper-parameters were chosen (printed in the report).
        seeds: default number of seeds.
        seed_split: also vary the data split's seed with the model seed (random-split benchmarks).
        combine: names of other benchmarks of the same plugin whose runs are averaged seed by seed
            (``dltk combine``, equal weights) to make this benchmark's runs; each of them is run
            first (its own report goes to ``OUTPUT/members/<name>/``). ``task`` and
            ``overrides`` are then not used for training; ``task`` names the printed references.
    """

    name: str
    summary: str
    task: str
    overrides: tuple[str, ...] = ()
    metric: str = "auroc"
    higher_is_better: bool = True
    references: tuple[Reference, ...] = ()
    protocol: str = ""
    seeds: int = 3
    seed_split: bool = False
    combine: tuple[str, ...] = ()


@dataclass(frozen=True)
class PluginSpec:
    """Everything a plugin declares.

    Args:
        name: the plugin's name (``--plugin NAME``).
        summary: one line.
        package: the plugin's import package, e.g. ``"dltk_chem"``. Config ``class_path`` values
            must come from this package or from ``dltk``.
        tasks: the plugin's presets (:class:`PresetSpec`); the first one is the default. (The field
            keeps its historical name.)
        datamodules: name -> ``"module:Class"`` of each :class:`~dltk.base.BaseDataModule`.
        models: name -> ``"module:Class"`` of each :class:`~dltk.base.BaseModel`.
        requires: packages needed at run time (checked, never imported, by ``dltk plugins``).
        install_hint: how to install what ``requires`` lists.
        benchmarks: published protocols reproduced by ``dltk benchmark``.
        optional: packages that enable extra capabilities when installed (e.g. another library's
            featurizers); checked like ``requires``, never imported, and listed by ``dltk plugins``.
        explainer: ``"module:function"`` called by ``dltk explain --run DIR [options]`` as
            ``function(run_dir, model, datamodule, argv) -> list[Path]``; it parses its own options
            from ``argv`` and returns the files it wrote (e.g. attribution PNGs).
    """

    name: str
    summary: str
    package: str
    tasks: tuple[PresetSpec, ...]
    datamodules: dict[str, str] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    requires: tuple[Requirement, ...] = ()
    install_hint: str = ""
    benchmarks: tuple[BenchmarkSpec, ...] = ()
    explainer: str | None = None
    optional: tuple[Requirement, ...] = ()

    @property
    def default_task(self) -> str:
        return self.tasks[0].name

    def task(self, name: str | None) -> PresetSpec:
        """The preset called ``name`` (the default preset when None); a ConfigError lists the choices."""
        from dltk.errors import ConfigError

        if name is None:
            return self.tasks[0]
        for task in self.tasks:
            if task.name == name:
                return task
        choices = ", ".join(t.name for t in self.tasks)
        raise ConfigError(f"plugin {self.name!r} has no preset (--task) {name!r}; choose one of: {choices}")

    preset = task
    """The preset called ``name`` (same as :meth:`task`)."""

    def config_path(self, task: PresetSpec) -> Path:
        """Filesystem path of a task's preset YAML inside the installed plugin package."""
        return Path(str(resources.files(self.package).joinpath(task.config)))

    def missing(self) -> list[Requirement]:
        """Requirements that are not installed (found with find_spec, nothing imported)."""
        return [req for req in self.requires if not req.is_installed()]
