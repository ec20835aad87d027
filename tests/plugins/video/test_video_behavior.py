"""video_behavior: PyAV decoding in chunks, the frozen encoder and its on-disk cache, and the
whole path end to end on short clips written here with PyAV (a disc at rest / moving left-right /
moving up-down: only the motion tells the behaviours apart).

Acceptance for the short training run (6 clips of 150 frames: 4 train, 1 validation, 1 test):
test macro-F1 over the three classes >= 0.8 (chance: 0.33; the preset reaches ~0.99).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dltk.cli import main
from dltk.errors import DataError
from dltk_video.datasets import SYNTHETIC_BEHAVIORS, synthetic_videos
from dltk_video.video import EncoderConfig, encode_video, iter_frames, video_info, write_video
from testutil import preserved_environ

av = pytest.importorskip("av")
pytest.importorskip("timm")

TINY = EncoderConfig("resnet10t", image_size=32, pool=2)


def _clip(path: Path, n: int = 23, size: int = 48) -> Path:
    rng = np.random.default_rng(0)
    return write_video(path, rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8), fps=10)


def test_decode_in_chunks(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "c.mp4")
    fps, n = video_info(clip)
    assert fps == pytest.approx(10.0) and n == 23
    chunks = list(iter_frames(clip, size=32, chunk=10))
    assert [len(c) for c in chunks] == [10, 10, 3]  # streamed: never more than one chunk in memory
    assert chunks[0].shape == (10, 32, 32, 3) and chunks[0].dtype == np.uint8
    assert sum(len(c) for c in iter_frames(clip, size=32, chunk=10, repeat=3)) == 69


def test_encoder_cache_and_chunk_invariance(tmp_path: Path) -> None:
    from dltk.data.registry import cache_dir

    clip = _clip(tmp_path / "c.mp4")
    a = encode_video(clip, TINY, chunk=5, cache=False, progress=False)
    assert a.shape == (23, 512 * 4) and a.dtype == np.float32
    b = encode_video(clip, TINY, chunk=64, cache=True, progress=False)
    assert np.allclose(a, b, atol=1e-5)  # chunking does not change the embeddings
    cached = list(cache_dir("video", "features").glob("c-*.npy"))
    assert len(cached) == 1 and np.array_equal(np.load(cached[0]), b)
    # same seed, same encoder: prediction rebuilds exactly the training encoder
    assert np.array_equal(encode_video(clip, TINY, chunk=64, cache=False, progress=False), b)


def test_bad_videos(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01not a video" * 50)
    with pytest.raises(DataError, match="cannot be decoded|no video stream"):
        list(iter_frames(junk, 32))
    empty = tmp_path / "empty.mp4"
    write_video(empty, np.zeros((0, 32, 32, 3), np.uint8))
    with pytest.raises(DataError, match="no decodable frame|cannot be decoded|no video stream"):
        list(iter_frames(empty, 32))
    with pytest.raises(DataError, match="not found"):
        video_info(tmp_path / "missing.mp4")


def test_annotation_errors(tmp_path: Path) -> None:
    from dltk_video.video_datamodules import VideoBehaviorDataModule

    videos = [_clip(tmp_path / f"v{i}.mp4") for i in range(3)]
    for v in videos:
        v.with_suffix(".csv").write_text("start,stop,behavior\n0.5,1.0,walk\n")
    common = {"videos": ",".join(map(str, videos)), "behaviors": "walk", "encoder": "resnet10t", "image_size": 32,
              "window": 16, "margin": 4}
    videos[1].with_suffix(".csv").write_text("start,stop,behavior\n1.5,3.0,walk\n")  # the clip lasts 2.3 s
    with pytest.raises(DataError, match="v1.csv.*runs past the video end"):
        VideoBehaviorDataModule(**common).setup()
    meta = "Observation id,x\n"
    header = "Time,Media file path,Total length,FPS,Subject,Behavior,Behavioral category,Comment,Status\n"
    videos[1].with_suffix(".csv").write_text(meta + header + "0.5,v,2,25.0,m,walk,,,START\n"
                                             "1.0,v,2,25.0,m,walk,,,STOP\n")
    with pytest.raises(DataError, match="annotation fps 25 differs from the video's 10"):
        VideoBehaviorDataModule(**common).setup()


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("vb") / "run"
    with preserved_environ():
        code = main(["train", "--plugin", "video", "--task", "video_behavior", "--trainer.max_epochs", "12",
                     "--run-dir", str(run)])
    assert code == 0
    return run


def test_video_behavior_learns_motion(synthetic_run: Path) -> None:
    metrics = json.loads((synthetic_run / "metrics.json").read_text())
    assert metrics["test/macro_f1"] >= 0.8
    table = pd.read_csv(synthetic_run / "predictions" / "test.csv", keep_default_na=False)
    assert len(table) == 150 and table["frame"].tolist() == list(range(150))
    assert set(table["true_behavior"]) <= {"background", *SYNTHETIC_BEHAVIORS}


def test_predict_video(synthetic_run: Path, tmp_path: Path) -> None:
    video = synthetic_videos()[-1]  # the held-out clip
    out = tmp_path / "pred.csv"
    with preserved_environ():
        assert main(["predict", "--run", str(synthetic_run), "--input", str(video), "--output", str(out)]) == 0
    pred = pd.read_csv(out)
    test = pd.read_csv(synthetic_run / "predictions" / "test.csv")
    assert len(pred) == 150 and (pred["behavior"] == test["pred_behavior"]).all()
    assert out.with_suffix(".png").is_file()
    with preserved_environ():
        assert main(["predict", "--run", str(synthetic_run), "--input", str(video.with_suffix(".csv")),
                     "--output", str(tmp_path / "x.csv")]) == 2
