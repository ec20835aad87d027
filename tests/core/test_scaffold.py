"""``dltk plugin new``: the generated package is complete and works without pip.

The package is generated into a temporary folder and registered the way ``pip install`` would
(a ``dist-info`` with its entry point, see ``plugin_env.py``); then ``dltk plugins`` lists it healthy,
its preset trains in-process to a ROC-AUC well above chance, and its own test suite passes in a
subprocess. ``.ci/run`` additionally does the real ``pip install -e`` round trip.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from plugin_env import PluginEnv, make_plugin_env, registered
from testutil import preserved_environ

from dltk.cli import main
from dltk.discovery import discover
from dltk.errors import ConfigError
from dltk.scaffold import new_plugin

EXPECTED = ["README.md", "pyproject.toml", "tests/test_demo.py", "dltk_demo/__init__.py", "dltk_demo/py.typed",
            "dltk_demo/spec.py", "dltk_demo/datamodules.py", "dltk_demo/models.py", "dltk_demo/configs/demo.yaml"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new_plugin("demo", tmp_path_factory.mktemp("scaffold") / "demo")


@pytest.fixture(scope="module")
def demo_env(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginEnv]:
    env = make_plugin_env(tmp_path_factory.mktemp("demo-site"), {"dltk_demo": {"demo": "dltk_demo.spec:plugin"}},
                          {"dltk_demo": demo_dir})
    with registered(env), preserved_environ():
        yield env


def test_generated_files(demo_dir: Path) -> None:
    files = sorted(p.relative_to(demo_dir).as_posix() for p in demo_dir.rglob("*") if p.is_file())
    assert files == sorted(EXPECTED)
    for name in files:
        text = (demo_dir / name).read_text()
        assert "{{" not in text and "__package__" not in text, name
    pyproject = (demo_dir / "pyproject.toml").read_text()
    assert '[project.entry-points."dltk.plugins"]\ndemo = "dltk_demo.spec:plugin"' in pyproject
    assert 'name = "dltk-demo"' in pyproject
    for name in files:
        if name.endswith(".py"):
            compile((demo_dir / name).read_text(), name, "exec")  # valid Python
    leftovers = [p.name for p in demo_dir.parent.iterdir() if p.name.startswith(".demo-")]
    assert not leftovers  # the staging folder was renamed into place


def test_names_and_existing_folder(tmp_path: Path) -> None:
    for bad in ("Demo", "1demo", "my-plugin", "class", "dltk", "demo_", "x" * 41):
        with pytest.raises(ConfigError):
            new_plugin(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        new_plugin("demo", tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    camel = new_plugin("cell_painting", tmp_path / "cp")
    assert "class CellPaintingDataModule(BaseDataModule)" in (camel / "dltk_cell_painting" / "datamodules.py").read_text()


def test_cli_new(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugin", "new", "demo2", "--dir", str(tmp_path / "d2"), "--summary", "Two of them."]) == 0
    assert "pip install -e" in capsys.readouterr().out
    assert 'summary="Two of them."' in (tmp_path / "d2" / "dltk_demo2" / "spec.py").read_text()
    assert main(["plugin", "new", "demo2", "--dir", str(tmp_path / "d2")]) == 2  # exists: one-line error
    assert capsys.readouterr().err.startswith("dltk: error: ")


def test_listed_healthy(demo_env: PluginEnv, capsys: pytest.CaptureFixture[str]) -> None:
    plugins = discover()
    assert plugins["demo"].status == "ok"
    assert [t.name for t in plugins["demo"].spec.tasks] == ["demo"]
    assert main(["plugins"]) == 0
    assert re.search(r"^demo 0\.1: ok$", capsys.readouterr().out, re.MULTILINE)
    assert main(["train", "--plugin", "demo", "--print-config"]) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["class_path"] == "dltk_demo.models.DemoMLP"
    assert config["data"]["init_args"]["n_samples"] == 2000
    # the full training (ROC-AUC > 0.8, chance 0.5) is one of the scaffold's own tests, run below


def test_contract_check_command(demo_env: PluginEnv, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugin", "check", "demo"]) == 0
    out = capsys.readouterr().out
    for check in ("demo:spec", "demo:classes", "demo:model:mlp", "demo:preset:demo"):
        assert re.search(rf"^ok +{check} ", out, re.MULTILINE), out
    assert "4 passed, 0 failed, 0 skipped" in out


def test_scaffold_own_tests_pass(demo_env: PluginEnv, demo_dir: Path) -> None:
    # the fixture normally arrives through dltk's pytest11 entry point; load it by module name so the
    # test also holds where a stale dltk.egg-info (without that entry point) shadows the install
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:dltk", "-p", "dltk.testing"]
    proc = subprocess.run(args, cwd=demo_dir, env=demo_env.environ(), capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert re.search(r"\b4 passed\b", proc.stdout), proc.stdout[-1000:]


def test_check_reports_each_broken_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A generated plugin broken three ways: its spec imports torch, its datamodule entry names a
    model class (so the preset's datamodule is unregistered too), its model lost example().
    `dltk plugin check` fails each check with its reason (exit 1)."""
    folder = new_plugin("broken", tmp_path / "broken")
    pkg = folder / "dltk_broken"
    spec = (pkg / "spec.py").read_text()
    spec = spec.replace("from dltk.plugin import", "import torch  # noqa: F401\nfrom dltk.plugin import")
    spec = spec.replace('"dltk_broken.datamodules:BrokenDataModule"', '"dltk_broken.models:BrokenMLP"')
    (pkg / "spec.py").write_text(spec)
    models = (pkg / "models.py").read_text()
    (pkg / "models.py").write_text(models.replace("def example(cls)", "def tiny_variant(cls)"))
    env = make_plugin_env(tmp_path / "site", {"dltk_broken": {"broken": "dltk_broken.spec:plugin"}},
                          {"dltk_broken": folder})
    with registered(env), preserved_environ():
        assert main(["plugin", "check", "broken", "--no-train"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^FAIL broken:spec .*imported heavy module\(s\) \['torch'", out, re.MULTILINE), out
    assert re.search(r"^FAIL broken:classes .*does not subclass dltk\.base\.BaseDataModule", out, re.MULTILINE), out
    assert re.search(r"^FAIL broken:model:mlp .*(has no classmethod example\(\)|does not provide a contract "
                     r"example\(\))", out, re.MULTILINE), out
    assert re.search(r"^FAIL broken:preset:broken .*BrokenDataModule is not in spec\.datamodules", out, re.MULTILINE)
    assert "0 passed, 4 failed, 0 skipped" in out


def test_isolated_discovery_sees_only_the_plugin_under_test(demo_env: PluginEnv) -> None:
    from dltk import contract

    everything = set(discover())
    assert "demo" in everything and len(everything) > 1  # the built-in plugins are installed too
    with contract.isolated("demo"):
        assert list(discover()) == ["demo"]
    assert set(discover()) == everything  # restored afterwards
