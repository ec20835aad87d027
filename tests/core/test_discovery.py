"""Plugin discovery and health: a broken plugin or one missing a dependency never breaks the host.

Three third-party plugins are registered through entry points in a temporary environment
(see ``conftest.py``): ``broken`` (its spec module raises on import), ``needy`` (its Requirement
module is not installed) and the healthy ``toy`` plugin. The chem plugin comes with dltk itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_env import (TOY_ENTRY_POINT, TOY_SRC, PluginEnv, dltk_script, make_plugin_env, registered,
                        write_package)

from dltk.cli import main
from dltk.errors import ConfigError

BROKEN_SPEC = '''\
"""A plugin whose spec fails to import (e.g. a syntax or dependency error in the plugin)."""
raise ImportError("dltk_broken cannot load libbroken.so\\n(a second line of the message)")
'''

NEEDY_SPEC = '''\
"""A healthy spec whose run-time dependency is not installed."""
from dltk.plugin import PluginSpec, Requirement, TaskSpec

plugin = PluginSpec(
    name="needy",
    summary="Needs a package that is not installed.",
    package="dltk_needy",
    tasks=(TaskSpec("only", "the only task", "configs/only.yaml"),),
    requires=(Requirement("dltk_no_such_module_xyz", package="no-such-package-xyz"),),
    install_hint="pip install 'dltk-needy[all]'",
)
'''

NOT_A_SPEC = '''\
plugin = {"name": "wrongtype"}
'''

SUBPROCESS_TIMEOUT = 120


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> PluginEnv:
    """broken + needy + wrongtype + toy registered in one temporary site directory."""
    root = tmp_path_factory.mktemp("plugin-env")
    src = root / "src"
    write_package(src, "dltk_broken", {"spec.py": BROKEN_SPEC})
    write_package(src, "dltk_needy", {"spec.py": NEEDY_SPEC})
    write_package(src, "dltk_wrongtype", {"spec.py": NOT_A_SPEC})
    return make_plugin_env(
        root / "site",
        {"dltk_broken": {"broken": "dltk_broken.spec:plugin"},
         "dltk_needy": {"needy": "dltk_needy.spec:plugin"},
         "dltk_wrongtype": {"wrongtype": "dltk_wrongtype.spec:plugin"},
         "dltk_toy": TOY_ENTRY_POINT},
        {"dltk_broken": src, "dltk_needy": src, "dltk_wrongtype": src, "dltk_toy": TOY_SRC})


def _run(args: list[str], env: PluginEnv, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([dltk_script(), *args], env=env.environ(), cwd=cwd, capture_output=True,
                          text=True, timeout=SUBPROCESS_TIMEOUT)


def _status_lines(stdout: str) -> dict[str, str]:
    """``{plugin: status}`` from the unindented ``NAME VERSION: STATUS`` lines of ``dltk plugins``."""
    out = {}
    for line in stdout.splitlines():
        if line and not line.startswith(" "):
            head, _, status = line.partition(": ")
            name = head.split()[0]
            assert name not in out, f"two status lines for {name}:\n{stdout}"
            out[name] = status
    return out


def test_plugins_lists_every_plugin_with_one_line_of_status(plugin_env: PluginEnv, tmp_path: Path) -> None:
    proc = _run(["plugins"], plugin_env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    status = _status_lines(proc.stdout)
    assert {"broken", "needy", "wrongtype", "toy"} <= set(status), proc.stdout

    # the broken plugin: its error, on its one line (the two-line message is joined)
    assert status["broken"].startswith("broken: ImportError: dltk_broken cannot load libbroken.so")
    assert "(a second line of the message)" in status["broken"]
    # the plugin missing a dependency: names the pip package and the install hint
    assert status["needy"] == ("missing dependency: no-such-package-xyz "
                               "(install: pip install 'dltk-needy[all]')")
    assert status["wrongtype"].startswith("broken: entry point dltk_wrongtype.spec:plugin is a dict")
    # the others are healthy; plugins with a readable spec list their tasks
    assert status["toy"] == "ok"
    assert "  - toy (default): " in proc.stdout
    assert "  - toy_regression: " in proc.stdout
    assert "  - only (default): the only task" in proc.stdout
    pytest.importorskip("rdkit")
    assert status["chem"] == "ok"


def test_plugins_json(plugin_env: PluginEnv, tmp_path: Path) -> None:
    proc = _run(["plugins", "--json"], plugin_env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["toy"] == {"version": "0.1", "status": "ok", "tasks": ["toy", "toy_regression", "toy_multiclass"]}
    assert data["broken"]["tasks"] == [] and data["broken"]["status"].startswith("broken: ImportError")
    assert data["needy"]["status"].startswith("missing dependency: no-such-package-xyz")


def test_help_works_with_a_broken_plugin(plugin_env: PluginEnv, tmp_path: Path) -> None:
    proc = _run(["--help"], plugin_env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "usage: dltk" in proc.stdout
    for command in ("train", "test", "predict", "plugins"):
        assert command in proc.stdout
    assert proc.stderr == ""


def test_train_with_broken_plugin_is_a_one_line_error(plugin_env: PluginEnv, tmp_path: Path) -> None:
    proc = _run(["train", "--plugin", "broken", "--run-dir", str(tmp_path / "run")], plugin_env, tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("dltk: error: plugin 'broken' cannot be used: broken: ImportError: "
                                  "dltk_broken cannot load libbroken.so")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("plugin", "expected"), [
    ("broken", "plugin 'broken' cannot be used: broken: ImportError: dltk_broken cannot load libbroken.so "
               "(a second line of the message)"),
    ("needy", "plugin 'needy' cannot be used: missing dependency: no-such-package-xyz "
              "(install: pip install 'dltk-needy[all]')"),
    ("wrongtype", "plugin 'wrongtype' cannot be used: broken: entry point dltk_wrongtype.spec:plugin "
                  "is a dict"),
    ("nope", "unknown plugin 'nope'; installed plugins: "),
])
def test_unusable_plugins_in_process(plugin_env: PluginEnv, plugin: str, expected: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    with registered(plugin_env):
        assert main(["train", "--plugin", plugin, "--run-dir", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"dltk: error: {expected}")
        assert err.count("\n") == 1
        if plugin == "nope":
            assert "broken" in err and "needy" in err and "toy" in err
        with pytest.raises(ConfigError):
            main(["--debug", "train", "--plugin", plugin])
    assert not (tmp_path / "run").exists()


def test_registration_is_undone(plugin_env: PluginEnv) -> None:
    from dltk.discovery import discover

    with registered(plugin_env):
        assert {"broken", "needy", "toy"} <= set(discover())
    names = set(discover())
    assert not names & {"broken", "needy", "wrongtype", "toy"}
    assert "dltk_toy" not in sys.modules


LIGHT_CHECK = """\
import sys
from dltk.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print(any(m in sys.modules for m in ('torch', 'lightning', 'rdkit')))
"""


@pytest.mark.parametrize("argv", [["plugins"], ["plugins", "--json"], ["--help"], ["--version"]],
                         ids=["plugins", "plugins-json", "help", "version"])
def test_startup_does_not_import_heavy_modules(plugin_env: PluginEnv, tmp_path: Path,
                                               argv: list[str]) -> None:
    """``dltk --help`` and ``dltk plugins`` (with the chem plugin and three third-party plugins
    registered, one broken) never import torch, lightning or rdkit."""
    proc = subprocess.run([sys.executable, "-c", LIGHT_CHECK.format(argv=argv)], env=plugin_env.environ(),
                          cwd=tmp_path, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False", proc.stdout
