"""End to end: short real-data training on SRF (DeepBind format), then predict and explain on that run;
intervals on a generated genome with a planted motif; PUM2 (slow).

Margins (chance is ROC-AUC 0.5 in every case):
* SRF, 3 epochs of a 64-filter DeepBind CNN, one shuffle per peak: test ROC-AUC >= 0.85 (the test negatives keep each
  peak's dinucleotide counts, so only motif learning scores; the full preset reaches ~0.96);
* intervals on the synthetic genome (3 x 120 kb, 250 planted peaks per contig), 5 epochs: test ROC-AUC >= 0.85 (GC-matched background, so
  only the planted motif separates the classes);
* PUM2 (slow), 3 epochs of the DanQ preset: test ROC-AUC >= 0.90 (validation reaches ~0.95 by then).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dltk.cli import main
from dltk.errors import ConfigError
from dltk_genomics.explain import _require_sequence_model
from dltk_genomics.intervals import write_synthetic_genome
from testutil import preserved_environ

PNG = b"\x89PNG\r\n\x1a\n"
SRF_PEAK = ("GCGCGTGACGCTCTCAGCCAATGAGCGGCCGCCATTCGGGGCCGTGCCCATATAAGGCAGGCCTTGGCGAAGGGGCCCAACTTCGA"
            "AATAGGGAGGAGTAG")  # first bound test sequence of SRF_..._B.seq.gz: a CArG box CCCATATAAGG


def _train(args: list[str]) -> int:
    with preserved_environ():
        return main(["train", "--plugin", "genomics", "--trainer.enable_progress_bar", "false", *args])


@pytest.fixture(scope="module")
def srf_run(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("srf") / "run"
    assert _train(["--trainer.max_epochs", "3", "--model.num_filters", "64", "--data.negatives_per_positive", "1",
                   "--run-dir", str(run)]) == 0
    return run


def test_srf_short_run_beats_chance(srf_run: Path) -> None:
    metrics = json.loads((srf_run / "metrics.json").read_text())
    assert metrics["test/auroc"] >= 0.85
    table = pd.read_csv(srf_run / "predictions" / "test.csv")
    assert len(table) == 1000 and table["true_bound"].sum() == 500
    assert (srf_run / "plots" / "roc_curves.png").read_bytes().startswith(PNG)


def test_predict_fasta_with_a_bad_record(srf_run: Path, tmp_path: Path) -> None:
    inp = tmp_path / "new.fa"
    inp.write_text(f">peak\n{SRF_PEAK}\n>rna_short\n{SRF_PEAK[30:80].replace('T', 'u')}\n>bad\nACGT*ACGT\n")
    out = tmp_path / "out.csv"
    with preserved_environ():
        assert main(["predict", "--run", str(srf_run), "--input", str(inp), "--output", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table["id"]) == ["peak", "rna_short", "bad"]
    assert list(table["length"]) == [101, 50, 9]
    assert table["error"].fillna("").tolist()[:2] == ["", ""]
    assert "non-IUPAC character '*' at position 5" in table["error"][2]
    assert 0 <= table["bound"][0] <= 1 and np.isnan(table["bound"][2])
    assert table["bound"][0] > 0.5


def test_explain_ism_and_filter_logos(srf_run: Path, tmp_path: Path) -> None:
    with preserved_environ():
        assert main(["explain", "--run", str(srf_run), "--sequence", SRF_PEAK, "--filters", "8",
                     "--output-dir", str(tmp_path)]) == 0
    for name in ("ism_0.png", "filter_logos.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG)
    ism = pd.read_csv(tmp_path / "ism_0.csv")
    assert len(ism) == 101 and "".join(ism["reference"]) == SRF_PEAK
    ref_effect = ism.apply(lambda r: r[r["reference"]], axis=1)
    assert np.allclose(ref_effect, 0.0)
    # the most damaging substitutions fall in the CArG box (positions 47-57, 1-based)
    worst = int(ism[["A", "C", "G", "T"]].min(axis=1).idxmin()) + 1
    assert 45 <= worst <= 59
    with preserved_environ():
        assert main(["explain", "--run", str(srf_run), "--sequence", "ACGTXACGT",
                     "--output-dir", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()


def test_explain_refuses_non_sequence_models() -> None:
    with pytest.raises(ConfigError, match="supports the binding tasks"):
        _require_sequence_model(object())


def test_intervals_on_generated_genome(tmp_path: Path) -> None:
    fasta, bed = write_synthetic_genome(tmp_path / "g", n_contigs=3, contig_length=120_000, peaks_per_contig=250,
                                        bed_prefix="")  # BED says "1", FASTA says "chr1": aliases
    run = tmp_path / "run"
    code = _train(["--task", "intervals", "--data.fasta", str(fasta), "--data.bed", str(bed),
                   "--data.width", "100", "--data.val_contigs", "chr2", "--data.test_contigs", "3",
                   "--model.num_filters", "32", "--model.filter_size", "12", "--model.lr", "0.003",
                   "--data.batch_size", "32", "--trainer.max_epochs", "5",
                   "--run-dir", str(run)])
    assert code == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test/auroc"] >= 0.85
    table = pd.read_csv(run / "predictions" / "test.csv")
    assert set(table["contig"]) == {"chr3"} and table["true_bound"].mean() == pytest.approx(0.5)
    assert not (fasta.parent / "genome.fa.fai").exists()


def test_intervals_without_files_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert _train(["--task", "intervals", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any("--data.fasta" in line for line in err)


@pytest.mark.slow
def test_pum2_short_run_beats_chance(data_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert _train(["--task", "rbp_binding", "--trainer.max_epochs", "3", "--run-dir", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test/auroc"] >= 0.90
    assert len(pd.read_csv(run / "predictions" / "test.csv")) == 1296 + 1294
