"""Training time and final-set ROC-AUC of dltk's Tox21 challenge run against chemprop v2, on the
same split, on the same machine, in the same run.

1. The split is dltk's own (``Tox21ChallengeDataModule.load_tables``): training + leaderboard
   records minus a 10% validation set grouped by structure (split seed 0), and the 647-compound
   final set. It is written as three CSVs (``smiles`` + the 12 assays, blank = not tested);
   SMILES RDKit cannot parse are left out of all three and counted.
2. ``dltk train --plugin chem`` (the default preset) runs as a subprocess: wall time, peak RSS,
   final-set mean ROC-AUC from its ``metrics.json``.
3. ``chemprop train`` (CLI defaults, ``--task-type classification``) runs on the three CSVs as a
   subprocess from its own environment (``--chemprop /path/to/bin/chemprop``: chemprop 2.3 pins
   its own RDKit, so it lives in a separate venv), then ``chemprop predict`` on the final set; the
   ROC-AUC is computed the same way as dltk's (``dltk.metrics.compute_metrics``: per assay over
   labelled compounds, mean over the 12).
4. Prints both AUCs, both times and the time ratio dltk / chemprop (target <= 0.5 at equal or
   better AUC). ``--json`` writes everything.

Usage::

    DLTK_DATA_DIR=/path/to/shared/data python benchmarks/bench_chemprop.py --chemprop /tmp/cpvenv/bin/chemprop
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

import numpy as np
import pandas as pd


def write_split(work: Path) -> tuple[dict[str, Path], list[str], dict[str, int]]:
    from dltk_chem.datamodules import Tox21ChallengeDataModule
    from dltk_chem.tables import canonical_smiles

    train, val, final = Tox21ChallengeDataModule().load_tables()
    paths, dropped = {}, {}
    for name, table in (("train", train), ("val", val), ("test", final)):
        ok = np.array([canonical_smiles(s) is not None for s in table.smiles])
        frame = pd.DataFrame(table.y[ok], columns=table.tasks)
        frame.insert(0, "smiles", np.asarray(table.smiles)[ok])
        paths[name] = work / f"{name}.csv"
        frame.to_csv(paths[name], index=False, float_format="%g")
        dropped[name] = int((~ok).sum())
    return paths, list(train.tasks), dropped


def timed(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``cmd``; return (wall seconds, peak RSS of its largest process in MB)."""
    start = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed ({log}): {' '.join(cmd)}\n" + log.read_text()[-3000:])
    return wall, usage.ru_maxrss / 1024


def auroc(pred_csv: Path, test_csv: Path, tasks: list[str]) -> float:
    import torch

    from dltk.metrics import compute_metrics

    truth = pd.read_csv(test_csv)
    preds = pd.read_csv(pred_csv)
    if len(preds) != len(truth):
        sys.exit(f"{pred_csv}: {len(preds)} predictions for {len(truth)} test compounds")
    values = compute_metrics(torch.tensor(preds[tasks].to_numpy(np.float32)),
                             torch.tensor(truth[tasks].to_numpy(np.float32)), "classification", tasks)
    return values["auroc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chemprop", required=True, help="the chemprop console script of its own venv")
    parser.add_argument("--work", help="working folder (default: a new temporary folder)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="dltk-bench-chemprop-"))
    work.mkdir(parents=True, exist_ok=True)
    paths, tasks, dropped = write_split(work)
    print(f"split written to {work}: " + ", ".join(f"{k} {len(pd.read_csv(p))}" for k, p in paths.items())
          + f"; unparsable SMILES left out: {dropped}", flush=True)

    env = {**os.environ, "DLTK_CACHE": str(work / "dltk-cache")}  # cold: featurization is timed too
    dltk_wall, dltk_rss = timed([str(Path(sys.executable).parent / "dltk"), "train", "--plugin", "chem",
                                 "--run-dir", str(work / "dltk-run")], work / "dltk.log", env)
    dltk_auc = json.loads((work / "dltk-run" / "metrics.json").read_text())["test/auroc"]
    print(f"dltk: final-set mean ROC-AUC {dltk_auc:.3f} in {dltk_wall:.0f} s, peak RSS {dltk_rss:.0f} MB", flush=True)

    out = work / "chemprop"
    # chemprop 2.3: three --data-path files are taken as train, validation and test, in that order
    cp_wall, cp_rss = timed([args.chemprop, "train", "--data-path", str(paths["train"]), str(paths["val"]),
                             str(paths["test"]), "--task-type", "classification", "--smiles-columns", "smiles",
                             "--target-columns", *tasks, "--output-dir", str(out)], work / "chemprop-train.log")
    model = sorted(out.rglob("best*.pt"))[0]
    preds = work / "chemprop-preds.csv"
    smiles_only = work / "test-smiles.csv"  # predict from structures alone: the labels never reach chemprop
    pd.read_csv(paths["test"])[["smiles"]].to_csv(smiles_only, index=False)
    timed([args.chemprop, "predict", "--test-path", str(smiles_only), "--smiles-columns", "smiles",
           "--model-paths", str(model), "--preds-path", str(preds)], work / "chemprop-predict.log")
    cp_auc = auroc(preds, paths["test"], tasks)
    print(f"chemprop: final-set mean ROC-AUC {cp_auc:.3f} in {cp_wall:.0f} s (training incl. its test pass), "
          f"peak RSS {cp_rss:.0f} MB", flush=True)

    ratio = dltk_wall / cp_wall
    verdict = "meets" if ratio <= 0.5 and dltk_auc >= cp_auc else "does not meet"
    print(f"\ntime ratio dltk / chemprop: {ratio:.2f}x (target <= 0.5 at equal or better AUC: {verdict})")
    print(f"AUC: dltk {dltk_auc:.3f} vs chemprop {cp_auc:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "split": {k: str(v) for k, v in paths.items()}, "dropped_unparsable": dropped,
            "dltk": {"auroc": dltk_auc, "wall_s": dltk_wall, "peak_rss_mb": dltk_rss},
            "chemprop": {"auroc": cp_auc, "wall_s": cp_wall, "peak_rss_mb": cp_rss, "model": str(model)},
            "time_ratio": ratio, "verdict": verdict}, indent=2))


if __name__ == "__main__":
    main()
