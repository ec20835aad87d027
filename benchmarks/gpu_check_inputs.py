"""Inputs of ``dltk predict`` for the presets of ``gpu_check.py``, and the comparison of two outputs.

Each plugin predicts a different kind of input: SMILES (chem), sequences (genomics), images
(imaging), pose tracks (video). The inputs are taken from the run's own test records or from the
real data the preset reads, a few of each, so that prediction is quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROWS = 32
"""Molecules / sequences / images predicted per preset."""


def prediction_input(handle: Any, work: Path) -> tuple[Path, str]:
    """Write a small input for ``dltk predict`` on the run ``handle`` into ``work``; returns the input
    path and the output suffix (``.csv`` for a table, ``""`` for a folder)."""
    plugin, preset = handle.plugin.name, handle.preset.name
    test = pd.read_csv(handle.dir / "predictions" / "test.csv", nrows=ROWS, keep_default_na=False)
    if plugin == "chem":
        path = work / "molecules.csv"
        test[["id", "smiles"]].rename(columns={"id": "name"}).to_csv(path, index=False)
        return path, ".csv"
    if plugin == "genomics":
        path = work / "sequences.fa"
        path.write_text("".join(f">{i}\n{s}\n" for i, s in zip(test["id"], test["sequence"])))
        return path, ".csv"
    if plugin == "imaging" and preset == "nuclei":
        return _nuclei_image(work), ""
    if plugin == "imaging":
        return _cell_images(work), ".csv"
    if plugin == "video":
        from dltk.data import fetch
        from dltk_video import datasets

        return fetch(datasets.FILES["sturman/12_01/pose"]), ".csv"
    raise ValueError(f"gpu_check has no prediction input for {plugin}/{preset}")


def _cell_images(work: Path) -> Path:
    """A folder of BBBC048 cell images (TIFF), as a user would bring them."""
    import tifffile
    from dltk.data import fetch
    from dltk_imaging.cls_datamodules import FILES

    folder = work / "cells"
    folder.mkdir(exist_ok=True)
    with np.load(fetch(FILES["bbbc048"]), allow_pickle=False) as z:
        images = z["images"][: ROWS * 97: 97]
    for i, image in enumerate(images):
        tifffile.imwrite(folder / f"cell{i:03d}.tif", image)
    return folder


def _nuclei_image(work: Path) -> Path:
    """A folder holding one DSB2018 image, cut to 128 x 128 pixels (the watershed is per pixel, on the CPU)."""
    import tifffile
    from dltk_imaging.seg_data import load_dsb2018

    folder = work / "images"
    folder.mkdir(exist_ok=True)
    tifffile.imwrite(folder / "dsb0.tif", np.ascontiguousarray(load_dsb2018()[0].image[:128, :128]))
    return folder


def _tables(path: Path) -> dict[str, pd.DataFrame]:
    if path.is_dir():
        return {str(p.relative_to(path)): pd.read_csv(p) for p in sorted(path.rglob("*.csv"))}
    return {"": pd.read_csv(path)}


def compare_outputs(a: Path, b: Path) -> float:
    """Largest absolute difference between the numeric columns of two prediction outputs (a CSV, or
    every CSV of an output folder); inf when their files, shapes or columns differ."""
    left, right = _tables(a), _tables(b)
    if sorted(left) != sorted(right) or not left:
        return float("inf")
    worst = 0.0
    for name, x in left.items():
        y = right[name]
        if list(x.columns) != list(y.columns) or len(x) != len(y):
            return float("inf")
        numeric = [c for c in x.columns if pd.api.types.is_numeric_dtype(x[c]) and pd.api.types.is_numeric_dtype(y[c])]
        if numeric:
            diff = np.abs(x[numeric].to_numpy(float) - y[numeric].to_numpy(float))
            worst = max(worst, float(np.nanmax(diff)) if np.isfinite(diff).any() else 0.0)
    return worst
