"""``dltk train --ensemble K``: K members with seeds s, s+1, ... under ``RUN/members/<k>/``, then
the test of their average; predictions carry the members' standard deviation as an uncertainty
column. The result opens as a :class:`dltk.run.EnsembleRun`."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dltk import rundir
from dltk.config_errors import value_from_configs
from dltk.io import read_json, write_json
from dltk.plugin import PluginSpec, PresetSpec


def strip_options(argv: list[str], names: tuple[str, ...]) -> list[str]:
    """``argv`` without the options ``names`` (``--name value`` or ``--name=value``)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        key = arg.split("=", 1)[0]
        if key in names:
            skip = "=" not in arg
            continue
        out.append(arg)
    return out


def _train_members(argv: list[str], k_total: int, base_seed: int, run_dir: Path,
                   train: Callable[[list[str]], Any]) -> list[Path]:
    member_argv = strip_options(argv, ("--ensemble", "--run-dir", "--seed"))
    members = []
    for k in range(k_total):
        member = run_dir / "members" / str(k)
        print(f"dltk: ensemble member {k + 1}/{k_total} (seed {base_seed + k}) -> {member}", flush=True)
        train(member_argv + ["--seed", str(base_seed + k), "--run-dir", str(member)])
        members.append(member)
    return members


def train_ensemble(argv: list[str], ns: argparse.Namespace, plugin: PluginSpec, task: PresetSpec,
                   run_dir: Path, train: Callable[[list[str]], Any]) -> Path:
    """Train ``ns.ensemble`` members into ``run_dir`` with ``train`` (``dltk.train.train``: one
    ordinary run per member) and test their average."""
    from dltk.evaluate import evaluate
    from dltk.run import Run

    rundir.claim(run_dir)
    base_seed = ns.seed if ns.seed is not None else int(value_from_configs(ns.config, "seed_everything") or 0)
    rundir.write_status(run_dir, "running", plugin=plugin.name, task=task.name, ensemble=ns.ensemble,
                        seed=base_seed, started=time.strftime("%Y-%m-%dT%H:%M:%S"), command=sys.argv)
    try:
        members = _train_members(argv, ns.ensemble, base_seed, run_dir, train)
        shutil.copyfile(members[0] / "config.yaml", run_dir / "config.yaml")
        shutil.copyfile(members[0] / "environment.json", run_dir / "environment.json")
        run = Run.open(run_dir)
        models = run.models("best")
        print(f"dltk: testing the average of {len(models)} members")
        metrics = evaluate(run_dir, plugin, task, run.datamodule(), models)
        write_json(run_dir / "ensemble.json", {"members": [str(m.relative_to(run_dir)) for m in members],
                                               "seeds": [base_seed + k for k in range(ns.ensemble)],
                                               "member_metrics": [read_json(m / "metrics.json") for m in members]})
        rundir.write_status(run_dir, "completed", finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
                            test_metric=rundir.headline(metrics))
    except BaseException as exc:
        rundir.record_failure(run_dir, exc)
        raise
    print(f"dltk: ensemble run completed: {run_dir}")
    return run_dir
