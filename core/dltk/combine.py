"""Average finished runs of *different* models on the same test split (``dltk combine``).

``--ensemble K`` averages K seeds of one configuration. Combining goes further: runs of different
tasks of one plugin (say a fingerprint network and a graph network) are each tested with their
best checkpoint (all members for an ``--ensemble`` run), and their test predictions are averaged
with **equal weights** -- nothing is fitted on the test split. The runs must agree on the plugin,
the task type, the task and class names and the test targets, row for row; otherwise they are not
predictions of the same thing and combining them is refused with the first difference.

The output is a run directory like any other -- ``predictions/test.csv`` (with the members'
spread as ``std_<task>``), ``metrics.json``, plots, ``run.json`` -- plus ``combine.json``: the
members, each member's test and validation metrics, and the combination's validation metrics
(when the members share their validation split too), so that the choice to combine can be
justified on validation data alone. ``dltk test --run DIR`` re-evaluates it and
``dltk predict --run DIR`` averages the members' predictions row by row.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dltk import rundir
from dltk.errors import ConfigError
from dltk.evaluate import print_summary, write_test_outputs
from dltk.io import write_json
from dltk.predict import score_chunks, write_prediction_table
from dltk.run import COMBINE_FILE, CombinedRun, Run

__all__ = ["COMBINE_FILE", "combine", "predict", "test"]


@dataclass
class _Member:
    """A member run with its loaded models and a datamodule of its own."""

    run: Run
    models: list[Any]
    datamodule: Any

    @property
    def model(self) -> Any:
        return self.models[0]

    @property
    def name(self) -> str:
        return self.run.name


def _open_members(runs: Sequence[Run], which: str | None) -> list[_Member]:
    from dltk.trainer_cli import quiet_lightning

    quiet_lightning()
    members = []
    for run in runs:
        if run.kind == "combined":
            raise ConfigError(f"{run.dir} is itself a combined run: list its members instead")
        members.append(_Member(run, run.models(which), run.datamodule()))
    if len(members) < 2:
        raise ConfigError(f"dltk combine needs at least two runs, got {len(members)}")
    first = members[0]
    for m in members[1:]:
        for what, a, b in (("plugin", first.run.plugin.name, m.run.plugin.name),
                           ("task type", first.model.task_type, m.model.task_type),
                           ("task names", first.model.task_names, m.model.task_names),
                           ("class names", first.model.class_names, m.model.class_names)):
            if a != b:
                raise ConfigError(f"cannot combine {m.name} with {first.name}: different {what} ({b} vs {a})")
    return members


def _predictions(member: _Member, split: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The member's averaged predictions and targets on ``split`` ("test" or "val")."""
    from dltk.inference import ensemble_inference

    dm = member.datamodule
    dm.setup("test" if split == "test" else "fit")
    if split == "test":
        if member.model.evaluate_run(dm, member.models, None) is not None:
            raise ConfigError(f"{member.name} evaluates its test split inside the plugin (evaluate_run, e.g. tiled "
                              "or windowed inference); its predictions cannot be averaged with another run's")
        loader = dm.test_dataloader()
    else:
        loader = dm.val_dataloader() if hasattr(dm, "val_dataloader") else None
        if not loader:
            return None
    preds, _, target = ensemble_inference(member.models, loader)
    return preds, target


def _same_targets(members: list[_Member], outputs: list[tuple[np.ndarray, np.ndarray]], split: str,
                  strict: bool) -> bool:
    first_target = outputs[0][1]
    for m, (_, target) in zip(members[1:], outputs[1:], strict=True):
        if target.shape != first_target.shape:
            problem = f"{target.shape[0]} vs {first_target.shape[0]} rows"
        elif not np.array_equal(target, first_target, equal_nan=True):
            rows = np.flatnonzero(~((target == first_target) | (np.isnan(target) & np.isnan(first_target)))
                                  .reshape(len(target), -1).all(axis=1))
            problem = f"targets differ at {len(rows)} rows (first: row {rows[0]})"
        else:
            continue
        if strict:
            raise ConfigError(f"cannot combine {m.name} with {members[0].name}: their {split} splits differ "
                              f"({problem})")
        return False
    return True


