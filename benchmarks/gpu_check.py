"""Accelerator readiness: every plugin trains, predicts and exports on a GPU, in one short command.

For each preset of :data:`PLAN` (the default preset of every plugin, the chem D-MPNN and the nuclei
U-Net) the check

1. trains it with the public train verb (``dltk train``: ``accelerator=gpu``, ``precision=32``, a
   fixed number of steps, one epoch) into ``OUTPUT/runs/<plugin>-<preset>``, and opens the run with
   :meth:`dltk.run.Run.open`;
2. starting from that run's last weights, trains the same steps again three times -- on the GPU in
   float32, on the GPU with ``bf16-mixed`` and on the CPU in float32 -- and reports samples/s of
   each (timed after ``warmup`` steps, one device synchronisation at each end of the window), the
   GPU/CPU ratio, the peak GPU memory (``torch.cuda.max_memory_allocated``), whether every training
   loss and validation metric is finite, and whether bf16 agrees with float32 within
   :data:`TOLERANCE`;
3. runs ``dltk predict`` on a few inputs of the preset's kind on the GPU and again on the CPU
   (``DLTK_DEVICE=cpu``) and compares the two tables;
4. runs ``dltk export --format onnx`` (which checks the ONNX file against the model on the CPU) and
   compares the ONNX output with the GPU model's;
5. trains once more with ``--trainer.strategy ddp`` on every GPU present, in a subprocess.

It writes ``OUTPUT/gpu_check.json`` and ``OUTPUT/gpu_check.md`` (the table of ``docs/gpu.md``).
Without CUDA it says so in one line and dry-runs the same plan on the CPU with tiny models, data
and step counts (the plugin contract's shrunken presets), which is what the tests run.

Usage::

    python benchmarks/gpu_check.py --output results/gpu [--steps 30] [--dry-run] [--only chem:tox21_challenge]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpu_check_inputs import compare_outputs, prediction_input

PLAN: tuple[tuple[str, str | None], ...] = (
    ("chem", None), ("chem", "tox21_challenge_dmpnn"), ("genomics", None),
    ("imaging", None), ("imaging", "nuclei"), ("video", None),
)
"""(plugin, preset); None: the plugin's default preset."""

TOLERANCE = {"loss_rel": 0.05, "val_metric_abs": 0.05, "predict_abs": 1e-3, "onnx_gpu_abs": 1e-3}
"""bf16-mixed vs float32 after the same steps from the same weights: final training loss within
5 % (relative), validation loss within 5 % and the primary validation metric within 0.05; GPU vs CPU
predictions (float32) and ONNX vs the GPU model within 1e-3 (probabilities / target units)."""

GPU_DATA = {"tox21_challenge": ["--data.features", "ecfp"], "tox21_challenge_dmpnn": ["--data.mol_features", "none"],
            "nuclei": ["--data.n_test", "2", "--data.n_val", "2"]}
"""Data settings of the GPU run: the preset's model and batch size, but no RDKit 2D descriptors
(minutes of CPU work for 12k molecules) and a 2-image nuclei test (a tiled watershed per image)."""

DRY_DATA = {"nuclei": ["--data.n_test", "1", "--data.n_val", "1"]}
"""On top of the plugin contract's shrunken presets in a dry run."""


@dataclass
class Settings:
    dry_run: bool
    steps: int
    val_batches: int
    warmup: int
    ddp_devices: int
    output: Path
    ddp: bool = True
    problems: list[str] = field(default_factory=list)

    @property
    def accelerator(self) -> str:
        return "cpu" if self.dry_run else "gpu"


# ------------------------------------------------------------------------------------------------
# timing callback and the three training variants
# ------------------------------------------------------------------------------------------------
def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def step_timer(warmup: int) -> Any:
    """A Lightning callback timing the training steps after ``warmup`` and keeping every step's loss
    on its device (read once, after training: no per-step host synchronisation)."""
    from lightning.pytorch.callbacks import Callback

    from dltk.base import TARGET

    class StepTimer(Callback):
        def __init__(self) -> None:
            self.losses: list[Any] = []
            self.samples, self.start, self.stop = 0, math.nan, math.nan

        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
            if batch_idx == warmup:
                _sync()
                self.start = time.perf_counter()

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.losses.append(loss.detach())
            if batch_idx >= warmup:
                self.samples += int(batch[TARGET].shape[0])

        def _finish(self) -> None:  # after the last training step, before validation
            if math.isnan(self.stop) and not math.isnan(self.start):
                _sync()
                self.stop = time.perf_counter()

        def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
            self._finish()

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self._finish()

    return StepTimer()


