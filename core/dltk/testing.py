"""pytest plugin for dltk plugin authors (registered through the ``pytest11`` entry point, so it is
active wherever dltk is installed; it imports nothing heavy until a fixture is used).

Fixtures:

``dltk_contract``
    ``dltk_contract(name, train=True, only=None, overrides=None)`` runs the plugin contract
    (:mod:`dltk.contract`) on plugin ``name`` with discovery isolated to it, and fails the test with
    one line per failed check. Returns the results (skipped checks carry their reason)::

        def test_contract(dltk_contract):
            dltk_contract("demo")

``dltk_isolate``
    ``dltk_isolate(name)``: for the rest of the test, :func:`dltk.discovery.discover` sees only
    plugin ``name`` (other installed plugins, broken or not, cannot interfere).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def dltk_isolate() -> Iterator[Callable[[str], None]]:
    stack = contextlib.ExitStack()

    def isolate(name: str) -> None:
        from dltk.contract import isolated

        stack.enter_context(isolated(name))

    with stack:
        yield isolate


@pytest.fixture
def dltk_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[Any]]:
    monkeypatch.setenv("DLTK_CACHE", str(tmp_path / "dltk-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # runs/ and any stray output land in the test's folder

    def run(name: str, train: bool = True, only: str | None = None,
            overrides: Callable[[str, Path], list[str]] | None = None) -> list[Any]:
        from dltk.contract import check_plugin

        results = check_plugin(name, train=train, only=only, echo=None, overrides=overrides)
        failed = [r for r in results if r.status == "failed"]
        if failed:
            lines = [f"{r.check}: {r.detail}" for r in failed]
            pytest.fail(f"{len(failed)} of {len(results)} contract checks failed:\n" + "\n".join(lines),
                        pytrace=False)
        return results

    return run
