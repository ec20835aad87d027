"""pose_files: training on the user's own pose files + bout tables (demo files written here:
a mouse that ambles and, in ``run`` bouts, moves six times faster), and the errors a user meets.

Acceptance: test frame F1 of ``run`` >= 0.8 after 6 epochs (chance: ~0.35 of frames are run;
labelling everything run gives F1 ~0.5). The preset reaches ~0.99.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from dltk.cli import main
from dltk.errors import ConfigError, DataError
from dltk_video.datamodules import PoseFilesDataModule
from dltk_video.datasets import demo_pose_files
from testutil import preserved_environ


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Path]]:
    return demo_pose_files(tmp_path_factory.mktemp("demo"), n_files=3, n_frames=300)


def _args(demo: tuple[list[Path], list[Path]]) -> dict[str, str]:
    poses, tables = demo
    return {"pose": ",".join(map(str, poses)), "labels": ",".join(map(str, tables)), "behaviors": "run"}


def test_train_and_predict_on_own_files(demo: tuple[list[Path], list[Path]], tmp_path: Path) -> None:
    a = _args(demo)
    run = tmp_path / "run"
    with preserved_environ():
        assert main(["train", "--plugin", "video", "--task", "pose_files", "--data.pose", a["pose"], "--data.labels",
                     a["labels"], "--data.behaviors", "run", "--data.fps", "30", "--trainer.max_epochs", "6",
                     "--run-dir", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test/f1/run"] >= 0.8
    table = pd.read_csv(run / "predictions" / "test.csv")
    assert len(table) == 300 and set(table["video"]) == {"demo2DLC"}  # the last file is the test file
    out = tmp_path / "pred.csv"
    with preserved_environ():
        assert main(["predict", "--run", str(run), "--input", str(demo[0][2]), "--output", str(out)]) == 0
    pred = pd.read_csv(out)
    assert (pred["behavior"] == table["pred_behavior"]).all()


def test_user_errors(demo: tuple[list[Path], list[Path]], tmp_path: Path) -> None:
    a = _args(demo)
    with pytest.raises(ConfigError, match=r"data\.fps is required"):
        PoseFilesDataModule(**a).setup()
    with pytest.raises(ConfigError, match="3 pose files but 2 annotation files"):
        PoseFilesDataModule(**{**a, "labels": ",".join(map(str, demo[1][:2]))}, fps=30).setup()
    with pytest.raises(DataError, match=r"body parts \['hip'\] are not in this file"):
        PoseFilesDataModule(**a, fps=30, bodyparts="nose,hip").setup()
    late = tmp_path / "late.csv"
    late.write_text("start,stop,behavior\n9.5,10.5,run\n")  # the files last 10 s
    with pytest.raises(DataError, match="late.csv.*runs past the video end"):
        PoseFilesDataModule(**{**a, "labels": ",".join([str(demo[1][0]), str(demo[1][1]), str(late)])},
                            fps=30).setup()
    overlap = tmp_path / "overlap.csv"
    overlap.write_text("start,stop,behavior\n1.0,2.0,run\n1.5,2.5,rest\n")
    with pytest.raises(DataError, match="overlaps another behaviour"):
        PoseFilesDataModule(**{**a, "labels": ",".join([str(demo[1][0]), str(demo[1][1]), str(overlap)]),
                               "behaviors": "run,rest"}, fps=30).setup()
    dm = PoseFilesDataModule(**{**a, "labels": ",".join([str(overlap), str(demo[1][1]), str(demo[1][2])]),
                                "behaviors": "run,rest"}, fps=30, overlap="ignore")
    dm.setup()
    assert int(pd.isna(dm.sessions_[0].target).sum()) == 16  # frames 45..60 overlap, unlabelled and counted
