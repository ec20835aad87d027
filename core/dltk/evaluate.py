"""Testing a model on its run's test split: predictions, metrics, plots and the printed summary.

Used at the end of ``dltk train`` (the best checkpoint), by ``dltk test`` (nothing written), by
``--ensemble`` runs (the members' average) and by ``dltk combine`` (the standard outputs). The
work is done through the evaluation hooks of :class:`dltk.base.BaseModel` and
:class:`dltk.base.BaseDataModule`, so a plugin changes what is measured or written without
touching this module.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from dltk.inference import ensemble_inference
from dltk.io import atomic_path, write_json
from dltk.plugin import PluginSpec, PresetSpec


def evaluate(run_dir: Path, plugin: PluginSpec, preset: PresetSpec, datamodule: Any, model: Any,
             write: bool = True) -> dict[str, float]:
    """Test ``model`` (or the average of a list of models) on the datamodule's test split; write
    predictions, metrics and plots (through the model's and datamodule's evaluation hooks)."""
    from dltk import plots

    models = model if isinstance(model, list) else [model]
    model = models[0]
    datamodule.setup("test")
    values = model.evaluate_run(datamodule, models, run_dir if write else None)
    if values is None:
        preds, std, target = ensemble_inference(models, datamodule.test_dataloader())
        values = model.test_metrics(preds, target)
        if write:
            write_test_outputs(run_dir, f"{plugin.name} / {preset.name}: test", datamodule, model, preds, std,
                               target)
    metrics = {f"test/{k}": v for k, v in values.items()}
    if write:
        write_json(run_dir / "metrics.json", metrics)
        plots.learning_curves(run_dir / "logs" / "metrics.csv", run_dir / "plots" / "learning_curves.png",
                              f"val/{model.primary_metric[0]}", model.primary_metric[1])
    print_summary(metrics, model, preset)
    return metrics


def write_test_outputs(run_dir: Path, title: str, datamodule: Any, model: Any, preds: np.ndarray,
                       std: np.ndarray | None, target: np.ndarray) -> None:
    """Core's standard test outputs: ``predictions/test.csv`` (the datamodule's test records beside
    the model's output columns), the model's test plots and the datamodule's test artifacts."""
    import pandas as pd

    records = datamodule.test_records().reset_index(drop=True)
    columns = model.output_columns(preds, std, target)
    n_rows = len(next(iter(columns.values()))) if columns else len(records)
    if len(records) != n_rows:
        raise RuntimeError(f"{type(datamodule).__name__}.test_records() has {len(records)} rows for "
                           f"{n_rows} predictions")
    table = pd.concat([records, pd.DataFrame(columns)], axis=1)
    with atomic_path(run_dir / "predictions" / "test.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    model.write_test_plots(run_dir / "plots", preds, target, title)
    datamodule.test_artifacts(run_dir, preds, target)


def finish_run(run_dir: Path, plugin: PluginSpec, preset: PresetSpec, datamodule: Any, model: Any,
               ckpt: Path) -> dict[str, float]:
    """Load the best checkpoint's weights (weights_only) into ``model`` and test it."""
    from dltk.loading import load_checkpoint

    state = load_checkpoint(ckpt)
    model.load_state_dict(state["state_dict"])
    print(f"dltk: testing best checkpoint {ckpt.name} (epoch {state.get('epoch')})")
    return evaluate(run_dir, plugin, preset, datamodule, model)


def print_summary(metrics: dict[str, float], model: Any, preset: PresetSpec) -> None:
    """Test table with published references beside ours: per task (per class for multiclass)."""
    primary = model.primary_metric[0]
    per_key = "f1" if model.task_type == "multiclass" else primary.split("/")[0]
    names = list(model.class_names or []) if model.task_type == "multiclass" else list(model.task_names)
    refs = [r for r in preset.references if r.metric in (primary, per_key)]
    headers = ["task" if model.task_type != "multiclass" else "class", f"test {per_key}"] + [r.name for r in refs]
    rows = []
    shown = names if len(names) <= 24 else names[:20]
    for name in shown + ["mean" if per_key == primary else primary]:
        key = f"test/{per_key}/{name}"
        if name in ("mean", primary):
            key = f"test/{primary}"
        value = metrics.get(key, math.nan)
        row = [name, "n/a" if value is None or math.isnan(value) else f"{value:.3f}"]
        for ref in refs:
            rv = ref.values.get("mean" if name in ("mean", primary) else name)
            row.append("" if rv is None else f"{rv:.3f}")
        rows.append(row)
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
    line = "  ".join("-" * w for w in widths)
    print()
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print(line)
    for i, row in enumerate(rows):
        if i == len(rows) - 1:
            if len(shown) < len(names):
                print(f"... {len(names) - len(shown)} more (every value is in metrics.json)")
            print(line)
        print("  ".join(str(c).ljust(w) if j == 0 else str(c).rjust(w) for j, (c, w) in
                        enumerate(zip(row, widths))))
    others = [k for k in metrics if k.count("/") == 1 and k != f"test/{primary}"]
    if others:
        print("other test metrics: " + ", ".join(f"{k}={metrics[k]:.3f}" for k in others))
    for ref in refs:
        print(f"{ref.name}: {ref.citation}")
    print()


def test(run: Any, which: str | None = None) -> dict[str, float]:
    """Re-evaluate a single or ensemble :class:`~dltk.run.Run` on its test split (nothing in the
    run is changed)."""
    models = run.models(which)
    return evaluate(run.dir, run.plugin, run.preset, run.datamodule(), models, write=False)
