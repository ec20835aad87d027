"""Molecular graphs from RDKit for message-passing networks: featurization and batching.

A molecule becomes atoms (nodes) and bonds, each bond giving two *directed* edges ``u->v`` and
``v->u``, as in chemprop's D-MPNN (Yang et al. 2019, J. Chem. Inf. Model. 59:3370). Features follow
chemprop v1:

========================  =====================================================  =====
atom feature              values (one-hot; the last slot is "other")              width
========================  =====================================================  =====
element                   atomic number 1..100                                     101
degree                    0..5                                                       7
formal charge             -1, -2, 1, 2, 0                                            6
chirality tag             RDKit ``ChiralType`` 0..3                                  5
total H count             0..4                                                       6
hybridization             SP, SP2, SP3, SP3D, SP3D2                                  6
aromatic                  0/1                                                        1
mass / 100                float                                                      1
========================  =====================================================  =====

Bond features (width 14): bond type (single, double, triple, aromatic, other), conjugated, in
ring, stereo (RDKit ``BondStereo`` 0..5, other).

Graphs are stored compactly (category codes, not one-hot floats) in one flat set of arrays with
per-molecule offsets (:class:`MolGraphs`); :func:`collate_graphs` expands a batch to float
features. Nothing is cached on disk: featurizing Tox21 (12k molecules) takes a few seconds.

A SMILES that RDKit cannot parse, cannot sanitize (e.g. a pentavalent carbon) or that has no atoms
is *invalid*: it gets an empty graph and an error message, never an exception.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from rdkit import Chem
from rdkit.rdBase import BlockLogs
from torch import Tensor
from torch.utils.data import Dataset

from dltk.base import TARGET

GRAPH_FORMAT = 1
"""Version of the feature layout; stored in ``data_info`` so a checkpoint can check it."""

# -- feature vocabularies ------------------------------------------------------------------------
ELEMENTS = list(range(1, 101))
DEGREES = [0, 1, 2, 3, 4, 5]
FORMAL_CHARGES = [-1, -2, 1, 2, 0]
CHIRAL_TAGS = [0, 1, 2, 3]
NUM_HS = [0, 1, 2, 3, 4]
HYBRIDIZATIONS = [Chem.rdchem.HybridizationType.SP, Chem.rdchem.HybridizationType.SP2,
                  Chem.rdchem.HybridizationType.SP3, Chem.rdchem.HybridizationType.SP3D,
                  Chem.rdchem.HybridizationType.SP3D2]
BOND_TYPES = [Chem.rdchem.BondType.SINGLE, Chem.rdchem.BondType.DOUBLE, Chem.rdchem.BondType.TRIPLE,
              Chem.rdchem.BondType.AROMATIC]
BOND_STEREO = [0, 1, 2, 3, 4, 5]

ATOM_CATEGORIES = (ELEMENTS, DEGREES, FORMAL_CHARGES, CHIRAL_TAGS, NUM_HS, HYBRIDIZATIONS)
ATOM_SIZES = np.array([len(v) + 1 for v in ATOM_CATEGORIES])  # +1: "other"
ATOM_OFFSETS = np.concatenate([[0], np.cumsum(ATOM_SIZES)[:-1]])
ATOM_FDIM = int(ATOM_SIZES.sum()) + 2  # + aromatic, mass/100
"""Width of an atom feature vector (133)."""

BOND_SIZES = np.array([len(BOND_TYPES) + 1, len(BOND_STEREO) + 1])
BOND_OFFSETS = np.array([0, BOND_SIZES[0]])
BOND_FDIM = int(BOND_SIZES.sum()) + 2  # + conjugated, in ring
"""Width of a bond feature vector (14)."""

_LOOKUPS = [{v: i for i, v in enumerate(values)} for values in ATOM_CATEGORIES]
_BOND_LOOKUP = {v: i for i, v in enumerate(BOND_TYPES)}

MIN_PARALLEL = 2_000
"""Inputs shorter than this are featurized in-process."""
CHUNK_SIZE = 1_000


def settings() -> dict[str, Any]:
    """What determines the features (stored with a model; checked at prediction time)."""
    return {"format": GRAPH_FORMAT, "atom_fdim": ATOM_FDIM, "bond_fdim": BOND_FDIM}


# -- one molecule --------------------------------------------------------------------------------
def mol_from_smiles(smiles: str) -> tuple[Chem.Mol | None, str]:
    """Parse and sanitize; returns ``(mol, "")`` or ``(None, reason)``. Never raises."""
    if not smiles or not smiles.strip():
        return None, "empty SMILES"
    with BlockLogs():
        try:
            mol = Chem.MolFromSmiles(smiles, sanitize=False)
        except Exception:  # noqa: BLE001 - RDKit raises on some malformed inputs
            mol = None
        if mol is None:
            return None, "invalid SMILES (RDKit cannot parse)"
        try:
            Chem.SanitizeMol(mol)
        except Exception as exc:  # noqa: BLE001 - AtomValenceException, KekulizeException, ...
            reason = " ".join(str(exc).split())[:120] or type(exc).__name__
            return None, f"invalid molecule (RDKit cannot sanitize: {reason})"
    if mol.GetNumAtoms() == 0:
        return None, "empty molecule (no atoms)"
    return mol, ""


def _code(lookup: dict, value: Any) -> int:
    return lookup.get(value, len(lookup))


def atom_codes(mol: Chem.Mol) -> tuple[np.ndarray, np.ndarray]:
    """Per-atom category codes ``(n_atoms, 6)`` int16 and float columns ``(n_atoms, 2)``
    (aromatic, mass/100)."""
    n = mol.GetNumAtoms()
    codes = np.empty((n, len(ATOM_CATEGORIES)), dtype=np.int16)
    floats = np.empty((n, 2), dtype=np.float32)
    el, deg, chg, chi, nh, hyb = _LOOKUPS
    for i, atom in enumerate(mol.GetAtoms()):
        codes[i] = (_code(el, atom.GetAtomicNum()), _code(deg, atom.GetTotalDegree()),
                    _code(chg, atom.GetFormalCharge()), _code(chi, int(atom.GetChiralTag())),
                    _code(nh, atom.GetTotalNumHs()), _code(hyb, atom.GetHybridization()))
        floats[i] = (float(atom.GetIsAromatic()), atom.GetMass() * 0.01)
    return codes, floats


def bond_arrays(mol: Chem.Mol) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bond endpoints ``(n_bonds, 2)`` int32, codes ``(n_bonds, 2)`` int8 (type, stereo) and float
    columns ``(n_bonds, 2)`` (conjugated, in ring)."""
    n = mol.GetNumBonds()
    ends = np.empty((n, 2), dtype=np.int32)
    codes = np.empty((n, 2), dtype=np.int8)
    floats = np.empty((n, 2), dtype=np.float32)
    for k, bond in enumerate(mol.GetBonds()):
        ends[k] = (bond.GetBeginAtomIdx(), bond.GetEndAtomIdx())
        stereo = int(bond.GetStereo())
        stereo = stereo if stereo in BOND_STEREO else len(BOND_STEREO)
        codes[k] = (_code(_BOND_LOOKUP, bond.GetBondType()), stereo)
        floats[k] = (float(bond.GetIsConjugated()), float(bond.IsInRing()))
    return ends, codes, floats


