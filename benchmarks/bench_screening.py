"""Virtual-screening throughput and memory of ``dltk predict`` on MoleculeNet MUV (93,127 SMILES).

1. Model: an ECFP-only chem model, ``dltk train --plugin chem --task tox21_challenge
   --data.features ecfp --trainer.max_epochs 2`` (the preset's ECFP4 log-counts, 2,048 bits, one
   hidden layer of 512, 12 Tox21 tasks), trained in a subprocess; or an existing run (``--run``).
2. Inputs: the first 10,000 and all 93,127 records of ``muv.csv.gz`` (fetched through
   ``dltk_chem.files.FILES["muv"]``, i.e. ``$DLTK_DATA_DIR`` first), written as ``.smi`` files.
3. Timings, interleaved round-robin over ``--repeats`` (median reported):

   * ``in-process``: the in-process :func:`dltk.verbs.predict` (imports and a warm-up run done
     before timing; includes loading the model from the checkpoint, streaming, featurizing,
     inference and writing the CSV);
   * ``subprocess``: the ``dltk predict`` command, wall time including start-up; its peak memory
     from ``os.wait4`` (``ru_maxrss``: the largest single process of the tree) and from sampling
     ``/proc`` every 50 ms (sum of RSS and of PSS over the process and its featurization workers);
     a 1-molecule run gives the fixed start-up cost.

4. Where the time goes (``--no-stages`` skips): one more in-process run over all 93,127 with light
   timers wrapped around the stages: reading the file, ECFP featurization (a process pool started
   per 10,000-row chunk), assembling float32 features, the DataLoader + model, the model forward
   alone, CSV writing. RSS after each chunk shows whether memory stays flat.
5. Fix experiments (``--no-experiments`` skips), each checked for identical results:
   featurization of 10,000 SMILES serially / with a pool started per call (as now) / with an
   already-running pool; the model forward on 10,000 assembled rows through the DataLoader
   (batch 1,024, as now), as one batch, and with a sparse first layer; CSV writing of a chunk; and
   a prototype streaming predictor with one persistent pool whose workers featurize ahead while
   the main process runs the model and writes the CSV (same output as ``dltk predict``, compared
   value by value), timed as a subprocess like ``dltk predict``.

Targets (informational, printed with a verdict): >= 5,000 molecules/s on 2 cores and a peak
below 1.5 GB. The script exits 1 only when a correctness check fails (row counts, equality of the
prototype's or the experiments' outputs).

Usage::

    DLTK_DATA_DIR=/path/to/data python benchmarks/bench_screening.py [--run RUN_DIR] [--epochs 2]
        [--repeats 2] [--work DIR] [--json results.json] [--no-stages] [--no-experiments]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import json
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

TARGET_RATE = 5_000.0
TARGET_PEAK_MB = 1_500.0
N_SMALL = 10_000
BIN = Path(sys.executable).parent


# --------------------------------------------------------------------------------------------------
# Memory sampling (Linux /proc)


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children[ppid].append(int(entry))
    return children


def _tree(root: int) -> list[int]:
    children = _children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _kb(path: str, key: str) -> int:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeSampler(threading.Thread):
    """Peak of the summed RSS and PSS (MB) of a process and all its descendants, every ``interval``."""

    def __init__(self, root: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peak_rss = self.peak_pss = 0.0
        self.max_processes = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            pids = _tree(self.root)
            rss = sum(_kb(f"/proc/{p}/status", "VmRSS:") for p in pids) / 1024
            pss = sum(_kb(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids) / 1024
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.max_processes = max(self.max_processes, len(pids))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def self_rss_mb() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MB."""
    return _kb("/proc/self/status", "VmRSS:") / 1024, _kb("/proc/self/status", "VmHWM:") / 1024


