"""Fixtures for the core tests: the toy plugin registered through an entry point in a temporary
environment (helpers in ``plugin_env.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from plugin_env import TOY_ENTRY_POINT, TOY_SRC, PluginEnv, make_plugin_env, registered
from testutil import preserved_environ


@pytest.fixture(scope="session")
def toy_env(tmp_path_factory: pytest.TempPathFactory) -> PluginEnv:
    """The toy plugin (``tests/core/toy_plugin/dltk_toy``) registered in a temporary site dir
    (not yet on sys.path: use :func:`registered` or :meth:`PluginEnv.environ`)."""
    site = tmp_path_factory.mktemp("toy-site")
    return make_plugin_env(site, {"dltk_toy": TOY_ENTRY_POINT}, {"dltk_toy": TOY_SRC})


@pytest.fixture(scope="module")
def toy_plugin(toy_env: PluginEnv) -> Iterator[PluginEnv]:
    """The toy plugin registered in this process for the test module."""
    with registered(toy_env) as env, preserved_environ():
        yield env
