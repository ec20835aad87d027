"""Bad pose files, annotations and videos for the video plugin."""

from __future__ import annotations

import numpy as np
from catalogue import TRAIN_TAIL, Case, Context

RNG = np.random.default_rng(5)
PARTS = ("nose", "neck", "tailbase")
N_FRAMES = 250
BOUTS = "start,stop,behavior\n1.0,2.0,rear\n4.0,5.2,rear\n7.0,7.6,rear\n"


def _dlc(n: int = N_FRAMES, nan_only: bool = False, bad_cell: bool = False) -> str:
    """A single-animal DeepLabCut CSV (3 header rows), ``n`` frames, x/y/likelihood per part."""
    head = ["scorer," + ",".join(["DLC_resnet50"] * 3 * len(PARTS)),
            "bodyparts," + ",".join(p for p in PARTS for _ in range(3)),
            "coords," + ",".join(["x", "y", "likelihood"] * len(PARTS))]
    rows = []
    for i in range(n):
        values = []
        for k in range(len(PARTS)):
            x, y = 100 + 20 * k + RNG.normal(0, 2), 200 + 5 * np.sin(i / 10) + RNG.normal(0, 2)
            values += ["NaN", "NaN", "0.0"] if nan_only else [f"{x:.2f}", f"{y:.2f}", "0.99"]
        rows.append(f"{i}," + ",".join(values))
    if bad_cell:
        cells = rows[3].split(",")
        cells[2] = "oops"
        rows[3] = ",".join(cells)
    return "\n".join(head + rows) + "\n"


def _pose_files(pose: str, bouts: str = BOUTS, *extra: str, fps: str | None = "25"):
    def build(ctx: Context) -> list[str]:
        poses, labels = [], []
        for i in range(3):
            poses.append(str(ctx.write(f"mouse{i}.csv", pose if i == 1 else _dlc())))
            labels.append(str(ctx.write(f"mouse{i}.bouts.csv", bouts if i == 1 else BOUTS)))
        args = ["train", "--plugin", "video", "--task", "pose_files", "--data.pose", ",".join(poses),
                "--data.labels", ",".join(labels), "--data.behaviors", "rear", *extra]
        if fps:
            args += ["--data.fps", fps]
        return args + TRAIN_TAIL
    return build


def _boris_fps(ctx: Context) -> list[str]:
    meta = "Observation id,x\n,\nMedia file(s),,\n"
    header = "Time,Media file path,Total length,FPS,Subject,Behavior,Behavioral category,Comment,Status\n"
    rows = "1.0,v.avi,10,25.0,m,rear,,,START\n2.0,v.avi,10,30.0,m,rear,,,STOP\n"
    return _pose_files(_dlc(), meta + header + rows)(ctx)


def _audio_only(path) -> None:
    """An mp4 holding sound but not a single video frame."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for i in range(4):
            frame.pts = i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _video(junk: bool):
    def build(ctx: Context) -> list[str]:
        from dltk_video.video import write_video

        videos, labels = [], []
        for i in range(3):
            path = ctx.tmp / f"clip{i}.mp4"
            if junk and i == 1:
                path.write_bytes(b"\x00\x01not a video" * 50)
            elif i == 1:
                _audio_only(path)
            else:
                write_video(path, RNG.integers(0, 255, (40, 32, 32, 3), dtype=np.uint8))
            videos.append(str(path))
            labels.append(str(ctx.write(f"clip{i}.csv", "start,stop,behavior\n0.2,0.6,walk\n")))
        return ["train", "--plugin", "video", "--task", "video_behavior", "--data.videos", ",".join(videos),
                "--data.labels", ",".join(labels), "--data.behaviors", "walk", "--data.encoder", "resnet10t",
                "--data.image_size", "32", *TRAIN_TAIL]
    return build


CASES = [
    Case("pose-bodyparts-absent", _pose_files(_dlc(), BOUTS, "--data.bodyparts", "nose,tail_tip"),
         ("tail_tip",), plugin="video"),
    Case("pose-nan-only-keypoints", _pose_files(_dlc(nan_only=True)), ("mouse1.csv", "NaN-only"), plugin="video"),
    Case("pose-non-numeric-coordinate", _pose_files(_dlc(bad_cell=True)), ("mouse1.csv", "row 7", "'oops'"),
         plugin="video"),
    Case("pose-not-deeplabcut", _pose_files("a,b\n1,2\n"), ("mouse1.csv", "scorer"), plugin="video"),
    Case("bouts-past-video-end", _pose_files(_dlc(), "start,stop,behavior\n1.0,2.0,rear\n9.0,12.0,rear\n"),
         ("mouse1.bouts.csv", "runs past the video end"), plugin="video"),
    Case("bouts-overlap-single-label", _pose_files(_dlc(), "start,stop,behavior\n1.0,2.0,rear\n1.5,3.0,groom\n",
                                                   "--data.behaviors", "rear,groom"),
         ("mouse1.bouts.csv", "row 3", "overlaps"), plugin="video"),
    Case("bouts-unknown-behavior", _pose_files(_dlc(), "start,stop,behavior\n1.0,2.0,groom\n"),
         ("mouse1.bouts.csv", "'groom' is not one of"), plugin="video"),
    Case("bouts-stop-before-start", _pose_files(_dlc(), "start,stop,behavior\n2.0,1.0,rear\n"),
         ("mouse1.bouts.csv", "row 2", "stops"), plugin="video"),
    Case("fps-missing", _pose_files(_dlc(), BOUTS, fps=None), ("fps",), plugin="video"),
    Case("boris-inconsistent-fps", _boris_fps, ("mouse1.bouts.csv", "inconsistent FPS"), plugin="video"),
    Case("video-undecodable", _video(junk=True), ("clip1.mp4",), plugin="video"),
    Case("video-without-frames", _video(junk=False), ("clip1.mp4", "no video stream"), plugin="video"),
]
