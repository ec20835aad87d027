"""``dltk serve`` under load, against the ``dltk predict`` CLI in the same run (loopback only).

1. A chem run is trained (``--task csv`` on the first 2,000 real MoleculeNet Tox21 structures,
   12 assays, ECFP features, 2 epochs): the served model is a real, small MLP on fingerprints.
2. Peer: ``dltk predict`` (a subprocess, wall clock including its start-up) on a CSV of
   ``--cli-molecules`` real SMILES: molecules/s.
3. ``dltk serve`` (a subprocess, default settings) and, in this process, httpx clients:
   - throughput: 16 concurrent clients, each posting 64-molecule requests, ``--throughput-requests``
     requests in all: molecules/s (target >= 3,000 and >= 0.6x the CLI);
   - latency: single-molecule requests sent open-loop at 50 requests/s for ``--latency-seconds``:
     p50 / p99 in ms (targets 20 / 100 ms);
   - memory: ``--memory-requests`` single-molecule requests in a row (8 concurrent clients); the
     server's resident memory sampled every 1% of them: last 10% of samples within 5% of the first 10%;
   - abuse: 1,000 malformed requests (truncated/fuzzed JSON, wrong types, unknown fields, invalid
     UTF-8, a body over the size limit, too many rows, empty lists) interleaved with 1,000 valid ones:
     every malformed one must get a 4xx, every valid one the reference answer, /health 200 after.
4. Writes ``--json`` (default docs/results/serve/bench_serve.json: not beside the benchmark reports of
   docs/results/*.json, whose schema the benchmark page reads).

Every request loop is bounded in count and in time. Usage::

    DLTK_DATA_DIR=/path/to/shared/data nice -n 10 python benchmarks/bench_serve.py
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from serveutil import free_port  # noqa: E402

TASKS = ["NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma", "SR-ARE",
         "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"]


def train_run(work: Path, data_dir: Path) -> tuple[Path, list[str]]:
    with gzip.open(data_dir / "chem" / "moleculenet" / "tox21.csv.gz", "rt") as fh:
        table = pd.read_csv(fh)
    table.head(2000)[["smiles", *TASKS]].to_csv(work / "train.csv", index=False)
    run = work / "run"
    cmd = [sys.executable, "-m", "dltk.cli", "train", "--plugin", "chem", "--task", "csv", "--data.path",
           str(work / "train.csv"), "--data.target_columns", ",".join(TASKS), "--data.features", "ecfp",
           "--trainer.max_epochs", "2", "--run-dir", str(run)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return run, table["smiles"].astype(str).tolist()


def cli_throughput(run: Path, smiles: list[str], n: int, work: Path) -> dict[str, float]:
    molecules = (smiles * (n // len(smiles) + 1))[:n]
    pd.DataFrame({"smiles": molecules}).to_csv(work / "cli.csv", index=False)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dltk.cli", "predict", "--run", str(run), "--input", str(work / "cli.csv"),
                    "--output", str(work / "cli.out.csv")], check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    return {"molecules": n, "seconds": round(seconds, 2), "molecules_per_s": round(n / seconds, 1)}


def start_server(run: Path, work: Path, *args: str) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    log = open(work / f"serve-{port}.log", "wb")  # noqa: SIM115 -- closed with the process
    proc = subprocess.Popen([sys.executable, "-m", "dltk.cli", "serve", "--run", str(run), "--port", str(port), *args],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((work / f"serve-{port}.log").read_text())
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("server did not start")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def throughput(url: str, smiles: list[str], requests: int, clients: int = 16, size: int = 64,
                     limit_s: float = 120) -> dict[str, float]:
    import httpx

    bodies = [{"smiles": smiles[(i * size) % (len(smiles) - size):][:size]} for i in range(requests)]
    queue = list(range(requests))
    done = {"molecules": 0, "errors": 0}
    deadline = time.monotonic() + limit_s

    async def worker(client: httpx.AsyncClient) -> None:
        while queue and time.monotonic() < deadline:
            r = await client.post("/predict", json=bodies[queue.pop()])
            if r.status_code == 200:
                done["molecules"] += r.json()["counts"]["rows"]
            else:
                done["errors"] += 1

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await worker_warmup(client)
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        seconds = time.perf_counter() - start
    return {"clients": clients, "molecules_per_request": size, "requests": requests - len(queue),
            "molecules": done["molecules"], "failed_requests": done["errors"], "seconds": round(seconds, 2),
            "molecules_per_s": round(done["molecules"] / seconds, 1)}


async def worker_warmup(client: object) -> None:
    for _ in range(3):
        await client.post("/predict", json={"smiles": ["CCO"] * 64})  # type: ignore[attr-defined]


async def latency(url: str, smiles: list[str], rate: float = 50, seconds: float = 20) -> dict[str, float]:
    import httpx

    n = int(rate * seconds)
    times: list[float] = []

    async def one(client: httpx.AsyncClient, i: int) -> None:
        start = time.perf_counter()
        r = await client.post("/predict", json={"smiles": [smiles[i % len(smiles)]]})
        if r.status_code == 200:
            times.append((time.perf_counter() - start) * 1000)

    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=64)) as client:
        await worker_warmup(client)
        tasks, t0 = [], time.perf_counter()
        for i in range(n):  # open loop: request i leaves at i / rate whatever the answers do
            await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(client, i)))
        await asyncio.gather(*tasks)
    ms = np.array(times)
    return {"rate_per_s": rate, "requests": n, "answered": len(times), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "max_ms": round(float(ms.max()), 1)}


async def memory(url: str, pid: int, smiles: list[str], requests: int, limit_s: float = 600) -> dict[str, float]:
    import httpx

    samples: list[float] = []
    every = max(1, requests // 100)
    counter = iter(range(requests))
    deadline = time.monotonic() + limit_s

    async def worker(client: httpx.AsyncClient) -> None:
        for i in counter:
            if time.monotonic() > deadline:
                return
            await client.post("/predict", json={"smiles": [smiles[i % len(smiles)]]})
            if i % every == 0:
                samples.append(rss_mb(pid))

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(8)))
        seconds = time.perf_counter() - start
    k = max(1, len(samples) // 10)
    first, last = float(np.mean(samples[:k])), float(np.mean(samples[-k:]))
    return {"requests": requests, "seconds": round(seconds, 1), "samples": len(samples),
            "rss_first_10pct_mb": round(first, 1), "rss_last_10pct_mb": round(last, 1),
            "change_pct": round(100 * (last - first) / first, 2), "rss_max_mb": round(max(samples), 1)}


def malformed_bodies(n: int, seed: int = 0) -> list[tuple[str, bytes, str]]:
    """``(kind, body, content type)`` of ``n`` malformed requests, each kind in turn."""
    rng = random.Random(seed)
    valid = json.dumps({"smiles": ["CCO", "c1ccccc1"]}).encode()

    def fuzz() -> bytes:  # random bytes changed until the body is no longer a valid request
        while True:
            b = bytearray(valid)
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            if not _is_valid(bytes(b)):
                return bytes(b)

    makers = [
        ("truncated JSON", lambda: valid[: rng.randrange(1, len(valid) - 1)]),
        ("fuzzed JSON", fuzz),
        ("wrong type", lambda: json.dumps({"smiles": rng.choice(["CCO", 1, None, {"a": 1}, [1, 2], [["CCO"]]])}).encode()),
        ("unknown field", lambda: json.dumps({"smiles": ["CCO"], rng.choice(["x", "ids", "path"]): 1}).encode()),
        ("not an object", lambda: json.dumps(rng.choice([[], "smiles", 3, None])).encode()),
        ("invalid UTF-8", lambda: b'{"smiles": ["\xff\xfe"]}'),
        ("empty list", lambda: b'{"smiles": []}'),
        ("too many rows", lambda: json.dumps({"smiles": ["C"] * 5000}).encode()),
        ("huge body", lambda: b'{"smiles": ["' + b"C" * (2 * 1024 * 1024) + b'"]}'),  # the server: --max-body-mb 1
    ]
    return [(kind, make(), "application/json") for kind, make in (makers[i % len(makers)] for i in range(n))]


def _is_valid(body: bytes) -> bool:
    from dltk.serving import RequestError, validate
    from dltk_chem.serving import SCHEMA

    try:
        validate(json.loads(body), SCHEMA)
    except (ValueError, RequestError):
        return False
    return True


async def abuse(url: str, smiles: list[str], n: int = 1000, limit_s: float = 600) -> dict[str, object]:
    """``n`` malformed requests, each followed by a valid one whose answer must equal the reference."""
    import httpx

    bad = malformed_bodies(n)
    valid = [{"smiles": smiles[i % len(smiles):][:4]} for i in range(n)]
    kinds: dict[str, dict[str, int]] = {}
    wrong_valid = 0
    deadline = time.monotonic() + limit_s
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        reference = [(await client.post("/predict", json=v)).json() for v in valid[:50]]
        sent = 0
        for i, (kind, body, ctype) in enumerate(bad):
            if time.monotonic() > deadline:
                break
            try:
                status = (await client.post("/predict", content=body, headers={"content-type": ctype})).status_code
            except httpx.HTTPError:
                status = -1  # the connection dropped: counts as not a 4xx
            k = kinds.setdefault(kind, {"sent": 0, "4xx": 0})
            k["sent"] += 1
            k["4xx"] += int(400 <= status < 500)
            answer = (await client.post("/predict", json=valid[i % 50])).json()
            wrong_valid += int(answer != reference[i % 50])
            sent += 1
        health = (await client.get("/health")).status_code
    return {"malformed": sent, "malformed_4xx": sum(k["4xx"] for k in kinds.values()), "by_kind": kinds,
            "valid": sent, "valid_wrong": wrong_valid, "health_after": health}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cli-molecules", type=int, default=20_000)
    parser.add_argument("--throughput-requests", type=int, default=480)
    parser.add_argument("--latency-seconds", type=float, default=20)
    parser.add_argument("--memory-requests", type=int, default=10_000)
    parser.add_argument("--malformed", type=int, default=1000)
    parser.add_argument("--json", default=str(REPO / "docs" / "results" / "serve" / "bench_serve.json"))
    args = parser.parse_args(argv)
    data_dir = Path(os.environ.get("DLTK_DATA_DIR", REPO.parent / "shared" / "data"))
    result: dict[str, object] = {"machine": f"{os.cpu_count()} CPU cores (shared with other jobs), no GPU",
                                 "load_average_start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        run, smiles = train_run(work, data_dir)
        result["train_seconds"] = round(time.perf_counter() - t0, 1)
        result["cli"] = cli_throughput(run, smiles, args.cli_molecules, work)
        print("cli", result["cli"], flush=True)
        result.update(_served(run, smiles, work, args))
    result["load_average_end"] = os.getloadavg()
    cli, srv = result["cli"], result["throughput"]
    result["throughput_vs_cli"] = round(srv["molecules_per_s"] / cli["molecules_per_s"], 2)  # type: ignore[index]
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


def _served(run: Path, smiles: list[str], work: Path, args: argparse.Namespace) -> dict[str, object]:
    out: dict[str, object] = {}
    proc, url = start_server(run, work)
    try:
        out["rss_after_start_mb"] = round(rss_mb(proc.pid), 1)
        out["throughput"] = asyncio.run(throughput(url, smiles, args.throughput_requests))
        print("throughput", out["throughput"], flush=True)
        out["latency"] = asyncio.run(latency(url, smiles, seconds=args.latency_seconds))
        print("latency", out["latency"], flush=True)
        out["memory"] = asyncio.run(memory(url, proc.pid, smiles, args.memory_requests))
        print("memory", out["memory"], flush=True)
    finally:
        proc.terminate()
        proc.wait(60)
    proc, url = start_server(run, work, "--max-body-mb", "1")
    try:
        out["abuse"] = asyncio.run(abuse(url, smiles, args.malformed))
        print("abuse", out["abuse"], flush=True)
    finally:
        proc.terminate()
        proc.wait(60)
    return out


if __name__ == "__main__":
    sys.exit(main())
