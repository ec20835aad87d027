"""`dltk serve` on a pose-behaviour run: a pose file uploaded (or sent as base64) answers what
`dltk predict` writes for it (a 1-epoch run on the real Sturman open-field data)."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pandas as pd
import pytest
from serveutil import as_frame, same_table, served
from testutil import preserved_environ

from dltk.cli import main
from dltk.client import Client
from dltk_video import datasets


@pytest.fixture(scope="module")
def pose_run(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("pose-serve") / "run"
    with preserved_environ():
        assert main(["train", "--plugin", "video", "--trainer.max_epochs", "1", "--run-dir", str(run)]) == 0
    return run


@pytest.mark.slow  # a training run and a server start: ~1 min on two busy cores
def test_pose_file_equals_dltk_predict(pose_run: Path, data_root: Path, tmp_path: Path) -> None:
    pose = data_root / datasets.FILES["sturman/12_01/pose"].relpath
    with preserved_environ():
        assert main(["predict", "--run", str(pose_run), "--input", str(pose), "--output", str(tmp_path / "p.csv")]) == 0
    expected = pd.read_csv(tmp_path / "p.csv")
    with served(pose_run, log_dir=tmp_path) as server, Client(server.url) as client:
        uploaded = client.predict_files([pose])
        answer = client.answer({"pose_file": base64.b64encode(pose.read_bytes()).decode()})
        two = httpx.post(server.url + "/predict", files=[("files", ("a", b"x")), ("files", ("b", b"y"))])
        corrupt = httpx.post(server.url + "/predict", files=[("files", ("a", b"not,a\npose,file\n"))])
    same_table(as_frame(answer), expected)
    assert uploaded == answer["predictions"] and len(uploaded) == 1998
    assert two.status_code == 422 and two.json()["detail"] == "one pose file per request, got 2"
    assert corrupt.status_code == 422 and "dltk-serve-" not in corrupt.json()["detail"]  # no server path
