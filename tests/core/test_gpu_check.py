"""``benchmarks/gpu_check.py`` without CUDA: it says so in one line, dry-runs its plan on the CPU
with tiny data and steps, exits 0 and writes a complete ``gpu_check.json`` (and the markdown table).

The default test runs the tiniest plan (the video preset, no DDP subprocess); the slow test runs the
whole plan -- every plugin, the D-MPNN and nuclei presets, DDP -- as CI's dry run of the GPU check.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
VARIANTS = ("gpu_fp32", "gpu_bf16", "cpu_fp32")


def _dry_run(output: Path, *extra: str) -> tuple[dict[str, Any], str]:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--output", str(output), *extra], env=env,
                          capture_output=True, text=True, timeout=1200, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((output / "gpu_check.json").read_text()), proc.stdout


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_preset(record: dict[str, Any], ddp: bool) -> None:
    label = f"{record['plugin']}/{record['preset']}"
    assert record["ok"] is True and record["problems"] == [], label
    assert record["full_run"]["status"] == "completed" and record["full_run"]["finite"], label
    assert record["full_run"]["test_metrics"] and all(_finite(v) for v in record["full_run"]["test_metrics"].values())
    for name in VARIANTS:
        run = record["train"][name]
        assert run["steps"] == 2 and run["finite"] and len(run["losses"]) == 2, (label, name)
        assert all(_finite(v) for v in run["losses"]) and all(_finite(v) for v in run["val"].values())
        assert run["val"] and run["samples_per_s"] > 0 and run["timed_samples"] > 0, (label, name)
        assert run["max_memory_allocated"] is None  # no CUDA: nothing to measure
    assert record["train"]["gpu_bf16"]["precision"] == "bf16-mixed"
    assert all(run["accelerator"] == "cpu" for run in record["train"].values())  # dry run: all on the CPU
    assert _finite(record["gpu_cpu_ratio"]["fp32"]) and _finite(record["gpu_cpu_ratio"]["bf16"])
    agree = record["bf16_vs_fp32"]
    assert agree["agree"] is True and _finite(agree["final_loss_rel_diff"]) and _finite(agree["val_metric_abs_diff"])
    assert record["cpu_vs_gpu_fp32_output_max_abs_diff"] < 1e-5, label  # the same device twice: same numbers
    assert record["predict"]["agree"] is True and record["predict"]["max_abs_diff"] == 0.0, label
    assert record["export"]["agree"] is True and Path(record["export"]["file"]).is_file(), label
    assert record["export"]["onnx_vs_device_model_max_abs_diff"] < 1e-3
    if ddp:
        assert record["ddp"]["ok"] is True and record["ddp"]["devices"] == 1, label
    else:
        assert "ddp" not in record


def _check_report(report: dict[str, Any], stdout: str, output: Path) -> None:
    assert stdout.splitlines()[0].startswith("gpu_check: no CUDA device here")
    assert report["mode"] == "dry-run" and report["ok"] is True and report["problems"] == []
    machine = report["machine"]
    assert machine["cuda"] is False and machine["device_count"] == 0 and machine["device_name"]
    assert {"python", "torch", "lightning", "dltk", "cuda", "onnxruntime"} <= set(machine["versions"])
    assert report["settings"]["steps"] == 2 and report["tolerance"]["loss_rel"] == 0.05
    assert _finite(report["wall_seconds"])
    table = (output / "gpu_check.md").read_text()
    for record in report["presets"]:
        assert f"| {record['plugin']} / {record['preset']} |" in table


def test_dry_run_tiniest_plan(tmp_path: Path, data_root: Path) -> None:
    """The fast default: one preset, no DDP subprocess."""
    report, stdout = _dry_run(tmp_path, "--only", "video", "--no-ddp")
    _check_report(report, stdout, tmp_path)
    assert [(r["plugin"], r["preset"]) for r in report["presets"]] == [("video", "pose_behavior")]
    _check_preset(report["presets"][0], ddp=False)


@pytest.mark.slow
def test_dry_run_whole_plan(tmp_path: Path, data_root: Path) -> None:
    report, stdout = _dry_run(tmp_path)
    _check_report(report, stdout, tmp_path)
    presets = [(r["plugin"], r["preset"]) for r in report["presets"]]
    assert presets == [("chem", "tox21_challenge"), ("chem", "tox21_challenge_dmpnn"), ("genomics", "tf_binding"),
                       ("imaging", "cell_phenotype"), ("imaging", "nuclei"), ("video", "pose_behavior")]
    for record in report["presets"]:
        _check_preset(record, ddp=True)
