"""The run directory: the user's record of one training run.

Layout (see docs/architecture.md)::

    runs/<plugin>-<task>-<YYYYmmdd-HHMMSS>/
        run.json            status (running | completed | failed), error, times, command
        config.yaml         fully resolved config; `dltk train --config config.yaml` reproduces it
        checkpoints/        best.ckpt (best validation score) and last.ckpt
        metrics.json        flat final test metrics: {"test/auroc": ..., "test/auroc/NR-AhR": ...}
        predictions/test.csv  test records, true labels and predictions
        logs/metrics.csv    per-epoch training/validation metrics (CSVLogger)
        tensorboard/        TensorBoard event files
        plots/              roc_curves.png / parity.png, learning_curves.png
        environment.json    package versions, git commit, seed, device, command line

Every file is written atomically, and ``run.json`` says ``completed`` only after all of them exist,
so a killed run is never mistaken for a finished one.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from dltk.errors import ConfigError
from dltk.io import write_json

STATUS_FILE = "run.json"


def default_run_dir(plugin: str, task: str, root: str | Path = "runs") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{plugin}-{task}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(root) / f"{plugin}-{task}-{stamp}-{suffix}"
    return path


def claim(path: Path) -> Path:
    """Create a run directory for a new run; refuse one that already holds a run.

    The claim is atomic: ``run.json`` is created with O_EXCL, so of two processes started at once
    on the same directory exactly one gets it."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path / STATUS_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise ConfigError(f"run directory {path} already holds a run; choose another --run-dir "
                          f"(or continue it with dltk train --resume {path})") from None
    with os.fdopen(fd, "w") as fh:
        json.dump({"status": "claimed", "pid": os.getpid(), "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}, fh)
    return path


def claim_default(plugin: str, task: str, root: str | Path = "runs") -> Path:
    """Claim a fresh default run directory, moving to the next suffix if another run took it."""
    for _ in range(1000):
        path = default_run_dir(plugin, task, root)
        try:
            return claim(path)
        except ConfigError:
            continue
    raise ConfigError(f"could not claim a run directory under {root}")


def read_status(path: str | Path) -> dict[str, Any]:
    run = Path(path)
    status_file = run / STATUS_FILE
    if not status_file.is_file():
        raise ConfigError(f"{run} is not a dltk run directory (no {STATUS_FILE})")
    return json.loads(status_file.read_text())


def write_status(path: Path, status: str, **fields: Any) -> None:
    current: dict[str, Any] = {}
    if (path / STATUS_FILE).is_file():
        current = json.loads((path / STATUS_FILE).read_text())
    current.update(fields)
    current["status"] = status
    current["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    write_json(path / STATUS_FILE, current)


def record_failure(path: Path, exc: BaseException) -> None:
    """Mark the run ``failed`` with the error's first line and a short traceback (the one place a
    failed status is written: train, ensembles, combine)."""
    import traceback

    write_status(path, "failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0],
                 traceback=traceback.format_exc(limit=20))


def headline(metrics: dict[str, float]) -> dict[str, float]:
    """The run-level test metrics (``test/auroc``, not the per-task ``test/auroc/NR-AhR``)."""
    return {k: v for k, v in metrics.items() if k.count("/") == 1}


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment_record(seed: int | None, packages: list[str]) -> dict[str, Any]:
    """Versions, git commit, seed and device of this process."""
    import torch

    versions: dict[str, str | None] = {}
    for name in ["dltk", "torch", "lightning", "torchmetrics", "jsonargparse", "numpy", "pandas",
                 "scikit-learn", *packages]:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    device = "cpu"
    if torch.cuda.is_available():
        device = f"cuda: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "git_commit": _git_commit(),
        "seed": seed,
        "device": device,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "command": sys.argv,
    }
