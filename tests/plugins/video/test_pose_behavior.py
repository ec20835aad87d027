"""pose_behavior end to end on the real Sturman data: a short training run, its artifacts, and
``dltk predict`` on a pose file (plus the bad inputs it must refuse in one line).

The run (``dltk train --plugin video --trainer.max_epochs 4``: train on session 8_01, test on the
held-out session 12_01) takes ~30 s. Acceptance: Supported-rearing frame F1 on the held-out
session >= 0.6. Chance: 348 of 1,998 test frames are Supported (17%); labelling every frame
Supported gives F1 0.30, a random guess at that rate 0.17. (Full training: see docs/video.md.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dltk.cli import main
from dltk_video import datasets
from testutil import preserved_environ

MIN_SUPPORTED_F1 = 0.6
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sturman_run(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("sturman") / "run"
    with preserved_environ():
        code = main(["train", "--plugin", "video", "--trainer.max_epochs", "4", "--run-dir", str(run)])
    assert code == 0
    return run


def test_run_metrics_and_artifacts(sturman_run: Path) -> None:
    metrics = json.loads((sturman_run / "metrics.json").read_text())
    assert metrics["test/f1/Supported"] >= MIN_SUPPORTED_F1
    assert metrics["test/frame_f1/Supported"] == metrics["test/f1/Supported"]
    for key in ("test/bout_precision/Supported", "test/bout_recall/Supported", "test/macro_f1"):
        assert 0 <= metrics[key] <= 1
    # the human ceiling beside the model: reference Oliver vs Jin and Furkan on the same frames
    assert metrics["test/human_f1/Supported/Jin"] == pytest.approx(0.869, abs=1e-3)
    assert metrics["test/human_f1/Supported/Furkan"] == pytest.approx(0.851, abs=1e-3)
    table = pd.read_csv(sturman_run / "predictions" / "test.csv", keep_default_na=False)
    assert len(table) == 1998 and table["frame"].tolist() == list(range(1998))  # every frame exactly once
    assert set(table["pred_behavior"]) <= set(datasets.STURMAN_CLASSES)
    probs = table[[f"prob_{c}" for c in datasets.STURMAN_CLASSES]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert (table["true_behavior"] == "Supported").sum() == 348
    assert (table["true_behavior"] == "").sum() == 7  # unlabelled: 3 overlap + 4 grooming frames
    for png in ("ethogram_12_01.png", "confusion_matrix.png"):
        assert (sturman_run / "plots" / png).read_bytes()[:8] == PNG_MAGIC


def test_predict_pose_file(sturman_run: Path, data_root: Path, tmp_path: Path) -> None:
    pose = data_root / datasets.FILES["sturman/12_01/pose"].relpath
    out = tmp_path / "pred.csv"
    with preserved_environ():
        assert main(["predict", "--run", str(sturman_run), "--input", str(pose), "--output", str(out)]) == 0
    table = pd.read_csv(out)
    assert len(table) == 1998 and list(table.columns[:3]) == ["frame", "time_s", "behavior"]
    assert table["time_s"].iloc[25] == pytest.approx(1.0)  # 25 fps
    test = pd.read_csv(sturman_run / "predictions" / "test.csv", keep_default_na=False)
    # the same file through predict gives the run's own test predictions
    assert np.allclose(table["prob_Supported"], test["prob_Supported"], atol=1e-4)
    assert out.with_suffix(".png").read_bytes()[:8] == PNG_MAGIC


def test_predict_refuses_bad_inputs(sturman_run: Path, data_root: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    def run(path: Path, *options: str) -> tuple[int, str]:
        out = tmp_path / "o.csv"
        with preserved_environ():
            code = main(["predict", "--run", str(sturman_run), "--input", str(path), "--output", str(out),
                         *options])
        assert not out.exists()  # nothing half-written
        return code, capsys.readouterr().err

    other = data_root / datasets.FILES["ethome/pose"].relpath  # other animals and body parts
    code, err = run(other)
    assert code == 2 and "2 animals" in err and len(err.strip().splitlines()) == 1
    single_other = tmp_path / "parts.csv"
    frame = pd.read_csv(data_root / datasets.FILES["sturman/12_01/pose"].relpath, header=None, nrows=50,
                        dtype=str, keep_default_na=False)
    frame.iloc[1] = frame.iloc[1].replace("tailbase", "tail_base")
    frame.to_csv(single_other, header=False, index=False)
    code, err = run(single_other)
    assert code == 2 and "['tailbase']" in err and "not in the file" in err
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00" * 100)
    code, err = run(video)
    assert code == 2 and "video_behavior" in err
    nan_only = tmp_path / "nan.csv"
    frame.iloc[1] = frame.iloc[1].replace("tail_base", "tailbase")
    frame.iloc[3:, 2:] = "NaN"
    frame.to_csv(nan_only, header=False, index=False)
    code, err = run(nan_only)
    assert code == 2 and "NaN-only" in err
    code, err = run(single_other.with_name("missing.csv"))
    assert code == 2
    code, err = run(data_root / datasets.FILES["sturman/12_01/pose"].relpath, "--bogus")
    assert code == 2 and "--bogus" in err


def test_predict_pose_file_with_an_ensemble_has_spread_columns(sturman_run: Path, data_root: Path,
                                                                 tmp_path: Path) -> None:
    """An ensemble run (members/<k>/) adds prob_<class>_std; two copies of one model: zero spread."""
    import shutil

    ens = tmp_path / "ens"
    for k in ("0", "1"):
        shutil.copytree(sturman_run, ens / "members" / k)
    shutil.copyfile(sturman_run / "config.yaml", ens / "config.yaml")
    pose = data_root / datasets.FILES["sturman/12_01/pose"].relpath
    with preserved_environ():
        assert main(["predict", "--run", str(ens), "--input", str(pose), "--output", str(tmp_path / "e.csv")]) == 0
        assert main(["predict", "--run", str(sturman_run), "--input", str(pose), "--output",
                     str(tmp_path / "one.csv")]) == 0
    table, one = pd.read_csv(tmp_path / "e.csv"), pd.read_csv(tmp_path / "one.csv")
    for c in datasets.STURMAN_CLASSES:
        assert np.allclose(table[f"prob_{c}"], one[f"prob_{c}"], atol=1e-6)
        assert np.allclose(table[f"prob_{c}_std"], 0.0, atol=1e-6)
    assert "prob_Supported_std" not in one.columns
