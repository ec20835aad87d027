"""The published chem files dltk reads, by short name, and the 12 Tox21 challenge assays.

Light (no numpy, no RDKit): :mod:`dltk_chem.spec` reads :data:`TOX21_ASSAYS` from here. Every file
goes through :func:`dltk.data.fetch` (local mirror, then cache, then download, always
sha256-verified).
"""

from __future__ import annotations

from dltk.data import RemoteFile

TOX21_ASSAYS: list[str] = [
    "NR-AhR", "NR-AR", "NR-AR-LBD", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma",
    "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53",
]
"""The 12 Tox21 challenge assays, in the challenge's canonical column order."""

_NCATS = "https://tripod.nih.gov/tox21/challenge/download?id={}&sec="
_DEEPCHEM = "https://deepchemdata.s3-us-west-1.amazonaws.com/datasets/{}"
_CHALLENGE = "chem/tox21-challenge-2014/ncats"

_TRAIN_SHA256 = {  # assay -> (sha256, size) of ncats/train_per_assay/<assay>.smiles
    "NR-AhR": ("8b57bcfec402bbe76ac008a5e243341de5b4c92f891324b34351c5534827aebb", 472354),
    "NR-AR": ("500659a727640a3f724dec2baaf372361bf5b47248736b25ba72211f0cbdf796", 547819),
    "NR-AR-LBD": ("e2cc1b983a8d82decc0ee37b2888fd656c35988d4be9e070d0ffc437c6160794", 490611),
    "NR-Aromatase": ("ead6133b5b88c71537a4d7e387e5378b427a5146fd9b68e894b849d896496583", 405949),
    "NR-ER": ("11c00153d4cd8c68ce25432d960796963c55681b35b98eb2a65def023a399d70", 435821),
    "NR-ER-LBD": ("8deb96ec74235eb2442ee6367a115d9e27a6b74808fdb9d09e80a77586b512e0", 505603),
    "NR-PPAR-gamma": ("d9962585e65b170f2423dd13c3384ae8fcb33434b5bbf2a3800357441c5ea28f", 455392),
    "SR-ARE": ("a28559984b7a36a4a9f9e80eee5d3de97a39b7df1d7e9742d6ed8477c42b70fb", 376444),
    "SR-ATAD5": ("720df91bedc0f909ee231614f5c6cb6e8112cf86f6ca9763e215eca32b3106a4", 520487),
    "SR-HSE": ("99216c1c22068c6ce537f870e4820937e1006b0ecfc6401da8386b69add7b41f", 438565),
    "SR-MMP": ("3c49070dd4c73861bb6dd2bc4a249780ee993d0c098e937268a05b5eaafca1b8", 414765),
    "SR-p53": ("1fa72a15760a228c9b649b9b90675556f205b101445936181980a9ad87792052", 494124),
}


def _train_file(assay: str) -> RemoteFile:
    stem = assay.lower()
    sha, size = _TRAIN_SHA256[assay]
    return RemoteFile(f"{_CHALLENGE}/train_per_assay/{stem}.smiles",
                      _NCATS.format(f"{stem}smiles"), sha, size)


FILES: dict[str, RemoteFile] = {
    **{f"tox21_train/{a}": _train_file(a) for a in TOX21_ASSAYS},
    # NCATS serves the two SDFs zipped: `member` names the .sdf inside; sha256 is the unzipped file's.
    "tox21_leaderboard_sdf": RemoteFile(
        f"{_CHALLENGE}/tox21_10k_challenge_test.sdf", _NCATS.format("tox21_10k_challenge_testsdf"),
        "98ef9e89a030962ec27c5b437d6daf415234a45479dc4c86c72006f9e3b9b4db", 718068,
        member="tox21_10k_challenge_test.sdf"),
    "tox21_leaderboard_smiles": RemoteFile(
        f"{_CHALLENGE}/tox21_10k_challenge_test.smiles",
        _NCATS.format("tox21_10k_challenge_testsmiles"),
        "4832698e22ab993e392a4292f6001165c5020104d2156d6095cd687baaecf634", 19522),
    "tox21_final_smiles": RemoteFile(
        f"{_CHALLENGE}/tox21_10k_challenge_score.smiles",
        _NCATS.format("tox21_10k_challenge_scoresmiles"),
        "57e4fef6d42f7867486967fe6c1a9e98c42aaed43023745c460ff0d102ce5786", 34889),
    "tox21_final_labels": RemoteFile(
        f"{_CHALLENGE}/tox21_10k_challenge_score.txt", _NCATS.format("tox21_10k_challenge_scoretxt"),
        "293438f8407c996a0212bedce86d7b9a278f5548df7e7b45ade2126c6dd2770d", 26641),
    "tox21_final_sdf": RemoteFile(
        f"{_CHALLENGE}/tox21_10k_challenge_score.sdf", _NCATS.format("tox21_10k_challenge_scoresdf"),
        "0ee45ed2351c230bdced31e8bd5f706a89f592e3c082caefa9770d5a29f1c343", 1194586,
        member="tox21_10k_challenge_score.sdf"),
    "moleculenet_tox21": RemoteFile(
        "chem/moleculenet/tox21.csv.gz", _DEEPCHEM.format("tox21.csv.gz"),
        "48b34e4e59a2bae6f95734cd206c1869ab355f50a5e50bb7371a21f861d5e297", 125310),
    "esol": RemoteFile(
        "chem/moleculenet/delaney-processed.csv", _DEEPCHEM.format("delaney-processed.csv"),
        "8c06a76f0c6487d29ab0f903e6a7a7139f189ab3c1178f159c8be8964602f189", 96699),
    "muv": RemoteFile(
        "chem/moleculenet/muv.csv.gz", _DEEPCHEM.format("muv.csv.gz"),
        "93c8b4a37c5996c76e57d5f3f065fb8b7cf1c19067011eff2293fd2a94ce274a", 1749843),
}
"""Every published chem file dltk reads, by short name."""