def _same_records(members: list[_Member]) -> None:
    """The members' test records (ids, SMILES, ...) must agree on every column they share: equal
    targets alone could hide two orderings of rows with the same labels."""
    tables = [m.datamodule.test_records().reset_index(drop=True) for m in members]
    for m, table in zip(members[1:], tables[1:], strict=True):
        shared = [c for c in tables[0].columns if c in table.columns]
        if not shared or len(table) != len(tables[0]):
            continue  # the targets check has already compared the row counts
        left = tables[0][shared].astype(str).to_numpy()
        right = table[shared].astype(str).to_numpy()
        rows = (left != right).any(axis=1).nonzero()[0]
        if len(rows):
            raise ConfigError(f"cannot combine {m.name} with {members[0].name}: their test rows differ "
                              f"({len(rows)} rows, first: row {rows[0]}, {shared[0]} "
                              f"{right[rows[0], 0]!r} vs {left[rows[0], 0]!r})")


def _average(outputs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    stacked = np.stack([p for p, _ in outputs])
    return stacked.mean(axis=0), stacked.std(axis=0)


def _evaluate(members: list[_Member], with_val: bool) -> dict[str, Any]:
    test_out = [_predictions(m, "test") for m in members]
    _same_targets(members, test_out, "test", strict=True)
    _same_records(members)
    preds, std = _average(test_out)
    model = members[0].model
    result: dict[str, Any] = {
        "preds": preds, "std": std, "target": test_out[0][1],
        "test": model.test_metrics(preds, test_out[0][1]),
        "member_test": [m.model.test_metrics(p, t) for m, (p, t) in zip(members, test_out, strict=True)],
    }
    if with_val:
        val_out = [_predictions(m, "val") for m in members]
        if all(v is not None for v in val_out) and _same_targets(members, val_out, "validation", strict=False):
            val_preds, _ = _average(val_out)
            result["val"] = model.test_metrics(val_preds, val_out[0][1])
            result["member_val"] = [m.model.test_metrics(p, t) for m, (p, t) in zip(members, val_out, strict=True)]
    return result


def _record(members: list[_Member], result: dict[str, Any], out: Path, which: str) -> dict[str, Any]:
    return {
        "members": [str(m.run.dir.resolve()) for m in members],
        "members_relative": [os.path.relpath(m.run.dir.resolve(), out.resolve()) for m in members],
        "tasks": [m.run.preset.name for m in members],
        "checkpoint": which,
        "weights": "equal",
        "primary_metric": members[0].model.primary_metric[0],
        "member_test": result["member_test"],
        "member_val": result.get("member_val"),
        "val": result.get("val"),
    }


def _write(out: Path, members: list[_Member], result: dict[str, Any], which: str, start: float) -> dict[str, float]:
    """The combined run directory's files; ``run.json`` says completed last."""
    first = members[0]
    shutil.copyfile(first.run.dir / "config.yaml", out / "config.yaml")
    if (first.run.dir / "environment.json").is_file():
        shutil.copyfile(first.run.dir / "environment.json", out / "environment.json")
    write_test_outputs(out, f"{first.run.plugin.name}: average of {len(members)} runs (test)", first.datamodule,
                       first.model, result["preds"], result["std"], result["target"])
    metrics = {f"test/{k}": v for k, v in result["test"].items()}
    write_json(out / "metrics.json", metrics)
    record = _record(members, result, out, which)
    write_json(out / COMBINE_FILE, record)
    rundir.write_status(out, "completed", finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
                        seconds=round(time.time() - start, 1), test_metric=rundir.headline(metrics))
    _print_members(members, record)
    return metrics


def combine(runs: list[str], output: str | None = None, which: str = "best") -> Path:
    """Average the test predictions of ``runs`` into a new run directory ``output``."""
    start = time.time()
    if output and (Path(output) / rundir.STATUS_FILE).exists():
        raise ConfigError(f"{output} already holds a run; choose another --output")
    members = _open_members([Run.open(r) for r in runs], which)  # type: ignore[arg-type]
    first = members[0]
    print(f"dltk combine: testing {len(members)} runs: " + ", ".join(m.name for m in members), flush=True)
    result = _evaluate(members, with_val=True)  # refuses mismatched runs before anything is written
    out = rundir.claim(Path(output)) if output else rundir.claim_default(first.run.plugin.name, "combined")
    rundir.write_status(out, "running", plugin=first.run.plugin.name, task=first.run.preset.name, combined=True,
                        members=[str(m.run.dir) for m in members],
                        started=time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(start)))  # incl. testing
    try:
        metrics = _write(out, members, result, which, start)
    except BaseException as exc:
        rundir.record_failure(out, exc)
        raise
    print_summary(metrics, first.model, first.run.preset)
    print(f"dltk combine: run completed: {out}")
    return out


