"""ECFP featurization throughput of ``dltk_chem.featurize`` against RDKit itself and DeepChem.

All variants fingerprint the same SMILES (default: the first 10,000 rows of MoleculeNet
``muv.csv.gz``, fetched through ``dltk_chem.files.FILES["muv"]``, i.e. from ``$DLTK_DATA_DIR``
when set; or ``--smiles-file``) as ECFP radius 2, 2,048 bits:

* ``dltk featurize n_jobs=1`` / ``n_jobs=2``: :func:`dltk_chem.featurize.featurize` with a fresh
  :class:`~dltk_chem.featurize.ECFP` (no cache; the n_jobs=2 time includes starting the pool);
* ``dltk featurize_cached cold``: :func:`~dltk_chem.featurize.featurize_cached` with ``DLTK_CACHE``
  pointing at a new empty temporary folder (hashing + featurizing + writing the ``.npz``), then
  ``cached rerun``: the same call again, which loads the entry;
* ``raw RDKit 1 proc`` / ``2 proc``: ``rdFingerprintGenerator.GetMorganGenerator`` +
  ``GetFingerprintAsNumPy`` called directly into a uint8 matrix, in this process or in a
  ``multiprocessing`` pool of 2 (fork, chunks of 1,000, pool start-up included);
* ``DeepChem CircularFingerprint``: only if ``deepchem`` is importable (otherwise skipped, with a
  note).

Each variant is timed ``--repeats`` times (default 5), interleaved round-robin so that load from
other processes on a shared machine hits all variants about equally; the median time is reported
as molecules/s. Ratios between variants measured in the same run are the figures to compare
across machines. The script also checks that every dltk output equals the raw RDKit output bit for
bit; it exits 1 if not.

Usage::

    DLTK_DATA_DIR=/path/to/data python benchmarks/bench_featurize.py [--n 10000] [--repeats 5]
        [--jobs 2] [--smiles-file FILE [--smiles-column COL]] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rdkit
import tqdm  # noqa: F401  (featurize imports it on first call: keep that out of the timings)
from rdkit import Chem, RDLogger
from rdkit.Chem import rdFingerprintGenerator

from dltk.data import fetch
from dltk_chem.files import FILES
from dltk_chem.smiles_files import read_smiles_file
from dltk_chem.featurize import ECFP, MIN_PARALLEL, featurize, featurize_cached

RADIUS = 2
N_BITS = 2048
RAW_CHUNK = 1_000

# --------------------------------------------------------------------------------------------------
# Input


def load_smiles(n: int, smiles_file: str | None, smiles_column: str | None) -> tuple[list[str], str]:
    """The first ``n`` SMILES records of ``smiles_file`` or of MoleculeNet MUV (blank SMILES kept)."""
    if smiles_file is None:
        path, source = fetch(FILES["muv"]), "MoleculeNet muv.csv.gz"
    else:
        path, source = Path(smiles_file), smiles_file
    first = next(iter(read_smiles_file(path, smiles_column=smiles_column, chunk_size=n)), [])
    smiles = [smi for _, smi, _ in first]
    if not smiles:
        sys.exit(f"bench_featurize: no SMILES read from {path}")
    return smiles, f"{source} (first {len(smiles):,} records, {path})"


# --------------------------------------------------------------------------------------------------
# Peers


def raw_rdkit(smiles: Sequence[str], generator: Any = None) -> np.ndarray:
    """RDKit's Morgan generator called directly; unparsable SMILES give a zero row."""
    gen = generator or rdFingerprintGenerator.GetMorganGenerator(radius=RADIUS, fpSize=N_BITS)
    X = np.zeros((len(smiles), N_BITS), dtype=np.uint8)
    for i, smi in enumerate(smiles):
        mol = Chem.MolFromSmiles(smi)
        if mol is not None:
            X[i] = gen.GetFingerprintAsNumPy(mol)
    return X


_worker_gen: Any = None


def _raw_init() -> None:
    global _worker_gen
    RDLogger.DisableLog("rdApp.*")
    _worker_gen = rdFingerprintGenerator.GetMorganGenerator(radius=RADIUS, fpSize=N_BITS)


def _raw_work(chunk: tuple[int, list[str]]) -> tuple[int, np.ndarray]:
    start, smiles = chunk
    return start, raw_rdkit(smiles, _worker_gen)


def raw_rdkit_pool(smiles: Sequence[str], processes: int) -> np.ndarray:
    """:func:`raw_rdkit` over chunks of 1,000 in a plain ``multiprocessing`` pool (fork)."""
    X = np.zeros((len(smiles), N_BITS), dtype=np.uint8)
    chunks = [(s, list(smiles[s:s + RAW_CHUNK])) for s in range(0, len(smiles), RAW_CHUNK)]
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else None)
    with ctx.Pool(processes, initializer=_raw_init) as pool:
        for start, Xc in pool.imap_unordered(_raw_work, chunks):
            X[start:start + len(Xc)] = Xc
    return X


