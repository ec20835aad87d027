"""ECFP against RDKit bit for bit, parallel == serial, invalid SMILES, the on-disk feature cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rdkit")

from rdkit import Chem, DataStructs  # noqa: E402
from rdkit.Chem import AllChem, rdFingerprintGenerator  # noqa: E402
from rdkit.rdBase import BlockLogs  # noqa: E402

from dltk.data import cache_dir  # noqa: E402
from dltk_chem import featurize as fz  # noqa: E402
from dltk_chem.tox21_challenge import load_tox21_challenge  # noqa: E402
from dltk_chem.featurize import ECFP, cache_key, featurize, featurize_cached  # noqa: E402


@pytest.fixture(scope="module")
def real_smiles(data_root: Path) -> list[str]:
    """~600 unique real Tox21 SMILES (training set, includes unparsable ones)."""
    smiles = list(dict.fromkeys(load_tox21_challenge()["train"].smiles))
    bad = [s for s in smiles if Chem.MolFromSmiles(s) is None]
    return smiles[:600] + bad


def test_ecfp_bits_match_rdkit(real_smiles: list[str]) -> None:
    X, valid = featurize(ECFP(), real_smiles, progress=False)
    assert X.dtype == np.uint8 and X.shape == (len(real_smiles), 2048)
    checked = 0
    with BlockLogs():  # the legacy call prints a deprecation warning per molecule
        for i, smi in enumerate(real_smiles):
            mol = Chem.MolFromSmiles(smi)
            assert valid[i] == (mol is not None)
            if mol is None:
                assert not X[i].any()
                continue
            ref = np.zeros(2048)
            DataStructs.ConvertToNumpyArray(AllChem.GetMorganFingerprintAsBitVect(mol, 2, nBits=2048), ref)
            assert np.array_equal(X[i], ref.astype(np.uint8)), smi
            checked += 1
    assert checked >= 500


def test_ecfp_counts_match_rdkit(real_smiles: list[str]) -> None:
    X, valid = featurize(ECFP(radius=3, n_bits=1024, counts=True), real_smiles, progress=False)
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=3, fpSize=1024)
    saw_count_above_one = False
    for i, smi in enumerate(real_smiles):
        if not valid[i]:
            continue
        ref = np.zeros(1024, dtype=np.int64)
        for bit, count in gen.GetCountFingerprint(Chem.MolFromSmiles(smi)).GetNonzeroElements().items():
            ref[bit] = count
        assert np.array_equal(X[i], np.minimum(ref, 255).astype(np.uint8)), smi
        saw_count_above_one |= bool((ref > 1).any())
    assert saw_count_above_one


def test_counts_clip_at_255() -> None:
    X, valid = featurize(ECFP(radius=0, n_bits=64, counts=True), ["C" * 300], progress=False)
    assert valid[0] and X.max() == 255 and X.dtype == np.uint8


def test_chirality_setting_changes_features() -> None:
    smiles = ["C[C@H](N)C(=O)O", "C[C@@H](N)C(=O)O"]
    plain, _ = featurize(ECFP(), smiles, progress=False)
    chiral, _ = featurize(ECFP(use_chirality=True), smiles, progress=False)
    assert np.array_equal(plain[0], plain[1])
    assert not np.array_equal(chiral[0], chiral[1])


def test_invalid_smiles_flagged() -> None:
    smiles = ["CCO", "C1CC", "", "not a smiles", "c1ccccc1", "[Pt++]([Cl-])([Cl-])([Cl-])[Cl-]"]
    X, valid = featurize(ECFP(), smiles, progress=False)
    assert valid.tolist() == [True, False, False, False, True, Chem.MolFromSmiles(smiles[5]) is not None]
    assert not X[~valid].any()
    assert X[valid].any(axis=1).all()


@pytest.mark.parametrize("counts", [False, True])
def test_parallel_equals_serial(real_smiles: list[str], counts: bool,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fz, "MIN_PARALLEL", 0)  # use the pool even for this small input
    featurizer = ECFP(counts=counts)
    serial = featurize(featurizer, real_smiles, n_jobs=1, progress=False)
    parallel = featurize(featurizer, real_smiles, n_jobs=2, progress=False, chunk_size=97)
    assert np.array_equal(serial[0], parallel[0])
    assert np.array_equal(serial[1], parallel[1])
    assert not parallel[1].all()  # the unparsable ones came back flagged


def test_empty_input() -> None:
    X, valid = featurize(ECFP(n_bits=16), [], progress=False)
    assert X.shape == (0, 16) and valid.shape == (0,)


def test_featurizer_settings_and_pickling() -> None:
    import pickle

    f = ECFP(radius=3, n_bits=512, counts=True, use_chirality=True)
    assert f.settings() == {"radius": 3, "n_bits": 512, "counts": True, "use_chirality": True}
    f.transform(["CCO"])  # builds the (unpicklable) RDKit generator
    g = pickle.loads(pickle.dumps(f))
    assert g.settings() == f.settings()
    assert np.array_equal(g.transform(["CCO"])[0], f.transform(["CCO"])[0])


# --------------------------------------------------------------------------------------------------
# Cache


def test_cache_hit_identical(real_smiles: list[str]) -> None:
    smiles = real_smiles[:200]
    X1, v1, hit1 = featurize_cached(ECFP(n_bits=1024), smiles, progress=False)
    X2, v2, hit2 = featurize_cached(ECFP(n_bits=1024), smiles, progress=False)
    assert (hit1, hit2) == (False, True)
    assert np.array_equal(X1, X2) and np.array_equal(v1, v2)
    assert X2.dtype == np.uint8 and v2.dtype == bool
    folder = cache_dir("features")
    path = folder / f"{cache_key(ECFP(n_bits=1024), smiles)}.npz"
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["X", "valid"]
        assert np.array_equal(npz["X"], X1)
    assert not [p for p in os.listdir(folder) if not p.endswith(".npz") or p.startswith(".")]


def test_cache_key_depends_on_settings_and_content() -> None:
    smiles = ["CCO", "c1ccccc1"]
    keys = {
        cache_key(ECFP(), smiles),
        cache_key(ECFP(radius=3), smiles),
        cache_key(ECFP(n_bits=1024), smiles),
        cache_key(ECFP(counts=True), smiles),
        cache_key(ECFP(use_chirality=True), smiles),
        cache_key(ECFP(), smiles[::-1]),
        cache_key(ECFP(), ["CC", "Oc1ccccc1"]),  # same concatenation, different split
        cache_key(ECFP(), ["CCOc1ccccc1"]),
    }
    assert len(keys) == 8
    assert cache_key(ECFP(), list(smiles)) == cache_key(ECFP(), tuple(smiles))


def test_cache_different_settings_miss() -> None:
    smiles = ["CCO", "CCN", "CCC"]
    _, _, hit = featurize_cached(ECFP(n_bits=256), smiles, progress=False)
    assert not hit
    X, _, hit = featurize_cached(ECFP(n_bits=256, counts=True), smiles, progress=False)
    assert not hit and X.shape == (3, 256)


def test_corrupt_cache_entry_is_recomputed() -> None:
    smiles = ["CCO", "CCCl"]
    X, _, _ = featurize_cached(ECFP(n_bits=128), smiles, progress=False)
    path = cache_dir("features") / f"{cache_key(ECFP(n_bits=128), smiles)}.npz"
    path.write_bytes(b"truncated")
    X2, _, hit = featurize_cached(ECFP(n_bits=128), smiles, progress=False)
    assert not hit and np.array_equal(X, X2)
    assert featurize_cached(ECFP(n_bits=128), smiles, progress=False)[2]


def test_persistent_pool_equals_serial_for_every_block(real_smiles: list[str]) -> None:
    """One pool reused across calls and featurizers (as `dltk predict` does per chunk) gives exactly
    the serial result, NaN patterns of descriptors included."""
    smiles = real_smiles[:300] + ["not a smiles", ""]
    pool = fz.make_pool(2)
    assert pool is not None
    try:
        for featurizer in (ECFP(counts=True), fz.MACCS(), fz.RDKitDescriptors()):
            X_serial, v_serial = featurize(featurizer, smiles, n_jobs=1, progress=False)
            X_pool, v_pool = featurize(featurizer, smiles, progress=False, pool=pool, chunk_size=64)
            np.testing.assert_array_equal(v_serial, v_pool)
            np.testing.assert_array_equal(X_serial, X_pool)  # equal_nan for floats by default
            assert not v_pool[-2:].any()
    finally:
        pool.close()
        pool.join()
    assert fz.make_pool(1) is None


def test_descriptor_scaler_uses_training_statistics_only() -> None:
    train = np.array([[1.0, 10.0], [2.0, np.nan], [3.0, 30.0], [4.0, 40.0]], dtype=np.float32)
    scaler = fz.DescriptorScaler.fit(train)
    assert scaler.median.tolist() == [2.5, 30.0]
    test = np.array([[2.5, np.inf], [100.0, 30.0]], dtype=np.float32)
    scaled, imputed = scaler.transform(test)
    assert imputed == 1 and scaled[0].tolist() == [0.0, 0.0]  # inf -> training median -> 0
    assert scaled[1, 0] == scaler.clip  # an outlier is clipped, not passed through