def expand_atoms(codes: np.ndarray, floats: np.ndarray) -> np.ndarray:
    """Category codes -> float32 atom features ``(n, ATOM_FDIM)``."""
    out = np.zeros((len(codes), ATOM_FDIM), dtype=np.float32)
    if len(codes):
        out[np.arange(len(codes))[:, None], codes.astype(np.int64) + ATOM_OFFSETS] = 1.0
        out[:, -2:] = floats
    return out


def expand_bonds(codes: np.ndarray, floats: np.ndarray) -> np.ndarray:
    """Bond codes -> float32 bond features ``(n, BOND_FDIM)``."""
    out = np.zeros((len(codes), BOND_FDIM), dtype=np.float32)
    if len(codes):
        out[np.arange(len(codes))[:, None], codes.astype(np.int64) + BOND_OFFSETS] = 1.0
        out[:, -2:] = floats
    return out


# -- many molecules ------------------------------------------------------------------------------
@dataclass
class MolGraphs:
    """Graphs of ``n`` molecules in flat arrays; molecule ``i`` owns atoms
    ``atom_ptr[i]:atom_ptr[i+1]`` and bonds ``bond_ptr[i]:bond_ptr[i+1]`` (bond ends are local atom
    indices). ``errors[i]`` is ``""`` for a valid molecule, else why it is invalid (no atoms)."""

    atom_codes: np.ndarray   # (A, 6) int16
    atom_floats: np.ndarray  # (A, 2) float32
    bond_ends: np.ndarray    # (B, 2) int32
    bond_codes: np.ndarray   # (B, 2) int8
    bond_floats: np.ndarray  # (B, 2) float32
    atom_ptr: np.ndarray     # (n+1,) int64
    bond_ptr: np.ndarray     # (n+1,) int64
    errors: list[str]

    def __len__(self) -> int:
        return len(self.errors)

    @property
    def valid(self) -> np.ndarray:
        return np.array([e == "" for e in self.errors], dtype=bool)

    def num_atoms(self, i: int) -> int:
        return int(self.atom_ptr[i + 1] - self.atom_ptr[i])

    def graph(self, i: int) -> tuple[np.ndarray, ...]:
        """Views ``(atom_codes, atom_floats, bond_ends, bond_codes, bond_floats)`` of molecule i."""
        a0, a1, b0, b1 = self.atom_ptr[i], self.atom_ptr[i + 1], self.bond_ptr[i], self.bond_ptr[i + 1]
        return (self.atom_codes[a0:a1], self.atom_floats[a0:a1], self.bond_ends[b0:b1],
                self.bond_codes[b0:b1], self.bond_floats[b0:b1])

    def subset(self, idx: Sequence[int] | np.ndarray) -> MolGraphs:
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        parts = [self.graph(int(i)) for i in idx]
        return _concat([(p, self.errors[int(i)]) for p, i in zip(parts, idx)])

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.atom_codes, self.atom_floats, self.bond_ends, self.bond_codes,
                                      self.bond_floats, self.atom_ptr, self.bond_ptr))


