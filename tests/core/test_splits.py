"""Index splits: sizes, coverage, determinism, groups never straddle parts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dltk.data.splits import group_split, random_split
from dltk.errors import ConfigError


def _assert_partition(parts: tuple[np.ndarray, ...], n: int) -> None:
    joined = np.concatenate(parts)
    assert joined.dtype == np.int64
    assert np.array_equal(np.sort(joined), np.arange(n))
    for p in parts:
        assert np.all(np.diff(p) > 0)  # sorted, no repeats


@pytest.mark.parametrize("fractions", [(0.8, 0.1, 0.1), (0.9, 0.1), (0.7, 0.2, 0.1), (0.5, 0.5)])
def test_random_split_sizes_and_coverage(fractions: tuple[float, ...]) -> None:
    n = 1001
    parts = random_split(n, fractions, seed=3)
    assert len(parts) == len(fractions)
    _assert_partition(parts, n)
    for p, f in zip(parts, fractions):
        assert abs(len(p) - f * n) <= 1


def test_random_split_deterministic_by_seed() -> None:
    a = random_split(500, seed=1)
    b = random_split(500, seed=1)
    c = random_split(500, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])


def test_random_split_small_and_empty() -> None:
    _assert_partition(random_split(0), 0)
    parts = random_split(3, (0.8, 0.1, 0.1))
    _assert_partition(parts, 3)


@pytest.mark.parametrize("bad", [(0.8, 0.1), (1.0,), (0.5, 0.25, 0.125, 0.125), (1.2, -0.1, -0.1),
                                 (float("nan"), 0.5, 0.5)])
def test_bad_fractions_are_config_errors(bad: tuple[float, ...]) -> None:
    with pytest.raises(ConfigError, match="fractions"):
        random_split(10, bad)
    with pytest.raises(ConfigError, match="fractions"):
        group_split(list(range(10)), bad)


def _groups(n: int, n_groups: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    # skewed group sizes, like structures measured several times
    return [f"g{int(k)}" for k in rng.zipf(1.6, size=n) % n_groups]


@pytest.mark.parametrize("fractions", [(0.8, 0.1, 0.1), (0.9, 0.1)])
def test_group_split_no_straddle_and_fractions(fractions: tuple[float, ...]) -> None:
    groups = _groups(3000, 1500, seed=0)
    parts = group_split(groups, fractions, seed=0)
    _assert_partition(parts, len(groups))
    seen = [{groups[i] for i in p} for p in parts]
    for a in range(len(parts)):
        for b in range(a + 1, len(parts)):
            assert not seen[a] & seen[b]
    biggest = max(groups.count(g) for g in set(groups))
    for p, f in zip(parts, fractions):
        assert abs(len(p) - f * len(groups)) <= max(biggest, 0.02 * len(groups))


def test_group_split_deterministic_by_seed() -> None:
    groups = _groups(1000, 400, seed=1)
    a = group_split(groups, seed=5)
    b = group_split(groups, seed=5)
    c = group_split(groups, seed=6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert any(not np.array_equal(x, y) for x, y in zip(a, c))


def test_group_split_singletons_match_random_sizes() -> None:
    parts = group_split(list(range(10)), (0.8, 0.1, 0.1))
    assert [len(p) for p in parts] == [8, 1, 1]


@settings(max_examples=60, deadline=None)
@given(groups=st.lists(st.integers(0, 30), min_size=0, max_size=200), seed=st.integers(0, 2**32 - 1),
       three=st.booleans())
def test_group_split_property(groups: list[int], seed: int, three: bool) -> None:
    fractions = (0.8, 0.1, 0.1) if three else (0.75, 0.25)
    parts = group_split(groups, fractions, seed)
    _assert_partition(parts, len(groups))
    owner = {}
    for k, p in enumerate(parts):
        for i in p:
            assert owner.setdefault(groups[i], k) == k
