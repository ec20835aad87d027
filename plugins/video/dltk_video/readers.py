"""Readers for pose tracks and behaviour annotations, and the bout <-> frame conversion.

Pose tracks (all become a :class:`PoseTrack`: ``coords (T, I, K, 2)``, ``likelihood (T, I, K)``):

- DeepLabCut CSV, single-animal (3 header rows: scorer / bodyparts / coords) and multi-animal
  (4 rows: scorer / individuals / bodyparts / coords), also files re-saved by pandas (an extra
  leading index column) and labelled-data files (image paths as index, x/y without likelihood);
- SLEAP analysis HDF5 (``tracks``, ``node_names``, ``track_names``, ``point_scores``).

Annotations (all become a list of :class:`Bout`, times in seconds or frames):

- BORIS tabular events export (``Time ... Behavior ... Status`` with START/STOP pairs, metadata
  lines above the header) and BORIS aggregated events (``Start (s)``, ``Stop (s)``);
- simple bout tables ``start,stop,behavior`` (in seconds or frames).

Bouts become per-frame labels with :func:`bouts_to_frames`: a bout from ``start`` to ``stop``
seconds covers frames ``round(start*fps)`` to ``round(stop*fps)`` inclusive (this reproduces the
documented frame counts of the Sturman and ethome annotations exactly).
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from dltk.errors import DataError

log = logging.getLogger("dltk.video")

HEADER_LABELS = ("scorer", "individuals", "bodyparts", "coords")


@dataclass
class PoseTrack:
    """Keypoints of one video.

    Attributes:
        coords: float32 ``(T, I, K, 2)`` pixel coordinates, NaN where missing.
        likelihood: float32 ``(T, I, K)`` detection confidence (1 where the file has none).
        individuals: ``I`` animal names (``["animal"]`` for single-animal files).
        bodyparts: ``K`` body-part names.
        frames: int ``(T,)`` frame numbers (0..T-1 for tracking files).
        path: the file it was read from.
        fps: frames per second when the file states it (None otherwise).
    """

    coords: np.ndarray
    likelihood: np.ndarray
    individuals: list[str]
    bodyparts: list[str]
    frames: np.ndarray
    path: str = ""
    fps: float | None = None
    index: list[str] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return int(self.coords.shape[0])

    def select(self, bodyparts: list[str]) -> PoseTrack:
        """Only ``bodyparts`` (in that order); a DataError names any the file lacks."""
        missing = [b for b in bodyparts if b not in self.bodyparts]
        if missing:
            raise DataError(self.path, f"body parts {missing} not in the file (it has {self.bodyparts})",
                            field="bodyparts")
        idx = [self.bodyparts.index(b) for b in bodyparts]
        return PoseTrack(self.coords[:, :, idx], self.likelihood[:, :, idx], list(self.individuals),
                         list(bodyparts), self.frames, self.path, self.fps, self.index)


# ------------------------------------------------------------------------------------------------
# DeepLabCut CSV
# ------------------------------------------------------------------------------------------------
def _dlc_header(path: Path) -> tuple[int, dict[str, list[str]], int]:
    """The header of a DeepLabCut CSV: the label column, the header rows by label (``scorer``,
    ``individuals``, ``bodyparts``, ``coords``) and their count."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            head = [next(reader, None) for _ in range(4)]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read ({exc})") from exc
    head = [h for h in head if h is not None]
    if not head:
        raise DataError(path, "empty file")
    label_col = next((j for j, v in enumerate(head[0][:4]) if v.strip().lower() == "scorer"), None)
    if label_col is None:
        raise DataError(path, "not a DeepLabCut CSV: no 'scorer' header row", row=1)
    n_header = 0
    rows: dict[str, list[str]] = {}
    for row in head:
        label = row[label_col].strip().lower() if len(row) > label_col else ""
        if label not in HEADER_LABELS:
            break
        rows[label] = row
        n_header += 1
    if "bodyparts" not in rows or "coords" not in rows:
        raise DataError(path, "not a DeepLabCut CSV: header rows 'bodyparts' and 'coords' are required",
                        row=n_header + 1)
    return label_col, rows, n_header


