"""``dltk explain`` (chem): atom-level occlusion attributions, on a tiny model trained in-process.

The module trains once (about 40 s on two CPU cores): ``dltk train --plugin chem --task csv`` on
3,000 real MoleculeNet Tox21 structures with two labels that are pure substructure tests, ``nitro``
(``[N+](=O)[O-]``) and ``halogen`` (Cl, Br or I), ECFP bits only, 2 epochs. 80 other structures
(40 nitro without halogen, 40 halogen without nitro; none in the training file) are held out for
the attribution checks.

Acceptance margins (attribution = drop in predicted probability when the atom is masked), over the
40 held-out positives of each task: the mean over molecules of (mean attribution of the
substructure's atoms - mean attribution of the other atoms) is >= 0.20 (measured: 0.48 nitro,
0.44 halogen), and the substructure's atoms score higher in >= 70% of the molecules (measured:
37/40 and 31/40; the others are mostly molecules with two copies of the group, where masking one
copy leaves the prediction saturated, or a halogen compound the 2-epoch model misses).
"""

from __future__ import annotations

import csv
import gzip
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("rdkit")

from rdkit import Chem  # noqa: E402
from rdkit.rdBase import BlockLogs  # noqa: E402

from testutil import preserved_environ
from dltk.cli import main  # noqa: E402
from dltk.errors import ConfigError, DataError  # noqa: E402
from dltk.run import Run  # noqa: E402
from dltk_chem.explain import _Features, atom_attributions, attribute_many  # noqa: E402
from dltk_chem.featurize import ECFP  # noqa: E402

PATTERNS = {"nitro": "[N+](=O)[O-]", "halogen": "[Cl,Br,I]"}
TASKS = list(PATTERNS)
N_TRAIN = 3000
N_HELD = 40
MIN_MEAN_MARGIN = 0.20
MIN_WIN_FRACTION = 0.70
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NITROTOLUENE = "Cc1ccc(cc1)[N+](=O)[O-]"
BROMOBENZENE = "Brc1ccccc1"




def _labels(mol: Chem.Mol) -> dict[str, int]:
    return {task: int(mol.HasSubstructMatch(Chem.MolFromSmarts(p))) for task, p in PATTERNS.items()}


@pytest.fixture(scope="module")
def molecules(data_root: Path) -> tuple[list[tuple[str, dict[str, int]]], list[tuple[str, dict[str, int]]]]:
    """(training rows, held-out rows) from the real MoleculeNet Tox21 structures, labelled by
    substructure; unique by canonical SMILES, so no held-out structure is in the training file."""
    path = data_root / "chem" / "moleculenet" / "tox21.csv.gz"
    with gzip.open(path, "rt") as fh:
        smiles = [row["smiles"] for row in csv.DictReader(fh)]
    rows, seen = [], set()
    with BlockLogs():
        for s in smiles:
            mol = Chem.MolFromSmiles(s)
            key = Chem.MolToSmiles(mol) if mol is not None else None
            if key is None or key in seen:
                continue
            seen.add(key)
            rows.append((s, _labels(mol)))
    random.Random(0).shuffle(rows)
    held = ([r for r in rows if r[1]["nitro"] and not r[1]["halogen"]][:N_HELD]
            + [r for r in rows if r[1]["halogen"] and not r[1]["nitro"]][:N_HELD])
    held_smiles = {s for s, _ in held}
    train = [r for r in rows if r[0] not in held_smiles][:N_TRAIN]
    return train, held


@pytest.fixture(scope="module")
def run(molecules: tuple[list, list], tmp_path_factory: pytest.TempPathFactory) -> Path:
    train, _ = molecules
    root = tmp_path_factory.mktemp("explain")
    data = root / "substructures.csv"
    pd.DataFrame([{"smiles": s, **labels} for s, labels in train]).to_csv(data, index=False)
    run_dir = root / "run"
    with preserved_environ():
        code = main(["train", "--plugin", "chem", "--task", "csv", "--data.path", str(data),
                     "--data.target_columns", ",".join(TASKS), "--data.features", "ecfp",
                     "--trainer.max_epochs", "2", "--run-dir", str(run_dir)])
    assert code == 0
    return run_dir


