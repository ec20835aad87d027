"""Egocentric, scale-normalised per-frame features from keypoints, and sliding windows.

For each animal ``i`` (a :class:`~dltk_video.readers.PoseTrack` after cleaning):

- the body centre ``c`` (mean of its points) and heading (``tail`` -> ``head`` point), and the
  scale ``s``: the median tail-head distance of that animal in the file (so features do not
  depend on camera distance or resolution);
- every point relative to ``c``, rotated so the heading points along +x, divided by ``s``;
- speeds: every point's displacement per second over ``s``, the centre's velocity in the body
  frame, the heading's angular velocity;
- all pairwise point distances over ``s``;
- with ``arena`` corners (static arena points, e.g. ``tl tr br bl``): every point's distance to
  the nearest wall over ``s`` (supported rearing is rearing against a wall);
- for every other animal ``j``: the distance of every point of ``i`` to every point of ``j``
  over ``s_i``, each point's distance to the nearest point of ``j`` and its rate of change,
  ``j``'s centre in ``i``'s body frame and ``j``'s relative heading (cos, sin).

Windows (:func:`plan_windows`, :func:`stitch`): evaluation windows overlap by a context margin
on each side; each frame belongs to exactly one window's *core*, where that window's prediction
is the one kept, so a stitched video has every frame predicted exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from dltk.errors import DataError

from dltk_video.readers import PoseTrack

FEATURE_GROUPS = ("ego", "speed", "pairwise", "wall", "social")


@dataclass(frozen=True)
class FeatureConfig:
    """What the features are built from (stored in the checkpoint; prediction checks it).

    Args:
        bodyparts: the animal's points, in order.
        tail: point at the back of the heading axis; head: at the front.
        arena: static arena corner points (in polygon order), or empty.
        fps: frames per second (speeds are per second).
        groups: feature groups to compute: ``ego`` (egocentric positions), ``speed`` (speeds,
            body-frame velocity, turning), ``pairwise`` (distances within an animal), ``wall``
            (distance to the arena walls, with ``arena``), ``social`` (between animals).
    """

    bodyparts: tuple[str, ...]
    tail: str
    head: str
    arena: tuple[str, ...] = ()
    fps: float = 30.0
    groups: tuple[str, ...] = ("ego", "speed", "pairwise", "wall", "social")


def _rotate(v: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate vectors ``(..., 2)`` by -angle (angle given by cos/sin broadcastable to v[..., 0])."""
    x, y = v[..., 0], v[..., 1]
    return np.stack([x * cos + y * sin, -x * sin + y * cos], axis=-1)