def _dlc_numbers(path: Path, values: pd.DataFrame, keys: list[tuple[str, str, str]], n_header: int) -> np.ndarray:
    """The data cells as float64 (empty = NaN); a DataError naming the first cell that is not a number."""
    try:
        return values.to_numpy(dtype=np.float64)
    except ValueError:
        numbers = values.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.argwhere(np.isnan(numbers) & ~values.isin(["nan", "NaN", "NAN"]).to_numpy())
        r, c = bad[0]
        raise DataError(path, f"not a number: {values.iat[r, c]!r}", row=int(r) + n_header + 1,
                        field="/".join(keys[c])) from None


def read_dlc_csv(path: str | Path) -> PoseTrack:
    """Read a DeepLabCut CSV (single/multi-animal, pandas-resaved or labelled-data files)."""
    path = Path(path)
    label_col, rows, n_header = _dlc_header(path)
    coords_row = rows["coords"]
    data_cols = [j for j, v in enumerate(coords_row) if v.strip() in ("x", "y", "likelihood")]
    if not data_cols:
        raise DataError(path, "no x/y/likelihood columns in the 'coords' header row", row=n_header)
    # index cells: the label column, or (labelled data with 3 index columns) every column before the data
    index_cols = list(range(label_col, data_cols[0]))
    table = pd.read_csv(path, header=None, skiprows=n_header, dtype=str, keep_default_na=False)
    if table.shape[1] < data_cols[-1] + 1:
        raise DataError(path, f"data rows have {table.shape[1]} columns, the header {data_cols[-1] + 1}",
                        row=n_header + 1)
    individuals_row = rows.get("individuals")
    keys: list[tuple[str, str, str]] = []
    for j in data_cols:
        ind = individuals_row[j].strip() if individuals_row is not None else "animal"
        keys.append((ind, rows["bodyparts"][j].strip(), coords_row[j].strip()))
    individuals = list(dict.fromkeys(k[0] for k in keys))
    bodyparts = list(dict.fromkeys(k[1] for k in keys))
    numbers = _dlc_numbers(path, table.iloc[:, data_cols].replace("", "nan"), keys, n_header)
    T = len(table)
    coords = np.full((T, len(individuals), len(bodyparts), 2), np.nan, dtype=np.float32)
    likelihood = np.full((T, len(individuals), len(bodyparts)), np.nan, dtype=np.float32)
    has_likelihood = False
    for c, (ind, bp, co) in enumerate(keys):
        i, k = individuals.index(ind), bodyparts.index(bp)
        if co == "likelihood":
            likelihood[:, i, k] = numbers[:, c]
            has_likelihood = True
        else:
            coords[:, i, k, 0 if co == "x" else 1] = numbers[:, c]
    if not has_likelihood:
        likelihood = np.where(np.isfinite(coords).all(-1), 1.0, 0.0).astype(np.float32)
    index = ["/".join(v for v in table.iloc[r, index_cols] if v) for r in range(T)] if index_cols else []
    frames = np.arange(T)
    if index and all(s.lstrip("-").isdigit() for s in index):
        frames = np.array([int(s) for s in index])
    return PoseTrack(coords, np.nan_to_num(likelihood, nan=0.0), individuals, bodyparts, frames, str(path),
                     index=index)


