"""Classification end to end through the CLI: BBBC048 (real data) train -> test -> predict -> explain,
the generic ``images`` task on a generated folder, and ``tissue_tiles`` -> whole-slide prediction.

The BBBC048 run is short (``--model.backbone test_resnet --trainer.max_epochs 2``: timm's 0.37 M
parameter test ResNet, about a minute on two busy CPU cores); acceptance: test balanced accuracy
>= 0.45 where chance is 1/7 = 0.143 (this run gets about 0.6-0.7; the full preset ~0.8).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

tifffile = pytest.importorskip("tifffile")
pytest.importorskip("timm")

from dltk.cli import main
from dltk.data import fetch
from dltk_imaging.cls_datamodules import FILES
from testutil import preserved_environ

MIN_BALANCED_ACCURACY = 0.45  # chance: 1/7
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLASSES = ["G1", "S_phase", "G2", "Prophase", "Metaphase", "Anaphase", "Telophase"]


def _cli(args: list[str]) -> int:
    with preserved_environ():
        return main(args)


@pytest.fixture(scope="module")
def bbbc_run(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("bbbc048") / "run"
    assert _cli(["train", "--plugin", "imaging", "--trainer.max_epochs", "2", "--model.backbone", "test_resnet",
                 "--model.lr", "0.003", "--run-dir", str(run)]) == 0
    return run


def test_bbbc048_run_beats_chance(bbbc_run: Path) -> None:
    status = json.loads((bbbc_run / "run.json").read_text())
    assert status["status"] == "completed" and status["task"] == "cell_phenotype"
    metrics = json.loads((bbbc_run / "metrics.json").read_text())
    assert metrics["test/balanced_accuracy"] >= MIN_BALANCED_ACCURACY
    assert {f"test/f1/{c}" for c in CLASSES} <= set(metrics)
    table = pd.read_csv(bbbc_run / "predictions" / "test.csv")
    assert len(table) == 684  # stratified 20%: 180+180+180+121+14+3+6
    assert table["true_phase"].value_counts().to_dict()["Anaphase"] == 3
    probs = table[[f"prob_{c}" for c in CLASSES]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    for plot in ("confusion_matrix.png", "test_examples.png"):
        assert (bbbc_run / "plots" / plot).read_bytes()[:8] == PNG_MAGIC


def test_bbbc048_predict_folder_and_explain(bbbc_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with np.load(fetch(FILES["bbbc048"]), allow_pickle=False) as z:
        images, labels = z["images"][:: 300], z["labels"][:: 300]
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = tmp_path / "cells" / CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(folder / f"cell{i}.tif", image)
    (tmp_path / "cells" / "loose.tif").write_bytes(b"II*\x00 truncated")
    out = tmp_path / "pred.csv"
    assert _cli(["predict", "--run", str(bbbc_run), "--input", str(tmp_path / "cells"), "--output", str(out)]) == 0
    table = pd.read_csv(out, keep_default_na=False)
    assert len(table) == len(images) + 1
    bad = table[table["error"] != ""]
    assert len(bad) == 1 and bad["id"].iloc[0].endswith("loose.tif") and bad["phase"].iloc[0] == ""
    good = table[table["error"] == ""]
    assert set(good["true_phase"]) == {CLASSES[k] for k in labels}
    assert set(good["phase"]) <= set(CLASSES)
    assert "skipped 1 unreadable images" in capsys.readouterr().out

    # the same cells as an .npz predict identically (same decoding and normalisation path)
    np.savez(tmp_path / "cells.npz", images=images, labels=labels.astype(np.int64),
             class_names=np.array(CLASSES))
    assert _cli(["predict", "--run", str(bbbc_run), "--input", str(tmp_path / "cells.npz"),
                 "--output", str(tmp_path / "pred_npz.csv")]) == 0
    npz = pd.read_csv(tmp_path / "pred_npz.csv")
    order = [int(Path(p).stem[4:]) for p in good["id"]]
    assert np.allclose(npz["prob_G1"].to_numpy()[order], good["prob_G1"].astype(float).to_numpy(), atol=1e-5)

    # an 8-bit image for a model trained on 16-bit cells: one-line error, exit 2, no output
    tifffile.imwrite(tmp_path / "u8.tif", np.zeros((3, 40, 40), np.uint8))
    assert _cli(["predict", "--run", str(bbbc_run), "--input", str(tmp_path / "u8.tif"),
                 "--output", str(tmp_path / "u8.csv")]) == 2
    assert "trained on 16-bit" in capsys.readouterr().err and not (tmp_path / "u8.csv").exists()

    svs = fetch(FILES["cmu1_small"])  # a slide for a 16-bit 3-channel cell model: one-line error
    assert _cli(["predict", "--run", str(bbbc_run), "--input", str(svs), "--output", str(tmp_path / "s")]) == 2
    assert "slides are 8-bit RGB" in capsys.readouterr().err

    assert _cli(["explain", "--run", str(bbbc_run), "--per-class", "1", "--method", "saliency"]) == 0
    assert (bbbc_run / "explain" / "saliency.png").read_bytes()[:8] == PNG_MAGIC


def test_images_task_on_a_generated_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for k, name in enumerate(("dim", "bright")):
        (root / name).mkdir(parents=True)
        for i in range(12):
            tifffile.imwrite(root / name / f"{i}.tif", (rng.integers(0, 300, (2, 24, 24)) + 900 * k).astype(np.uint16))
    run = tmp_path / "run"
    assert _cli(["train", "--plugin", "imaging", "--task", "images", "--data.path", str(root), "--model.backbone",
                 "test_resnet", "--trainer.max_epochs", "1", "--data.batch_size", "8", "--run-dir", str(run)]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed"
    config = (run / "config.yaml").read_text()
    assert "ImageDataModule" in config
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\n" + "".join(f"data/bright/{i}.tif,bright\n" for i in range(3)))
    assert _cli(["predict", "--run", str(run), "--input", str(manifest), "--output", str(tmp_path / "p.csv")]) == 0
    table = pd.read_csv(tmp_path / "p.csv")
    assert list(table["true_label"]) == ["bright"] * 3 and {"prob_dim", "prob_bright"} <= set(table.columns)


def test_tissue_tiles_then_whole_slide(data_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert _cli(["train", "--plugin", "imaging", "--task", "tissue_tiles", "--model.backbone", "test_resnet",
                 "--trainer.max_epochs", "1", "--run-dir", str(run)]) == 0
    svs = fetch(FILES["cmu1_small"])
    out = tmp_path / "slide" / "tiles.csv"
    assert _cli(["predict", "--run", str(run), "--input", str(svs), "--output", str(out), "--tile", "300",
                 "--level", "0"]) == 0
    table = pd.read_csv(out)
    assert len(table) > 10 and (table["width"] == 300).all()
    assert (tmp_path / "slide" / "tiles_heatmap.png").read_bytes()[:8] == PNG_MAGIC
    assert _cli(["predict", "--run", str(run), "--input", str(svs), "--output", str(out), "--level", "3"]) == 2