def deepchem_featurizer() -> tuple[Any, str]:
    """``(CircularFingerprint, version)``, or ``(None, reason)`` when deepchem cannot be imported."""
    try:
        import deepchem as dc
    except Exception as exc:  # ImportError, or a broken install
        return None, f"deepchem not importable ({type(exc).__name__}: {' '.join(str(exc).split())})"
    return dc.feat.CircularFingerprint(radius=RADIUS, size=N_BITS), dc.__version__


# --------------------------------------------------------------------------------------------------
# Timing


class TempCache:
    """Point ``DLTK_CACHE`` at a new empty temporary folder; restore and delete it on exit."""

    def __enter__(self) -> TempCache:
        self.old = os.environ.get("DLTK_CACHE")
        self.path = tempfile.mkdtemp(prefix="dltk-bench-cache-")
        os.environ["DLTK_CACHE"] = self.path
        return self

    def __exit__(self, *exc: object) -> None:
        if self.old is None:
            os.environ.pop("DLTK_CACHE", None)
        else:
            os.environ["DLTK_CACHE"] = self.old
        shutil.rmtree(self.path, ignore_errors=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run_benchmark(smiles: list[str], repeats: int, jobs: int) -> tuple[dict[str, list[float]],
                                                                        dict[str, Any], dict[str, Any]]:
    """Time every variant ``repeats`` times, round-robin. Returns (times, last outputs, notes)."""
    dc_feat, dc_note = deepchem_featurizer()
    names = ["raw RDKit 1 proc", f"raw RDKit {jobs} proc", "dltk featurize n_jobs=1",
             f"dltk featurize n_jobs={jobs}", f"dltk featurize_cached cold (n_jobs={jobs})",
             "dltk featurize_cached rerun (hit)"]
    if dc_feat is not None:
        names.append("DeepChem CircularFingerprint")
    times: dict[str, list[float]] = {name: [] for name in names}
    outputs: dict[str, Any] = {}
    hits: list[tuple[bool, bool]] = []

    def record(name: str, seconds: float, out: Any) -> None:
        times[name].append(seconds)
        outputs[name] = out

    for _ in range(repeats):
        record(names[0], *timed(lambda: raw_rdkit(smiles)))
        record(names[1], *timed(lambda: raw_rdkit_pool(smiles, jobs)))
        record(names[2], *timed(lambda: featurize(ECFP(RADIUS, N_BITS), smiles, n_jobs=1, progress=False)))
        record(names[3], *timed(lambda: featurize(ECFP(RADIUS, N_BITS), smiles, n_jobs=jobs, progress=False)))
        with TempCache():
            t_cold, cold = timed(lambda: featurize_cached(ECFP(RADIUS, N_BITS), smiles, n_jobs=jobs,
                                                          progress=False))
            t_hit, hit = timed(lambda: featurize_cached(ECFP(RADIUS, N_BITS), smiles, n_jobs=jobs,
                                                        progress=False))
        record(names[4], t_cold, cold[:2])
        record(names[5], t_hit, hit[:2])
        hits.append((cold[2], hit[2]))
        if dc_feat is not None:
            record(names[6], *timed(lambda: dc_feat.featurize(smiles)))
    notes = {"deepchem": dc_note if dc_feat is None else f"deepchem {dc_note}",
             "cache_hit_flags_cold_then_rerun": hits}
    return times, outputs, notes


def equality_checks(outputs: dict[str, Any], jobs: int) -> dict[str, dict[str, Any]]:
    """Compare every dltk output (and the pooled raw peer) to the single-process raw RDKit matrix."""
    ref = outputs["raw RDKit 1 proc"]
    checks: dict[str, dict[str, Any]] = {}
    for name, out in outputs.items():
        if name == "raw RDKit 1 proc" or name.startswith("DeepChem"):
            continue
        X = out[0] if isinstance(out, tuple) else out
        entry: dict[str, Any] = {"shape": list(X.shape), "dtype": str(X.dtype),
                                 "identical": bool(X.shape == ref.shape and np.array_equal(X, ref))}
        if not entry["identical"] and X.shape == ref.shape:
            entry["rows_differing"] = int((X != ref).any(axis=1).sum())
        if isinstance(out, tuple):  # dltk: invalid rows must be the all-zero rows RDKit gives too
            valid = out[1]
            entry["n_valid"] = int(valid.sum())
            entry["invalid_rows_zero"] = bool(not X[~valid].any())
        checks[name] = entry
    if "DeepChem CircularFingerprint" in outputs:  # informational: DeepChem uses its own code path
        dc = np.asarray(outputs["DeepChem CircularFingerprint"])
        same = dc.ndim == 2 and dc.shape == ref.shape
        checks["DeepChem CircularFingerprint"] = {
            "shape": list(dc.shape), "dtype": str(dc.dtype), "informational": True,
            "identical": bool(same and np.array_equal(dc.astype(np.uint8), ref)),
            **({"rows_differing": int((dc.astype(np.uint8) != ref).any(axis=1).sum())} if same else {})}
    return checks


# --------------------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpu_count": os.cpu_count(), "rdkit": rdkit.__version__,
                            "numpy": np.__version__}
    if hasattr(os, "getloadavg"):
        info["loadavg_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="number of SMILES (default 10,000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per variant (default 5)")
    parser.add_argument("--jobs", type=int, default=2, help="processes for the parallel variants (default 2)")
    parser.add_argument("--smiles-file", help="SMILES input instead of MUV (.smi/.smiles or CSV, .gz ok)")
    parser.add_argument("--smiles-column", help="SMILES column of a CSV --smiles-file (default smiles)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1 or args.jobs < 2:
        parser.error("need --n >= 1, --repeats >= 1 and --jobs >= 2")

    RDLogger.DisableLog("rdApp.*")  # the raw peer parses unparsable SMILES too (dltk uses BlockLogs)
    smiles, source = load_smiles(args.n, args.smiles_file, args.smiles_column)
    n = len(smiles)
    info = machine_info()
    times, outputs, notes = run_benchmark(smiles, args.repeats, args.jobs)
    load_after = machine_info().get("loadavg_1_5_15")
    checks = equality_checks(outputs, args.jobs)

    med = {name: statistics.median(ts) for name, ts in times.items()}
    rate = {name: n / s for name, s in med.items()}
    j = args.jobs
    dltk_par, raw_par = f"dltk featurize n_jobs={j}", f"raw RDKit {j} proc"
    cold, hit = f"dltk featurize_cached cold (n_jobs={j})", "dltk featurize_cached rerun (hit)"
    dc = "DeepChem CircularFingerprint"
    ratios: dict[str, float | None] = {
        f"dltk n_jobs={j} / raw RDKit {j} proc": rate[dltk_par] / rate[raw_par],
        "dltk n_jobs=1 / raw RDKit 1 proc": rate["dltk featurize n_jobs=1"] / rate["raw RDKit 1 proc"],
        f"dltk n_jobs={j} / DeepChem": rate[dltk_par] / rate[dc] if dc in rate else None,
        "dltk n_jobs=1 / DeepChem": rate["dltk featurize n_jobs=1"] / rate[dc] if dc in rate else None,
        "cached rerun speedup (cold time / rerun time)": med[cold] / med[hit],
        f"dltk parallel speedup (n_jobs={j} / n_jobs=1)": rate[dltk_par] / rate["dltk featurize n_jobs=1"],
        f"raw RDKit parallel speedup ({j} proc / 1 proc)": rate[raw_par] / rate["raw RDKit 1 proc"],
    }

    n_valid = checks["dltk featurize n_jobs=1"]["n_valid"]
    print(f"ECFP radius {RADIUS}, {N_BITS} bits on {n:,} SMILES ({n_valid:,} parsed by RDKit) from {source}")
    print(f"median of {args.repeats} interleaved runs; python {info['python']}, rdkit {info['rdkit']}, "
          f"{info['cpu_count']} CPUs, load average {info.get('loadavg_1_5_15')} -> {load_after}")
    if n < MIN_PARALLEL:
        print(f"note: under {MIN_PARALLEL:,} SMILES, so dltk featurize runs in-process whatever n_jobs")
    print()
    header = f"{'variant':<40} {'median s':>9} {'min s':>8} {'max s':>8} {'mol/s':>11}"
    print(header)
    print("-" * len(header))
    for name, ts in times.items():
        print(f"{name:<40} {med[name]:>9.3f} {min(ts):>8.3f} {max(ts):>8.3f} {rate[name]:>11,.0f}")
    if dc not in times:
        print(f"{dc:<40} skipped: {notes['deepchem']}")
    print()
    for label, value in ratios.items():
        print(f"{label:<48} {'n/a (no deepchem)' if value is None else f'{value:.2f}x'}")
    print()
    print(f"bit-for-bit vs raw RDKit 1 proc ({n:,} x {N_BITS}):")
    for name, c in checks.items():
        verdict = "identical" if c["identical"] else f"DIFFERENT ({c.get('rows_differing', '?')} rows)"
        extra = ""
        if "invalid_rows_zero" in c:
            zero = "yes" if c["invalid_rows_zero"] else "NO"
            extra = f"; {n - c['n_valid']} invalid rows, all zero: {zero}"
        tag = " (informational)" if c.get("informational") else ""
        print(f"  {name:<40} {verdict}{extra}{tag}")
    flags = notes["cache_hit_flags_cold_then_rerun"]
    hits_ok = all(not a and b for a, b in flags)
    print(f"  featurize_cached hit flags (cold, rerun) per repeat: {flags} -> "
          f"{'as expected' if hits_ok else 'UNEXPECTED'}")

    ok = hits_ok and all(c["identical"] and c.get("invalid_rows_zero", True)
                         for c in checks.values() if not c.get("informational"))
    if args.json:
        result = {
            "benchmark": "featurize_ecfp", "radius": RADIUS, "n_bits": N_BITS, "n_smiles": n,
            "n_valid": n_valid, "source": source, "repeats": args.repeats, "jobs": j,
            "machine": {**info, "loadavg_after": load_after}, "notes": notes,
            "results": [{"variant": name, "median_s": med[name], "mol_per_s": rate[name],
                         "times_s": ts} for name, ts in times.items()],
            "ratios": ratios, "bit_for_bit": checks, "all_checks_ok": ok,
        }
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
