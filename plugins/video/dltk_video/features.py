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


def pose_features(track: PoseTrack, config: FeatureConfig) -> tuple[np.ndarray, list[str]]:
    """Per-frame features ``(T, F)`` float32 and their names (see the module docstring)."""
    animal = track.select(list(config.bodyparts))
    P = animal.coords.astype(np.float64)  # (T, I, K, 2)
    T, _I, K, _ = P.shape
    tail, head = config.bodyparts.index(config.tail), config.bodyparts.index(config.head)
    centre = np.nanmean(P, axis=2)  # (T, I, 2)
    axis = P[:, :, head] - P[:, :, tail]
    length = np.linalg.norm(axis, axis=-1)
    scale = np.nanmedian(np.where(length > 0, length, np.nan), axis=0)  # (I,)
    if not np.isfinite(scale).all() or (scale <= 0).any():
        raise DataError(track.path, f"cannot measure the body length ({config.tail} -> {config.head}): "
                        "those points are missing or coincide throughout")
    angle = np.arctan2(axis[..., 1], axis[..., 0])  # (T, I)
    cos, sin = np.cos(angle), np.sin(angle)
    s = scale[None, :]
    cols: list[np.ndarray] = []
    names: list[str] = []
    dt = 1.0 / config.fps

    groups = set(config.groups)
    unknown = groups - set(FEATURE_GROUPS)
    if unknown:
        raise ValueError(f"unknown feature groups {sorted(unknown)}; choose from {FEATURE_GROUPS}")

    def add(values: np.ndarray, labels: list[str], group: str) -> None:
        if group in groups:
            cols.append(values.reshape(T, -1))
            names.extend(labels)

    for i, ind in enumerate(animal.individuals):
        rel = _rotate(P[:, i] - centre[:, i, None], cos[:, i, None], sin[:, i, None]) / scale[i]
        add(rel, [f"{ind}/{bp}/ego_{c}" for bp in config.bodyparts for c in "xy"], "ego")
        step = np.diff(P[:, i], axis=0, prepend=P[:1, i])
        add(np.linalg.norm(step, axis=-1) / scale[i] / dt, [f"{ind}/{bp}/speed" for bp in config.bodyparts],
            "speed")
        vel = np.diff(centre[:, i], axis=0, prepend=centre[:1, i])
        add(_rotate(vel, cos[:, i], sin[:, i]) / scale[i] / dt, [f"{ind}/centre/vel_{c}" for c in "xy"], "speed")
        turn = np.diff(np.unwrap(angle[:, i]), prepend=angle[:1, i])
        add(turn / dt, [f"{ind}/heading/turn"], "speed")
        a, b = np.triu_indices(K, k=1)
        dist = np.linalg.norm(P[:, i, a] - P[:, i, b], axis=-1) / scale[i]
        add(dist, [f"{ind}/{config.bodyparts[x]}-{config.bodyparts[y]}/dist" for x, y in zip(a, b)], "pairwise")
        if config.arena:
            corners = np.nanmedian(track.select(list(config.arena)).coords[:, 0], axis=0).astype(np.float64)
            if not np.isfinite(corners).all():
                raise DataError(track.path, f"arena points {config.arena} are missing")
            add(_wall_distance(P[:, i], corners) / scale[i], [f"{ind}/{bp}/wall" for bp in config.bodyparts], "wall")
        for j, other in enumerate(animal.individuals):
            if j == i:
                continue
            cross = np.linalg.norm(P[:, i, :, None] - P[:, j, None, :], axis=-1) / scale[i]
            add(cross, [f"{ind}/{x}-{other}/{y}/dist" for x in config.bodyparts for y in config.bodyparts], "social")
            nearest = cross.min(axis=2)
            add(nearest, [f"{ind}/{x}-{other}/nearest" for x in config.bodyparts], "social")
            add(np.diff(nearest, axis=0, prepend=nearest[:1]) / dt, [f"{ind}/{x}-{other}/approach"
                                                                      for x in config.bodyparts], "social")
            rel_c = _rotate(centre[:, j] - centre[:, i], cos[:, i], sin[:, i]) / scale[i]
            add(rel_c, [f"{ind}/{other}/centre_{c}" for c in "xy"], "social")
            d_angle = angle[:, j] - angle[:, i]
            add(np.stack([np.cos(d_angle), np.sin(d_angle)], -1), [f"{ind}/{other}/heading_{c}" for c in ("cos", "sin")],
                "social")
    del s
    if not cols:
        raise ValueError(f"no features: groups {sorted(groups)} give nothing for this track")
    X = np.concatenate(cols, axis=1)
    X = np.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0)
    return X.astype(np.float32), names


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
