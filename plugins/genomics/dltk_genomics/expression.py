"""Expression matrices from AnnData (``.h5ad``) or scanpy's bundled ``pbmc68k_reduced``.

``use="raw"`` takes ``adata.raw.X`` (for pbmc68k_reduced: log-normalised counts, 765 genes) and falls
back to ``adata.X`` when there is no ``raw``; ``use="X"`` takes ``adata.X`` as stored (for
pbmc68k_reduced: already z-scored per gene over all 700 cells, i.e. with statistics that include the
test cells, which is why ``raw`` is the default). The datamodules then standardise every gene with
the training cells' mean and standard deviation only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from dltk.errors import ConfigError, DataError

PBMC68K = "pbmc68k_reduced"


def load_anndata(path: str | None) -> tuple[Any, str]:
    """``(adata, source)``: the file at ``path`` (``.h5ad``) or scanpy's bundled pbmc68k_reduced."""
    import anndata

    if not path:
        import scanpy as sc

        return sc.datasets.pbmc68k_reduced(), f"scanpy.datasets.{PBMC68K}"
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "AnnData file not found")
    try:
        adata = anndata.read_h5ad(p)
    except Exception as exc:  # h5py/anndata raise many types for a file that is not an h5ad
        raise DataError(p, f"cannot read as AnnData .h5ad ({type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:160]})") from exc
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise DataError(p, f"empty AnnData ({adata.n_obs} cells x {adata.n_vars} genes)")
    return adata, str(p)


def expression_matrix(adata: Any, use: Literal["raw", "X"], source: str) -> tuple[np.ndarray, list[str]]:
    """Dense float32 ``(cells, genes)`` matrix and gene names; non-finite values are an error."""
    if use not in ("raw", "X"):
        raise ConfigError(f"data.use must be 'raw' or 'X', got {use!r}")
    holder = adata.raw if use == "raw" and adata.raw is not None else adata
    X = holder.X
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    X = X.astype(np.float32, copy=False)
    bad = ~np.isfinite(X)
    if bad.any():
        cell, gene = np.argwhere(bad)[0]
        raise DataError(source, f"{int(bad.sum())} non-finite expression values (first: cell "
                                f"{adata.obs_names[cell]!r}, gene {holder.var_names[gene]!r})")
    genes = [str(g) for g in holder.var_names]
    if len(set(genes)) != len(genes):
        raise DataError(source, "duplicate gene names in var_names (run adata.var_names_make_unique())")
    return X, genes


def labels(adata: Any, key: str, source: str) -> np.ndarray:
    """``obs[key]`` as an object array of strings, ``None`` where missing.

    Raises:
        DataError: ``key`` is not an obs column; the message lists the available ones.
    """
    if key not in adata.obs.columns:
        raise DataError(source, f"no obs column {key!r} for the labels; available obs keys: "
                                f"{', '.join(map(str, adata.obs.columns)) or '(none)'}", field=key)
    column = adata.obs[key]
    values = column.astype(object).to_numpy()
    missing = column.isna().to_numpy()
    out = np.array([None if m else str(v) for v, m in zip(values, missing)], dtype=object)
    return out


def align_genes(X: np.ndarray, genes: list[str], wanted: list[str],
                fill: np.ndarray) -> tuple[np.ndarray, int]:
    """Columns of ``X`` reordered to ``wanted``; genes absent from ``genes`` take ``fill`` (the
    training mean). Returns the matrix and the number of missing genes."""
    index = {g: i for i, g in enumerate(genes)}
    out = np.empty((X.shape[0], len(wanted)), dtype=np.float32)
    missing = 0
    for j, gene in enumerate(wanted):
        i = index.get(gene)
        if i is None:
            out[:, j] = fill[j]
            missing += 1
        else:
            out[:, j] = X[:, i]
    return out, missing


def read_gene_list(path: str) -> list[str]:
    """One gene name per line (``#`` comments and blank lines skipped; first column of a TSV/CSV)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "gene list not found")
    genes = []
    for line in p.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            genes.append(line.replace(",", "\t").split("\t")[0].strip())
    if not genes:
        raise DataError(p, "empty gene list")
    return list(dict.fromkeys(genes))