def run_measured(cmd: list[str], log: Path) -> dict[str, Any]:
    """Run ``cmd``: wall time, exit code, peak RSS of its largest process, CPU seconds (user + sys,
    workers included) and the sampled peak RSS / PSS summed over its process tree.

    The peak RSS and CPU come from GNU ``/usr/bin/time`` when installed: ``ru_maxrss`` read by
    ``os.wait4`` in *this* process would include this (large) process's own high-water mark, which
    Linux carries over through fork + exec into the child.
    """
    gnu_time = Path("/usr/bin/time")
    stats = log.with_suffix(".time")
    full = ([str(gnu_time), "-f", "%M %U %S", "-o", str(stats)] if gnu_time.is_file() else []) + cmd
    with open(log, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, stdout=out, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
    result = {"wall_s": wall, "returncode": proc.returncode, "tree_peak_rss_mb": sampler.peak_rss,
              "tree_peak_pss_mb": sampler.peak_pss, "max_processes": sampler.max_processes, "log": str(log)}
    fields = stats.read_text().split()[-3:] if gnu_time.is_file() and stats.is_file() else []
    if len(fields) == 3:
        result.update(maxrss_mb=int(fields[0]) / 1024, cpu_s=float(fields[1]) + float(fields[2]),
                      maxrss_source="/usr/bin/time")
    else:
        result.update(maxrss_mb=usage.ru_maxrss / 1024, cpu_s=usage.ru_utime + usage.ru_stime,
                      maxrss_source="os.wait4 (may include the launching process's own peak)")
    return result


def cpu_seconds() -> float:
    """User + system CPU of this process and of its waited-for children (e.g. pool workers)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# --------------------------------------------------------------------------------------------------
# Setup


def machine_info() -> dict[str, Any]:
    import rdkit
    import torch

    info = {"python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "rdkit": rdkit.__version__, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "numpy": np.__version__}
    with contextlib.suppress(OSError):
        info["loadavg_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    return info


def train_model(work: Path, epochs: int) -> tuple[Path, dict[str, Any]]:
    run = work / "run"
    cmd = [str(BIN / "dltk"), "train", "--plugin", "chem", "--task", "tox21_challenge",
           "--data.features", "ecfp",
           "--trainer.max_epochs", str(epochs), "--run-dir", str(run)]
    print(f"training: {' '.join(cmd[1:])}", flush=True)
    result = run_measured(cmd, work / "train.log")
    if result["returncode"] != 0:
        sys.exit(f"bench_screening: training failed, see {work / 'train.log'}")
    metrics = json.loads((run / "metrics.json").read_text())
    return run, {"train_wall_s": round(result["wall_s"], 1), "test_auroc": metrics.get("test/auroc")}


def write_inputs(work: Path) -> dict[str, tuple[Path, int]]:
    from dltk.data import fetch
    from dltk_chem.files import FILES
    from dltk_chem.smiles_files import read_smiles_file

    source = fetch(FILES["muv"])
    paths = {"1": work / "muv_1.smi", "10k": work / "muv_10k.smi", "all": work / "muv_all.smi"}
    n = 0
    with open(paths["1"], "w") as f1, open(paths["10k"], "w") as f10, open(paths["all"], "w") as fall:
        for chunk in read_smiles_file(source, chunk_size=10_000, id_column="mol_id"):
            for _, smiles, mol_id in chunk:
                line = f"{smiles} {mol_id or ''}\n"
                fall.write(line)
                if n < N_SMALL:
                    f10.write(line)
                if n == 0:
                    f1.write(line)
                n += 1
    return {"1": (paths["1"], 1), "10k": (paths["10k"], min(n, N_SMALL)), "all": (paths["all"], n)}


def run_features(run: Path) -> dict[str, Any]:
    from dltk.loading import checkpoint_path, load_checkpoint

    info = load_checkpoint(checkpoint_path(run))["hyper_parameters"]["data_info"]
    return {"features": info.get("features"), "ecfp": info.get("ecfp"),
            "in_features": info.get("in_features"),
            "tasks": len(info.get("task_names", []))}


def count_rows(path: Path) -> tuple[int, int]:
    import pandas as pd

    table = pd.read_csv(path, keep_default_na=False, na_values=[""], usecols=["error"])
    return len(table), int(table["error"].notna().sum())


# --------------------------------------------------------------------------------------------------
# Stage timing (wrappers around the functions dltk predict calls; no code is changed)


class StageTimer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.cpu: dict[str, float] = collections.defaultdict(float)
        self.order: list[str] = []
        self.calls: dict[str, int] = collections.defaultdict(int)
        self.notes: list[str] = []
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, name: str, stage: str) -> None:
        original = getattr(owner, name, None)
        if original is None:
            self.notes.append(f"{stage}: {getattr(owner, '__name__', owner)}.{name} not found, not timed")
            return

        self.order.append(stage)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0, c0 = time.perf_counter(), cpu_seconds()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - t0
                self.cpu[stage] += cpu_seconds() - c0
                self.calls[stage] += 1

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def wrap_generator(self, owner: Any, name: str, stage: str) -> None:
        original = getattr(owner, name, None)
        if original is None:
            self.notes.append(f"{stage}: {name} not found, not timed")
            return

        self.order.append(stage)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            it = iter(original(*args, **kwargs))
            while True:
                t0, c0 = time.perf_counter(), cpu_seconds()
                try:
                    item = next(it)
                except StopIteration:
                    item = StopIteration
                self.seconds[stage] += time.perf_counter() - t0
                self.cpu[stage] += cpu_seconds() - c0
                if item is StopIteration:
                    return
                self.calls[stage] += 1
                yield item

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def undo(self) -> None:
        for fn in reversed(self._undo):
            fn()
        self._undo.clear()


def stage_breakdown(run: Path, path: Path, n: int, work: Path) -> dict[str, Any]:
    import pandas as pd

    import dltk.inference as inference
    import dltk_chem.fingerprints as fingerprints
    import dltk_chem.molecule_datamodule as molecule_datamodule
    from dltk import verbs
    from dltk.base import BaseTask

    timer = StageTimer()
    timer.wrap_generator(molecule_datamodule, "read_smiles_file", "read input file")
    timer.wrap(fingerprints, "featurize", "ECFP featurization (pool per chunk)")
    timer.wrap(fingerprints.Fingerprints, "assemble", "assemble float32 features")
    timer.wrap(inference, "run_inference", "inference: DataLoader + model")
    timer.wrap(BaseTask, "predict_step", "  of which model forward")
    timer.wrap(pd.DataFrame, "to_csv", "write CSV")
    rss_per_chunk: list[float] = []
    original_chunks = molecule_datamodule.MoleculeDataModule.predict_chunks

    def chunks(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for item in original_chunks(self, *args, **kwargs):
            rss_per_chunk.append(round(self_rss_mb()[0]))
            yield item

    molecule_datamodule.MoleculeDataModule.predict_chunks = chunks  # type: ignore[method-assign]
    try:
        t0, c0 = time.perf_counter(), cpu_seconds()
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            verbs.predict(str(run), str(path), str(work / "pred_stages.csv"))
        total, total_cpu = time.perf_counter() - t0, cpu_seconds() - c0
    finally:
        molecule_datamodule.MoleculeDataModule.predict_chunks = original_chunks  # type: ignore[method-assign]
        timer.undo()
    order = [s for s in timer.order if s in timer.seconds]
    inner, outer = "  of which model forward", "inference: DataLoader + model"
    if inner in order and outer in order:
        order.remove(inner)
        order.insert(order.index(outer) + 1, inner)
    other = "other (model load, records table, error column, loader setup)"
    top = [k for k in order if not k.startswith("  ")]
    stages = {k: {"wall_s": timer.seconds[k], "cpu_s": timer.cpu[k]} for k in order}
    stages[other] = {"wall_s": total - sum(timer.seconds[k] for k in top),
                     "cpu_s": total_cpu - sum(timer.cpu[k] for k in top)}
    return {"n": n, "total_s": total, "total_cpu_s": total_cpu, "stages": stages, "calls": dict(timer.calls),
            "notes": timer.notes, "rss_mb_after_each_chunk": rss_per_chunk}


# --------------------------------------------------------------------------------------------------
# Fix experiments


def _median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _load(run: Path) -> tuple[Any, Any]:
    from dltk.run import Run

    handle = Run.open(run)
    return handle.model("best"), handle.datamodule()


def _ecfp(model: Any) -> Any:
    from dltk_chem.featurize import ECFP

    return ECFP(**model.data_info["ecfp"])


_worker_ecfp: Any = None


def _init_ecfp(ecfp: Any) -> None:
    global _worker_ecfp
    _worker_ecfp = ecfp


def _ecfp_work(task: tuple[int, list[str]]) -> tuple[int, np.ndarray, np.ndarray]:
    start, smiles = task
    X, valid = _worker_ecfp.transform(smiles)
    return start, X, valid


def experiments(run: Path, smi_10k: Path, repeats: int) -> dict[str, Any]:
    import pandas as pd
    import torch
    from torch.utils.data import DataLoader

    from dltk.base import INPUT, TARGET, TensorDictDataset
    from dltk.inference import run_inference
    from dltk_chem.smiles_files import read_smiles_file
    from dltk_chem.featurize import CHUNK_SIZE, featurize

    model, datamodule = _load(run)
    ecfp = _ecfp(model)
    records = next(read_smiles_file(smi_10k, chunk_size=N_SMALL))
    smiles = [r[1] for r in records]
    n = len(smiles)
    out: dict[str, Any] = {"n": n, "seconds": {}, "checks": {}}
    sec = out["seconds"]

    # featurization
    sec["featurize serial (n_jobs=1)"], (X1, _) = _median_time(
        lambda: featurize(ecfp, smiles, n_jobs=1, progress=False), repeats)
    sec["featurize pool started per call (n_jobs=2, as now)"], (X2, _) = _median_time(
        lambda: featurize(ecfp, smiles, n_jobs=2, progress=False), repeats)
    ctx = mp.get_context("fork")
    with ctx.Pool(2, initializer=_init_ecfp, initargs=(ecfp,)) as pool:
        pool.map(_ecfp_work, [(0, smiles[:10])] * 2)  # workers are up

        def persistent() -> np.ndarray:
            X = np.zeros((n, ecfp.n_features), np.uint8)
            tasks = [(s, smiles[s:s + CHUNK_SIZE]) for s in range(0, n, CHUNK_SIZE)]
            for start, Xc, _ in pool.imap_unordered(_ecfp_work, tasks):
                X[start:start + len(Xc)] = Xc
            return X

        sec["featurize already-running pool (2 workers)"], X3 = _median_time(persistent, repeats)
    out["checks"]["featurize variants identical"] = bool(np.array_equal(X1, X2) and np.array_equal(X1, X3))

    # assembly + model
    Xf = np.log1p(X1.astype(np.float32)) if ecfp.counts else X1.astype(np.float32)
    lut = np.log1p(np.arange(256, dtype=np.float32))
    sec["assemble: log1p(X.astype(float32)) (as now)"], _ = _median_time(
        lambda: np.log1p(X1.astype(np.float32)), repeats)
    y = np.full((n, model.num_tasks), np.nan, np.float32)
    loader = DataLoader(TensorDictDataset(**{INPUT: Xf, TARGET: y}),
                        batch_size=max(datamodule.batch_size, 1024))
    sec["model via DataLoader, batch 1,024 (as now)"], (p_now, _) = _median_time(
        lambda: run_inference(model, loader, with_targets=False), repeats)
    xt = torch.from_numpy(Xf)
    with torch.inference_mode():
        sec["model, one batch of 10,000"], p_one = _median_time(
            lambda: model.predict_step({INPUT: xt}).numpy(), repeats)
        first = model.net[0] if hasattr(model, "net") and isinstance(model.net[0], torch.nn.Linear) else None
        if first is not None:
            def sparse_first_layer() -> np.ndarray:
                rows, cols = np.nonzero(X1)
                crow = np.zeros(n + 1, dtype=np.int64)
                np.cumsum(np.bincount(rows, minlength=n), out=crow[1:])
                S = torch.sparse_csr_tensor(torch.from_numpy(crow), torch.from_numpy(cols.astype(np.int64)),
                                            torch.from_numpy(lut[X1[rows, cols]] if ecfp.counts
                                                             else np.ones(len(rows), np.float32)),
                                            size=(n, Xf.shape[1]))
                h = S @ first.weight.T + first.bias
                return model.postprocess(model.net[1:](h)).numpy()

            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sec["model, one batch, sparse CSR first layer"], p_sparse = _median_time(
                    sparse_first_layer, repeats)
            out["checks"]["sparse first layer max |diff|"] = float(np.abs(p_sparse - p_now).max())
    out["checks"]["one batch max |diff|"] = float(np.abs(p_one - p_now).max())

    # CSV
    table = pd.DataFrame({"line": [r[0] for r in records], "id": [r[2] for r in records], "smiles": smiles,
                          "error": [""] * n})
    for j, name in enumerate(model.task_names):
        table[name] = p_now[:, j]
    with tempfile.TemporaryDirectory() as tmp:
        sec["write CSV of a 10,000-row chunk (float_format %.6g)"], _ = _median_time(
            lambda: table.to_csv(Path(tmp) / "t.csv", index=False, float_format="%.6g"), repeats)
    return out


# --------------------------------------------------------------------------------------------------
# Prototype: persistent pool featurizing ahead, the main process runs the model and writes


def prototype_predict(run: str, input_path: str, output_path: str, jobs: int = 2, task_size: int = 1_000,
                      model_rows: int = 10_000) -> dict[str, int]:
    """What ``dltk predict`` could do for fingerprint models: one pool for the whole file (not one
    per 10,000-row chunk) whose workers featurize ahead in tasks of ``task_size`` molecules while
    the main process runs the model on ``model_rows`` rows at a time (one batch) and writes the
    CSV. At most ``2 * model_rows / task_size + jobs`` tasks are in flight, so memory stays flat;
    results are taken in input order. The output is the same file ``dltk predict`` writes."""
    import pandas as pd
    import torch

    from dltk.base import INPUT
    from dltk.io import atomic_path
    from dltk_chem.smiles_files import read_smiles_file

    model, _ = _load(Path(run))
    if model.data_info.get("features") != "ecfp":
        raise SystemExit("prototype_predict handles ECFP-only models")
    ecfp = _ecfp(model)
    lut = np.log1p(np.arange(256, dtype=np.float32))
    counts = {"rows": 0, "predicted": 0, "errors": 0}
    window = 2 * max(1, model_rows // task_size) + jobs
    records = (r for chunk in read_smiles_file(input_path, chunk_size=task_size) for r in chunk)

    def tasks() -> Iterator[list[tuple[int, str, str | None]]]:
        batch = []
        for record in records:
            batch.append(record)
            if len(batch) == task_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def write(done: list[tuple[list, np.ndarray, np.ndarray]], fh: Any, header: bool) -> None:
        batch = [r for b, _, _ in done for r in b]
        X = np.concatenate([x for _, x, _ in done])
        valid = np.concatenate([v for _, _, v in done])
        smiles = [r[1] for r in batch]
        errors = np.where(valid, "", "invalid SMILES (RDKit cannot parse)")
        errors = np.where(np.array([s.strip() == "" for s in smiles]), "empty SMILES", errors)
        table = pd.DataFrame({"line": [r[0] for r in batch], "id": [r[2] for r in batch], "smiles": smiles,
                              "error": errors})
        preds = np.full((len(batch), model.num_tasks), np.nan, np.float32)
        if valid.any():
            Xv = X[valid]
            features = lut[Xv] if ecfp.counts else Xv.astype(np.float32)
            preds[valid] = model.predict_step({INPUT: torch.from_numpy(features)}).float().numpy()
        for j, name in enumerate(model.task_names):
            table[name] = preds[:, j]
        table.to_csv(fh, header=header, index=False, float_format="%.6g")
        counts["rows"] += len(batch)
        counts["predicted"] += int(valid.sum())
        counts["errors"] += int((~valid).sum())

    pending: collections.deque = collections.deque()
    with mp.get_context("fork").Pool(jobs, initializer=_init_ecfp, initargs=(ecfp,)) as pool, \
            atomic_path(Path(output_path)) as tmp, open(tmp, "w", newline="") as fh, torch.inference_mode():
        source = tasks()

        def submit() -> None:
            batch = next(source, None)
            if batch is not None:
                pending.append((batch, pool.apply_async(_ecfp_work, ((0, [r[1] for r in batch]),))))

        for _ in range(window):
            submit()
        done: list[tuple[list, np.ndarray, np.ndarray]] = []
        while pending:
            batch, result = pending.popleft()
            submit()
            _, X, valid = result.get()
            done.append((batch, X, valid))
            if sum(len(b) for b, _, _ in done) >= model_rows or not pending:
                write(done, fh, header=counts["rows"] == 0)
                done = []
    print(f"prototype predict: {counts['rows']} rows, {counts['predicted']} predicted -> {output_path}")
    return counts


def run_with_inference_batch(run: Path, work: Path, batch_size: int) -> Path:
    """A copy of ``run`` whose config sets ``data.batch_size`` (checkpoints linked): ``dltk predict``
    then batches inference at ``max(batch_size, 1024)`` rows; nothing else changes."""
    import yaml

    variant = work / f"run_batch{batch_size}"
    if variant.exists():
        shutil.rmtree(variant)
    variant.mkdir()
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["data"].setdefault("init_args", {})["batch_size"] = batch_size
    (variant / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (variant / "checkpoints").symlink_to((run / "checkpoints").resolve())
    return variant


def compare_outputs(reference: Path, candidate: Path) -> dict[str, Any]:
    import pandas as pd

    a = pd.read_csv(reference, keep_default_na=False, na_values=[""])
    b = pd.read_csv(candidate, keep_default_na=False, na_values=[""])
    same_columns = list(a.columns) == list(b.columns)
    result: dict[str, Any] = {"rows": [len(a), len(b)], "same_columns": same_columns}
    if same_columns and len(a) == len(b):
        key = ["line", "id", "smiles", "error"]
        result["same_records"] = bool(a[key].astype(str).equals(b[key].astype(str)))
        tasks = [c for c in a.columns if c not in key]
        result["max_abs_diff"] = float(np.nanmax(np.abs(a[tasks].to_numpy() - b[tasks].to_numpy())))
    result["identical"] = bool(result.get("same_records") and result.get("max_abs_diff", 1) <= 2e-6)
    return result


# --------------------------------------------------------------------------------------------------
# Report


def _mb(x: float) -> str:
    return f"{x:,.0f}"


def _median(values: list[float]) -> float:
    return statistics.median(values)


def time_in_process(run: Path, path: Path, out: Path) -> tuple[float, float, dict[str, int]]:
    """(wall s, CPU s incl. pool workers, counts) of :func:`dltk.verbs.predict` in this process."""
    from dltk import verbs

    t0, c0 = time.perf_counter(), cpu_seconds()
    with contextlib.redirect_stdout(open(os.devnull, "w")):
        counts = verbs.predict(str(run), str(path), str(out))
    return time.perf_counter() - t0, cpu_seconds() - c0, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="existing ECFP chem run directory (default: train one)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs when training (default 2)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per variant (default 2)")
    parser.add_argument("--work", help="working folder (default: a temporary folder, removed)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--no-stages", action="store_true", help="skip the per-stage breakdown")
    parser.add_argument("--no-experiments", action="store_true", help="skip the fix experiments")
    parser.add_argument("--_prototype", nargs=3, metavar=("RUN", "IN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._prototype:
        prototype_predict(*args._prototype)
        return 0
    if args.repeats < 1 or args.epochs < 1:
        parser.error("need --repeats >= 1 and --epochs >= 1")

    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="dltk-bench-screening-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"machine": machine_info(), "targets": {"rate_mol_s": TARGET_RATE,
                                                                      "peak_mb": TARGET_PEAK_MB}}
    failures: list[str] = []
    try:
        if args.run:
            run, training = Path(args.run), {"reused": str(args.run)}
        else:
            run, training = train_model(work, args.epochs)
        results["model"] = {"run": str(run), **training, **run_features(run)}
        print(f"model: {results['model']}", flush=True)
        inputs = write_inputs(work)
        results["inputs"] = {k: {"path": str(p), "n": n} for k, (p, n) in inputs.items()}
        time_in_process(run, inputs["1"][0], work / "warmup.csv")  # imports + warm-up, not timed
        big_batch = run_with_inference_batch(run, work, N_SMALL) if not args.no_experiments else None

        dltk_cmd = [str(BIN / "dltk"), "predict", "--run", str(run)]
        inproc: dict[str, list[tuple[float, float]]] = {"10k": [], "all": [],
                                                        "all, inference batch 10,000": []}
        sub: dict[str, list[dict[str, Any]]] = {"1": [], "10k": [], "all": []}
        proto: list[dict[str, Any]] = []
        for r in range(args.repeats):
            tag = f"[{r + 1}/{args.repeats}]"
            variants = [("10k", run, "10k"), ("all", run, "all")]
            if big_batch is not None:
                variants.append(("all, inference batch 10,000", big_batch, "all"))
            for name, run_dir, size in variants:
                path, n = inputs[size]
                wall, cpu, counts = time_in_process(run_dir, path, work / f"pred_in_{size}.csv")
                inproc[name].append((wall, cpu))
                if counts["rows"] != n or counts["predicted"] != n:
                    failures.append(f"in-process predict ({name}): {counts} for {n} molecules")
                print(f"{tag} in-process {name}: {wall:.2f} s, {cpu:.2f} CPU s", flush=True)
            for size in ("1", "10k", "all"):
                path, n = inputs[size]
                out = work / f"pred_sub_{size}.csv"
                m = run_measured(dltk_cmd + ["--input", str(path), "--output", str(out)],
                                 work / f"predict_{size}.log")
                rows = count_rows(out) if m["returncode"] == 0 else (0, 0)
                if m["returncode"] != 0 or rows != (n, 0):
                    failures.append(f"dltk predict {size}: exit {m['returncode']}, (rows, errors) {rows} "
                                    f"for {n}")
                sub[size].append(m)
                print(f"{tag} subprocess {size}: {m['wall_s']:.2f} s, {m['cpu_s']:.2f} CPU s, maxrss "
                      f"{m['maxrss_mb']:.0f} MB, tree PSS {m['tree_peak_pss_mb']:.0f} MB", flush=True)
            if not args.no_experiments:
                out = work / "pred_proto_all.csv"
                proto.append(run_measured([sys.executable, str(Path(__file__).resolve()), "--_prototype",
                                           str(run), str(inputs["all"][0]), str(out)], work / "proto.log"))
                print(f"{tag} prototype subprocess all: {proto[-1]['wall_s']:.2f} s, "
                      f"{proto[-1]['cpu_s']:.2f} CPU s", flush=True)

        startup = _median([m["wall_s"] for m in sub["1"]])
        startup_cpu = _median([m["cpu_s"] for m in sub["1"]])
        results["startup"] = {"wall_s": startup, "cpu_s": startup_cpu,
                              "maxrss_mb": max(m["maxrss_mb"] for m in sub["1"]),
                              "maxrss_source": sub["1"][0]["maxrss_source"]}
        table: dict[str, Any] = {}
        for name, values in inproc.items():
            if values:
                n = inputs["10k" if name == "10k" else "all"][1]
                wall, cpu = _median([v[0] for v in values]), _median([v[1] for v in values])
                table[f"in-process {name}"] = {"n": n, "wall_s": wall, "mol_s": n / wall, "cpu_s": cpu,
                                               "mol_per_cpu_s": n / cpu}
        for size, runs in sub.items():
            if size == "1":
                continue
            n = inputs[size][1]
            wall, cpu = _median([m["wall_s"] for m in runs]), _median([m["cpu_s"] for m in runs])
            table[f"dltk predict {size}"] = {
                "n": n, "wall_s": wall, "mol_s": n / wall,
                "mol_s_excl_startup": n / max(wall - startup, 1e-9),
                "cpu_s": cpu, "mol_per_cpu_s": n / cpu, "maxrss_mb": max(m["maxrss_mb"] for m in runs),
                "tree_peak_rss_mb": max(m["tree_peak_rss_mb"] for m in runs),
                "tree_peak_pss_mb": max(m["tree_peak_pss_mb"] for m in runs),
                "max_processes": max(m["max_processes"] for m in runs)}
        if proto:
            n = inputs["all"][1]
            wall, cpu = _median([m["wall_s"] for m in proto]), _median([m["cpu_s"] for m in proto])
            table["prototype all (subprocess)"] = {
                "n": n, "wall_s": wall, "mol_s": n / wall,
                "mol_s_excl_startup": n / max(wall - startup, 1e-9),
                "cpu_s": cpu, "mol_per_cpu_s": n / cpu, "maxrss_mb": max(m["maxrss_mb"] for m in proto),
                "tree_peak_rss_mb": max(m["tree_peak_rss_mb"] for m in proto),
                "tree_peak_pss_mb": max(m["tree_peak_pss_mb"] for m in proto),
                "returncodes": [m["returncode"] for m in proto]}
            comparison = compare_outputs(work / "pred_sub_all.csv", work / "pred_proto_all.csv")
            table["prototype all (subprocess)"]["vs_dltk_predict"] = comparison
            if not comparison["identical"]:
                failures.append(f"prototype output differs from dltk predict: {comparison}")
        if big_batch is not None:
            comparison = compare_outputs(work / "pred_sub_all.csv", work / "pred_in_all.csv")
            if not comparison["identical"]:
                failures.append(f"inference batch 10,000 output differs from dltk predict: {comparison}")
        results["predict"] = table
        results["runs"] = {"in_process": inproc, "subprocess": sub, "prototype": proto}

        if not args.no_stages:
            print("stage breakdown (all records, in-process) ...", flush=True)
            results["stages"] = stage_breakdown(run, *inputs["all"], work)
        if not args.no_experiments:
            print("fix experiments (10,000 records) ...", flush=True)
            exp = experiments(run, inputs["10k"][0], max(3, args.repeats))
            results["experiments"] = exp
            checks = exp["checks"]
            if not (checks["featurize variants identical"] and checks["one batch max |diff|"] <= 1e-5
                    and checks.get("sparse first layer max |diff|", 0) <= 1e-5):
                failures.append(f"experiment outputs differ: {checks}")
        with contextlib.suppress(OSError):
            results["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        results["failures"] = failures
        report(results)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    for failure in failures:
        print(f"CHECK FAILED: {failure}")
    return 1 if failures else 0


def report(res: dict[str, Any]) -> None:
    m, mach = res["model"], res["machine"]
    print()
    trained = (f"; trained in {m['train_wall_s']} s, test ROC-AUC {m['test_auroc']:.3f}"
               if "train_wall_s" in m else "")
    print(f"model: {m.get('features')} {m.get('ecfp')} -> {m.get('tasks')} tasks; run {m['run']}{trained}")
    print(f"python {mach['python']}, torch {mach['torch']} ({mach['torch_threads']} threads), "
          f"rdkit {mach['rdkit']}, {mach['cpu_count']} CPUs, "
          f"load average {mach.get('loadavg_1_5_15')} -> {res.get('loadavg_after')}")
    st = res["startup"]
    print(f"`dltk predict` of 1 molecule (start-up): {st['wall_s']:.2f} s, {st['cpu_s']:.2f} CPU s, "
          f"peak RSS {st['maxrss_mb']:.0f} MB (from {st['maxrss_source']})")
    print()
    print("variant | molecules | wall s | mol/s | mol/s excl. start-up | CPU s | mol per CPU s | "
          "peak RSS MB | tree PSS MB")
    for name, row in res["predict"].items():
        excl = f"{row['mol_s_excl_startup']:,.0f}" if "mol_s_excl_startup" in row else ""
        print(" | ".join([name, f"{row['n']:,}", f"{row['wall_s']:.2f}", f"{row['mol_s']:,.0f}", excl,
                          f"{row['cpu_s']:.2f}", f"{row['mol_per_cpu_s']:,.0f}",
                          _mb(row["maxrss_mb"]) if "maxrss_mb" in row else "",
                          _mb(row["tree_peak_pss_mb"]) if "tree_peak_pss_mb" in row else ""]))
    rows = res["predict"]
    inproc, sub = rows.get("in-process all"), rows.get("dltk predict all")
    print(f"target >= {TARGET_RATE:,.0f} mol/s on all {inproc['n']:,}: in-process {inproc['mol_s']:,.0f} -> "
          f"{'meets' if inproc['mol_s'] >= TARGET_RATE else 'MISSES'}; `dltk predict` incl. start-up "
          f"{sub['mol_s']:,.0f} -> {'meets' if sub['mol_s'] >= TARGET_RATE else 'MISSES'}")
    peak = max(sub["maxrss_mb"], sub["tree_peak_pss_mb"])
    small = rows["dltk predict 10k"]
    small_peak = max(small["maxrss_mb"], small["tree_peak_pss_mb"])
    print(f"target peak < {TARGET_PEAK_MB:,.0f} MB: {peak:,.0f} MB on {sub['n']:,} (max of the largest "
          f"process's RSS and the tree's PSS) vs {small_peak:,.0f} MB on {small['n']:,} -> "
          f"{'meets' if peak < TARGET_PEAK_MB else 'MISSES'}")
    if "stages" in res:
        st = res["stages"]
        print()
        print(f"where the time goes (in-process, {st['n']:,} molecules, {st['total_s']:.2f} s wall, "
              f"{st['total_cpu_s']:.2f} CPU s incl. pool workers):")
        for stage, v in st["stages"].items():
            print(f"  {stage:<64} {v['wall_s']:7.2f} s  {100 * v['wall_s'] / st['total_s']:5.1f}%   "
                  f"CPU {v['cpu_s']:7.2f} s")
        print(f"  RSS after each 10,000-row chunk (MB): {st['rss_mb_after_each_chunk']}")
        feat = next((v["cpu_s"] for k, v in st["stages"].items() if k.startswith("ECFP featurization")), None)
        if feat is not None:
            estimate = feat / 2 + (st["total_cpu_s"] - feat)
            print(f"  estimate for an idle 2-core machine (not measured; upper bound, assumes the pool "
                  f"scales 2x): featurization CPU / 2 + the rest, which runs serially = {estimate:.2f} s "
                  f"= {st['n'] / estimate:,.0f} mol/s in-process")
        for note in st["notes"]:
            print(f"  note: {note}")
    if "experiments" in res:
        ex = res["experiments"]
        print()
        print(f"fix experiments ({ex['n']:,} molecules, median):")
        for name, s in ex["seconds"].items():
            print(f"  {name:<66} {s:7.3f} s  {ex['n'] / s:>10,.0f} mol/s")
        print(f"  checks: {ex['checks']}")
        proto = res["predict"].get("prototype all (subprocess)")
        if proto:
            print(f"  prototype vs dltk predict output: {proto['vs_dltk_predict']}")


if __name__ == "__main__":
    sys.exit(main())
