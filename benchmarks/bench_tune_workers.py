"""``dltk tune --workers 2`` against ``--workers 1`` on the same toy trials, in one run.

The toy plugin (``tests/core/toy_plugin``) is registered in a temporary site folder (as the tests
do); both searches run the same number of trials of the same size with pruning off (``--pruner
none``), so each does the same work. Each command runs as a subprocess and is timed end to end
(start-up, trial 0, the trials, the outputs). Target: two workers in at most 0.6x the wall time of
one (a 2-core machine).

Usage::

    python benchmarks/bench_tune_workers.py [--trials 12] [--epochs 15] [--samples 4000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOY_SRC = REPO / "tests" / "core" / "toy_plugin"


def toy_environ(site: Path) -> dict[str, str]:
    """os.environ with the toy plugin registered through an entry point in ``site``."""
    info = site / "dltk_toy-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dltk_toy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[dltk.plugins]\ntoy = dltk_toy.spec:plugin\n")
    env = dict(os.environ, MPLBACKEND="Agg", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(TOY_SRC), env.get("PYTHONPATH", "")])
    return env


def timed_search(workers: int, args: argparse.Namespace, work: Path, env: dict[str, str]) -> float:
    cmd = [sys.executable, "-m", "dltk.cli", "tune", "--plugin", "toy", "--trials", str(args.trials),
           "--workers", str(workers), "--pruner", "none", "--no-test", "--output", str(work / f"w{workers}"),
           "--trainer.max_epochs", str(args.epochs), "--data.n_samples", str(args.samples)]
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = toy_environ(work / "site")
        one = timed_search(1, args, work, env)
        two = timed_search(2, args, work, env)
    result = {"trials": args.trials, "epochs": args.epochs, "samples": args.samples, "cpus": os.cpu_count(),
              "one_worker_s": round(one, 1), "two_workers_s": round(two, 1), "ratio": round(two / one, 3),
              "target": 0.6}
    print(f"{args.trials} toy trials: 1 worker {one:.1f} s, 2 workers {two:.1f} s, "
          f"ratio {two / one:.2f} (target <= 0.6)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
