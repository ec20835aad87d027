"""A short real-data run of the nuclei task in its small-data mode (the 65 DSB2018 stage-1 test images,
40 / 5 / 20; CPU): the U-Net beats the Otsu baseline."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import tifffile
from dltk.cli import main
from testutil import preserved_environ


@pytest.mark.slow
def test_short_dsb2018_run_beats_otsu(data_root: Path, tmp_path: Path) -> None:
    """12 epochs of 128 crops (~2-4 min on a busy CPU core): test DSB score above the Otsu baseline
    computed on the same 20 test images by at least 0.05, foreground Dice above 0.75."""
    run = tmp_path / "run"
    with preserved_environ():
        code = main(["train", "--plugin", "imaging", "--task", "nuclei", "--run-dir", str(run),
                     "--data.images", "dsb2018_test", "--data.n_val", "5", "--trainer.max_epochs", "12",
                     "--trainer.enable_progress_bar", "false"])
    assert code == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test/test_images"] == 20
    assert metrics["test/dsb_score"] > metrics["test/baseline_otsu_dsb_score"] + 0.05
    assert metrics["test/dice"] > 0.75
    with open(run / "predictions" / "test.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 20
    assert (run / "plots" / "test_overlays.png").is_file()

    images = tmp_path / "new"
    images.mkdir()
    from dltk_imaging.seg_data import load_dsb2018

    sample = load_dsb2018()[0]
    tifffile.imwrite(images / "a.tif", sample.image)
    out = tmp_path / "out"
    with preserved_environ():
        assert main(["predict", "--run", str(run), "--input", str(images), "--output", str(out)]) == 0
    labels = tifffile.imread(out / "a_labels.tif")
    assert labels.shape == sample.image.shape[:2] and labels.max() > 0
    assert (out / "counts.csv").read_text().splitlines()[1].startswith("a.tif,")