@pytest.fixture(scope="module")
def loaded(run: Path) -> tuple[object, object]:
    """The run's best model and a fresh datamodule, as ``dltk explain`` builds them."""
    handle = Run.open(run)
    return handle.model("best"), handle.datamodule()


def _assert_png(path: Path) -> None:
    from PIL import Image

    assert path.read_bytes()[:8] == PNG_MAGIC, path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) >= 300, image.size


def test_explain_writes_a_png_per_molecule_for_its_top_task(run: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["explain", "--run", str(run), "--smiles", NITROTOLUENE, "--smiles", BROMOBENZENE,
                 "--output-dir", str(out)])
    assert code == 0
    # default task = the highest predicted probability: nitro for nitrotoluene, halogen for PhBr
    assert sorted(p.name for p in out.iterdir()) == ["explain_0_nitro.png", "explain_1_halogen.png"]
    for path in out.iterdir():
        _assert_png(path)
    printed = capsys.readouterr().out
    assert f"dltk explain: wrote {out / 'explain_0_nitro.png'}" in printed


def test_task_all_writes_every_task_into_the_run(run: Path) -> None:
    assert main(["explain", "--run", str(run), "--smiles", NITROTOLUENE, "--task", "all"]) == 0
    written = sorted(p.name for p in (run / "explain").iterdir())
    assert written == ["explain_0_halogen.png", "explain_0_nitro.png"]  # no temporary files left
    assert main(["explain", "--run", str(run), "--smiles", "CCO", "--task", "halogen",
                 "--output-dir", str(run / "explain" / "ethanol")]) == 0
    _assert_png(run / "explain" / "ethanol" / "explain_0_halogen.png")


def test_weights_one_finite_value_per_heavy_atom(loaded: tuple, molecules: tuple, run: Path,
                                                  tmp_path: Path) -> None:
    """Also: the intact prediction equals what ``dltk predict`` reports for the molecule."""
    model, datamodule = loaded
    _, held = molecules
    smiles = [s for s, _ in held[:5]] + [held[-1][0], "C", "[Na+].[Cl-]"]
    results = attribute_many(model, smiles, datamodule)
    for s, result in zip(smiles, results):
        mol = Chem.MolFromSmiles(s)
        assert result.weights.shape == (mol.GetNumHeavyAtoms(), len(TASKS)), s
        assert np.isfinite(result.weights).all() and np.isfinite(result.prediction).all()
        assert ((result.prediction >= 0) & (result.prediction <= 1)).all()
        for task in TASKS:
            assert result.task_weights(task).shape == (mol.GetNumHeavyAtoms(),)
    source = tmp_path / "in.csv"
    pd.DataFrame({"smiles": smiles}).to_csv(source, index=False)
    output = tmp_path / "predicted.csv"
    assert main(["predict", "--run", str(run), "--input", str(source), "--output", str(output)]) == 0
    predicted = pd.read_csv(output)[TASKS].to_numpy()
    np.testing.assert_allclose(np.stack([r.prediction for r in results]), predicted, atol=1e-5)


@pytest.mark.parametrize("task", TASKS)
def test_substructure_atoms_get_the_highest_attribution(loaded: tuple, molecules: tuple, task: str) -> None:
    model, datamodule = loaded
    _, held = molecules
    positives = [s for s, labels in held if labels[task]]
    assert len(positives) == N_HELD
    pattern = Chem.MolFromSmarts(PATTERNS[task])
    margins = []
    for result in attribute_many(model, positives, datamodule):
        weights = result.task_weights(task)
        inside = np.zeros(len(weights), dtype=bool)
        inside[[i for match in result.mol.GetSubstructMatches(pattern) for i in match]] = True
        assert inside.any() and not inside.all()
        margins.append(weights[inside].mean() - weights[~inside].mean())
    margins = np.array(margins)
    assert margins.mean() >= MIN_MEAN_MARGIN, margins.round(3)
    assert (margins > 0).mean() >= MIN_WIN_FRACTION, margins.round(3)


