"""Helpers that register dltk plugins in a temporary environment, the way ``pip install`` would.

A plugin is found through the ``dltk.plugins`` entry-point group of an installed distribution.
:func:`make_plugin_env` writes a ``<name>-<version>.dist-info/`` folder (``METADATA`` and
``entry_points.txt``) into a temporary "site" directory. ``importlib.metadata`` scans ``sys.path`` at
call time, so putting that directory (and the plugin's source folder) on ``sys.path`` registers the
plugin for in-process tests (:func:`registered`, which undoes it afterwards), and putting it on
``PYTHONPATH`` registers it for subprocesses (:meth:`PluginEnv.environ`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TOY_SRC = Path(__file__).resolve().parent / "toy_plugin"
"""Source folder holding the ``dltk_toy`` package."""

TOY_ENTRY_POINT = {"toy": "dltk_toy.spec:plugin"}


@dataclass
class PluginEnv:
    """A temporary set of registered plugins: ``site`` holds the dist-info folders; ``paths`` are the
    ``sys.path`` / ``PYTHONPATH`` entries (site first, then the plugins' source folders)."""

    site: Path
    paths: list[Path] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)

    def environ(self, **extra: str) -> dict[str, str]:
        """A copy of ``os.environ`` with these plugins on ``PYTHONPATH`` (for subprocesses)."""
        env = dict(os.environ)
        parts = [str(p) for p in self.paths]
        if env.get("PYTHONPATH"):
            parts.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(parts)
        env.update(extra)
        return env


def write_dist_info(site: Path, dist: str, entry_points: Mapping[str, str], version: str = "0.1") -> Path:
    """Write ``<dist>-<version>.dist-info`` with METADATA and a ``dltk.plugins`` entry_points.txt."""
    info = site / f"{dist}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=False)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = ["[dltk.plugins]"] + [f"{name} = {value}" for name, value in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return info


def write_package(root: Path, package: str, files: Mapping[str, str]) -> Path:
    """Write a source package ``root/package`` with ``files`` (name -> text); returns ``root``."""
    pkg = root / package
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(files.get("__init__.py", ""))
    for name, text in files.items():
        (pkg / name).write_text(text)
    return root


def make_plugin_env(site: Path, dists: Mapping[str, Mapping[str, str]],
                    sources: Mapping[str, Path] | None = None) -> PluginEnv:
    """Register ``dists`` (distribution name -> {entry-point name: "module:attr"}) in ``site``.

    ``sources`` maps each plugin's import package to the folder that holds it.
    """
    site.mkdir(parents=True, exist_ok=True)
    for dist, eps in dists.items():
        write_dist_info(site, dist, eps)
    sources = dict(sources or {})
    paths = [site] + [p for p in dict.fromkeys(sources.values()) if p != site]
    return PluginEnv(site=site, paths=paths, packages=list(sources))


@contextlib.contextmanager
def registered(env: PluginEnv) -> Iterator[PluginEnv]:
    """Put ``env`` on ``sys.path`` for the duration; afterwards remove it and forget its modules."""
    added = [str(p) for p in env.paths]
    sys.path[:0] = added
    importlib.invalidate_caches()
    try:
        yield env
    finally:
        for entry in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(entry)
            sys.path_importer_cache.pop(entry, None)
        for name in list(sys.modules):
            if any(name == pkg or name.startswith(pkg + ".") for pkg in env.packages):
                del sys.modules[name]
        importlib.invalidate_caches()




def dltk_script() -> str:
    """The ``dltk`` console script of the running interpreter's environment."""
    script = Path(sys.executable).parent / "dltk"
    if not script.is_file():
        pytest.skip(f"dltk console script not found next to {sys.executable}")
    return str(script)
