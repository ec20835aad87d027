"""Built-in data: registered files (URL + sha256, see ``dltk.data.registry``) and session loaders.

- ``sturman_oft``: two mouse open-field sessions (DeepLabCut tracking, 25 fps, 1,998 frames each)
  with rearing bouts (Supported / Unsupported) by three annotators (Sturman et al. 2020).
- ``ethome_social``: one adult + juvenile session (multi-animal DeepLabCut, 30 fps, 5,700
  frames), ``interact`` bouts from a BORIS export (ethome test data, Lansdell).
- ``dlc_openfield``: the DeepLabCut open-field example (116 labelled frames, one unlabelled mp4).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from dltk.data.registry import RemoteFile, fetch
from dltk.errors import DataError

from dltk_video.readers import Bout, PoseTrack, bouts_to_frames, read_boris, read_dlc_csv

log = logging.getLogger("dltk.video")

_DLC2ACTION = "https://raw.githubusercontent.com/amathislab/DLC2action/main/tests/data/"
_ETHOME = "https://raw.githubusercontent.com/benlansdell/ethome/master/tests/data/"
_DLC = ("https://raw.githubusercontent.com/DeepLabCut/DeepLabCut/main/examples/"
        "openfield-Pranav-2018-10-30/")
_STURMAN_DLC = "DeepCut_resnet50_Blockcourse1May9shuffle1_1030000.csv"
_ETHOME_DLC = "e3v813a-20210610T122332-122642DLC_dlcrnetms5_pilot_studySep24shuffle1_100000_el_filtered.csv"
_ETHOME_BORIS = "e3v813a-20210610T122332-122642_reencode.csv"

FILES: dict[str, RemoteFile] = {
    "sturman/12_01/pose": RemoteFile(
        f"video/sturman-oft/12_01_A_190507144429{_STURMAN_DLC}", f"{_DLC2ACTION}12_01_A_190507144429{_STURMAN_DLC}",
        "766aca3d9cbf75447c76a6107f80eda80ec334250aea03c229ac7d470e26c55e", 1806289),
    "sturman/12_01/labels": RemoteFile(
        "video/sturman-oft/12_01_A_190507144429.labels_3annotators.csv", f"{_DLC2ACTION}12_01_A_190507144429.csv",
        "5aecefead57b76453b5e23df04462e2b99d4a4c8a9f6ec063db11242d28dd7fe", 30394),
    "sturman/8_01/pose": RemoteFile(
        f"video/sturman-oft/8_01_A_190507134142{_STURMAN_DLC}", f"{_DLC2ACTION}8_01_A_190507134142{_STURMAN_DLC}",
        "2bb220a7822bac78259f1b01d6b4309c3b251ed2ce61972b9ca0c7f7dd341653", 1780421),
    "sturman/8_01/labels": RemoteFile(
        "video/sturman-oft/8_01_A_190507134142.labels_3annotators.csv", f"{_DLC2ACTION}8_01_A_190507134142.csv",
        "deb6b3610bf0ef2d44830282a912068a94a7308379b287c9644b38b71cd03ef1", 53905),
    "ethome/pose": RemoteFile(
        f"video/ethome-social/{_ETHOME_DLC}", f"{_ETHOME}dlc/{_ETHOME_DLC}",
        "207cb350bc4dd20b7af807819b0c3abfad75d42007e12927bf64fbf0c6cd10bb", 2793506),
    "ethome/labels": RemoteFile(
        f"video/ethome-social/{_ETHOME_BORIS}", f"{_ETHOME}boris/{_ETHOME_BORIS}",
        "decd4c0c31be2264d735371d1a55963fb5e31df806ac3c37e97de099ec516489", 3043),
    "dlc_openfield/labels": RemoteFile(
        "video/dlc-openfield/CollectedData_Pranav.csv", f"{_DLC}labeled-data/m4s1/CollectedData_Pranav.csv",
        "4772b40c61d368ac29f283483719e4ea3be5d38a52dabcc414aae0c8699fd9c7", 13330),
    "dlc_openfield/video": RemoteFile(
        "video/dlc-openfield/m3v1mp4.mp4", f"{_DLC}videos/m3v1mp4.mp4",
        "e2394b4221821cdb7206910a6efcec9db338cb497d1f880bd5a0ef2fd087ce59", 2216380),
}

STURMAN_SESSIONS = ("12_01", "8_01")
STURMAN_ANNOTATORS = ("Oliver", "Jin", "Furkan")
STURMAN_CLASSES = ["background", "Supported", "Unsupported"]
STURMAN_FPS = 25.0
STURMAN_MOUSE = ("nose", "headcentre", "neck", "earl", "earr", "bodycentre", "bcl", "bcr", "hipl", "hipr",
                 "tailbase", "tailcentre", "tailtip")
STURMAN_ARENA = ("tl", "tr", "br", "bl")
STURMAN_MARKERS = ("StartEnd", "Start/End", "_DEFAULT")

ETHOME_CLASSES = ["background", "interact"]
ETHOME_FPS = 30.0
ETHOME_BODYPARTS = ("nose", "leftear", "rightear", "neck", "lefthip", "righthip", "tail")


@dataclass
class Session:
    """One video's pose track (or precomputed per-frame features) and per-frame labels (per annotator;
    ``reference`` is the target)."""

    name: str
    track: PoseTrack | None
    labels: dict[str, np.ndarray]
    reference: str
    fps: float
    features: np.ndarray | None = None

    @property
    def target(self) -> np.ndarray:
        return self.labels[self.reference]

    @property
    def n_frames(self) -> int:
        return len(self.target)


def sturman_bouts(path: Path) -> dict[str, list[Bout]]:
    """Bouts per annotator from a Sturman 3-annotator table (``from``/``to`` seconds, ``type``)."""
    table = pd.read_csv(path, index_col=0)
    for col in ("Experimenter", "from", "to", "type"):
        if col not in table.columns:
            raise DataError(path, f"missing column {col!r}")
    out: dict[str, list[Bout]] = {}
    rows = zip(table["Experimenter"].astype(str), table["from"], table["to"], table["type"].astype(str))
    for i, (who, start, stop, kind) in enumerate(rows):
        out.setdefault(who, []).append(Bout(float(start), float(stop), kind, i + 2, who))
    return out


def load_sturman(session: str, reference: str = "Oliver") -> Session:
    """One Sturman OFT session: 1,998 tracked frames; labels of every annotator (Grooming frames
    and frames where Supported and Unsupported bouts of one annotator overlap are NaN)."""
    if session not in STURMAN_SESSIONS:
        raise DataError(None, f"unknown Sturman session {session!r}; choose from {STURMAN_SESSIONS}")
    track = read_dlc_csv(fetch(FILES[f"sturman/{session}/pose"]))
    track.fps = STURMAN_FPS
    labels_path = fetch(FILES[f"sturman/{session}/labels"])
    labels: dict[str, np.ndarray] = {}
    for annotator, bouts in sturman_bouts(labels_path).items():
        grooming = [b for b in bouts if b.behavior == "Grooming"]
        kept = [b for b in bouts if b.behavior != "Grooming"]
        y, counts = bouts_to_frames(kept, track.n_frames, STURMAN_CLASSES, fps=STURMAN_FPS, overlap="ignore",
                                    ignore=STURMAN_MARKERS, past_end="clip", path=labels_path)
        g, _ = bouts_to_frames([Bout(b.start, b.stop, "Supported") for b in grooming], track.n_frames,
                               STURMAN_CLASSES, fps=STURMAN_FPS, past_end="clip", path=labels_path)
        y[g > 0] = np.nan
        labels[annotator] = y
        if counts["overlap_frames"] or (g > 0).any():
            log.info("sturman %s/%s: %d frames with overlapping Supported/Unsupported bouts and %d grooming "
                     "frames left unlabelled", session, annotator, counts["overlap_frames"], int((g > 0).sum()))
    if reference not in labels:
        raise DataError(labels_path, f"no annotator {reference!r} (has: {sorted(labels)})", field="Experimenter")
    return Session(session, track, labels, reference, STURMAN_FPS)


def load_ethome() -> Session:
    """The ethome social session: 5,700 frames, ``interact`` bouts (673 frames)."""
    track = read_dlc_csv(fetch(FILES["ethome/pose"]))
    track.fps = ETHOME_FPS
    labels_path = fetch(FILES["ethome/labels"])
    bouts, fps = read_boris(labels_path)
    if fps is not None and abs(fps - ETHOME_FPS) > 1e-6:
        raise DataError(labels_path, f"annotation fps {fps} differs from the tracking's {ETHOME_FPS}")
    y, _ = bouts_to_frames(bouts, track.n_frames, ETHOME_CLASSES, fps=ETHOME_FPS, path=labels_path)
    return Session("ethome", track, {"human": y}, "human", ETHOME_FPS)


SYNTHETIC_BEHAVIORS = ("horizontal", "vertical")


def synthetic_videos(folder: str | Path | None = None, n_videos: int = 6, n_frames: int = 150, size: int = 96,
                     fps: int = 25, seed: int = 0) -> list[Path]:
    """Write (once) ``n_videos`` short mp4 videos of a bright disc on a noisy background with a
    ``start,stop,behavior`` table (seconds) beside each: the disc rests (background), oscillates
    left-right (``horizontal``) or up-down (``vertical``) in bouts of 0.8-2 s. Only the motion
    pattern tells the behaviours apart. Returns the video paths (default folder: the dltk cache)."""
    from dltk.data.registry import cache_dir
    from dltk.io import atomic_path

    from dltk_video.video import write_video

    root = Path(folder) if folder is not None else cache_dir("video", f"synthetic-v2-{n_videos}x{n_frames}-{size}-{seed}")
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    paths = []
    for v in range(n_videos):
        video, table = root / f"synthetic{v:02d}.mp4", root / f"synthetic{v:02d}.csv"
        labels = np.zeros(n_frames, dtype=int)
        t = 0
        while t < n_frames:
            length = int(rng.integers(int(0.8 * fps), 2 * fps))
            labels[t:t + length] = rng.integers(0, 3)
            t += length
        centre = rng.uniform(0.35 * size, 0.65 * size, 2)
        phase = 0.0
        frames = np.empty((n_frames, size, size, 3), dtype=np.uint8)
        for f in range(n_frames):
            phase += 2 * np.pi / 8
            offset = 0.25 * size * np.sin(phase)
            cx = centre[0] + (offset if labels[f] == 1 else 0.0)
            cy = centre[1] + (offset if labels[f] == 2 else 0.0)
            img = rng.normal(60, 6, (size, size))
            img[(xx - cx) ** 2 + (yy - cy) ** 2 <= (0.12 * size) ** 2] = 220
            frames[f] = np.clip(img, 0, 255).astype(np.uint8)[..., None]
        if not video.is_file() or not table.is_file():
            rows = [(a / fps, z / fps, SYNTHETIC_BEHAVIORS[c - 1]) for c, a, z in _runs(labels) if c]
            with atomic_path(table) as tmp:
                pd.DataFrame(rows, columns=["start", "stop", "behavior"]).to_csv(tmp, index=False)
            with atomic_path(video) as tmp:
                write_video(tmp, frames, fps)
        paths.append(video)
    return paths


def _runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    out, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            out.append((int(labels[start]), start, i - 1))
            start = i
    return out


def demo_pose_files(folder: str | Path, n_files: int = 3, n_frames: int = 300, fps: int = 30,
                    seed: int = 0) -> tuple[list[Path], list[Path]]:
    """Write small DeepLabCut CSVs (one mouse: nose, earl, earr, tailbase) with bout tables beside
    them: the animal ambles, and in ``run`` bouts (0.7-1.7 s) it moves six times faster along its
    heading. For tests and for trying ``--task pose_files`` without data. Returns (pose, labels)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    body = np.array([[12.0, 0.0], [6.0, 4.0], [6.0, -4.0], [-12.0, 0.0]])
    poses, tables = [], []
    for f in range(n_files):
        run = np.zeros(n_frames, dtype=bool)
        t = int(rng.integers(10, 40))
        while t < n_frames:
            length = int(rng.integers(int(0.7 * fps), int(1.7 * fps)))
            run[t:t + length] = True
            t += length + int(rng.integers(int(1.0 * fps), int(3.0 * fps)))
        heading = np.cumsum(rng.normal(0, 0.08, n_frames))
        speed = np.where(run, 6.0, 1.0) * rng.uniform(0.8, 1.2, n_frames)
        step = np.stack([np.cos(heading), np.sin(heading)], -1) * speed[:, None]
        pos = 300 + np.cumsum(step, axis=0)
        rot = np.stack([np.cos(heading), -np.sin(heading), np.sin(heading), np.cos(heading)], -1).reshape(-1, 2, 2)
        pts = pos[:, None, :] + np.einsum("tij,kj->tki", rot, body) + rng.normal(0, 0.5, (n_frames, 4, 2))
        cols = pd.MultiIndex.from_tuples([("demo", bp, c) for bp in ("nose", "earl", "earr", "tailbase")
                                          for c in ("x", "y", "likelihood")], names=["scorer", "bodyparts", "coords"])
        data = np.concatenate([pts, rng.uniform(0.9, 1.0, (n_frames, 4, 1))], axis=2).reshape(n_frames, -1)
        pose, table = folder / f"demo{f}DLC.csv", folder / f"demo{f}.labels.csv"
        pd.DataFrame(data.round(3), columns=cols).to_csv(pose)
        idx = np.flatnonzero(np.diff(np.r_[0, run.astype(int), 0]))
        rows = [(a / fps, (z - 1) / fps, "run") for a, z in zip(idx[::2], idx[1::2])]
        pd.DataFrame(rows, columns=["start", "stop", "behavior"]).to_csv(table, index=False)
        poses.append(pose)
        tables.append(table)
    return poses, tables