def test_ecfp_occlusion_removes_exactly_the_environments_covering_the_atom() -> None:
    """Against an independent computation with FindAtomEnvironmentOfRadiusN, counts and bits."""
    from rdkit.Chem import rdFingerprintGenerator

    smiles = "CC(=O)Nc1ccc(O)cc1Cl"
    mol = Chem.MolFromSmiles(smiles)
    for counts in (True, False):
        features = _Features({"features": "ecfp", "ecfp": {"radius": 2, "n_bits": 2048, "counts": counts,
                                                           "use_chirality": False}})
        rows = features.ecfp_occluded(mol)
        ecfp = ECFP(radius=2, n_bits=2048, counts=counts)
        np.testing.assert_array_equal(rows[0], ecfp.transform([smiles])[0][0])
        info = rdFingerprintGenerator.AdditionalOutput()
        info.AllocateBitInfoMap()
        full = ecfp.generator.GetCountFingerprintAsNumPy(mol, additionalOutput=info).astype(int)
        for atom in range(mol.GetNumAtoms()):
            expected = full.copy()
            for bit, environments in info.GetBitInfoMap().items():
                for centre, radius in environments:
                    if radius == 0:
                        covered = {centre}
                    else:
                        bonds = Chem.FindAtomEnvironmentOfRadiusN(mol, radius, centre)
                        covered = {a for b in bonds for a in (mol.GetBondWithIdx(b).GetBeginAtomIdx(),
                                                              mol.GetBondWithIdx(b).GetEndAtomIdx())}
                    if atom in covered:
                        expected[bit] -= 1
            expected = expected if counts else (expected > 0).astype(int)
            np.testing.assert_array_equal(rows[1 + atom], expected, err_msg=f"atom {atom}, counts={counts}")


def test_all_feature_blocks(molecules: tuple, tmp_path: Path) -> None:
    """ECFP counts + MACCS + scaled RDKit 2D descriptors (untrained network: the checks are on
    the feature pipeline): the intact vector equals the datamodule's prediction features (checked
    inside attribute_many), every atom mask changes the inputs, the weights are finite."""
    from dltk_chem.datamodules import SmilesCsvDataModule
    from dltk_chem.models import FingerprintMLP

    train, held = molecules
    path = tmp_path / "small.csv"
    pd.DataFrame([{"smiles": s, **labels} for s, labels in train[:60]]).to_csv(path, index=False)
    settings = dict(path=str(path), target_columns=TASKS, features="ecfp+maccs+rdkit2d", counts=True)
    info = SmilesCsvDataModule(**settings).data_info()
    model = FingerprintMLP(hidden_dim=32, num_layers=1, data_info=info).eval()
    smiles = [held[0][0], held[-1][0], "c1ccccc1O"]
    results = attribute_many(model, smiles, SmilesCsvDataModule(**settings))
    features = _Features(info)
    for s, result in zip(smiles, results):
        X = features.occluded(s, result.mol)
        assert X.shape == (result.mol.GetNumAtoms() + 1, info["in_features"])
        assert (np.abs(X[1:] - X[0]).sum(axis=1) > 0).all()
        rdkit2d = slice(2048 + 167, None)
        assert (np.abs(X[1:, rdkit2d] - X[0, rdkit2d]).sum(axis=1) > 0).all()
        assert np.isfinite(result.weights).all()


def test_invalid_smiles_exits_2_with_one_line(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "dltk.cli", "explain", "--run", str(run), "--smiles", "CCO",
                           "--smiles", "C1CC", "--output-dir", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dltk: error: ") and "'C1CC'" in lines[0] and "invalid SMILES" in lines[0]
    assert not out.exists()  # nothing written, not even for the valid first molecule


def test_unknown_task_lists_the_tasks(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--run", str(run), "--smiles", "CCO", "--task", "toxicity"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "unknown task 'toxicity'" in err[0] and "nitro, halogen" in err[0]


def test_errors_from_the_python_api(loaded: tuple) -> None:
    model, _ = loaded
    with pytest.raises(DataError, match="invalid SMILES"):
        atom_attributions(model, "not_a_smiles")
    with pytest.raises(DataError, match="empty SMILES"):
        atom_attributions(model, "  ")
    result = atom_attributions(model, NITROTOLUENE)
    with pytest.raises(ConfigError, match="nitro, halogen"):
        result.task_weights("toxicity")
    assert result.default_task() == "nitro"
