"""Deterministic dinucleotide shuffle (Altschul & Erickson 1985), as DeepBind made its negatives.

The shuffle keeps the exact count of every dinucleotide (hence of every letter, and the first and
last letter) and draws uniformly among the sequences that share them. It is the Eulerian-walk
algorithm of Kandel et al. 1996 (Discrete Appl. Math. 71:171) used by MEME's
``fasta-shuffle-letters -kmer 2`` and by uShuffle (Jiang et al. 2008, BMC Bioinformatics 9:192):

1. read the sequence as a walk over a multigraph whose vertices are letters and whose edges are the
   ``L - 1`` successive letter pairs;
2. for every letter other than the last one, draw one of its out-edges at random as its *last*
   exit; accept the draw only if these last exits form a tree rooted at the final letter (so the
   walk below can never get stuck), otherwise draw again;
3. shuffle every letter's other out-edges, put its last exit at the end, and walk from the first
   letter taking each letter's next unused edge.

Randomness: sequence ``i`` of a call gets its own ``numpy.random.Generator(PCG64([seed, i]))``, so
a sequence's shuffle depends only on (seed, its index, its letters): the same on every machine and
run, and unchanged when other sequences are added or removed after it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64([int(seed), int(index)]))


def dinucleotide_shuffle(seq: str, rng: np.random.Generator) -> str:
    """One uniformly drawn sequence with exactly the dinucleotide counts of ``seq``.

    Works over any alphabet (``N``, ambiguity codes and lowercase are ordinary letters here).
    """
    n = len(seq)
    if n <= 2:
        return seq
    last = seq[-1]
    edges: dict[str, list[str]] = {}
    for a, b in itertools.pairwise(seq):
        edges.setdefault(a, []).append(b)
    others = [v for v in edges if v != last]
    while True:  # rejection: the last exits must lead every letter to `last`
        chosen = {v: int(rng.integers(len(edges[v]))) for v in others}
        exits = {v: edges[v][i] for v, i in chosen.items()}
        if _is_tree(exits, last):
            break
    order: dict[str, list[str]] = {}
    for v, succ in edges.items():
        if v == last:
            order[v] = [succ[i] for i in rng.permutation(len(succ))]
            continue
        rest = succ[:chosen[v]] + succ[chosen[v] + 1:]
        order[v] = [rest[i] for i in rng.permutation(len(rest))] + [exits[v]]
    pointer = dict.fromkeys(order, 0)
    out = [seq[0]]
    current = seq[0]
    for _ in range(n - 1):
        nxt = order[current][pointer[current]]
        pointer[current] += 1
        out.append(nxt)
        current = nxt
    return "".join(out)


def _is_tree(exits: dict[str, str], root: str) -> bool:
    """Do the exits lead every vertex to ``root`` (no cycle)?"""
    reaches = {root}
    for v in exits:
        path = []
        u = v
        while u not in reaches:
            if u in path:
                return False
            path.append(u)
            u = exits[u]
        reaches.update(path)
    return True


def shuffle_sequences(seqs: Sequence[str], seed: int = 0, copies: int = 1) -> list[str]:
    """Dinucleotide-shuffled copies of every sequence: ``copies`` per input, in input order
    (``[s0_copy0, s0_copy1, ..., s1_copy0, ...]``), deterministic in ``seed``."""
    out: list[str] = []
    for i, seq in enumerate(seqs):
        rng = _rng(seed, i)
        out.extend(dinucleotide_shuffle(seq, rng) for _ in range(copies))
    return out


def dinucleotide_counts(seq: str) -> dict[str, int]:
    """Counts of every overlapping letter pair of ``seq``."""
    counts: dict[str, int] = {}
    for i in range(len(seq) - 1):
        pair = seq[i:i + 2]
        counts[pair] = counts.get(pair, 0) + 1
    return counts
