"""A real ``dltk serve`` in a subprocess on a free loopback port (importable as ``serveutil``)."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def served(run_dir: Path | str, *args: str, env: dict[str, str] | None = None, log_dir: Path,
           command: Sequence[str] | None = None, timeout: float = 90) -> Iterator[Server]:
    """Start ``dltk serve --run RUN --port P ARGS`` (or ``command`` + ``--port P``), wait for
    ``/health``, yield the server, stop it (SIGTERM) afterwards."""
    import httpx

    port = free_port()
    argv = list(command) if command else [sys.executable, "-m", "dltk.cli", "serve", "--run", str(run_dir)]
    log = log_dir / f"serve-{port}.log"
    environ = dict(env if env is not None else os.environ)
    with open(log, "wb") as fh:
        proc = subprocess.Popen([*argv, "--port", str(port), *args], env=environ, stdout=fh, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"dltk serve exited with {proc.returncode}:\n{server.output()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(server.url + "/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"dltk serve did not start in {timeout} s:\n{server.output()[-3000:]}")
            time.sleep(0.2)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def as_frame(answer: dict) -> pd.DataFrame:
    """A ``/predict`` answer as the table ``dltk predict`` writes (read back the same way)."""
    frame = pd.DataFrame(answer["predictions"])
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.6g")
    return pd.read_csv(io.StringIO(buffer.getvalue()))


def same_table(served_frame: pd.DataFrame, predicted: pd.DataFrame) -> None:
    """Equal columns and values (floats to the CSV's 6 significant digits)."""
    assert list(served_frame.columns) == list(predicted.columns)
    assert len(served_frame) == len(predicted)
    for column in predicted.columns:
        a, b = served_frame[column], predicted[column]
        if pd.api.types.is_float_dtype(b) or pd.api.types.is_float_dtype(a):
            pd.testing.assert_series_equal(a.astype(float), b.astype(float), rtol=2e-5, atol=1e-6, check_names=False)
        else:
            assert a.fillna("").astype(str).tolist() == b.fillna("").astype(str).tolist(), column
