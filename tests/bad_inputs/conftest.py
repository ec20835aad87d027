"""Shared tiny runs for the bad-input catalogue (built once per session, only when a case needs one)."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from dltk.cli import main


def _chem_run(root: Path) -> Path:
    smiles = [f"C{'C' * (i % 9)}O{'N' * (i // 9)}" for i in range(60)]
    src = root / "mols.csv"
    src.write_text("smiles,y\n" + "".join(f"{s},{i % 2}\n" for i, s in enumerate(smiles)))
    run = root / "chem-run"
    assert main(["train", "--plugin", "chem", "--task", "csv", "--data.path", str(src), "--trainer.max_epochs", "1",
                 "--run-dir", str(run)]) == 0
    return run


def _genomics_run(root: Path) -> Path:
    rng = np.random.default_rng(0)

    def seqs(n: int) -> list[str]:
        return ["".join(rng.choice(list("ACGT"), 101)) for _ in range(n)]

    train, test = root / "tf_AC.seq.gz", root / "tf_B.seq.gz"
    with gzip.open(train, "wt") as fh:
        fh.write("FoldID\tEventID\tseq\tBound\n")
        fh.writelines(f"A\tpeak{i}\t{s}\t1\n" for i, s in enumerate(seqs(80)))
    with gzip.open(test, "wt") as fh:
        fh.write("FoldID\tEventID\tseq\tBound\n")
        fh.writelines(f"B\tt{i}\t{s}\t{i % 2}\n" for i, s in enumerate(seqs(40)))
    run = root / "genomics-run"
    assert main(["train", "--plugin", "genomics", "--task", "tf_binding", "--data.train_path", str(train),
                 "--data.test_path", str(test), "--trainer.max_epochs", "1", "--run-dir", str(run)]) == 0
    return run


def _imaging_run(root: Path) -> Path:
    """An 8-bit RGB tile classifier (so that slides can be given to it)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, level in (("pale", 40), ("dark", 160)):
        (root / "cells" / cls).mkdir(parents=True)
        for i in range(12):
            tile = rng.integers(level, level + 60, (16, 16, 3)).astype(np.uint8)
            Image.fromarray(tile).save(root / "cells" / cls / f"{i:02d}.png")
    run = root / "imaging-run"
    assert main(["train", "--plugin", "imaging", "--task", "images", "--data.path", str(root / "cells"),
                 "--trainer.max_epochs", "1", "--run-dir", str(run)]) == 0
    return run


BUILDERS: dict[str, Callable[[Path], Path]] = {"chem": _chem_run, "genomics": _genomics_run,
                                               "imaging": _imaging_run}


@pytest.fixture(scope="session")
def shared_runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    made: dict[str, Path] = {}

    def get(plugin: str) -> Path:
        if plugin not in made:
            made[plugin] = BUILDERS[plugin](tmp_path_factory.mktemp(f"shared-{plugin}-run"))
        return made[plugin]

    return get