def _print_members(members: list[_Member], record: dict[str, Any]) -> None:
    primary = record["primary_metric"]
    rows = [(m.run.preset.name, str(m.run.dir), (record["member_val"] or [{}] * len(members))[i].get(primary),
             record["member_test"][i].get(primary)) for i, m in enumerate(members)]
    rows.append(("average", "", (record["val"] or {}).get(primary), None))
    print(f"\n{'member':<28} {'val ' + primary:>12} {'test ' + primary:>12}  run")
    for task, run, val, test_value in rows:
        fmt = [f"{v:.3f}" if isinstance(v, float) else "" for v in (val, test_value)]
        print(f"{task:<28} {fmt[0]:>12} {fmt[1]:>12}  {run}")


def test(run: CombinedRun, which: str | None = None) -> dict[str, float]:
    """Re-evaluate a combined run from its members (nothing is written); by default with the
    checkpoint it was combined with."""
    members = _open_members(run.members, which or run.default_checkpoint())
    metrics = {f"test/{k}": v for k, v in _evaluate(members, with_val=False)["test"].items()}
    print_summary(metrics, members[0].model, run.preset)
    return metrics


def predict(run: CombinedRun, input_path: str, output_path: str, which: str | None = None, options: Any = None,
            **kwargs: Any) -> dict[str, int]:
    """Score a table of rows with every member and average them row by row; a row any member
    cannot use is reported with that member's error."""
    members = open_members(run, which)
    if not Path(input_path).is_file():
        raise ConfigError(f"input file not found: {input_path}")
    return write_prediction_table(Path(output_path), members[0].model, score_members(members, input_path, run.dir,
                                                                                      **kwargs), with_std=True)


def open_members(run: CombinedRun, which: str | None = None) -> list[_Member]:
    """The members of a combined run with their models and datamodules, ready to predict tables
    (a one-line error when one of them predicts whole files)."""
    from dltk.base import BaseDataModule

    members = _open_members(run.members, which or run.default_checkpoint())
    for m in members:
        if type(m.datamodule).predict_file is not BaseDataModule.predict_file:
            raise ConfigError(f"{m.name} predicts whole files (images, slides, videos); a combined run "
                              "predicts tables of rows only: predict with each member instead")
    return members


def score_members(members: list[_Member], input_path: str, run_dir: Path,
                  **kwargs: Any) -> Iterator[tuple[Any, Any, Any]]:
    """Scored chunks of ``input_path``: every member's, averaged row by row (with their spread)."""
    streams = [score_chunks(m.models, m.datamodule.predict_chunks(input_path, data_info=m.model.data_info, **kwargs))
               for m in members]
    return _merge(streams, run_dir)


def _merge(streams: list[Iterable[tuple[Any, Any, Any]]], run_dir: Path) -> Iterator[tuple[Any, Any, Any]]:
    """Zip the members' scored chunks: a row is scored when every member scored it."""
    mismatch = ConfigError(f"{run_dir}: its members read the input in different chunks (different "
                           "predict_chunks sizes); predict with each member instead")
    try:
        for parts in zip(*streams, strict=True):
            yield _merge_chunk(parts, mismatch)
    except ValueError as exc:  # zip(strict=True): one member yielded more chunks than another
        if "zip()" in str(exc):
            raise mismatch from exc
        raise


def _merge_chunk(parts: tuple[tuple[Any, Any, Any], ...], mismatch: ConfigError) -> tuple[Any, Any, Any]:
    """One chunk of every member: the first member's records, the first error of any member per row,
    and the average over the rows every member could use."""
    records = parts[0][0].copy()
    errors = [p[0]["error"].fillna("").astype(str).to_numpy() for p in parts]
    if any(len(e) != len(records) for e in errors):
        raise mismatch
    oks = [e == "" for e in errors]
    ok = np.logical_and.reduce(oks)
    merged = errors[0].copy()
    for e in errors[1:]:
        merged = np.where(merged == "", e, merged)
    records["error"] = merged
    if not ok.any():
        return records, None, None
    # each member's predictions cover its own usable rows: keep those every member could use
    kept = [p[1][ok[member_ok]] for p, member_ok in zip(parts, oks, strict=True)]
    stacked = np.stack(kept)
    return records, stacked.mean(axis=0), stacked.std(axis=0)