_EMPTY = (np.zeros((0, len(ATOM_CATEGORIES)), np.int16), np.zeros((0, 2), np.float32),
          np.zeros((0, 2), np.int32), np.zeros((0, 2), np.int8), np.zeros((0, 2), np.float32))


def _concat(items: list[tuple[tuple[np.ndarray, ...], str]]) -> MolGraphs:
    parts = [p for p, _ in items] or [_EMPTY]
    arrays = [np.concatenate([p[k] for p in parts]) for k in range(5)]
    atom_ptr = np.zeros(len(items) + 1, dtype=np.int64)
    bond_ptr = np.zeros(len(items) + 1, dtype=np.int64)
    atom_ptr[1:] = np.cumsum([len(p[0]) for p, _ in items])
    bond_ptr[1:] = np.cumsum([len(p[2]) for p, _ in items])
    return MolGraphs(*arrays, atom_ptr, bond_ptr, [e for _, e in items])


def mol_graph(mol: Chem.Mol) -> tuple[np.ndarray, ...]:
    """``(atom_codes, atom_floats, bond_ends, bond_codes, bond_floats)`` of a sanitized molecule."""
    return (*atom_codes(mol), *bond_arrays(mol))


def _featurize_serial(smiles: Sequence[str]) -> MolGraphs:
    items = []
    for smi in smiles:
        mol, error = mol_from_smiles(smi)
        items.append((_EMPTY if mol is None else mol_graph(mol), error))
    return _concat(items)


def _work(chunk: list[str]) -> MolGraphs:
    return _featurize_serial(chunk)


def merge(parts: Sequence[MolGraphs]) -> MolGraphs:
    """Concatenate several :class:`MolGraphs` (molecule order kept)."""
    if len(parts) == 1:
        return parts[0]
    arrays = [np.concatenate([getattr(p, f) for p in parts]) for f in
              ("atom_codes", "atom_floats", "bond_ends", "bond_codes", "bond_floats")]
    ptrs = []
    for f in ("atom_ptr", "bond_ptr"):
        out, base = [np.zeros(1, np.int64)], 0
        for p in parts:
            ptr = getattr(p, f)
            out.append(ptr[1:] + base)
            base += int(ptr[-1])
        ptrs.append(np.concatenate(out))
    return MolGraphs(*arrays, *ptrs, [e for p in parts for e in p.errors])


def featurize_graphs(smiles: Sequence[str], n_jobs: int | None = None,
                     chunk_size: int = CHUNK_SIZE) -> MolGraphs:
    """Graphs of ``smiles``; in a process pool for large inputs (same result as serial).

    Args:
        smiles: SMILES strings.
        n_jobs: processes (default ``min(cpu_count, 8)``); in-process when 1, for fewer than
            :data:`MIN_PARALLEL` molecules, or inside a daemonic process.
        chunk_size: molecules per work unit.
    """
    smiles = list(smiles)
    n_jobs = max(1, min(os.cpu_count() or 1, 8)) if n_jobs is None else max(1, int(n_jobs))
    if n_jobs == 1 or len(smiles) < MIN_PARALLEL or mp.current_process().daemon:
        return _featurize_serial(smiles)
    chunks = [smiles[s:s + chunk_size] for s in range(0, len(smiles), chunk_size)]
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else None)
    with ctx.Pool(min(n_jobs, len(chunks))) as pool:
        parts = pool.map(_work, chunks)
    return merge(parts)


