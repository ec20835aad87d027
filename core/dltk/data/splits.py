"""Domain-free train/validation/test splits over record indices (numpy only).

Every function returns a tuple of sorted ``int64`` index arrays, one per fraction, that together
cover ``range(n)`` exactly once. Results depend only on the inputs and ``seed``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from dltk.errors import ConfigError

Fractions = Sequence[float]


def check_fractions(fractions: Fractions) -> tuple[float, ...]:
    """Validate split fractions: 2 or 3 non-negative numbers summing to 1.

    Raises:
        ConfigError: the fractions are unusable.
    """
    fr = tuple(float(f) for f in fractions)
    if len(fr) not in (2, 3):
        raise ConfigError(f"split fractions must have 2 or 3 entries, got {len(fr)}: {list(fr)}")
    if any(not np.isfinite(f) or f < 0 for f in fr):
        raise ConfigError(f"split fractions must be finite and non-negative, got {list(fr)}")
    if abs(sum(fr) - 1.0) > 1e-6:
        raise ConfigError(f"split fractions must sum to 1, got {list(fr)} (sum {sum(fr):.6g})")
    return fr


def _targets(n: int, fractions: tuple[float, ...]) -> np.ndarray:
    """Integer part sizes summing to ``n`` (rounded cumulative boundaries)."""
    bounds = np.rint(np.cumsum(fractions) * n).astype(np.int64)
    bounds[-1] = n
    return np.diff(np.concatenate([[0], bounds]))


def random_split(n: int, fractions: Fractions = (0.8, 0.1, 0.1), seed: int = 0) -> tuple[np.ndarray, ...]:
    """Split ``range(n)`` at random into parts of the given fractions.

    Args:
        n: number of records.
        fractions: 2 or 3 fractions summing to 1 (train, val[, test]).
        seed: random seed.

    Returns:
        One sorted int64 index array per fraction; sizes are the rounded fractions of ``n``.
    """
    fr = check_fractions(fractions)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    perm = np.random.default_rng(seed).permutation(n)
    parts = np.split(perm, np.cumsum(_targets(n, fr))[:-1])
    return tuple(np.sort(p).astype(np.int64) for p in parts)


def group_split(groups: Sequence[Hashable], fractions: Fractions = (0.8, 0.1, 0.1),
                seed: int = 0) -> tuple[np.ndarray, ...]:
    """Split records so that all records of a group land in the same part.

    Unique groups are shuffled with ``seed``; each group then goes, whole, to the part that is
    furthest below its target record count, so part sizes hit the fractions to within about one
    group size.

    Args:
        groups: one hashable group key per record (e.g. a canonical structure or a scaffold).
        fractions: 2 or 3 fractions summing to 1 (train, val[, test]).
        seed: random seed.

    Returns:
        One sorted int64 index array per fraction.
    """
    fr = check_fractions(fractions)
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    keys = list(members)
    order = np.random.default_rng(seed).permutation(len(keys))
    targets = _targets(len(groups), fr)
    counts = np.zeros(len(fr), dtype=np.int64)
    parts: list[list[int]] = [[] for _ in fr]
    for k in order:
        idx = members[keys[k]]
        part = int(np.argmax(targets - counts))  # first part on ties: train fills first
        parts[part].extend(idx)
        counts[part] += len(idx)
    return tuple(np.sort(np.asarray(p, dtype=np.int64)) for p in parts)


def assign_groups_in_order(group_sizes: Sequence[int], n: int,
                           fractions: Fractions) -> list[int]:
    """Assign groups, in the given order, to parts chemprop-style: fill train, then val, then test.

    A group goes to the first part it fits into without exceeding the part's target size; a
    group that fits nowhere goes to the last part.

    Args:
        group_sizes: record count of each group, in assignment order.
        n: total number of records.
        fractions: 2 or 3 fractions summing to 1.

    Returns:
        The part number of each group.
    """
    fr = check_fractions(fractions)
    targets = np.asarray(fr) * n
    counts = np.zeros(len(fr))
    out = []
    for size in group_sizes:
        part = len(fr) - 1
        for k in range(len(fr) - 1):
            if counts[k] + size <= targets[k]:
                part = k
                break
        counts[part] += size
        out.append(part)
    return out