def _wall_distance(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Distance of points ``(..., 2)`` to the nearest edge of the closed polygon ``corners (M, 2)``."""
    best = np.full(points.shape[:-1], np.inf, dtype=np.float64)
    for m in range(len(corners)):
        a, b = corners[m], corners[(m + 1) % len(corners)]
        ab = b - a
        t = np.clip(((points - a) @ ab) / max(float(ab @ ab), 1e-9), 0.0, 1.0)
        proj = a + t[..., None] * ab
        best = np.minimum(best, np.linalg.norm(points - proj, axis=-1))
    return best


class _Columns:
    """Feature columns ``(T, ...)`` and their names, kept only for the selected groups."""

    def __init__(self, T: int, groups: set[str]) -> None:
        self.T, self.groups = T, groups
        self.cols: list[np.ndarray] = []
        self.names: list[str] = []

    def add(self, values: np.ndarray, labels: list[str], group: str) -> None:
        if group in self.groups:
            self.cols.append(values.reshape(self.T, -1))
            self.names.extend(labels)


def _own_features(out: _Columns, P: np.ndarray, centre: np.ndarray, angle: np.ndarray, scale: float,
                  corners: np.ndarray | None, ind: str, config: FeatureConfig) -> None:
    """One animal's ``ego``, ``speed``, ``pairwise`` and ``wall`` features (``P``: its points ``(T, K, 2)``)."""
    dt = 1.0 / config.fps
    cos, sin = np.cos(angle), np.sin(angle)
    parts = config.bodyparts
    out.add(_rotate(P - centre[:, None], cos[:, None], sin[:, None]) / scale,
            [f"{ind}/{bp}/ego_{c}" for bp in parts for c in "xy"], "ego")
    step = np.diff(P, axis=0, prepend=P[:1])
    out.add(np.linalg.norm(step, axis=-1) / scale / dt, [f"{ind}/{bp}/speed" for bp in parts], "speed")
    vel = np.diff(centre, axis=0, prepend=centre[:1])
    out.add(_rotate(vel, cos, sin) / scale / dt, [f"{ind}/centre/vel_{c}" for c in "xy"], "speed")
    turn = np.diff(np.unwrap(angle), prepend=angle[:1])
    out.add(turn / dt, [f"{ind}/heading/turn"], "speed")
    a, b = np.triu_indices(len(parts), k=1)
    dist = np.linalg.norm(P[:, a] - P[:, b], axis=-1) / scale
    out.add(dist, [f"{ind}/{parts[x]}-{parts[y]}/dist" for x, y in zip(a, b)], "pairwise")
    if corners is not None:
        out.add(_wall_distance(P, corners) / scale, [f"{ind}/{bp}/wall" for bp in parts], "wall")


def _social_features(out: _Columns, P: np.ndarray, centre: np.ndarray, angle: np.ndarray, scale: np.ndarray,
                     i: int, j: int, names: tuple[str, str], config: FeatureConfig) -> None:
    """Animal ``i``'s ``social`` features towards animal ``j`` (``P``: all points ``(T, I, K, 2)``)."""
    ind, other = names
    parts = config.bodyparts
    cross = np.linalg.norm(P[:, i, :, None] - P[:, j, None, :], axis=-1) / scale[i]
    out.add(cross, [f"{ind}/{x}-{other}/{y}/dist" for x in parts for y in parts], "social")
    nearest = cross.min(axis=2)
    out.add(nearest, [f"{ind}/{x}-{other}/nearest" for x in parts], "social")
    dt = 1.0 / config.fps
    out.add(np.diff(nearest, axis=0, prepend=nearest[:1]) / dt, [f"{ind}/{x}-{other}/approach" for x in parts],
            "social")
    cos, sin = np.cos(angle[:, i]), np.sin(angle[:, i])
    out.add(_rotate(centre[:, j] - centre[:, i], cos, sin) / scale[i], [f"{ind}/{other}/centre_{c}" for c in "xy"],
            "social")
    d_angle = angle[:, j] - angle[:, i]
    out.add(np.stack([np.cos(d_angle), np.sin(d_angle)], -1), [f"{ind}/{other}/heading_{c}" for c in ("cos", "sin")],
            "social")


def pose_features(track: PoseTrack, config: FeatureConfig) -> tuple[np.ndarray, list[str]]:
    """Per-frame features ``(T, F)`` float32 and their names (see the module docstring)."""
    animal = track.select(list(config.bodyparts))
    P = animal.coords.astype(np.float64)  # (T, I, K, 2)
    tail, head = config.bodyparts.index(config.tail), config.bodyparts.index(config.head)
    centre = np.nanmean(P, axis=2)  # (T, I, 2)
    axis = P[:, :, head] - P[:, :, tail]
    length = np.linalg.norm(axis, axis=-1)
    scale = np.nanmedian(np.where(length > 0, length, np.nan), axis=0)  # (I,)
    if not np.isfinite(scale).all() or (scale <= 0).any():
        raise DataError(track.path, f"cannot measure the body length ({config.tail} -> {config.head}): "
                        "those points are missing or coincide throughout")
    angle = np.arctan2(axis[..., 1], axis[..., 0])  # (T, I)
    groups = set(config.groups)
    unknown = groups - set(FEATURE_GROUPS)
    if unknown:
        raise ValueError(f"unknown feature groups {sorted(unknown)}; choose from {FEATURE_GROUPS}")
    corners = None
    if config.arena:
        corners = np.nanmedian(track.select(list(config.arena)).coords[:, 0], axis=0).astype(np.float64)
        if not np.isfinite(corners).all():
            raise DataError(track.path, f"arena points {config.arena} are missing")
    out = _Columns(len(P), groups)
    for i, ind in enumerate(animal.individuals):
        _own_features(out, P[:, i], centre[:, i], angle[:, i], scale[i], corners, ind, config)
        for j, other in enumerate(animal.individuals):
            if j != i:
                _social_features(out, P, centre, angle, scale, i, j, (ind, other), config)
    if not out.cols:
        raise ValueError(f"no features: groups {sorted(groups)} give nothing for this track")
    X = np.concatenate(out.cols, axis=1)
    X = np.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0)
    return X.astype(np.float32), out.names


