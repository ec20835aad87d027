"""`dltk serve` on a chem run: SMILES lists over HTTP answer what `dltk predict` writes.

A small run (300 real MoleculeNet Tox21 structures, two assays, ECFP, 2 epochs) is trained here."""

from __future__ import annotations

import gzip
import threading
from pathlib import Path

import httpx
import pandas as pd
import pytest
from serveutil import as_frame, same_table, served
from testutil import preserved_environ

from dltk.cli import main

pytest.importorskip("rdkit")

TASKS = ["NR-AR", "SR-p53"]
SMILES = ["CCO", "c1ccccc1O", "not-a-smiles", "", "CC(=O)Oc1ccccc1C(=O)O", "C1CC"]


@pytest.fixture(scope="module")
def chem_run(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("chem-serve")
    with gzip.open(data_root / "chem" / "moleculenet" / "tox21.csv.gz", "rt") as fh:
        table = pd.read_csv(fh).head(300)[["smiles", *TASKS]]
    table.to_csv(root / "train.csv", index=False)
    with preserved_environ():
        assert main(["train", "--plugin", "chem", "--task", "csv", "--data.path", str(root / "train.csv"),
                     "--data.target_columns", ",".join(TASKS), "--data.features", "ecfp",
                     "--trainer.max_epochs", "2", "--run-dir", str(root / "run")]) == 0
    return root / "run"


def _predict(run: Path, smiles: list[str], tmp: Path, name: str) -> pd.DataFrame:
    # the server's own CSV: a row number beside each SMILES keeps a blank SMILES a row (not a blank line)
    pd.DataFrame({"smiles": smiles, "n": range(1, len(smiles) + 1)}).to_csv(tmp / f"{name}.csv", index=False)
    assert main(["predict", "--run", str(run), "--input", str(tmp / f"{name}.csv"), "--output",
                 str(tmp / f"{name}.out.csv")]) == 0
    return pd.read_csv(tmp / f"{name}.out.csv")


def test_smiles_requests_equal_dltk_predict(chem_run: Path, tmp_path: Path) -> None:
    """Three requests batched together (a 300 ms window) each answer as their own file would."""
    requests = [SMILES, ["c1ccncc1", "CCN(CC)CC"], ["O=C=O", "bad(", "CCCl"]]
    expected = [_predict(chem_run, smiles, tmp_path, f"in{i}") for i, smiles in enumerate(requests)]
    with served(chem_run, "--batch-timeout", "300", log_dir=tmp_path) as server:
        answers: dict[int, dict] = {}

        def call(i: int) -> None:
            answers[i] = httpx.post(server.url + "/predict", json={"smiles": requests[i]}, timeout=60).json()

        threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        batches = httpx.get(server.url + "/health").json()["batches"]
        bad = httpx.post(server.url + "/predict", json={"smiles": "CCO"})
        unknown = httpx.post(server.url + "/predict", json={"smiles": ["CCO"], "smile": []})
        info = httpx.get(server.url + "/info").json()
    for answer, table in zip((answers[0], answers[1], answers[2]), expected, strict=True):
        same_table(as_frame(answer), table)
    assert batches == 1  # the three requests were predicted as one table
    rows = answers[0]["predictions"]
    assert [r["error"] for r in rows] == ["", "", "invalid SMILES (RDKit cannot parse)", "empty SMILES", "",
                                          "invalid SMILES (RDKit cannot parse)"]
    assert [r["line"] for r in rows] == [2, 3, 4, 5, 6, 7] and rows[0]["smiles"] == "CCO"
    assert all(0 <= rows[0][t] <= 1 for t in TASKS) and rows[2][TASKS[0]] is None
    assert bad.status_code == 422 and bad.json()["detail"] == "body.smiles: expected array, got string"
    assert unknown.status_code == 422 and "unknown field 'smile'" in unknown.json()["detail"]
    assert info["plugin"] == "chem" and info["preset"] == "csv" and info["task_names"] == TASKS
    assert info["data"]["init_args"]["features"] == "ecfp" and "test/auroc" in info["test_metrics"]
