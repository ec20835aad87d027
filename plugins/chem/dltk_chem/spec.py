"""The chem plugin's declaration: light (imports only dltk.plugin), read by `dltk plugins`."""

from __future__ import annotations

from dltk.plugin import PluginSpec, Reference, Requirement, TaskSpec

TOX21_ASSAYS = ("NR-AhR", "NR-AR", "NR-AR-LBD", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma",
                "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53")

_DEEPTOX = (0.928, 0.807, 0.850, 0.834, 0.793, 0.815, 0.839, 0.841, 0.793, 0.858, 0.941, 0.862)
_LEADERBOARD = "JKU Tox21 leaderboard snapshot (arXiv:2511.14744)"

TOX21_CHALLENGE_REFERENCES = (
    Reference("DeepTox", "Mayr et al. 2016, Front. Environ. Sci. 3:80; per-assay values from the "
              + _LEADERBOARD, "auroc", {**dict(zip(TOX21_ASSAYS, _DEEPTOX)), "mean": 0.846}),
    Reference("SNN", "Klambauer et al. 2017, NeurIPS (self-normalizing networks)", "auroc", {"mean": 0.844}),
    Reference("RF", _LEADERBOARD, "auroc", {"mean": 0.829}),
    Reference("Chemprop", _LEADERBOARD, "auroc", {"mean": 0.815}),
)

plugin = PluginSpec(
    name="chem",
    summary="QSAR and toxicity from SMILES: Tox21 challenge, MoleculeNet, ESOL, any SMILES CSV (RDKit).",
    package="dltk_chem",
    tasks=(
        TaskSpec("tox21_challenge", "Tox21 Challenge 2014: train+leaderboard -> 647-compound final set, "
                 "12 assays, ROC-AUC", "configs/tox21_challenge.yaml", TOX21_CHALLENGE_REFERENCES),
        TaskSpec("tox21_moleculenet", "MoleculeNet Tox21 csv, random or scaffold 80/10/10 split",
                 "configs/tox21_moleculenet.yaml",
                 (Reference("GraphConv", "Wu et al. 2018, MoleculeNet, Chem. Sci. 9:513 (random split)",
                            "auroc", {"mean": 0.829}),
                  Reference("Chemprop", "Yang et al. 2019, J. Chem. Inf. Model. 59:3370 (random split)",
                            "auroc", {"mean": 0.851}))),
        TaskSpec("esol", "ESOL aqueous solubility (log mol/L), regression, random 80/10/10 split",
                 "configs/esol.yaml",
                 (Reference("MoleculeNet", "Wu et al. 2018, Chem. Sci. 9:513", "rmse", {"mean": 0.58}),
                  Reference("Chemprop", "Yang et al. 2019, J. Chem. Inf. Model. 59:3370", "rmse",
                            {"mean": 0.555}))),
        TaskSpec("csv", "any SMILES CSV: --data.path FILE --data.smiles_column COL --data.target_columns A,B",
                 "configs/csv.yaml"),
    ),
    datamodules={
        "tox21_challenge": "dltk_chem.datamodules:Tox21ChallengeDataModule",
        "tox21_moleculenet": "dltk_chem.datamodules:MoleculeNetTox21DataModule",
        "esol": "dltk_chem.datamodules:ESOLDataModule",
        "csv": "dltk_chem.datamodules:SmilesCsvDataModule",
    },
    models={"fingerprint_mlp": "dltk_chem.models:FingerprintMLP"},
    requires=(Requirement("rdkit"),),
    install_hint="pip install 'dltk[chem]'",
)
