"""`dltk serve` on the toy plugin: a real server in a subprocess, a real HTTP client.

Plain, ensemble and combined runs answer what `dltk predict` writes for the same rows; the error
cases (401, 413, 422, one bad row) and a SIGTERM with requests in flight."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from plugin_env import PluginEnv
from serveutil import REPO, as_frame, same_table, served

from dltk.cli import main
from dltk.client import Client, ServeError

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def runs(toy_plugin: PluginEnv, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A plain run, a 2-member ensemble run and a combined run of two models."""
    root = tmp_path_factory.mktemp("serve-runs")
    common = ["train", "--plugin", "toy", "--trainer.max_epochs", "2"]
    assert main([*common, "--seed", "0", "--run-dir", str(root / "plain")]) == 0
    assert main([*common, "--seed", "1", "--model.hidden_dim", "64", "--run-dir", str(root / "wide")]) == 0
    assert main([*common, "--ensemble", "2", "--run-dir", str(root / "ensemble")]) == 0
    assert main(["combine", str(root / "plain"), str(root / "wide"), "--output", str(root / "combined")]) == 0
    return {name: root / name for name in ("plain", "ensemble", "combined")}


def _rows(n: int = 6) -> list[list[float | None]]:
    rows: list[list[float | None]] = np.random.default_rng(0).normal(size=(n, 8)).round(4).tolist()
    if n > 2:
        rows[2][3] = None  # one unusable row: an error on that row, the others scored
    return rows


def _predict_cli(run: Path, rows: list[list[float | None]], tmp: Path) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[f"x{i}" for i in range(8)])
    frame.insert(0, "id", [str(i + 1) for i in range(len(rows))])
    frame.to_csv(tmp / "in.csv", index=False)
    assert main(["predict", "--run", str(run), "--input", str(tmp / "in.csv"), "--output", str(tmp / "out.csv")]) == 0
    return pd.read_csv(tmp / "out.csv")


def _check_answer(client: Client, run: Path, kind: str, tmp: Path) -> None:
    rows = _rows()
    expected = _predict_cli(run, rows, tmp)
    answer = client.answer({"rows": rows})
    assert answer["counts"] == {"rows": 6, "predicted": 5, "errors": 1}
    same_table(as_frame(answer), expected)
    assert answer["predictions"][2]["error"] == "missing or non-numeric feature"
    outputs = [c for c in expected.columns if c not in ("id", "error")]
    assert outputs and all(answer["predictions"][2][c] is None for c in outputs)
    spread = [c for c in outputs if c.endswith("_std")]
    assert bool(spread) == (kind != "single")  # an ensemble and a combined run: the average, with the spread
    assert all(max(r[c] for r in answer["predictions"] if not r["error"]) > 0 for c in spread)
    info = client.info()
    assert info["plugin"] == "toy" and info["kind"] == kind and info["task_names"] == ["alpha", "beta"]
    assert info["input_schema"]["required"] == ["rows"] and info["dltk_version"]
    assert info["test_metrics"]["test/auroc"] == json.loads((run / "metrics.json").read_text())["test/auroc"]


@pytest.mark.parametrize("kind", ["ensemble", "combined"])
def test_ensemble_and_combined_runs_serve_their_average(runs: dict[str, Path], toy_plugin: PluginEnv,
                                                        tmp_path: Path, kind: str) -> None:
    """No token: every endpoint is open."""
    with served(runs[kind], env=toy_plugin.environ(), log_dir=tmp_path) as server, Client(server.url) as client:
        _check_answer(client, runs[kind], kind, tmp_path)


def test_plain_run_errors_token_and_limits(runs: dict[str, Path], toy_plugin: PluginEnv, tmp_path: Path) -> None:
    args = ("--token", TOKEN, "--max-rows", "50", "--max-body-mb", "0.05")
    with served(runs["plain"], *args, env=toy_plugin.environ(), log_dir=tmp_path) as server:
        with Client(server.url, token=TOKEN) as client:
            _check_answer(client, runs["plain"], "single", tmp_path)
        url, auth = server.url, {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.post(url + "/predict", json={"rows": [[0.0] * 8]}).status_code == 401
        assert httpx.post(url + "/predict", json={"rows": [[0.0] * 8]},
                          headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(url + "/info").status_code == 401
        assert httpx.get(url + "/health").status_code == 200  # probes need no token
        cases = {  # body -> (status, message part)
            b"{not json": (422, "malformed JSON"),
            b'{"rows": [[1, "a"]]}': (422, "body.rows[0][1]: expected number or null, got string"),
            b'{"rows": [[1]], "extra": 1}': (422, "unknown field 'extra'"),
            b'{"rowz": []}': (422, "unknown field 'rowz'"),
            b'[1, 2]': (422, "body: expected object, got array"),
            json.dumps({"rows": [[0.0] * 8] * 51}).encode(): (413, "the limit is 50"),
            b'{"rows": [[' + b"1," * 40_000 + b"1]]}": (413, "request body over"),
        }
        for body, (status, part) in cases.items():
            r = httpx.post(url + "/predict", content=body, headers={**auth, "content-type": "application/json"})
            assert r.status_code == status, (body[:40], r.text)
            assert part in r.json()["detail"], r.json()
        r = httpx.post(url + "/predict", files={"files": ("a.csv", b"1,2")}, headers=auth)
        assert r.status_code == 415 and "takes JSON" in r.json()["detail"]
        with Client(url, token=TOKEN) as client:
            assert len(client.predict({"rows": _rows(3)})) == 3
            with pytest.raises(ServeError, match="422"):
                client.predict({"rows": "x"})
        openapi = httpx.get(url + "/openapi.json").json()
        assert openapi["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"][
            "required"] == ["rows"]
        assert httpx.get(url + "/health").json()["status"] == "ok"




def _entrypoint(run: Path) -> list[str]:
    """The Dockerfile's ENTRYPOINT + CMD with the mounted /run replaced by ``run``."""
    text = (REPO / "docker" / "Dockerfile").read_text()
    words = []
    for key in ("ENTRYPOINT", "CMD"):
        line = next(ln for ln in text.splitlines() if ln.startswith(key + " "))
        words += json.loads(line[len(key) + 1:])
    words = [str(run) if w == "/run" else w for w in words]
    assert words[:2] == ["dltk", "serve"] and "--host" in words
    host = words.index("--host")
    return [sys.executable, "-m", "dltk.cli", *words[1:host], "--host", "127.0.0.1", *words[host + 2:]]


def test_sigterm_answers_requests_in_flight(runs: dict[str, Path], toy_plugin: PluginEnv, tmp_path: Path) -> None:
    """The Dockerfile's entrypoint command (without Docker); SIGTERM while 4 requests wait in a
    batch window: all four are answered, then the server shuts down."""
    command = _entrypoint(runs["plain"])
    with served(runs["plain"], "--batch-timeout", "1500", "--max-batch", "1000000", command=command,
                env=toy_plugin.environ(), log_dir=tmp_path) as server:
        results: list[int] = []

        def call() -> None:
            results.append(httpx.post(server.url + "/predict", json={"rows": _rows(2)}, timeout=30).status_code)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        server.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(30)
        # uvicorn re-raises the SIGTERM after its graceful shutdown: the usual exit of a signalled process
        assert server.proc.wait(30) in (0, -signal.SIGTERM), server.output()
    assert results == [200] * 4
    assert "Application shutdown complete" in server.output()