# ------------------------------------------------------------------------------------------------
# windows
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WindowPlan:
    """Evaluation windows over ``n_frames``: window ``w`` covers frames ``starts[w] .. starts[w]+length-1``
    (indices outside the video are padded with the edge frame) and owns ``core_lo[w] .. core_hi[w]-1``
    (positions inside the window)."""

    n_frames: int
    length: int
    starts: np.ndarray
    core_lo: np.ndarray
    core_hi: np.ndarray

    def frame_index(self) -> np.ndarray:
        """``(W, length)`` frame indices, clipped to the video (edge padding)."""
        idx = self.starts[:, None] + np.arange(self.length)[None, :]
        return np.clip(idx, 0, self.n_frames - 1)

    def core_mask(self) -> np.ndarray:
        """``(W, length)`` True where that window's prediction is kept."""
        pos = np.arange(self.length)[None, :]
        return (pos >= self.core_lo[:, None]) & (pos < self.core_hi[:, None])


def plan_windows(n_frames: int, length: int, margin: int) -> WindowPlan:
    """Windows of ``length`` frames whose cores (``length - 2*margin`` frames) tile the video."""
    if n_frames <= 0:
        raise ValueError("no frames")
    core = length - 2 * margin
    if core <= 0:
        raise ValueError(f"window length {length} leaves no core with margin {margin}")
    core_starts = np.arange(0, n_frames, core)
    starts = core_starts - margin
    lo = np.full(len(starts), margin)
    hi = np.minimum(margin + core, n_frames - starts)
    return WindowPlan(n_frames, length, starts, lo, hi)


def training_windows(n_frames: int, length: int, stride: int) -> np.ndarray:
    """``(W, length)`` frame indices of overlapping training windows covering the whole range
    (the last one aligned to the end; shorter videos are edge-padded)."""
    if n_frames <= length:
        starts = np.array([0])
    else:
        starts = np.arange(0, n_frames - length + 1, stride)
        if starts[-1] != n_frames - length:
            starts = np.append(starts, n_frames - length)
    idx = starts[:, None] + np.arange(length)[None, :]
    return np.clip(idx, 0, n_frames - 1)


def stitch(preds: np.ndarray, plan: WindowPlan) -> np.ndarray:
    """``(W, length, C)`` window predictions -> ``(n_frames, C)``, each frame from its core window."""
    if preds.shape[0] != len(plan.starts) or preds.shape[1] != plan.length:
        raise ValueError(f"predictions {preds.shape[:2]} do not match the plan ({len(plan.starts)}, {plan.length})")
    mask = plan.core_mask()
    return preds[mask]


def eval_windows(X: np.ndarray, labels: np.ndarray | None, plan: WindowPlan) -> tuple[np.ndarray, np.ndarray]:
    """Window features ``(W, L, F)`` and targets ``(W, L)``: NaN outside each window's core, so
    every frame is scored exactly once."""
    idx = plan.frame_index()
    x = X[idx]
    y = np.full(idx.shape, np.nan, dtype=np.float32)
    if labels is not None:
        y = labels[idx].astype(np.float32)
        y[~plan.core_mask()] = np.nan
    return x, y
