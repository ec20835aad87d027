"""``dltk predict`` on a single or ensemble run: new inputs in, a prediction table out.

A datamodule whose inputs are rows of a table (SMILES, sequences, cells) streams them through
:meth:`~dltk.base.BaseDataModule.predict_chunks`; core scores each chunk with every model
(:func:`score_chunks`) and streams the rows into one CSV written atomically
(:func:`write_prediction_table`). A datamodule whose inputs are whole files (image folders, slides,
videos) does the whole prediction in :meth:`~dltk.base.BaseDataModule.predict_file`, with the
options it declares in :attr:`~dltk.base.BaseDataModule.predict_options` already parsed by core
(a table plugin's declared options are passed to ``predict_chunks`` as keyword arguments).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from dltk.errors import ConfigError
from dltk.inference import ensemble_inference
from dltk.io import atomic_path


def predict(run: Any, input_path: str, output_path: str, which: str | None = None, options: Any = None,
            **kwargs: Any) -> dict[str, int]:
    """Predict every input of ``input_path`` with ``run``'s model(s) (averaged, with their spread
    for an ensemble); ``options`` is the parsed instance of the datamodule's ``predict_options``."""
    if not Path(input_path).exists():
        raise ConfigError(f"input file not found: {input_path}")
    models = run.models(which)
    model = models[0]
    datamodule = run.datamodule()
    counts = datamodule.predict_file(input_path, output_path, models, options)
    if counts is not None:
        print("dltk predict: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f" -> {output_path}")
        return counts
    if not Path(input_path).is_file():
        raise ConfigError(f"input is not a file: {input_path}")
    if dataclasses.is_dataclass(options):  # a table plugin's declared options reach predict_chunks
        kwargs = {**dataclasses.asdict(options), **kwargs}
    chunks = score_chunks(models, datamodule.predict_chunks(input_path, data_info=model.data_info, **kwargs))
    return write_prediction_table(Path(output_path), model, chunks, with_std=len(models) > 1)


def score_chunks(models: list[Any], chunks: Iterable[tuple[Any, Any]]) -> Iterable[tuple[Any, Any, Any]]:
    """``(records, preds, std)`` for each ``(records, loader)`` chunk of a datamodule's
    ``predict_chunks``: the average of ``models`` over the usable rows (None when there are none)."""
    for records, loader in chunks:
        records = records.reset_index(drop=True)
        ok = records["error"].fillna("").eq("").to_numpy()
        if loader is not None and ok.any():
            preds, std, _ = ensemble_inference(models, loader)
            yield records, preds, std
        else:
            yield records, None, None


def write_prediction_table(out: Path, model: Any, chunks: Iterable[tuple[Any, Any, Any]],
                           with_std: bool) -> dict[str, int]:
    """Stream scored chunks into ``out`` (CSV, written atomically): each input row with its
    ``error`` (empty when scored) and the model's output columns; returns the row counts."""
    counts = {"rows": 0, "predicted": 0, "errors": 0}
    with atomic_path(out) as tmp:
        header = True
        for records, preds, std in chunks:
            ok = records["error"].fillna("").eq("").to_numpy()
            table = prediction_frame(model, records, preds, std, with_std)
            table.to_csv(tmp, mode="a", header=header, index=False, float_format="%.6g")
            header = False
            counts["rows"] += len(records)
            counts["predicted"] += int(ok.sum())
            counts["errors"] += int((~ok).sum())
    print(f"dltk predict: {counts['rows']} rows, {counts['predicted']} predicted, "
          f"{counts['errors']} with errors (see the 'error' column) -> {out}")
    return counts




def prediction_frame(model: Any, records: Any, preds: Any, std: Any, with_std: bool) -> Any:
    """One scored chunk as the rows of the prediction table: ``records`` (with their ``error``)
    and the model's output columns, NaN on the rows with an error."""
    ok = records["error"].fillna("").eq("").to_numpy()
    table = records.copy()
    if preds is not None:
        columns = model.output_columns(preds, std)
    else:
        probe = np.zeros((1, model.num_classes or model.num_tasks), np.float32)
        columns = {k: v[:0] for k, v in model.output_columns(probe, probe if with_std else None).items()}
    for name, values in columns.items():
        col = np.full(len(records), np.nan, dtype=object if values.dtype == object else np.float32)
        if len(values):
            col[ok] = values
        table[name] = col
    return table