# -- datasets and batches ------------------------------------------------------------------------
class GraphDataset(Dataset):
    """Molecule graphs with labels ``y`` (n, T) and optional molecule-level features ``mol_x``.

    Item ``i`` is a tuple ``(graph arrays, y[i], mol_x[i] or None)``; batch with :func:`collate_graphs`.
    """

    def __init__(self, graphs: MolGraphs, y: np.ndarray, mol_x: np.ndarray | None = None) -> None:
        if len(y) != len(graphs) or (mol_x is not None and len(mol_x) != len(graphs)):
            raise ValueError(f"graphs ({len(graphs)}), y ({len(y)}) and mol_x differ in length")
        self.graphs = graphs
        self.y = np.asarray(y, dtype=np.float32)
        self.mol_x = None if mol_x is None else np.asarray(mol_x, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, index: int) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray | None]:
        return self.graphs.graph(index), self.y[index], None if self.mol_x is None else self.mol_x[index]


def collate_graphs(items: Sequence[tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray | None]]
                   ) -> dict[str, Tensor]:
    """Batch molecule graphs into one disconnected graph.

    Returns a dict of tensors (all survive ``{k: v.to(device)}``):

    - ``atom_x`` (N, ATOM_FDIM) float32, ``bond_x`` (E, BOND_FDIM) float32, one row per *directed*
      edge;
    - ``edge_src``, ``edge_dst`` (E,) int64: edge ``e`` goes from atom ``edge_src[e]`` to
      ``edge_dst[e]`` (batch-global atom indices); bond ``k`` of the batch gives edges ``2k``
      (begin->end) and ``2k+1`` (end->begin);
    - ``edge_rev`` (E,) int64: index of the reverse edge (``edge_src[edge_rev] == edge_dst``);
    - ``atom_batch`` (N,) int64: molecule of each atom; ``num_atoms`` (B,) int64;
    - ``y`` (B, T) float32 (NaN = missing); ``mol_x`` (B, D) float32 when the items carry
      molecule-level features.
    """
    graphs = [it[0] for it in items]
    n_atoms = np.array([len(g[0]) for g in graphs], dtype=np.int64)
    n_bonds = np.array([len(g[2]) for g in graphs], dtype=np.int64)
    atom_start = np.concatenate([[0], np.cumsum(n_atoms)[:-1]]).astype(np.int64)
    a_codes = np.concatenate([g[0] for g in graphs]) if graphs else _EMPTY[0]
    a_floats = np.concatenate([g[1] for g in graphs]) if graphs else _EMPTY[1]
    ends = (np.concatenate([g[2] for g in graphs]) if graphs else _EMPTY[2]).astype(np.int64)
    b_codes = np.concatenate([g[3] for g in graphs]) if graphs else _EMPTY[3]
    b_floats = np.concatenate([g[4] for g in graphs]) if graphs else _EMPTY[4]
    ends += np.repeat(atom_start, n_bonds)[:, None]
    n_edges = 2 * len(ends)
    src = np.empty(n_edges, dtype=np.int64)
    dst = np.empty(n_edges, dtype=np.int64)
    src[0::2], dst[0::2] = ends[:, 0], ends[:, 1]
    src[1::2], dst[1::2] = ends[:, 1], ends[:, 0]
    bond_x = np.repeat(expand_bonds(b_codes, b_floats), 2, axis=0)
    batch: dict[str, Tensor] = {
        "atom_x": torch.from_numpy(expand_atoms(a_codes, a_floats)),
        "bond_x": torch.from_numpy(bond_x),
        "edge_src": torch.from_numpy(src),
        "edge_dst": torch.from_numpy(dst),
        "edge_rev": torch.from_numpy(np.arange(n_edges, dtype=np.int64) ^ 1),
        "atom_batch": torch.from_numpy(np.repeat(np.arange(len(graphs), dtype=np.int64), n_atoms)),
        "num_atoms": torch.from_numpy(n_atoms),
        TARGET: torch.from_numpy(np.stack([it[1] for it in items]).astype(np.float32, copy=False)),
    }
    if items and items[0][2] is not None:
        batch["mol_x"] = torch.from_numpy(np.stack([it[2] for it in items]).astype(np.float32, copy=False))
    return batch
