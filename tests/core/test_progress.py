"""One line per epoch instead of a progress bar when the output is a log file, not a terminal."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from plugin_env import PluginEnv

from dltk.cli import main
from dltk.progress import wants_epoch_lines

LINE = re.compile(r"^dltk: epoch (\d+)/\d+  train/loss [\d.]+  .*val/auroc ([\d.]+)  .*"
                  r"\(best val/auroc ([\d.]+)\)  [\d.]+ s$", re.MULTILINE)


def test_epoch_lines_replace_the_bar_in_a_log(toy_plugin: PluginEnv, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--plugin", "toy", "--trainer.max_epochs", "3", "--run-dir", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    lines = LINE.findall(out)
    assert [int(e) for e, _, _ in lines] == [1, 2, 3], out[-2000:]
    vals = [float(v) for _, v, _ in lines]
    assert [float(b) for _, _, b in lines] == pytest.approx([max(vals[:i + 1]) for i in range(3)], abs=1e-4)
    assert "\r" not in out


def test_an_explicit_bar_is_kept(toy_plugin: PluginEnv, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--plugin", "toy", "--trainer.max_epochs", "2", "--trainer.enable_progress_bar", "true",
                 "--run-dir", str(tmp_path / "b")]) == 0
    assert not LINE.search(capsys.readouterr().out)


def test_default_follows_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert not wants_epoch_lines(None) and wants_epoch_lines(False) and not wants_epoch_lines(True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    assert wants_epoch_lines(None)
