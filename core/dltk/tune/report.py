"""The outputs of ``dltk tune``: ``trials.csv``, ``best.yaml``, ``plots/*.png`` (matplotlib, no
browser), ``summary.json``, the printed summary, and the one test of the search (the best trial)."""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Any

from dltk.io import atomic_path, write_json, write_text
from dltk.rundir import headline
from dltk.tune.worker import Context, counts, study_lock

PLOTS = {
    "optimization_history": "plot_optimization_history",
    "param_importances": "plot_param_importances",
    "slice": "plot_slice",
    "parallel_coordinate": "plot_parallel_coordinate",
    "intermediate_values": "plot_intermediate_values",
}


def write_trials_csv(study: Any, path: Path) -> None:
    frame = study.trials_dataframe(attrs=("number", "state", "value", "params", "user_attrs", "duration"))
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


def write_plots(study: Any, folder: Path) -> list[Path]:
    """Optuna's matplotlib plots as PNGs; a plot that cannot be drawn (too few trials) is skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vis

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, function in PLOTS.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = getattr(vis, function)(study)
            axes = result.flat[0] if hasattr(result, "flat") else result
            figure = axes.figure
            figure.set_size_inches(max(figure.get_size_inches()[0], 8), max(figure.get_size_inches()[1], 5))
            with atomic_path(folder / f"{name}.png") as tmp:
                figure.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
            written.append(folder / f"{name}.png")
        except Exception as exc:  # e.g. importances need two finished trials with params
            print(f"dltk tune: plot {name} skipped ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
        finally:
            plt.close("all")
    return written


def test_best_trial(ctx: Context, trial: Any) -> dict[str, float]:
    """Test the best trial on its test split (the only test of the search) and record it in its run."""
    from dltk import rundir
    from dltk.evaluate import evaluate
    from dltk.run import Run

    run = Run.open(ctx.output / trial.user_attrs["run_dir"])
    print(f"dltk tune: testing the best trial ({trial.number}) on the test split -- the only test of "
          f"this search", flush=True)
    metrics = evaluate(run.dir, run.plugin, run.preset, run.datamodule(), run.models("best"))
    rundir.write_status(run.dir, "completed", tested=True, test_metric=rundir.headline(metrics),
                        tested_as="best trial of dltk tune")
    return metrics


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def summary_table(study: Any, best: Any, preset: Any, test: dict[str, float]) -> str:
    """Preset (trial 0) beside the best trial: every searched setting and the validation metric."""
    monitor = study.user_attrs.get("monitor", "value")
    keys = list(dict.fromkeys([*preset.params, *best.params])) if preset else list(best.params)
    rows = [("", f"preset (trial {preset.number})" if preset else "preset", f"best (trial {best.number})")]
    rows += [(k, _fmt(preset.params.get(k)) if preset else "-", _fmt(best.params.get(k))) for k in keys]
    rows.append((f"validation {monitor}", _fmt(preset.value) if preset else "-", _fmt(best.value)))
    for key, value in headline(test).items():
        rows.append((f"{key} (best trial only)", "-", _fmt(value)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _log_parent(ctx: Context, study: Any, best: Any, test: dict[str, float]) -> None:
    if not ctx.parent_run_id:
        return
    client = ctx.tracking().client()
    client.log_metric(ctx.parent_run_id, f"best/{study.user_attrs.get('monitor', 'value')}", float(best.value))
    for key, value in headline(test).items():
        if not math.isnan(value):
            client.log_metric(ctx.parent_run_id, f"best/{key}", float(value))
    client.set_tag(ctx.parent_run_id, "dltk.best_trial", str(best.number))
    for name in ("trials.csv", "best.yaml", "summary.json"):
        client.log_artifact(ctx.parent_run_id, str(ctx.output / name))
    client.log_artifacts(ctx.parent_run_id, str(ctx.output / "plots"), "plots")
    client.set_terminated(ctx.parent_run_id, "FINISHED")


def finish(study: Any, ctx: Context, test_best: bool = True) -> int:
    """Write the outputs once the study is done (or the timeout passed); the exit code."""
    n = counts(study)
    timed_out = ctx.deadline is not None and time.time() >= ctx.deadline
    if n["running"]:
        print(f"dltk tune: {n['done']} of {ctx.n_trials} trials done, {n['running']} still running in other "
              f"workers; the last worker to finish writes the outputs")
        return 0
    if n["done"] < ctx.n_trials and not timed_out:
        print(f"dltk tune: the study has {n['done']} of {ctx.n_trials} finished trials ({n['failed']} failed); "
              f"run the same command again to continue it")
        return 1
    with study_lock(ctx.output):
        return _write_outputs(study, ctx, test_best, n)


def _write_outputs(study: Any, ctx: Context, test_best: bool, n: dict[str, int]) -> int:
    best = study.best_trial
    preset = next((t for t in study.trials if t.user_attrs.get("preset")), None)
    best_dir = ctx.output / best.user_attrs["run_dir"]
    write_trials_csv(study, ctx.output / "trials.csv")
    config = (best_dir / "config.yaml").read_text()
    write_text(ctx.output / "best.yaml", f"# dltk tune {ctx.study_name}: best trial {best.number} "
                                         f"({study.user_attrs.get('monitor')} {best.value:.6g} on validation)\n"
                                         f"# reproduce: dltk train --config best.yaml\n{config}")
    write_plots(study, ctx.output / "plots")
    from dltk import rundir

    test: dict[str, float] = {}
    if test_best:
        status = rundir.read_status(best_dir)
        test = (status.get("test_metric") or {}) if status.get("tested") else test_best_trial(ctx, best)
    summary = {"study": ctx.study_name, "plugin": ctx.plugin, "preset": ctx.preset,
               "monitor": study.user_attrs.get("monitor"), "direction": study.direction.name.lower(),
               "trials": n, "best_trial": best.number, "best_value": best.value, "best_params": best.params,
               "best_run_dir": str(best.user_attrs["run_dir"]),
               "preset_value": preset.value if preset else None,
               "best_trial_test_metrics": test}
    write_json(ctx.output / "summary.json", summary)
    print()
    print(summary_table(study, best, preset, test))
    print(f"\ndltk tune: {n['done']} trials done ({n['failed']} failed); best trial {best.number}: {best_dir}")
    print(f"dltk tune: wrote {ctx.output}/best.yaml, trials.csv, summary.json, plots/")
    _log_parent(ctx, study, best, test)
    return 0
