"""Plugin discovery through entry points, with per-plugin health that never breaks the host.

Discovery loads only each plugin's light spec module. A plugin whose spec fails to import, or that
is missing a dependency, is reported in one line; the other plugins and the CLI keep working.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from dltk.errors import ConfigError
from dltk.plugin import ENTRY_POINT_GROUP, PluginSpec


@dataclass
class PluginInfo:
    """One discovered plugin and its health."""

    name: str
    version: str
    entry_point: str
    spec: PluginSpec | None = None
    error: str | None = None

    @property
    def missing(self) -> list[str]:
        return [r.pip_name for r in self.spec.missing()] if self.spec else []

    @property
    def healthy(self) -> bool:
        return self.spec is not None and not self.missing

    @property
    def status(self) -> str:
        if self.error:
            return f"broken: {self.error}"
        if self.missing:
            hint = self.spec.install_hint if self.spec else ""
            return f"missing dependency: {', '.join(self.missing)}" + (f" (install: {hint})" if hint else "")
        return "ok"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _load(ep: EntryPoint) -> PluginInfo:
    version = ep.dist.version if ep.dist is not None else "?"
    info = PluginInfo(name=ep.name, version=version, entry_point=ep.value)
    try:
        spec = ep.load()
    except Exception as exc:  # a broken plugin must not break the host
        info.error = _one_line(exc)
        return info
    if not isinstance(spec, PluginSpec):
        info.error = f"entry point {ep.value} is a {type(spec).__name__}, not a dltk.plugin.PluginSpec"
    elif spec.name != ep.name:
        info.error = f"entry point name {ep.name!r} differs from the spec's name {spec.name!r}"
    elif not spec.tasks:
        info.error = "declares no tasks"
    else:
        info.spec = spec
    return info


def discover() -> dict[str, PluginInfo]:
    """All plugins registered in the ``dltk.plugins`` entry-point group, sorted by name.

    Two distributions registering the same name are reported as an error naming both.
    """
    found: dict[str, PluginInfo] = {}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        info = _load(ep)
        if ep.name in found:
            other = found[ep.name]
            if other.entry_point != ep.value:
                other.spec = None
                other.error = f"registered twice: {other.entry_point} and {ep.value}"
            continue
        found[ep.name] = info
    return found


def get_plugin(name: str) -> PluginSpec:
    """The spec of a healthy plugin, or a one-line ConfigError saying why it cannot be used."""
    plugins = discover()
    if name not in plugins:
        choices = ", ".join(plugins) or "none installed"
        raise ConfigError(f"unknown plugin {name!r}; installed plugins: {choices}")
    info = plugins[name]
    if not info.healthy:
        raise ConfigError(f"plugin {name!r} cannot be used: {info.status}")
    assert info.spec is not None
    return info.spec
