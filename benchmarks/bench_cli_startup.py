"""Start-up time of the ``dltk`` command line against ``import torch`` / ``import lightning``.

Each command is run as a fresh subprocess; after one untimed warm-up run per command (so the page
cache is warm for all of them alike), the commands are timed ``--repeats`` times (default 7) in
round-robin order, so that a change in machine load hits every command about equally, and the
median wall time is reported. The ratio to ``python -c "import torch"`` (measured in the same run)
is the figure to compare across machines; the absolute targets are printed for information only.

The script also checks, in separate subprocesses, that ``dltk --help`` and ``dltk plugins`` import
none of torch, lightning or rdkit, in two ways: ``python -X importtime`` on the installed ``dltk``
entry-point script, and a ``-c`` snippet that calls ``dltk.cli.main`` and then inspects
``sys.modules``.

Usage::

    python benchmarks/bench_cli_startup.py [--repeats 7] [--json results.json]

Exit status is 0 unless a command fails to run or the import check fails (the timing targets do
not change the exit status: on a loaded, shared machine absolute times are not reliable).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("torch", "lightning", "pytorch_lightning", "rdkit")
"""Top-level packages the light CLI paths must not import."""

TARGETS_S = {"dltk --help": 0.3, "dltk plugins": 0.6}


def dltk_script() -> str:
    """The installed ``dltk`` console script: next to this interpreter first, then on PATH."""
    here = Path(sys.executable).parent / "dltk"
    if here.is_file():
        return str(here)
    found = shutil.which("dltk")
    if found is None:
        sys.exit("bench_cli_startup: no `dltk` script found (pip install -e . in this environment)")
    return found


def commands() -> dict[str, list[str]]:
    dltk = dltk_script()
    return {
        "dltk --help": [dltk, "--help"],
        "dltk plugins": [dltk, "plugins"],
        "import torch": [sys.executable, "-c", "import torch"],
        "import lightning": [sys.executable, "-c", "import lightning"],
    }


def run_once(argv: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: "
                           f"{proc.stderr.decode(errors='replace')[-2000:]}")
    return elapsed


def time_commands(cmds: dict[str, list[str]], repeats: int) -> dict[str, list[float]]:
    for argv in cmds.values():  # warm-up, untimed
        run_once(argv)
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(repeats):
        for name, argv in cmds.items():
            times[name].append(run_once(argv))
    return times


# --------------------------------------------------------------------------------------------------
# Import checks


def imported_by_importtime(argv_tail: list[str]) -> list[str]:
    """Top-level packages imported by the ``dltk`` script with ``argv_tail``, from ``-X importtime``."""
    proc = subprocess.run([sys.executable, "-X", "importtime", dltk_script(), *argv_tail],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dltk {' '.join(argv_tail)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    names = set()
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        name = line.rsplit("|", 1)[1].strip()
        if name and name != "package":  # skip the header line
            names.add(name.split(".")[0])
    if not names:
        raise RuntimeError("no -X importtime output parsed")
    return sorted(names)


_SYS_MODULES_SNIPPET = """
import json, sys
from dltk.cli import main
try:
    rc = main({argv!r})
except SystemExit as exc:  # argparse --help exits
    rc = exc.code
sys.stdout.flush()
print("\\n@@" + json.dumps({{"rc": rc, "modules": sorted({{m.split('.')[0] for m in sys.modules}})}}))
"""


def imported_by_main(argv_tail: list[str]) -> list[str]:
    """Top-level packages in ``sys.modules`` after ``dltk.cli.main(argv_tail)`` in a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-c", _SYS_MODULES_SNIPPET.format(argv=argv_tail)],
                          capture_output=True, text=True)
    marker = proc.stdout.rfind("\n@@")
    if proc.returncode != 0 or marker < 0:
        raise RuntimeError(f"dltk.cli.main({argv_tail}) failed: {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout[marker + 3:])
    if result["rc"] not in (0, None):
        raise RuntimeError(f"dltk.cli.main({argv_tail}) returned {result['rc']}")
    return result["modules"]


def import_checks() -> dict[str, dict]:
    out = {}
    for label, tail in (("dltk --help", ["--help"]), ("dltk plugins", ["plugins"])):
        via_importtime = [m for m in imported_by_importtime(tail) if m in HEAVY]
        via_main = [m for m in imported_by_main(tail) if m in HEAVY]
        out[label] = {"heavy_via_importtime": via_importtime, "heavy_via_sys_modules": via_main,
                      "ok": not via_importtime and not via_main}
    return out


# --------------------------------------------------------------------------------------------------


def machine_info() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count()}
    if hasattr(os, "getloadavg"):
        info["loadavg_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per command (default 7)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    load_before = machine_info()
    checks = import_checks()
    times = time_commands(commands(), args.repeats)
    load_after = machine_info().get("loadavg_1_5_15")

    medians = {name: statistics.median(ts) for name, ts in times.items()}
    torch_s = medians["import torch"]
    rows = []
    for name, med in medians.items():
        target = TARGETS_S.get(name)
        rows.append({"command": name, "median_s": med, "min_s": min(times[name]),
                     "max_s": max(times[name]), "ratio_to_import_torch": med / torch_s,
                     "target_s": target, "meets_target": None if target is None else med <= target,
                     "times_s": times[name]})

    print(f"CLI start-up, median of {args.repeats} subprocess runs after 1 warm-up "
          f"(python {load_before['python']}, {load_before['cpu_count']} CPUs, load average "
          f"{load_before.get('loadavg_1_5_15')} -> {load_after})")
    print()
    header = (f"{'command':<18} {'median s':>9} {'min s':>7} {'max s':>7} {'/ import torch':>15} "
              f"{'target':>8}  meets")
    print(header)
    print("-" * len(header))
    for r in rows:
        target = "" if r["target_s"] is None else f"<= {r['target_s']:.1f}"
        meets = "" if r["meets_target"] is None else ("yes" if r["meets_target"] else "NO")
        print(f"{r['command']:<18} {r['median_s']:>9.3f} {r['min_s']:>7.3f} {r['max_s']:>7.3f} "
              f"{r['ratio_to_import_torch']:>15.3f} {target:>8}  {meets}")
    print()
    print(f"heavy imports checked: {', '.join(HEAVY)}")
    for label, c in checks.items():
        verdict = "none imported" if c["ok"] else "IMPORTED"
        print(f"  {label:<14} -X importtime: {c['heavy_via_importtime'] or '[]'}; "
              f"sys.modules after dltk.cli.main: {c['heavy_via_sys_modules'] or '[]'} -> {verdict}")

    if args.json:
        result = {"benchmark": "cli_startup", "repeats": args.repeats, "warmup_runs": 1,
                  "machine": {**load_before, "loadavg_after": load_after},
                  "results": rows, "import_checks": checks}
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0 if all(c["ok"] for c in checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
