"""Concurrent writers never corrupt a cache: several processes downloading the same file, or
featurizing the same molecules, into one cache directory at the same moment all get verified,
identical results, and no temporary file is left behind."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

FETCH = r"""
import json, sys, time
from dltk.data.registry import RemoteFile, fetch
go = float(sys.argv[3])
while time.time() < go:
    time.sleep(0.005)
path = fetch(RemoteFile("big/blob.bin", sys.argv[1], sys.argv[2]))
print(json.dumps(str(path)))
"""

FEATURIZE = r"""
import json, sys, time
import numpy as np
from dltk_chem.featurize import ECFP, featurize_cached
smiles = json.loads(open(sys.argv[1]).read())
go = float(sys.argv[2])
while time.time() < go:
    time.sleep(0.005)
X, valid, hit = featurize_cached(ECFP(radius=2, n_bits=1024), smiles, n_jobs=1, progress=False)
np.save(sys.argv[3], X)
print(json.dumps({"hit": hit, "valid": int(valid.sum())}))
"""


def _start_together(scripts: list[list[str]], cache: Path) -> list[str]:
    env = {**__import__("os").environ, "DLTK_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    env.pop("DLTK_DATA_DIR", None)
    procs = [subprocess.Popen([sys.executable, "-c", *s], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for s in scripts]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        outs.append(out.strip().splitlines()[-1])
    return outs


def test_concurrent_downloads_into_one_cache(tmp_path: Path) -> None:
    blob = tmp_path / "server" / "blob.bin"
    blob.parent.mkdir()
    blob.write_bytes(np.random.default_rng(0).bytes(8 << 20))
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    go = time.time() + 4.0  # every process starts its download at the same moment
    outs = _start_together([[FETCH, blob.as_uri(), digest, str(go)] for _ in range(4)], cache)
    paths = {json.loads(o) for o in outs}
    assert paths == {str(cache / "big" / "blob.bin")}
    assert hashlib.sha256((cache / "big" / "blob.bin").read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in (cache / "big").iterdir()) == ["blob.bin"]  # no .part left


def test_concurrent_feature_cache_writers(tmp_path: Path) -> None:
    pytest.importorskip("rdkit")
    smiles = [f"C{'C' * (i % 11)}O{'N' * (i // 11)}c1ccccc1" for i in range(1500)]
    src = tmp_path / "smiles.json"
    src.write_text(json.dumps(smiles))
    cache = tmp_path / "cache"
    go = time.time() + 5.0
    outs = _start_together([[FEATURIZE, str(src), str(go), str(tmp_path / f"X{k}.npy")] for k in range(3)], cache)
    results = [json.loads(o) for o in outs]
    assert all(r["valid"] == len(smiles) for r in results)
    arrays = [np.load(tmp_path / f"X{k}.npy", allow_pickle=False) for k in range(3)]
    for a in arrays[1:]:
        np.testing.assert_array_equal(a, arrays[0])
    entries = list((cache / "features").iterdir())
    assert [e.suffix for e in entries] == [".npz"], entries  # one entry, no temporary files
    with np.load(entries[0], allow_pickle=False) as cached:
        np.testing.assert_array_equal(cached["X"], arrays[0])
    # a fourth process now hits the cache
    again = _start_together([[FEATURIZE, str(src), "0", str(tmp_path / "X9.npy")]], cache)
    assert json.loads(again[0])["hit"] is True
