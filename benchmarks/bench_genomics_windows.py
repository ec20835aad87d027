"""Window loading from an indexed FASTA (pyfaidx, as the intervals datamodule does) versus reading the
whole FASTA into memory.

A genome is generated once (seeded) under ``--dir`` (default ``/tmp/dltk-bench-genome``):
``--contigs`` contigs of ``--mb`` million bases in total, 60 bases per line, with soft-masked
(lowercase) stretches and runs of N, ~``--mb`` MB on disk. Then, for ``--windows`` random windows
of ``--width`` bases (the same windows for both):

* ``indexed (dltk Genome)``: :class:`dltk_genomics.intervals.Genome` (pyfaidx, ``.fai`` in the
  cache dir): open (the one-off index build is reported separately), then each window read by
  random access and encoded to codes; resident memory grows by the output array only;
* ``whole FASTA in memory``: the file read into one string per contig (the simple way), then each
  window sliced and encoded; resident memory grows by the genome size.

Reported: set-up seconds, windows/s after set-up (per wall second and per CPU second of the
process: on a shared machine the latter is the single-core rate), anonymous resident-memory growth
(``RssAnon`` in ``/proc/self/status``; page cache is not counted), and the number of windows at which loading everything first would break
even. Correctness: both paths must give identical codes (exit 1 if not).

Usage::

    python benchmarks/bench_genomics_windows.py [--mb 150] [--windows 20000] [--width 1000]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def rss_mb() -> float:
    """Anonymous resident memory (heap), MB: what holding data costs (page cache not counted)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def write_genome(path: Path, total_mb: float, contigs: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    per = int(total_mb * 1e6 / contigs)
    letters = np.frombuffer(b"ACGTacgtNN", dtype=np.uint8)
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as fh:
        for c in range(contigs):
            fh.write(f">chr{c + 1}\n".encode())
            for start in range(0, per, 6_000_000):
                n = min(6_000_000, per - start)
                idx = rng.integers(0, 4, n)
                block = np.repeat(rng.random(n // 1000 + 1) < 0.1, 1000)[:n]  # 10% soft-masked kb
                idx = np.where(block, idx + 4, idx)
                idx[rng.integers(0, n, 3)] = 8  # a few N
                seq = letters[idx].tobytes()
                lines = [seq[i:i + 60] for i in range(0, n, 60)]
                fh.write(b"\n".join(lines) + b"\n")
    tmp.replace(path)


def read_whole(path: Path) -> dict[str, str]:
    genome: dict[str, list[str]] = {}
    name = None
    with open(path) as fh:
        for line in fh:
            if line.startswith(">"):
                name = line[1:].split()[0]
                genome[name] = []
            elif name is not None:
                genome[name].append(line.rstrip("\n"))
    return {k: "".join(v) for k, v in genome.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=150.0, help="genome size in million bases (<= 200)")
    ap.add_argument("--contigs", type=int, default=5)
    ap.add_argument("--windows", type=int, default=20000)
    ap.add_argument("--width", type=int, default=1000)
    ap.add_argument("--dir", default="/tmp/dltk-bench-genome")
    ns = ap.parse_args(argv)
    if ns.mb > 200:
        ap.error("--mb must be <= 200 (keep the generated genome small)")
    os.environ.setdefault("DLTK_CACHE", tempfile.mkdtemp(prefix="dltk-bench-cache-"))
    from dltk_genomics import encoding
    from dltk_genomics.intervals import Genome

    folder = Path(ns.dir)
    folder.mkdir(parents=True, exist_ok=True)
    fasta = folder / f"genome_{ns.mb:g}mb_{ns.contigs}.fa"
    if not fasta.is_file():
        t0 = time.perf_counter()
        write_genome(fasta, ns.mb, ns.contigs)
        print(f"wrote {fasta} ({fasta.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")

    rng = np.random.default_rng(1)
    rss0 = rss_mb()
    t0 = time.perf_counter()
    genome = Genome(fasta)
    setup_cold = time.perf_counter() - t0  # builds the .fai unless an earlier run cached it
    t0 = time.perf_counter()
    genome = Genome(fasta)
    setup_idx = time.perf_counter() - t0  # index already in the cache: what every later run pays
    names = list(genome.lengths)
    which = rng.integers(0, len(names), ns.windows)
    starts = [int(rng.integers(0, genome.lengths[names[w]] - ns.width)) for w in which]
    c0, t0 = time.process_time(), time.perf_counter()
    idx_codes = np.stack([genome.codes(names[w], s, s + ns.width) for w, s in zip(which, starts)])
    rate_idx = ns.windows / (time.perf_counter() - t0)
    cpu_idx = ns.windows / max(time.process_time() - c0, 1e-9)
    rss_idx = rss_mb() - rss0

    rss1 = rss_mb()
    t0 = time.perf_counter()
    whole = read_whole(fasta)
    setup_mem = time.perf_counter() - t0
    c0, t0 = time.process_time(), time.perf_counter()
    mem_codes = np.stack([encoding.encode(whole[names[w]][s:s + ns.width]) for w, s in zip(which, starts)])
    rate_mem = ns.windows / (time.perf_counter() - t0)
    cpu_mem = ns.windows / max(time.process_time() - c0, 1e-9)
    rss_mem = rss_mb() - rss1
    mem_codes[mem_codes == encoding.INVALID] = 15

    ok = np.array_equal(idx_codes, mem_codes)
    print(f"{ns.windows} random windows of {ns.width} bp from a {ns.mb:g} Mb genome ({len(names)} contigs)")
    print(f"{'variant':24s} {'set-up s':>9s} {'windows/s':>10s} {'per CPU s':>10s} {'heap growth MB':>15s}")
    print(f"{'indexed (dltk Genome)':24s} {setup_idx:9.2f} {rate_idx:10.0f} {cpu_idx:10.0f} {rss_idx:15.0f}")
    print(f"  (first open of this FASTA in this cache, building the .fai: {setup_cold:.2f} s)")
    print(f"{'whole FASTA in memory':24s} {setup_mem:9.2f} {rate_mem:10.0f} {cpu_mem:10.0f} {rss_mem:15.0f}")
    print(f"(heap growth includes the {idx_codes.nbytes / 1e6:.0f} MB output array in both rows)")
    print(f"windows/s ratio indexed / in-memory: {rate_idx / rate_mem:.2f} (per CPU second: "
          f"{cpu_idx / cpu_mem:.2f}); set-up ratio in-memory / indexed: {setup_mem / max(setup_idx, 1e-9):.0f}x")
    gap = 1 / rate_idx - 1 / rate_mem
    if gap > 0:
        print(f"break-even: loading the whole genome first pays off after "
              f"{(setup_mem - setup_idx) / gap:,.0f} windows (and costs {rss_mem:.0f} MB of RAM)")
    print(f"identical codes: {'ok' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