def train_variant(model0: Any, datamodule: Any, accelerator: str, precision: str, s: Settings) -> tuple[dict, Any]:
    """Train a copy of ``model0`` for ``s.steps`` steps + validation; returns (record, model)."""
    import lightning as L
    import torch

    L.seed_everything(0, workers=True, verbose=False)
    model = copy.deepcopy(model0).train()
    timer = step_timer(min(s.warmup, s.steps - 1))
    trainer = L.Trainer(accelerator=accelerator, devices=1, precision=precision, max_epochs=1,
                        limit_train_batches=s.steps, limit_val_batches=s.val_batches, num_sanity_val_steps=0,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[timer])
    cuda = accelerator == "gpu"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(model, datamodule=datamodule)
    losses = [float(v) for v in torch.stack(timer.losses).float().cpu()] if timer.losses else []
    primary = f"val/{model.primary_metric[0]}"  # e.g. val/f1/Supported: kept beside the top-level metrics
    val = {k: float(v) for k, v in trainer.callback_metrics.items()
           if k.startswith("val/") and (k.count("/") == 1 or k == primary)}
    seconds = timer.stop - timer.start
    record = {
        "accelerator": accelerator, "precision": precision, "steps": len(losses),
        "timed_samples": timer.samples, "timed_seconds": seconds,
        "samples_per_s": timer.samples / seconds if seconds > 0 else math.nan,
        "losses": losses, "final_loss": losses[-1] if losses else math.nan, "val": val,
        "finite": bool(losses) and all(math.isfinite(v) for v in [*losses, *val.values()]),
        "max_memory_allocated": int(torch.cuda.max_memory_allocated()) if cuda else None,
    }
    return record, model.cpu().eval()


def _outputs(model: Any, batch: dict) -> Any:
    import torch

    with torch.no_grad():
        return model.predict_step(batch).float()


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-8)


def agreement(fp32: dict, bf16: dict, out32: Any, out16: Any, primary: str) -> dict:
    """bf16-mixed vs float32 after the same steps, judged by :data:`TOLERANCE`."""
    loss = _rel(bf16["final_loss"], fp32["final_loss"])
    val_loss = _rel(bf16["val"].get("val/loss", math.nan), fp32["val"].get("val/loss", math.nan))
    key = f"val/{primary}"
    metric = abs(bf16["val"].get(key, math.nan) - fp32["val"].get(key, math.nan))
    out = float((out16 - out32).abs().max()) if out32.numel() else 0.0
    ok = (loss <= TOLERANCE["loss_rel"] and metric <= TOLERANCE["val_metric_abs"]
          and (math.isnan(val_loss) or val_loss <= TOLERANCE["loss_rel"]))
    return {"final_loss_rel_diff": loss, "val_loss_rel_diff": val_loss, "metric": key,
            "val_metric_abs_diff": metric, "output_max_abs_diff": out, "agree": bool(ok)}


def variants(handle: Any, datamodule: Any, s: Settings) -> dict:
    """The three timed trainings from the full run's last weights, and their comparisons."""
    from dltk.trainer_cli import quiet_lightning

    quiet_lightning()
    datamodule.setup()
    model0 = handle.model("last").cpu()
    batch = next(iter(datamodule.val_dataloader()))
    runs, outs = {}, {}
    for name, accelerator, precision in (("gpu_fp32", s.accelerator, "32-true"),
                                         ("gpu_bf16", s.accelerator, "bf16-mixed"),
                                         ("cpu_fp32", "cpu", "32-true")):
        runs[name], model = train_variant(model0, datamodule, accelerator, precision, s)
        outs[name] = _outputs(model, batch)
    cpu = runs["cpu_fp32"]["samples_per_s"]
    return {"train": runs,
            "gpu_cpu_ratio": {k: runs[f"gpu_{k}"]["samples_per_s"] / cpu for k in ("fp32", "bf16")},
            "bf16_vs_fp32": agreement(runs["gpu_fp32"], runs["gpu_bf16"], outs["gpu_fp32"], outs["gpu_bf16"],
                                      model0.primary_metric[0]),
            "cpu_vs_gpu_fp32_output_max_abs_diff": float((outs["cpu_fp32"] - outs["gpu_fp32"]).abs().max())}


