"""The bad-input catalogue: every malformed input users are known to bring, across core and every
plugin, gets a one-line error naming the file and the row / field / key (exit code 2, no
traceback, nothing left looking complete) or a documented, counted skip. See ``catalogue.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cases_chem
import cases_core
import pytest
from catalogue import Case, Context

from dltk.cli import main
from dltk.discovery import discover
from dltk.errors import DltkUserError

MODULES = [cases_core, cases_chem]
for _name in ("cases_genomics", "cases_imaging", "cases_video"):
    try:
        MODULES.append(__import__(_name))
    except ModuleNotFoundError:  # that plugin's cases are not written yet
        pass
CASES: list[Case] = [case for module in MODULES for case in module.CASES]


def _healthy(plugin: str) -> bool:
    info = discover().get(plugin)
    return info is not None and info.status == "ok"


def test_catalogue_is_large_and_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(CASES) >= 40, f"only {len(CASES)} bad inputs catalogued"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, data_root: Path, shared_runs: Callable[[str], Path],
                   monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                   caplog: pytest.LogCaptureFixture) -> None:
    if case.plugin and not _healthy(case.plugin):
        pytest.skip(f"plugin {case.plugin} is not installed")
    ctx = Context(tmp=tmp_path / "work", data_root=data_root, runs=shared_runs)
    ctx.tmp.mkdir()
    argv = case.build(ctx)
    capsys.readouterr()
    monkeypatch.chdir(ctx.tmp)
    code = main(argv)
    out, err = capsys.readouterr()
    needles = [n.format(tmp=ctx.tmp) for n in case.needles]
    if case.skip:
        assert code == 0, err[-2000:]
        reported = out + err + caplog.text  # the count is reported: stdout, or a logged warning
        for needle in needles:
            assert needle in reported, f"{needle!r} not reported in:\n{reported[-3000:]}"
        return
    assert code == 2, f"exit {code}; stderr:\n{err[-3000:]}"
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dltk: error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in: {lines[0]}"
    # nothing looks complete: no completed run, no prediction output
    for status in ctx.tmp.rglob("run.json"):
        if "copied-run" not in status.parts:
            assert json.loads(status.read_text()).get("status") != "completed", status
    assert not (ctx.tmp / "run").exists(), "a run directory was left behind"
    assert not (ctx.tmp / "scores.csv").exists(), "a prediction output was left behind"
    # --debug: the same error raised with its traceback
    with pytest.raises(DltkUserError):
        main(["--debug", *argv])
