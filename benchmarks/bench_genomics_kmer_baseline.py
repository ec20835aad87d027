"""k-mer logistic-regression baselines for the binding benchmarks, on the same data as the presets.

For ``deepbind_srf`` and ``pum2`` this builds the exact training / validation / test splits of the
dltk datamodules (``TFBindingDataModule``, ``RBPBindingDataModule`` with their preset settings:
three seeded dinucleotide shuffles per peak as negatives for SRF, split seed 0), counts the unambiguous k-mers of each
sequence and both strands for SRF (:func:`dltk_genomics.encoding.kmer_counts`; default k = 5,
1,024 features), scales them by log1p, fits scikit-learn's L2 logistic regression for each C in a
small grid, picks C on the validation ROC-AUC, and reports that model's test ROC-AUC beside the
figure the data MANIFEST states (SRF 0.912, PUM2 0.858).

Usage::

    DLTK_DATA_DIR=/path/to/data python benchmarks/bench_genomics_kmer_baseline.py [--k 5] [--json out.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import sys
import tempfile

import numpy as np

MANIFEST = {"deepbind_srf": 0.912, "pum2": 0.858}


def features(codes: np.ndarray, k: int, both_strands: bool) -> np.ndarray:
    from dltk_genomics import encoding

    x = encoding.kmer_counts(codes, k)
    if both_strands:
        x = x + encoding.kmer_counts(encoding.reverse_complement(codes), k)
    return np.log1p(x)


def evaluate(name: str, datamodule, k: int, both_strands: bool) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    datamodule.setup()
    parts = {}
    for part, ds in (("train", datamodule.train_dataset), ("val", datamodule.val_dataset),
                     ("test", datamodule.test_dataset)):
        codes = ds.arrays["x"].numpy()
        parts[part] = (features(codes, k, both_strands), ds.arrays["y"].numpy()[:, 0])
    scores = {}
    best = None
    for c in (0.001, 0.003, 0.01, 0.1, 1.0):
        model = LogisticRegression(C=c, max_iter=2000)
        model.fit(*parts["train"])
        val = roc_auc_score(parts["val"][1], model.predict_proba(parts["val"][0])[:, 1])
        scores[c] = val
        if best is None or val > best[1]:
            best = (c, val, model)
    c, val, model = best
    test = roc_auc_score(parts["test"][1], model.predict_proba(parts["test"][0])[:, 1])
    print(f"{name}: {k}-mer logistic regression, C chosen on validation = {c} (val ROC-AUC "
          + ", ".join(f"C={cc}: {v:.3f}" for cc, v in scores.items())
          + f"); test ROC-AUC {test:.3f} (MANIFEST: {MANIFEST[name]:.3f})")
    return {"k": k, "C": c, "val_auroc": val, "test_auroc": test, "manifest": MANIFEST[name]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--json", help="write the results here")
    ns = ap.parse_args(argv)
    os.environ.setdefault("DLTK_CACHE", tempfile.mkdtemp(prefix="dltk-kmer-"))
    from dltk_genomics.seq_datamodules import RBPBindingDataModule, TFBindingDataModule

    results = {
        "deepbind_srf": evaluate("deepbind_srf", TFBindingDataModule(negatives_per_positive=3), ns.k,
                                 both_strands=True),
        "pum2": evaluate("pum2", RBPBindingDataModule(), ns.k, both_strands=False),
    }
    if ns.json:
        with open(ns.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