# ------------------------------------------------------------------------------------------------
# SLEAP analysis HDF5
# ------------------------------------------------------------------------------------------------
def read_sleap_h5(path: str | Path) -> PoseTrack:
    """Read a SLEAP analysis HDF5 file (``sleap-convert --format analysis``).

    The file stores ``tracks`` as ``(tracks, 2, nodes, frames)`` (transposed for MATLAB), with
    ``node_names``, ``track_names`` and ``point_scores`` ``(tracks, nodes, frames)``.
    """
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if "tracks" not in f or "node_names" not in f:
                raise DataError(path, "not a SLEAP analysis file: datasets 'tracks' and 'node_names' required")
            tracks = np.asarray(f["tracks"][:], dtype=np.float32)
            nodes = [_decode(n) for n in f["node_names"][:]]
            names = [_decode(n) for n in f["track_names"][:]] if "track_names" in f else []
            scores = np.asarray(f["point_scores"][:], dtype=np.float32) if "point_scores" in f else None
            fps = float(f.attrs["fps"]) if "fps" in f.attrs else None
    except OSError as exc:
        raise DataError(path, f"not a readable HDF5 file ({exc})") from exc
    if tracks.ndim != 4 or tracks.shape[1] != 2 or tracks.shape[2] != len(nodes):
        raise DataError(path, f"'tracks' has shape {tracks.shape}; expected (tracks, 2, {len(nodes)}, frames)")
    n_tracks = tracks.shape[0]
    names = names if len(names) == n_tracks and all(names) else [f"track{i}" for i in range(n_tracks)]
    coords = tracks.transpose(3, 0, 2, 1).copy()  # (frames, tracks, nodes, 2)
    if scores is not None and scores.shape == (n_tracks, len(nodes), tracks.shape[3]):
        likelihood = scores.transpose(2, 0, 1).copy()
    else:
        likelihood = np.isfinite(coords).all(-1).astype(np.float32)
    likelihood = np.where(np.isfinite(coords).all(-1), np.nan_to_num(likelihood, nan=1.0), 0.0)
    return PoseTrack(coords, likelihood.astype(np.float32), names, nodes, np.arange(coords.shape[0]),
                     str(path), fps)


