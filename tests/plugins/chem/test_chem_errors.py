"""Bad input on the command line (``dltk train --plugin chem --task csv --data.path FILE``), as seen
by the real process (the full catalogue of malformed inputs is tests/bad_inputs/).

Every case exits with code 2 and prints exactly one line on stderr, ``dltk: error: ...``, naming
the file and the row, column or key at fault, with no traceback; ``--debug`` re-raises (so the
traceback shows); no run directory is left behind. A tiny valid CSV trains.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("rdkit")

from testutil import preserved_environ
from dltk.cli import main  # noqa: E402
from dltk.errors import DltkUserError  # noqa: E402
from dltk_chem.files import FILES  # noqa: E402
from dltk_chem.moleculenet import ESOL_TARGET  # noqa: E402

VALID = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "CCCl", "OCC(O)CO", "CC(C)O", "c1ccncc1", "CCOC(=O)C",
         "NC(=O)N", "CC#N", "C1CCCCC1"]

# name -> (file content, or None for no file; extra arguments; substrings the error line must hold)
CASES: dict[str, tuple[str | None, list[str], list[str]]] = {
    "missing-file": (None, [], ["{path}", "file not found"]),
    "no-smiles-column": ("smi,y\nCCO,1\nCCN,0\n", [], ["{path}", "row 1", "'smiles'", "available columns",
                                                     "'smi'"]),
    "non-numeric-label": ("smiles,y,z\nCCO,1,0.5\nCCN,0,1.5\nCCC,yes,2\nCCCC,1,3\n", [],
                          ["{path}", "row 4", "field 'y'", "'yes'", "not a number"]),
    "all-smiles-invalid": ("smiles,y\n" + "".join(f"not_a_smiles_{i},{i % 2}\n" for i in range(20)), [],
                           ["{path}", "no valid SMILES"]),
    "empty-file": ("", [], ["{path}", "empty"]),
}


def _write(tmp_path: Path, name: str) -> Path:
    content = CASES[name][0]
    path = tmp_path / "inputs" / f"{name}.csv"
    path.parent.mkdir(exist_ok=True)
    if content is not None:
        path.write_text(content)
    return path


def _argv(tmp_path: Path, name: str) -> tuple[list[str], list[str]]:
    path = _write(tmp_path, name)
    _, extra, needles = CASES[name]
    argv = ["train", "--plugin", "chem", "--task", "csv", "--data.path", str(path), *extra,
            "--trainer.max_epochs", "1", "--run-dir", str(tmp_path / "run")]
    return argv, [n.format(path=path) for n in needles]


def _no_run_left(tmp_path: Path) -> None:
    """No run directory at all: nothing in the working directory but the inputs."""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs"]




def test_unknown_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--plugin", "chem", "--task", "tox22", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    from dltk_chem.spec import plugin

    choices = ", ".join(t.name for t in plugin.tasks)
    assert "tox21_challenge, " in choices and "csv" in choices
    assert err == f"dltk: error: plugin 'chem' has no preset (--task) 'tox22'; choose one of: {choices}\n"
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DltkUserError):
        main(["--debug", "train", "--plugin", "chem", "--task", "tox22"])


def test_unknown_data_key_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--plugin", "chem", "--task", "csv", "--data.smiles_colum", "smi", "--run-dir", "run"]
    assert main(argv) == 2
    line = capsys.readouterr().err
    assert line.count("\n") == 1 and line.startswith("dltk: error: ")
    assert "smiles_colum" in line and "smiles_column" in line
    assert list(tmp_path.iterdir()) == []


# The real process: its file descriptor 2 must hold exactly the one line (Lightning's own logging,
# warnings and progress bars included), and --debug must print a traceback.
FD_SCRIPT = r"""
import json, os, sys, tempfile
from dltk.cli import main
cases = json.loads(sys.argv[1])
results = {}
for name, argv in cases.items():
    with tempfile.TemporaryFile(mode="w+") as err:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(err.fileno(), 2)
        try:
            code = main(argv)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        err.seek(0)
        results[name] = {"code": code, "stderr": err.read()}
print(json.dumps(results))
sys.stdout.flush()
main(["--debug", *argv])  # the last case again, uncaught: the interpreter prints the traceback
"""


def test_real_stderr_is_one_line_and_debug_shows_traceback(tmp_path: Path) -> None:
    names = ["no-smiles-column", "non-numeric-label", "all-smiles-invalid", "empty-file", "missing-file"]
    cases, needles = {}, {}
    for name in names:
        cases[name], needles[name] = _argv(tmp_path, name)
    proc = subprocess.run([sys.executable, "-c", FD_SCRIPT, json.dumps(cases)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in names:
        assert results[name]["code"] == 2, name
        lines = results[name]["stderr"].splitlines()
        assert len(lines) == 1 and lines[0].startswith("dltk: error: "), (name, results[name]["stderr"])
        assert all(n in lines[0] for n in needles[name]), (name, lines[0])
    # --debug: uncaught, with the traceback
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("dltk.errors.DataError: ")
    _no_run_left(tmp_path)


def test_tiny_valid_csv_trains_regression(data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """60 real ESOL molecules (log solubility), 1 epoch: a completed run with RMSE metrics."""
    esol = pd.read_csv(data_root / FILES["esol"].relpath)
    table = esol.sample(60, random_state=0)[["smiles", ESOL_TARGET]]
    table.columns = ["smiles", "logS"]
    table["smiles"] = table["smiles"].str.strip()
    source = tmp_path / "inputs" / "esol60.csv"
    source.parent.mkdir()
    table.to_csv(source, index=False)
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    with preserved_environ():
        code = main(["train", "--plugin", "chem", "--task", "csv", "--data.path", str(source),
                     "--data.target_columns", "logS", "--trainer.max_epochs", "1", "--model.hidden_dim", "64",
                     "--data.batch_size", "16", "--run-dir", str(run)])
    assert code == 0, capsys.readouterr().err
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == {f"test/{m}{s}" for m in ("rmse", "mae", "r2") for s in ("", "/logS")}
    assert np.isfinite(metrics["test/rmse"]) and metrics["test/rmse"] > 0
    predictions = pd.read_csv(run / "predictions" / "test.csv")
    assert list(predictions.columns) == ["id", "smiles", "true_logS", "pred_logS"]
    assert len(predictions) == 6  # 10% of 60
    assert set(predictions["smiles"]) <= set(table["smiles"])
    rmse = float(np.sqrt(np.mean((predictions["true_logS"] - predictions["pred_logS"]) ** 2)))
    assert metrics["test/rmse"] == pytest.approx(rmse, rel=1e-4)
    assert metrics["test/rmse/logS"] == metrics["test/rmse"]
    assert (run / "plots" / "parity.png").is_file()
    assert (run / "plots" / "learning_curves.png").is_file()
    assert "test rmse" in capsys.readouterr().out
