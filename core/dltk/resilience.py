"""Never lose a run: atomic checkpoints, exact resume, and the fault-injection hook that tests it.

- :class:`AtomicCheckpointIO` writes every Lightning checkpoint to a temporary file in the same
  folder, fsyncs it and renames it over the target, so a run killed mid-write leaves the previous
  checkpoint intact (Lightning's own writer truncates the target first).
- :class:`RngState` stores the Python, NumPy and torch (CPU and CUDA) random states in each
  checkpoint and restores them on resume, so dropout and augmentation continue exactly as in an
  uninterrupted run. The training order itself comes from :class:`EpochSeededSampler`, a
  permutation that depends only on (seed, epoch).
- ``DLTK_FAULT_INJECT=point:N`` (testing only) kills the process with SIGKILL the N-th time it
  reaches ``point``: ``batch`` (after a training batch), ``epoch_end`` (after an epoch's
  checkpoints are written) or ``checkpoint_write`` (half-way through writing a checkpoint file).
"""

from __future__ import annotations

import io
import os
import random
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch.utils.data import Sampler

FAULT_ENV = "DLTK_FAULT_INJECT"
_hits: Counter[str] = Counter()


def fault_point(name: str) -> None:
    """Kill this process with SIGKILL if ``DLTK_FAULT_INJECT`` asks for the current hit of ``name``."""
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return
    point, _, count = spec.partition(":")
    if point != name:
        return
    _hits[name] += 1
    if _hits[name] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file, fsynced, then renamed over the target."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        data = buffer.getvalue()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                half = len(data) // 2
                fh.write(data[:half])
                fh.flush()
                fault_point("checkpoint_write")
                fh.write(data[half:])
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    def load_checkpoint(self, path: str | Path, map_location: Any = None,
                        weights_only: bool | None = None) -> dict[str, Any]:
        # resume reads our own checkpoints, still without executing code
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)


class RngState(Callback):
    """Random states saved with every checkpoint and restored on resume (tensors only, no pickles)."""

    def state_dict(self) -> dict[str, Any]:
        np_state = np.random.get_state()
        py_state = random.getstate()
        state = {
            "torch": torch.get_rng_state(),
            "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "numpy_pos": int(np_state[2]), "numpy_has_gauss": int(np_state[3]),
            "numpy_gauss": float(np_state[4]),
            "python": torch.tensor(py_state[1], dtype=torch.int64),
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        keys = state["numpy_keys"].numpy().astype(np.uint32)
        np.random.set_state(("MT19937", keys, int(state["numpy_pos"]), int(state["numpy_has_gauss"]),
                             float(state["numpy_gauss"])))
        random.setstate((3, tuple(int(v) for v in state["python"].tolist()), None))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


class FaultInjection(Callback):
    """Test hook: ``batch`` and ``epoch_end`` points of ``DLTK_FAULT_INJECT``."""

    def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
        fault_point("batch")

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        fault_point("epoch_end")


class EpochSeededSampler(Sampler[int]):
    """A random permutation per epoch that depends only on ``(seed, epoch)``; Lightning calls
    :meth:`set_epoch` before each epoch, so a resumed run sees the same order as an uninterrupted one."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n = n
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=gen).tolist())


RESUMED_LOG = "metrics.before-resume.csv"


def _read_log(path: Path) -> Any:
    import pandas as pd

    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return None
    return table if "epoch" in table else None


def set_aside_metrics_log(log_dir: Path, resume_epoch: int) -> None:
    """Before a resumed run's CSV logger starts (it deletes ``metrics.csv``), keep the rows of the
    epochs already done (``epoch < resume_epoch``) in ``metrics.before-resume.csv``."""
    import pandas as pd

    from dltk.io import atomic_path

    parts = [t for t in (_read_log(log_dir / RESUMED_LOG), _read_log(log_dir / "metrics.csv")) if t is not None]
    if not parts:
        return
    kept = pd.concat(parts, ignore_index=True)
    kept = kept[kept["epoch"] < resume_epoch]
    with atomic_path(log_dir / RESUMED_LOG) as tmp:
        kept.to_csv(tmp, index=False)
    (log_dir / "metrics.csv").unlink(missing_ok=True)


def merge_metrics_log(log_dir: Path) -> None:
    """After a resumed run: ``metrics.csv`` = the rows set aside + the rows logged since."""
    import pandas as pd

    from dltk.io import atomic_path

    before = _read_log(log_dir / RESUMED_LOG)
    if before is None:
        return
    after = _read_log(log_dir / "metrics.csv")
    merged = before if after is None else pd.concat([before, after], ignore_index=True)
    merged = merged[sorted(merged.columns)]
    with atomic_path(log_dir / "metrics.csv") as tmp:
        merged.to_csv(tmp, index=False)
    (log_dir / RESUMED_LOG).unlink()