def _decode(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_pose(path: str | Path) -> PoseTrack:
    """A pose file by its extension: ``.csv`` (DeepLabCut) or ``.h5``/``.hdf5``/``.slp.h5`` (SLEAP)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "pose file not found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_dlc_csv(path)
    if suffix in (".h5", ".hdf5"):
        return read_sleap_h5(path)
    raise DataError(path, f"unknown pose format {suffix!r}: expected a DeepLabCut .csv or a SLEAP analysis .h5")


# ------------------------------------------------------------------------------------------------
# cleaning
# ------------------------------------------------------------------------------------------------
@dataclass
class CleanReport:
    masked: int = 0
    total: int = 0
    empty_parts: list[str] = field(default_factory=list)

    def line(self, name: str) -> str:
        text = f"{name}: masked {self.masked} of {self.total} points below the likelihood threshold (interpolated)"
        if self.empty_parts:
            text += f"; skipped {len(self.empty_parts)} body parts with no usable point (first: {self.empty_parts[0]})"
        return text


def clean_track(track: PoseTrack, min_likelihood: float = 0.6) -> tuple[PoseTrack, CleanReport]:
    """Mask points below ``min_likelihood`` and fill them by linear interpolation over time
    (edges take the nearest valid value). A body part with no usable point is left NaN and
    reported; a file without any usable point is a DataError."""
    coords = track.coords.copy()
    bad = ~(track.likelihood >= min_likelihood) | ~np.isfinite(coords).all(-1)
    report = CleanReport(masked=int(bad.sum()), total=int(bad.size))
    if bad.all():
        raise DataError(track.path, f"no keypoint has likelihood >= {min_likelihood} (NaN-only or unusable pose)")
    coords[bad] = np.nan
    T, I, K, _ = coords.shape
    flat = coords.reshape(T, -1)
    t = np.arange(T)
    for j in range(flat.shape[1]):
        col = flat[:, j]
        ok = np.isfinite(col)
        if ok.all():
            continue
        if not ok.any():
            continue
        flat[:, j] = np.interp(t, t[ok], col[ok])
    coords = flat.reshape(T, I, K, 2)
    for i in range(I):
        for k in range(K):
            if not np.isfinite(coords[:, i, k]).any():
                report.empty_parts.append(f"{track.individuals[i]}/{track.bodyparts[k]}")
    cleaned = PoseTrack(coords, track.likelihood, track.individuals, track.bodyparts, track.frames, track.path,
                        track.fps, track.index)
    return cleaned, report


# ------------------------------------------------------------------------------------------------
# annotations
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bout:
    """One annotated bout: ``behavior`` from ``start`` to ``stop`` (seconds, or frames)."""

    start: float
    stop: float
    behavior: str
    row: int | None = None
    annotator: str = ""


def read_boris(path: str | Path) -> tuple[list[Bout], float | None]:
    """Read a BORIS export: tabular events (START/STOP pairs) or aggregated events (Start/Stop).

    Returns the bouts (seconds) and the FPS stated in the file (None when absent). POINT events
    are skipped and counted.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise DataError(path, f"cannot read ({exc})") from exc
    header_row = next((i for i, line in enumerate(lines[:60])
                       if line.startswith(("Time,", "Observation id,Observation date", '"Time"'))
                       and ("Behavior" in line or "Behaviour" in line)), None)
    if header_row is None:
        header_row = next((i for i, line in enumerate(lines[:60]) if "Behavior" in line and "Start" in line), None)
    if header_row is None:
        raise DataError(path, "not a BORIS export: no header line with 'Time'/'Start' and 'Behavior'")
    table = pd.read_csv(path, skiprows=header_row)
    fps = _boris_fps(path, table)
    bouts: list[Bout] = []
    if "Status" in table.columns:
        open_: dict[tuple[str, str], tuple[float, int]] = {}
        points = 0
        for i, r in table.iterrows():
            row = header_row + 2 + int(i)
            key = (str(r.get("Subject", "")), str(r["Behavior"]))
            status = str(r["Status"]).strip().upper()
            t = float(r["Time"])
            if status == "START":
                if key in open_:
                    raise DataError(path, f"{key[1]!r} starts again before it stopped", row=row)
                open_[key] = (t, row)
            elif status == "STOP":
                if key not in open_:
                    raise DataError(path, f"{key[1]!r} stops without a START", row=row)
                start, start_row = open_.pop(key)
                bouts.append(Bout(start, t, key[1], start_row))
            elif status == "POINT":
                points += 1
            else:
                raise DataError(path, f"unknown status {r['Status']!r} (expected START/STOP/POINT)", row=row,
                                field="Status")
        if open_:
            key, (_, row) = next(iter(open_.items()))
            raise DataError(path, f"{key[1]!r} starts and never stops", row=row)
        if points:
            log.warning("%s: skipped %d POINT events (no duration)", path, points)
    else:
        start_col = next((c for c in table.columns if c.lower().startswith("start")), None)
        stop_col = next((c for c in table.columns if c.lower().startswith("stop")), None)
        if start_col is None or stop_col is None:
            raise DataError(path, "BORIS export without Status or Start/Stop columns")
        for i, r in table.iterrows():
            bouts.append(Bout(float(r[start_col]), float(r[stop_col]), str(r["Behavior"]), header_row + 2 + int(i)))
    return sorted(bouts, key=lambda b: (b.start, b.stop)), fps


def _boris_fps(path: Path, table: pd.DataFrame) -> float | None:
    if "FPS" not in table.columns:
        return None
    values = pd.to_numeric(table["FPS"], errors="coerce").dropna().unique()
    if len(values) > 1:
        raise DataError(path, f"inconsistent FPS values in the file: {sorted(values.tolist())}", field="FPS")
    return float(values[0]) if len(values) else None


BOUT_COLUMNS = {"start": ("start", "from", "onset", "begin"), "stop": ("stop", "to", "end", "offset"),
                "behavior": ("behavior", "behaviour", "label", "type", "class")}


def read_bout_table(path: str | Path) -> list[Bout]:
    """A simple bout table with columns ``start``, ``stop``, ``behavior`` (aliases: from/to,
    onset/offset, label/type) and optionally ``annotator``/``Experimenter``."""
    path = Path(path)
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not a readable CSV ({exc})") from exc
    lower = {c.lower().strip(): c for c in table.columns}
    cols = {}
    for key, aliases in BOUT_COLUMNS.items():
        col = next((lower[a] for a in aliases if a in lower), None)
        if col is None:
            raise DataError(path, f"no {key!r} column (accepted: {', '.join(aliases)}; has: {list(table.columns)})")
        cols[key] = col
    ann_col = lower.get("annotator") or lower.get("experimenter")
    bouts = []
    for i, r in table.iterrows():
        row = int(i) + 2
        try:
            start, stop = float(r[cols["start"]]), float(r[cols["stop"]])
        except (TypeError, ValueError):
            raise DataError(path, "start/stop is not a number", row=row) from None
        if not (math.isfinite(start) and math.isfinite(stop)):
            raise DataError(path, "start/stop is empty or not finite", row=row)
        if stop < start:
            raise DataError(path, f"bout stops ({stop}) before it starts ({start})", row=row)
        bouts.append(Bout(start, stop, str(r[cols["behavior"]]).strip(), row,
                          str(r[ann_col]) if ann_col else ""))
    return bouts


def read_annotations(path: str | Path) -> tuple[list[Bout], float | None]:
    """BORIS export or simple bout table, detected from the file's first lines."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "annotation file not found")
    with open(path, encoding="utf-8", errors="replace") as fh:
        head = "".join(fh.readline() for _ in range(20))
    if "Observation id" in head or ("Status" in head and "Behavior" in head):
        return read_boris(path)
    return read_bout_table(path), None


def bouts_to_frames(bouts: list[Bout], n_frames: int, class_names: list[str], *,
                    fps: float | None, unit: Literal["seconds", "frames"] = "seconds",
                    overlap: Literal["error", "ignore", "last"] = "error", ignore: tuple[str, ...] = (),
                    past_end: Literal["error", "clip"] = "error", path: str | Path | None = None,
                    ) -> tuple[np.ndarray, dict[str, int]]:
    """Per-frame class indices (float, NaN = ignored) from bouts; uncovered frames are class 0
    (``class_names[0]``, the background).

    A bout covers frames ``round(start*fps)`` .. ``round(stop*fps)`` inclusive (``unit="frames"``:
    ``start`` .. ``stop``). Behaviours in ``ignore`` are dropped (session markers); behaviours that
    are not classes are an error. Overlaps of different behaviours: ``error``, ``ignore`` (those
    frames become NaN, counted) or ``last`` (the later bout wins). Bouts starting at or past the
    end: ``error`` or ``clip`` (dropped and counted; a bout running past the end is cut).

    Returns ``(labels, counts)`` with counts of dropped/ignored items for reporting.
    """
    if unit == "seconds" and not fps:
        raise DataError(path, "fps is needed to turn bout times in seconds into frames (set data.fps)")
    labels = np.zeros(n_frames, dtype=np.float64)
    owner = np.full(n_frames, -1, dtype=np.int64)
    conflict = np.zeros(n_frames, dtype=bool)
    counts = {"past_end": 0, "overlap_frames": 0, "ignored_bouts": 0}
    index = {name: i for i, name in enumerate(class_names)}
    for b, bout in enumerate(sorted(bouts, key=lambda x: x.start)):
        if bout.behavior in ignore:
            counts["ignored_bouts"] += 1
            continue
        if bout.behavior not in index or index[bout.behavior] == 0:
            raise DataError(path, f"behaviour {bout.behavior!r} is not one of the classes {class_names[1:]}",
                            row=bout.row)
        if unit == "seconds":
            a, z = round(bout.start * fps), round(bout.stop * fps)  # type: ignore[operator]
        else:
            a, z = round(bout.start), round(bout.stop)
        if a < 0:
            raise DataError(path, f"bout starts before the video ({bout.start})", row=bout.row)
        if z >= n_frames:
            if past_end == "error":
                raise DataError(path, f"bout {bout.behavior!r} {bout.start}-{bout.stop} runs past the video end "
                                f"({n_frames} frames)", row=bout.row)
            if a >= n_frames:
                counts["past_end"] += 1
                continue
            z = n_frames - 1
        c = index[bout.behavior]
        seg = slice(a, z + 1)
        clash = (owner[seg] >= 0) & (labels[seg] != c)
        if clash.any():
            if overlap == "error":
                raise DataError(path, f"bout {bout.behavior!r} at {bout.start} overlaps another behaviour in a "
                                "single-label task", row=bout.row)
            if overlap == "ignore":
                conflict[seg] |= clash
        labels[seg] = c
        owner[seg] = b
    if conflict.any():
        counts["overlap_frames"] = int(conflict.sum())
        labels[conflict] = np.nan
    return labels, counts


def frames_to_bouts(labels: np.ndarray, background: int = 0) -> list[tuple[int, int, int]]:
    """Runs of equal non-background labels: ``(class, first_frame, last_frame)`` inclusive."""
    labels = np.asarray(labels)
    out = []
    n = len(labels)
    i = 0
    while i < n:
        c = labels[i]
        j = i
        while j + 1 < n and labels[j + 1] == c:
            j += 1
        if not (isinstance(c, float) and math.isnan(c)) and c != background:
            out.append((int(c), i, j))
        i = j + 1
    return out
