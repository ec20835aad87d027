"""The plugin contract (dltk.contract) over every plugin installed in this environment, one test per
check. Plugins that are registered but not written yet (no tasks, no spec module) or whose extras
are not installed in this environment are skipped with the reason. Slow presets are shrunk by :func:`ci_overrides` (cheaper features, a tiny input file for
presets that leave ``data.path`` to the user) so the suite stays within a few minutes."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest
from testutil import preserved_environ

from dltk import contract
from dltk.plugin import ENTRY_POINT_GROUP

# Small SMILES CSV for the chem presets that read a user's file: 48 molecules, a regression target
# (heavy-atom count) and a binary one (contains oxygen), so both task types are exercised.
_SMILES = ([("C" * n) for n in range(1, 9)] + [("C" * n + "O") for n in range(1, 9)]
           + [("C" * n + "N") for n in range(1, 9)] + [("c1ccccc1" + "C" * n) for n in range(8)]
           + [("C" * n + "C(=O)O") for n in range(8)] + [("OC" + "C" * n + "O") for n in range(8)])

# The chem presets featurize ~12k molecules with RDKit 2D descriptors (minutes on a loaded CI
# machine); the contract only needs the pipeline to run, so it uses ECFP alone.
CHEM_FAST = {
    "tox21_challenge": ["--data.features", "ecfp"],
    "tox21_moleculenet": ["--data.features", "ecfp"],
    "esol": ["--data.features", "ecfp"],
    "tox21_challenge_dmpnn": ["--data.mol_features", "none"],
}


def _tiny_smiles_csv(folder: Path) -> Path:
    from rdkit import Chem

    rows = ["smiles,heavy_atoms,has_oxygen"]
    for smi in _SMILES:
        mol = Chem.MolFromSmiles(smi)
        rows.append(f"{smi},{mol.GetNumHeavyAtoms()},{int(any(a.GetSymbol() == 'O' for a in mol.GetAtoms()))}")
    path = folder / "tiny.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def ci_overrides(plugin: str, task: str, folder: Path) -> list[str]:
    if plugin == "chem" and task in CHEM_FAST:
        return list(CHEM_FAST[task])
    if plugin == "chem" and task in ("csv", "csv_dmpnn"):
        return ["--data.path", str(_tiny_smiles_csv(folder)), "--data.target_columns", "heavy_atoms",
                "--data.batch_size", "8"]
    return []


def _cases() -> list:
    params = []
    names = sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})
    for name in names:
        with contract.isolated(name):
            _, why = contract.plugin_state(name)
        if why is not None and (contract.is_placeholder(why) or why.startswith("missing dependency")):
            # not written yet, or its extras are not installed here (CI installs only some extras)
            params.append(pytest.param(name, None, id=f"{name}:unavailable",
                                       marks=pytest.mark.skip(reason=f"plugin {name} not checkable here: {why}")))
            continue
        for check in contract.checks(name):
            params.append(pytest.param(name, check.name, id=check.id))
    return params


@pytest.mark.parametrize(("plugin", "check_name"), _cases())
def test_contract(plugin: str, check_name: str, request: pytest.FixtureRequest) -> None:
    if check_name.startswith("preset:"):
        request.getfixturevalue("data_root")  # presets read the real data mirror (skips without it)
    checks = {c.name: c for c in contract.checks(plugin, overrides=lambda t, d: ci_overrides(plugin, t, d))}
    with preserved_environ():
        result = contract.run_check(checks[check_name])
    if result.status == "skipped":
        pytest.skip(result.detail)
    assert result.status == "passed", result.detail