# ------------------------------------------------------------------------------------------------
# the full run, predict, export, DDP
# ------------------------------------------------------------------------------------------------
def train_args(plugin: str, preset: str, s: Settings, run_dir: Path) -> list[str]:
    """``dltk train`` arguments of the fixed-steps run (shrunk like the plugin contract in a dry run)."""
    from dltk import contract
    from dltk.discovery import get_plugin

    args = ["--plugin", plugin, "--task", preset, "--seed", "0", "--run-dir", str(run_dir),
            "--trainer.accelerator", s.accelerator, "--trainer.devices", "1", "--trainer.precision", "32-true",
            "--trainer.max_epochs", "1", "--trainer.limit_train_batches", str(s.steps),
            "--trainer.limit_val_batches", str(s.val_batches), "--trainer.num_sanity_val_steps", "0",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--trainer.log_every_n_steps", "1"]
    if not s.dry_run:
        return args + GPU_DATA.get(preset, [])
    spec = get_plugin(plugin)  # tiny model (its example()) and the datamodule's contract data
    shrink_dir = s.output / "inputs" / f"{plugin}-{preset}"
    shrink_dir.mkdir(parents=True, exist_ok=True)
    extra, _ = contract.preset_overrides(spec, _preset_config(spec, preset), shrink_dir)
    return args + extra + ["--data.num_workers", "0"] + DRY_DATA.get(preset, [])


def _preset_config(spec: Any, preset: str) -> dict:
    import yaml

    text = spec.config_path(spec.task(preset)).read_text()
    config = yaml.safe_load(text)
    return config if isinstance(config, dict) else {}


def full_run(plugin: str, preset: str, s: Settings) -> tuple[Path, dict]:
    """The fixed-steps ``dltk train`` run; returns its directory and a record."""
    import contextlib
    import io

    from dltk.run import Run
    from dltk.train import train

    run_dir = s.output / "runs" / f"{plugin}-{preset}"
    args = train_args(plugin, preset, s, run_dir)
    start = time.perf_counter()
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        train(args)
    (s.output / "logs").mkdir(exist_ok=True)
    (s.output / "logs" / f"{plugin}-{preset}-train.log").write_text(log.getvalue())
    handle = Run.open(run_dir)
    metrics = {k: v for k, v in handle.metrics.items() if k.count("/") == 1}
    return run_dir, {"seconds": time.perf_counter() - start, "status": handle.status.get("status"),
                     "test_metrics": metrics, "args": args,
                     "finite": bool(metrics) and all(math.isfinite(float(v)) for v in metrics.values())}


def predict_check(handle: Any, s: Settings) -> dict:
    """``dltk predict`` on the accelerator and on the CPU (``DLTK_DEVICE=cpu``), compared."""
    from dltk import verbs
    from dltk.inference import DEVICE_ENV

    work = s.output / "predict" / handle.dir.name
    work.mkdir(parents=True, exist_ok=True)
    source, suffix = prediction_input(handle, work)
    record: dict[str, Any] = {"input": str(source)}
    for device in ("gpu", "cpu"):
        previous = os.environ.get(DEVICE_ENV)
        if device == "cpu":
            os.environ[DEVICE_ENV] = "cpu"
        start = time.perf_counter()
        try:
            counts = verbs.predict(handle, str(source), str(work / f"{device}{suffix}"))
        finally:
            if previous is None:
                os.environ.pop(DEVICE_ENV, None)
            else:
                os.environ[DEVICE_ENV] = previous
        record[f"{device}_seconds"], record[f"{device}_counts"] = time.perf_counter() - start, counts
    record["max_abs_diff"] = compare_outputs(work / f"gpu{suffix}", work / f"cpu{suffix}")
    record["agree"] = record["max_abs_diff"] <= TOLERANCE["predict_abs"]
    return record


def export_check(handle: Any, datamodule: Any) -> dict:
    """``dltk export --format onnx`` (checked against the CPU model by export itself), then the ONNX
    output against the model on the inference device (the GPU when present)."""
    import torch

    from dltk import export
    from dltk.inference import device

    start = time.perf_counter()
    path = export.export_run(handle.dir, "onnx")
    described = json.loads(path.with_name(path.name + ".json").read_text())
    names = [i["name"] for i in described["inputs"]]
    batch = export.sample_batch(datamodule)
    model = handle.model("best").to(device()).eval()
    with torch.no_grad():
        on_device = model.predict_step({k: v.to(device()) if isinstance(v, torch.Tensor) else v
                                        for k, v in batch.items()}).float().cpu().numpy()
    onnx_out = export.run_exported("onnx", path, {n: batch[n].numpy() for n in names})
    diff = float(abs(onnx_out - on_device).max()) if on_device.size else 0.0
    return {"seconds": time.perf_counter() - start, "file": str(path),
            "onnx_vs_cpu_model_max_abs_diff": described["check"]["max_abs_diff"] if "check" in described else None,
            "onnx_vs_device_model_max_abs_diff": diff, "device": str(device()),
            "agree": diff <= TOLERANCE["onnx_gpu_abs"]}


def ddp_check(plugin: str, preset: str, s: Settings) -> dict:
    """The same run with ``--trainer.strategy ddp`` on every GPU (one CPU process in a dry run), in
    a subprocess: DDP never runs inside the calling process."""
    run_dir = s.output / "runs" / f"{plugin}-{preset}-ddp"
    args = train_args(plugin, preset, s, run_dir)
    args[args.index("--trainer.devices") + 1] = str(s.ddp_devices)
    cmd = [sys.executable, "-m", "dltk.cli", "train", *args, "--trainer.strategy", "ddp"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    (s.output / "logs" / f"{plugin}-{preset}-ddp.log").write_text(proc.stdout + proc.stderr)
    status = json.loads((run_dir / "run.json").read_text()).get("status") if (run_dir / "run.json").is_file() else None
    return {"devices": s.ddp_devices, "returncode": proc.returncode, "status": status,
            "seconds": time.perf_counter() - start, "ok": proc.returncode == 0 and status == "completed"}


# ------------------------------------------------------------------------------------------------
# one preset, the machine, the report
# ------------------------------------------------------------------------------------------------
def _step(record: dict, key: str, s: Settings, label: str, fn: Any) -> Any:
    """Run one part of a preset's check; an exception is a recorded problem, not the end of the check."""
    try:
        record[key] = fn()
        return record[key]
    except Exception as exc:  # noqa: BLE001  (every failure is reported in the JSON)
        message = f"{label}: {key}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        record[key] = {"error": message}
        s.problems.append(message)
        return None


def check_preset(plugin: str, preset: str, s: Settings) -> dict:
    """Every check of one preset (see the module docstring)."""
    from dltk.run import Run

    label = f"{plugin}/{preset}"
    print(f"gpu_check: {label} ...", flush=True)
    start = time.perf_counter()
    record: dict[str, Any] = {"plugin": plugin, "preset": preset}
    done = _step(record, "full_run", s, label, lambda: full_run(plugin, preset, s))
    if done is not None:
        run_dir, record["full_run"] = done
        record["run_dir"] = str(run_dir)
        handle = Run.open(run_dir)
        datamodule = handle.datamodule()  # loaded once for the variants and the export comparison
        more = _step(record, "variants", s, label, lambda: variants(handle, datamodule, s))
        if more is not None:
            record.update(record.pop("variants"))
        _step(record, "predict", s, label, lambda: predict_check(handle, s))
        _step(record, "export", s, label, lambda: export_check(handle, datamodule))
    if s.ddp:
        _step(record, "ddp", s, label, lambda: ddp_check(plugin, preset, s))
    record["problems"] = judge(record)
    s.problems += [f"{label}: {p}" for p in record["problems"]]
    record["ok"] = not record["problems"] and not any(isinstance(v, dict) and "error" in v for v in record.values())
    record["seconds"] = time.perf_counter() - start
    print(f"gpu_check: {label} {'ok' if record['ok'] else 'FAILED'} in {record['seconds']:.0f} s", flush=True)
    return record


def judge(record: dict) -> list[str]:
    """The failed checks of a preset's record (errors are already listed by :func:`_step`)."""
    problems = []
    full = record.get("full_run") or {}
    if "status" in full and (full["status"] != "completed" or not full.get("finite")):
        problems.append(f"full run {full.get('status')}, finite test metrics {full.get('finite')}")
    for name, run in (record.get("train") or {}).items():
        if not run["finite"]:
            problems.append(f"{name}: a non-finite training loss or validation metric")
    agree = record.get("bf16_vs_fp32") or {}
    if "agree" in agree and not agree["agree"]:
        problems.append(f"bf16 disagrees with fp32 beyond {TOLERANCE}: {agree}")
    for key in ("predict", "export", "ddp"):
        part = record.get(key) or {}
        if "error" not in part and not part.get("agree", part.get("ok", True)):
            problems.append(f"{key} check failed: {part}")
    return problems


def machine(s: Settings) -> dict:
    """Device name, count, versions."""
    import lightning
    import torch

    import dltk

    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "lightning": lightning.__version__, "dltk": dltk.__version__, "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}
    try:
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        versions["onnxruntime"] = None
    cuda = torch.cuda.is_available()
    return {"cuda": cuda, "device_name": torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
            "device_count": torch.cuda.device_count() if cuda else 0,
            "capability": list(torch.cuda.get_device_capability(0)) if cuda else None,
            "bf16_supported": bool(torch.cuda.is_bf16_supported()) if cuda else None,
            "cpu_threads": torch.get_num_threads(), "platform": platform.platform(), "versions": versions}


def _yes(value: Any) -> str:
    return "-" if value is None else ("yes" if value else "**no**")


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, float) else str(value)


def markdown(report: dict) -> str:
    """The results table (the one ``docs/gpu.md`` holds)."""
    m = report["machine"]
    lines = [f"Device: {m['device_name']} x{m['device_count']} ({report['mode']}); torch {m['versions']['torch']}, "
             f"CUDA {m['versions']['cuda']}; {report['settings']['steps']} steps per training; "
             f"{report['wall_seconds']:.0f} s in all.", "",
             "| plugin / preset | CPU fp32 samples/s | GPU fp32 samples/s | GPU bf16 samples/s | GPU/CPU fp32 "
             "| bf16 = fp32 | peak GPU MiB | predict GPU = CPU | ONNX = GPU model | DDP (GPUs) | ok |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["presets"]:
        train = r.get("train") or {}
        rate = {k: (train.get(k) or {}).get("samples_per_s") for k in ("cpu_fp32", "gpu_fp32", "gpu_bf16")}
        peak = (train.get("gpu_fp32") or {}).get("max_memory_allocated")
        ratio = (r.get("gpu_cpu_ratio") or {}).get("fp32")
        ddp = r.get("ddp") or {}
        lines.append(
            f"| {r['plugin']} / {r['preset']} | {_fmt(rate['cpu_fp32'])} | {_fmt(rate['gpu_fp32'])} "
            f"| {_fmt(rate['gpu_bf16'])} | {_fmt(ratio, 2)} | {_yes((r.get('bf16_vs_fp32') or {}).get('agree'))} "
            f"| {_fmt(peak / 2**20 if peak else None, 0)} | {_yes((r.get('predict') or {}).get('agree'))} "
            f"| {_yes((r.get('export') or {}).get('agree'))} | {_yes(ddp.get('ok'))} ({ddp.get('devices', '-')}) "
            f"| {_yes(r.get('ok'))} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", required=True, help="folder for gpu_check.json, gpu_check.md, runs and logs")
    p.add_argument("--dry-run", action="store_true", help="the plan on the CPU, tiny (also without CUDA)")
    p.add_argument("--steps", type=int, help="training steps per variant (default 30 on a GPU, 2 in a dry run)")
    p.add_argument("--no-ddp", action="store_true", help="leave out the DDP runs (a subprocess per preset)")
    p.add_argument("--only", action="append", default=[], metavar="PLUGIN[:PRESET]",
                   help="check only these plan entries (repeatable)")
    return p.parse_args(argv)


def _plan(only: list[str]) -> list[tuple[str, str]]:
    from dltk.discovery import get_plugin

    plan = [(plugin, preset or get_plugin(plugin).tasks[0].name) for plugin, preset in PLAN]
    if only:
        plan = [(p, t) for p, t in plan if p in only or f"{p}:{t}" in only]
    return plan


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    import torch

    dry = ns.dry_run or not torch.cuda.is_available()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here: dry run of the plan on the CPU with tiny data and steps", flush=True)
    steps = max(2, ns.steps or (2 if dry else 30))
    output = Path(ns.output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    s = Settings(dry_run=dry, steps=steps, val_batches=1 if dry else 5, warmup=1 if dry else 5,
                 ddp_devices=1 if dry else max(1, torch.cuda.device_count()), output=output, ddp=not ns.no_ddp)
    start = time.perf_counter()
    presets = [check_preset(plugin, preset, s) for plugin, preset in _plan(ns.only)]
    report = {"schema": 1, "mode": "dry-run" if dry else "gpu", "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "machine": machine(s), "tolerance": TOLERANCE,
              "settings": {"steps": s.steps, "val_batches": s.val_batches, "warmup": s.warmup,
                           "ddp_devices": s.ddp_devices, "ddp": s.ddp},
              "presets": presets, "problems": s.problems, "ok": not s.problems,
              "wall_seconds": time.perf_counter() - start}
    from dltk.io import write_json, write_text
    write_json(output / "gpu_check.json", report)
    write_text(output / "gpu_check.md", markdown(report))
    print(markdown(report), end="")
    print(f"gpu_check: {'all checks passed' if report['ok'] else f'{len(s.problems)} problem(s)'}; wrote "
          f"{output / 'gpu_check.json'}", flush=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
