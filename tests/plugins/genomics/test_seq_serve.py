"""`dltk serve` on a genomics run: sequences over HTTP answer what `dltk predict` writes.

A small SRF binding run (real DeepBind ENCODE data, 1 epoch, 16 filters) is trained here."""

from __future__ import annotations

from pathlib import Path

import httpx
import pandas as pd
import pytest
from serveutil import as_frame, same_table, served
from testutil import preserved_environ

from dltk.cli import main
from dltk.client import Client

SRF_PEAK = ("GCGCGTGACGCTCTCAGCCAATGAGCGGCCGCCATTCGGGGCCGTGCCCATATAAGGCAGGCCTTGGCGAAGGGGCCCAACTTCGA"
            "AATAGGGAGGAGTAG")
SEQUENCES = [SRF_PEAK, SRF_PEAK[30:80].replace("T", "u"), "ACGT*ACGT", "NNNNACGT"]


@pytest.fixture(scope="module")
def srf_run(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("srf-serve") / "run"
    with preserved_environ():
        assert main(["train", "--plugin", "genomics", "--trainer.enable_progress_bar", "false",
                     "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "10", "--model.num_filters", "16", "--data.negatives_per_positive", "1",
                     "--run-dir", str(run)]) == 0
    return run


@pytest.mark.slow  # a training run and a server start: ~1 min on two busy cores
def test_sequences_equal_dltk_predict(srf_run: Path, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("".join(f"{s}\n" for s in SEQUENCES))  # bare sequences: ids seq1, seq2, ...
    with preserved_environ():
        assert main(["predict", "--run", str(srf_run), "--input", str(tmp_path / "in.txt"), "--output",
                     str(tmp_path / "out.csv")]) == 0
    expected = pd.read_csv(tmp_path / "out.csv")
    with served(srf_run, "--token", "t0k", log_dir=tmp_path) as server, Client(server.url, token="t0k") as client:
        answer = client.answer({"sequences": SEQUENCES})
        named = client.predict({"sequences": SEQUENCES[:1], "ids": ["peak"]})
        no_token = httpx.post(server.url + "/predict", json={"sequences": SEQUENCES})
        spaced = httpx.post(server.url + "/predict", json={"sequences": ["AC GT"]},
                            headers={"Authorization": "Bearer t0k"})
    same_table(as_frame(answer), expected)
    rows = answer["predictions"]
    assert [r["id"] for r in rows] == ["seq1", "seq2", "seq3", "seq4"] and [r["row"] for r in rows] == [1, 2, 3, 4]
    assert "non-IUPAC character '*' at position 5" in rows[2]["error"] and rows[2]["bound"] is None
    assert answer["counts"] == {"rows": 4, "predicted": 3, "errors": 1}
    assert named[0]["id"] == "peak" and named[0]["bound"] == pytest.approx(rows[0]["bound"], abs=1e-6)
    assert no_token.status_code == 401
    assert spaced.status_code == 422 and "body.sequences[0]: does not match" in spaced.json()["detail"]
