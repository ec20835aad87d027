"""One-hot encoding throughput of ``dltk_genomics.encoding`` against a naive per-base loop.

Input: ``--mbases`` million random A/C/G/T bases (seeded) as one ASCII buffer. Variants, each timed
``--repeats`` times round-robin (median reported, in million bases per second on ONE core: the
script sets OMP/MKL threads to 1 before importing numpy):

* ``dltk one_hot_bytes``: ASCII -> (L, 4) uint8 one-hot, one packed-table ``take`` per base
  (:func:`dltk_genomics.encoding.one_hot_bytes`), into a preallocated output;
* ``dltk encode (codes)``: ASCII -> (L,) uint8 IUPAC codes, what the datamodules store
  (:data:`dltk_genomics.encoding.CODES` lookup);
* ``dltk one_hot float32``: codes -> (L, 4) float32 (:func:`dltk_genomics.encoding.one_hot`),
  what a model sees (models do this on their device);
* ``naive loop``: a Python loop over bases filling a float32 (L, 4) array from a dict, timed on the
  first ``--naive-mbases`` million bases (it is slow) and reported per base.

Correctness: every dltk variant must equal the naive result on the naive slice (exit 1 if not).
The target is >= 300 M bases/s for the one-hot of DNA; the ratio to the naive loop is printed.

Usage::

    python benchmarks/bench_genomics_onehot.py [--mbases 50] [--naive-mbases 0.5] [--repeats 5]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import statistics
import sys
import time

import numpy as np
from dltk_genomics import encoding

NAIVE = {"A": (1, 0, 0, 0), "C": (0, 1, 0, 0), "G": (0, 0, 1, 0), "T": (0, 0, 0, 1)}


def naive_one_hot(seq: str) -> np.ndarray:
    out = np.zeros((len(seq), 4), dtype=np.float32)
    for i, base in enumerate(seq):
        out[i] = NAIVE.get(base.upper(), (0.25, 0.25, 0.25, 0.25))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mbases", type=float, default=50.0)
    ap.add_argument("--naive-mbases", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=5)
    ns = ap.parse_args(argv)
    n = int(ns.mbases * 1e6)
    rng = np.random.default_rng(0)
    buf = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, n)].tobytes()
    out_u8 = np.empty((n, 4), dtype=np.uint8)
    codes = encoding.CODES[np.frombuffer(buf, dtype=np.uint8)]
    codes_f = codes[: min(n, 10_000_000)]  # float32 output is 16 bytes per base: cap its size

    variants = {
        "dltk one_hot_bytes (uint8)": lambda: encoding.one_hot_bytes(buf, out=out_u8),
        "dltk encode (codes)": lambda: encoding.encode(buf),
        "dltk one_hot float32": lambda: encoding.one_hot(codes_f),
    }
    sizes = {name: n for name in variants}
    sizes["dltk one_hot float32"] = len(codes_f)
    times: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    for fn in variants.values():  # warm-up
        fn()
    for _ in range(ns.repeats):
        for name, fn in variants.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)

    m = int(ns.naive_mbases * 1e6)
    naive_seq = buf[:m].decode("ascii")
    c0, t0 = time.process_time(), time.perf_counter()
    reference = naive_one_hot(naive_seq)
    naive_rate = m / (time.perf_counter() - t0) / 1e6
    naive_cpu_rate = m / max(time.process_time() - c0, 1e-9) / 1e6

    ok = True
    ok &= np.array_equal(encoding.one_hot_bytes(buf[:m]).astype(np.float32), reference)
    ok &= np.array_equal(encoding.one_hot(encoding.encode(buf[:m])), reference)

    print(f"one-hot of {n / 1e6:.0f} M random bases, 1 thread, median of {ns.repeats} "
          f"(naive loop on {m / 1e6:.2f} M bases)")
    print("M bases/s per wall second and per CPU second of this process (on a shared machine the CPU "
          "figure is the single-core rate)")
    print(f"{'variant':32s} {'wall':>8s} {'cpu':>8s} {'x naive (cpu)':>14s}")
    for name, ts in times.items():
        rate = sizes[name] / statistics.median(ts) / 1e6
        crate = sizes[name] / max(statistics.median(cpu[name]), 1e-9) / 1e6
        print(f"{name:32s} {rate:8.1f} {crate:8.1f} {crate / naive_cpu_rate:14.0f}")
    print(f"{'naive per-base Python loop':32s} {naive_rate:8.2f} {naive_cpu_rate:8.2f} {1:14.0f}")
    best = n / max(statistics.median(cpu["dltk one_hot_bytes (uint8)"]), 1e-9) / 1e6
    print(f"target >= 300 M bases/s (one core) for one-hot: {'met' if best >= 300 else 'NOT met'} ({best:.0f})")
    print(f"correctness vs naive: {'ok' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
