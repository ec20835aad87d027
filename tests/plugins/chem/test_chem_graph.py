"""Molecular graphs and the D-MPNN: featurization, batching, the model, and a CLI round trip.

Unit tests use hand-picked molecules; the end-to-end test trains ``--task csv_dmpnn`` for two epochs
on 150 real ESOL molecules (plus two invalid rows) in-process, then predicts a file holding invalid
SMILES with ``dltk predict``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("rdkit")

from rdkit import Chem  # noqa: E402

from testutil import preserved_environ
from dltk_chem import graph  # noqa: E402
from dltk_chem.graph import (ATOM_FDIM, BOND_FDIM, GraphDataset, collate_graphs,  # noqa: E402
                             featurize_graphs, mol_from_smiles, mol_graph)
from dltk_chem.graph_models import DMPNN  # noqa: E402

ETHANOL, BENZENE, ACETATE, AMMONIUM = "CCO", "c1ccccc1", "CC(=O)[O-]", "[NH4+]"
INVALID = {"C1CC": "cannot parse", "not_a_smiles": "cannot parse",
           "C(C)(C)(C)(C)C": "cannot sanitize", "c1cccc1": "cannot sanitize", "": "empty"}


def batch_of(smiles: list[str], n_tasks: int = 2, mol_fdim: int = 0) -> dict[str, torch.Tensor]:
    graphs = featurize_graphs(smiles, n_jobs=1)
    assert graphs.valid.all()
    y = np.zeros((len(smiles), n_tasks), np.float32)
    rng = np.random.default_rng(0)
    mol_x = rng.normal(size=(len(smiles), mol_fdim)).astype(np.float32) if mol_fdim else None
    return collate_graphs([GraphDataset(graphs, y, mol_x)[i] for i in range(len(smiles))])


def info(n_tasks: int = 2, task_type: str = "classification", mol_fdim: int = 0) -> dict:
    return {"task_names": [f"t{i}" for i in range(n_tasks)], "task_type": task_type,
            "atom_fdim": ATOM_FDIM, "bond_fdim": BOND_FDIM, "mol_fdim": mol_fdim, "graph": graph.settings()}


# -- featurization -------------------------------------------------------------------------------
@pytest.mark.parametrize("smiles,atoms,bonds", [(ETHANOL, 3, 2), (BENZENE, 6, 6), (ACETATE, 4, 3),
                                                 (AMMONIUM, 1, 0)])
def test_feature_shapes_and_reverse_edges(smiles: str, atoms: int, bonds: int) -> None:
    b = batch_of([smiles])
    assert b["atom_x"].shape == (atoms, ATOM_FDIM) == (atoms, 133)
    assert b["bond_x"].shape == (2 * bonds, BOND_FDIM) == (2 * bonds, 14)
    src, dst, rev = b["edge_src"], b["edge_dst"], b["edge_rev"]
    assert src.shape == dst.shape == rev.shape == (2 * bonds,)
    assert torch.equal(src[rev], dst) and torch.equal(dst[rev], src)
    assert torch.equal(rev[rev], torch.arange(2 * bonds))
    assert bool((rev != torch.arange(2 * bonds)).all())
    assert torch.equal(b["bond_x"][rev], b["bond_x"])  # a bond's two directions share its features
    mol = Chem.MolFromSmiles(smiles)
    expected = {(bd.GetBeginAtomIdx(), bd.GetEndAtomIdx()) for bd in mol.GetBonds()}
    got = set(zip(src.tolist(), dst.tolist()))
    assert got == expected | {(j, i) for i, j in expected}
    # each atom: one element, degree, charge, chirality, H count and hybridization slot set
    assert torch.equal(b["atom_x"][:, :-2].sum(1), torch.full((atoms,), 6.0))
    assert torch.equal(b["bond_x"][:, :-2].sum(1), torch.full((2 * bonds,), 2.0))


def _slot(category: int, value: object) -> int:
    return int(graph.ATOM_OFFSETS[category]) + graph.ATOM_CATEGORIES[category].index(value)


def test_atom_and_bond_feature_values() -> None:
    x = batch_of([ETHANOL])["atom_x"]
    oxygen = x[2]
    # total degree counts hydrogens (as chemprop): O of ethanol has degree 2, one H
    assert oxygen[_slot(0, 8)] == 1 and oxygen[_slot(1, 2)] == 1 and oxygen[_slot(4, 1)] == 1
    assert oxygen[_slot(5, Chem.rdchem.HybridizationType.SP3)] == 1 and oxygen[-2] == 0
    assert oxygen[-1] == pytest.approx(0.15999, abs=1e-4)  # mass / 100
    assert x[0][_slot(4, 3)] == 1 and x[0][_slot(1, 4)] == 1  # CH3
    benzene = batch_of([BENZENE])
    assert bool((benzene["atom_x"][:, -2] == 1).all())  # aromatic
    assert bool((benzene["bond_x"][:, 3] == 1).all())  # bond type aromatic
    assert bool((benzene["bond_x"][:, -1] == 1).all()) and bool((benzene["bond_x"][:, -2] == 1).all())
    charged = batch_of([ACETATE])["atom_x"]
    assert charged[3][_slot(2, -1)] == 1 and charged[0][_slot(2, 0)] == 1
    assert batch_of([AMMONIUM])["atom_x"][0][_slot(2, 1)] == 1
    # an element outside 1..100 and a degree > 5 fall in the "other" slot
    codes, _ = graph.atom_codes(Chem.MolFromSmiles("[Og]"))
    assert codes[0, 0] == 100  # Z = 118 -> other


def test_invalid_smiles_are_flagged_not_raised() -> None:
    smiles = [ETHANOL, *INVALID, BENZENE]
    graphs = featurize_graphs(smiles, n_jobs=1)
    assert graphs.valid.tolist() == [True] + [False] * len(INVALID) + [True]
    for smi, reason in INVALID.items():
        err = graphs.errors[smiles.index(smi)]
        assert reason in err, (smi, err)
        assert mol_from_smiles(smi)[0] is None
        assert graphs.num_atoms(smiles.index(smi)) == 0
    kept = graphs.subset(graphs.valid)
    assert len(kept) == 2 and kept.num_atoms(0) == 3 and kept.num_atoms(1) == 6


def test_parallel_featurization_equals_serial(monkeypatch: pytest.MonkeyPatch) -> None:
    smiles = [ETHANOL, BENZENE, "C1CC", ACETATE, AMMONIUM, "CC(C)Cc1ccc(cc1)C(C)C(=O)O"] * 5
    serial = featurize_graphs(smiles, n_jobs=1)
    monkeypatch.setattr(graph, "MIN_PARALLEL", 1)
    parallel = featurize_graphs(smiles, n_jobs=2, chunk_size=7)
    for name in ("atom_codes", "atom_floats", "bond_ends", "bond_codes", "bond_floats", "atom_ptr",
                 "bond_ptr"):
        np.testing.assert_array_equal(getattr(serial, name), getattr(parallel, name), err_msg=name)
    assert serial.errors == parallel.errors


# -- batching ------------------------------------------------------------------------------------
def test_collate_indices() -> None:
    smiles = [ETHANOL, AMMONIUM, BENZENE, ACETATE]
    b = batch_of(smiles, mol_fdim=5)
    counts = [3, 1, 6, 4]
    assert b["num_atoms"].tolist() == counts
    assert b["atom_batch"].tolist() == [i for i, n in enumerate(counts) for _ in range(n)]
    assert b["atom_x"].shape == (sum(counts), ATOM_FDIM)
    assert b["edge_src"].shape == (2 * (2 + 0 + 6 + 3),)
    # edges stay inside their molecule and match each molecule's own graph, offset
    assert torch.equal(b["atom_batch"][b["edge_src"]], b["atom_batch"][b["edge_dst"]])
    assert torch.equal(b["edge_src"][b["edge_rev"]], b["edge_dst"])
    start = 0
    for smi, n in zip(smiles, counts):
        own = batch_of([smi])
        mine = b["atom_batch"][b["edge_src"]] == smiles.index(smi)
        assert torch.equal(b["edge_src"][mine] - start, own["edge_src"])
        assert torch.equal(b["atom_x"][start:start + n], own["atom_x"])
        start += n
    assert b["y"].shape == (4, 2) and b["mol_x"].shape == (4, 5)
    assert all(isinstance(v, torch.Tensor) for v in b.values())
    assert b["atom_x"].dtype == b["bond_x"].dtype == torch.float32
    assert b["edge_src"].dtype == b["atom_batch"].dtype == torch.int64
    moved = {k: v.to("meta") for k, v in b.items()}  # survives {k: v.to(device)}
    assert {k: v.shape for k, v in moved.items()} == {k: v.shape for k, v in b.items()}


# -- the model -----------------------------------------------------------------------------------
def _naive_dmpnn_atoms(model: DMPNN, b: dict[str, torch.Tensor]) -> torch.Tensor:
    """The D-MPNN written edge by edge, as in the paper."""
    src, dst = b["edge_src"].tolist(), b["edge_dst"].tolist()
    h0 = [model.act(model.W_i(torch.cat([b["atom_x"][s], b["bond_x"][e]]))) for e, s in enumerate(src)]
    h = list(h0)
    for _ in range(model.hparams.depth - 1):
        new = []
        for e, (v, w) in enumerate(zip(src, dst)):
            m = sum((h[k] for k in range(len(src)) if dst[k] == v and src[k] != w), torch.zeros_like(h0[0]))
            new.append(model.act(h0[e] + model.W_h(m)))
        h = new
    out = []
    for v in range(len(b["atom_x"])):
        m = sum((h[k] for k in range(len(src)) if dst[k] == v), torch.zeros_like(h0[0]))
        out.append(model.act(model.W_o(torch.cat([b["atom_x"][v], m]))))
    return torch.stack(out)


def test_dmpnn_matches_edge_by_edge_definition() -> None:
    torch.manual_seed(0)
    model = DMPNN(hidden_dim=16, depth=3, ffn_hidden_dim=8, data_info=info()).eval()
    b = batch_of(["CC(=O)Nc1ccc(O)cc1", ETHANOL])
    with torch.no_grad():
        torch.testing.assert_close(model.encode_atoms(b), _naive_dmpnn_atoms(model, b), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("mol_fdim,task_type", [(0, "classification"), (7, "regression")])
def test_dmpnn_forward_backward(mol_fdim: int, task_type: str) -> None:
    torch.manual_seed(0)
    model = DMPNN(hidden_dim=32, ffn_hidden_dim=16, dropout=0.1, mpnn_dropout=0.1, batch_norm=True,
                  data_info=info(3, task_type, mol_fdim))
    b = batch_of([ETHANOL, BENZENE, ACETATE, AMMONIUM, "CC(C)Cc1ccc(cc1)C(C)C(=O)O"], 3, mol_fdim)
    b["y"] = torch.tensor([[1, 0, float("nan")], [0, 1, 1], [1, 1, 0], [0, 0, 1], [1, float("nan"), 0]])
    out = model(b)
    assert out.shape == (5, 3)
    loss = model.loss(out, b["y"])
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.W_h.weight.grad.abs().sum() > 0
    if mol_fdim:
        assert model.ffn[1].in_features == 32 + mol_fdim


def test_embedding_invariant_to_atom_order_and_batch_company() -> None:
    torch.manual_seed(0)
    model = DMPNN(hidden_dim=32, ffn_hidden_dim=16, data_info=info()).eval()
    smiles = "CC(=O)Nc1ccc(O)cc1C[N+](C)(C)C"
    mol = Chem.MolFromSmiles(smiles)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        ref = model.embed(batch_of([smiles]))
        for _ in range(3):
            perm = [int(i) for i in rng.permutation(mol.GetNumAtoms())]
            b = collate_graphs([(mol_graph(Chem.RenumberAtoms(mol, perm)), np.zeros(2, np.float32), None)])
            assert not torch.equal(b["atom_x"], batch_of([smiles])["atom_x"])
            torch.testing.assert_close(model.embed(b), ref, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(model(b), model(batch_of([smiles])), atol=1e-5, rtol=1e-5)
        # the same molecule among others gets the same embedding
        torch.testing.assert_close(model.embed(batch_of([BENZENE, smiles, ETHANOL]))[1:2], ref,
                                   atol=1e-5, rtol=1e-5)


def test_mol_graph_of_renumbered_mol_is_permuted() -> None:
    mol = Chem.MolFromSmiles(ACETATE)
    perm = [3, 1, 0, 2]
    a, _, ends, _, _ = mol_graph(mol)
    b, _, ends_b, _, _ = mol_graph(Chem.RenumberAtoms(mol, perm))
    np.testing.assert_array_equal(b, a[perm])
    assert len(ends_b) == len(ends)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_dmpnn_on_cuda() -> None:
    model = DMPNN(hidden_dim=32, ffn_hidden_dim=16, data_info=info()).cuda()
    b = {k: v.to("cuda") for k, v in batch_of([ETHANOL, BENZENE, AMMONIUM]).items()}
    out = model(b)
    model.loss(out, b["y"]).backward()
    assert out.shape == (3, 2) and out.device.type == "cuda"


# -- datamodule and CLI round trip on real ESOL molecules ----------------------------------------


@pytest.fixture(scope="module")
def esol_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = Path(os.environ["DLTK_DATA_DIR"])
    if not (root / "MANIFEST.md").is_file():
        pytest.skip(f"real data mirror not found at {root}")
    from dltk_chem.moleculenet import load_esol

    table = load_esol()
    rows = pd.DataFrame({"smiles": table.smiles[:150], "logS": table.y[:150, 0]})
    bad = pd.DataFrame({"smiles": ["C1CC", "C(C)(C)(C)(C)C"], "logS": [-1.0, -2.0]})
    path = tmp_path_factory.mktemp("esol") / "esol150.csv"
    pd.concat([rows.iloc[:70], bad, rows.iloc[70:]]).to_csv(path, index=False)
    return path


def test_graph_datamodule_drops_and_counts_invalid(esol_csv: Path, caplog: pytest.LogCaptureFixture) -> None:
    from dltk_chem.graph_datamodules import SmilesCsvGraphDataModule

    dm = SmilesCsvGraphDataModule(path=str(esol_csv), target_columns="logS", batch_size=16, n_jobs=1)
    with caplog.at_level(logging.WARNING, logger="dltk.chem"):
        data_info = dm.data_info()
    assert sum(dm.dropped.values()) == 2
    assert any("cannot parse or sanitize" in r.getMessage() for r in caplog.records)
    assert len(dm.train_dataset) + len(dm.val_dataset) + len(dm.test_dataset) == 150
    assert data_info["task_type"] == "regression" and data_info["atom_fdim"] == ATOM_FDIM
    assert data_info["mol_fdim"] == 0 and len(data_info["target_mean"]) == 1
    json.dumps(data_info)  # stored in the checkpoint's hyper-parameters
    b = next(iter(dm.train_dataloader()))
    assert b["y"].shape == (16, 1) and b["num_atoms"].shape == (16,)
    assert len(dm.test_records()) == len(dm.test_dataset)


def test_cli_train_then_predict(esol_csv: Path, tmp_path: Path) -> None:
    from dltk.cli import main

    run = tmp_path / "run"
    with preserved_environ():
        code = main(["train", "--plugin", "chem", "--task", "csv_dmpnn", "--data.path", str(esol_csv),
                     "--data.target_columns", "logS", "--data.mol_features", "rdkit2d",
                     "--data.batch_size", "32", "--data.n_jobs", "1", "--model.hidden_dim", "32",
                     "--model.ffn_hidden_dim", "32", "--trainer.max_epochs", "2",
                     "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                     "--trainer.log_every_n_steps", "1",
                     "--run-dir", str(run)])
    assert code == 0
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite(metrics["test/rmse"]) and metrics["test/rmse"] > 0
    preds = pd.read_csv(run / "predictions" / "test.csv")
    assert 10 <= len(preds) <= 16 and preds["pred_logS"].notna().all()
    hparams = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)["hyper_parameters"]
    assert hparams["data_info"]["mol_fdim"] > 100 and "descriptor_scaler" in hparams["data_info"]

    inp = tmp_path / "new.csv"
    new = ["CCO", "not_a_smiles", "c1ccccc1O", "C(C)(C)(C)(C)C", "CC(=O)[O-].[Na+]"]
    pd.DataFrame({"smiles": new}).to_csv(inp, index=False)
    out = tmp_path / "pred.csv"
    assert main(["predict", "--run", str(run), "--input", str(inp), "--output", str(out)]) == 0
    result = pd.read_csv(out, keep_default_na=False)
    assert list(result["smiles"]) == new and len(result) == 5
    ok = result["error"] == ""
    assert ok.tolist() == [True, False, True, False, True]
    assert "cannot parse" in result["error"][1] and "cannot sanitize" in result["error"][3]
    values = pd.to_numeric(result["logS"], errors="coerce")
    assert values[ok].notna().all() and values[~ok].isna().all()
    # the molecules are scored the same whether predicted alone or in the test loader
    single = tmp_path / "one.csv"
    pd.DataFrame({"smiles": ["c1ccccc1O"]}).to_csv(single, index=False)
    assert main(["predict", "--run", str(run), "--input", str(single),
                 "--output", str(tmp_path / "o.csv")]) == 0
    assert float(pd.read_csv(tmp_path / "o.csv")["logS"][0]) == pytest.approx(float(values[2]), rel=1e-5)


def test_fingerprint_network_and_dmpnn_combine(esol_csv: Path, tmp_path: Path) -> None:
    """`dltk combine` on the real chem datamodules: both drop the same unparsable rows, so their
    test splits agree; the combined run predicts a mixed file as the average of the two."""
    from dltk.cli import main

    common = ["--data.path", str(esol_csv), "--data.target_columns", "logS", "--data.n_jobs", "1",
              "--trainer.max_epochs", "3", "--trainer.enable_model_summary", "false"]
    with preserved_environ():
        assert main(["train", "--plugin", "chem", "--task", "csv", "--data.features", "rdkit2d+maccs",
                     "--model.hidden_dim", "64", *common, "--run-dir", str(tmp_path / "mlp")]) == 0
        assert main(["train", "--plugin", "chem", "--task", "csv_dmpnn", "--model.hidden_dim", "32",
                     "--model.ffn_hidden_dim", "32", *common, "--run-dir", str(tmp_path / "dmpnn")]) == 0
        assert main(["combine", str(tmp_path / "mlp"), str(tmp_path / "dmpnn"), "--output",
                     str(tmp_path / "avg")]) == 0
    tables = [pd.read_csv(tmp_path / r / "predictions" / "test.csv") for r in ("mlp", "dmpnn", "avg")]
    assert list(tables[0]["smiles"]) == list(tables[1]["smiles"]) == list(tables[2]["smiles"])
    assert np.allclose(tables[2]["pred_logS"], (tables[0]["pred_logS"] + tables[1]["pred_logS"]) / 2, atol=1e-4)
    metrics = json.loads((tmp_path / "avg" / "metrics.json").read_text())
    resid = tables[2]["pred_logS"] - tables[2]["true_logS"]
    assert metrics["test/rmse"] == pytest.approx(float(np.sqrt((resid ** 2).mean())), rel=1e-3)

    inp = tmp_path / "new.csv"
    pd.DataFrame({"smiles": ["CCO", "not_a_smiles", "c1ccccc1O", "C(C)(C)(C)(C)C"]}).to_csv(inp, index=False)
    outs = {}
    for run in ("mlp", "dmpnn", "avg"):
        assert main(["predict", "--run", str(tmp_path / run), "--input", str(inp), "--output",
                     str(tmp_path / f"{run}.csv")]) == 0
        outs[run] = pd.read_csv(tmp_path / f"{run}.csv", keep_default_na=False)
    avg = outs["avg"]
    assert (avg["error"] == "").tolist() == [True, False, True, False]
    ok = avg["error"] == ""
    values = {k: pd.to_numeric(v["logS"], errors="coerce")[ok] for k, v in outs.items()}
    assert np.allclose(values["avg"], (values["mlp"] + values["dmpnn"]) / 2, atol=1e-4)
    assert (pd.to_numeric(avg["logS_std"], errors="coerce")[ok] > 0).all()
