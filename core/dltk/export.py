"""``dltk export --run DIR --format onnx|torchscript``: a run's model for deployment.

Writes a self-contained model file (ONNX with the weights embedded, or a traced TorchScript
module) and beside it ``<name>.json`` describing:

- ``inputs``: the batch keys the model's ``forward`` reads (in order), their dtypes and shapes, the
  first dimension dynamic (``"batch"`` for per-sample inputs; per-key names such as
  ``"atom_x_rows"`` for inputs whose rows are not samples, e.g. the atoms of a molecular graph);
- ``outputs``: ``predictions``, the model's post-processed outputs (probabilities for
  classification, softmax over classes for multiclass, values in the target's units for
  regression), with their shape and meaning;
- ``preprocessing``: the run's ``data_info`` (feature recipe, input sizes, normaliser statistics
  such as a descriptor scaler or target mean/std) and the datamodule's settings from
  ``config.yaml`` (``data.class_path`` and ``init_args``): what must be done to raw input before it
  is fed to the model;
- ``labels``: task names, task type and class names.

The exported model is checked against the Lightning model on a batch of the run's own test data
(onnxruntime for ONNX; ``torch.jit.load`` for TorchScript); the largest difference is recorded in
the JSON, and an export that disagrees beyond the tolerance is refused. Checkpoints are read only
through :mod:`dltk.loading` (``weights_only``).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dltk import __version__
from dltk.errors import ConfigError
from dltk.io import atomic_path, write_json

Format = Literal["onnx", "torchscript"]
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}
ATOL = 1e-5
RTOL = 1e-4


class _Recorder(dict):
    """A batch dict that records which keys ``forward`` reads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read: list[str] = []

    def __getitem__(self, key: str) -> Any:
        if key not in self.read:
            self.read.append(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        if key in self and key not in self.read:
            self.read.append(key)
        return super().get(key, default)


def used_inputs(model: Any, batch: dict[str, Any]) -> list[str]:
    """The batch keys ``model.forward`` reads, in first-use order (the target never counts)."""
    import torch

    from dltk.base import TARGET

    recorder = _Recorder(batch)
    with torch.no_grad():
        model(recorder)
    keys = [k for k in recorder.read if k != TARGET and isinstance(batch.get(k), torch.Tensor)]
    if not keys:
        raise ConfigError(f"{type(model).__name__}.forward reads no tensor from the batch; cannot export")
    return keys


def _wrapper(model: Any, keys: list[str]) -> Any:
    from torch import nn

    class Exported(nn.Module):
        """Positional tensors -> post-processed predictions."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            return self.model.postprocess(self.model(dict(zip(keys, tensors))))

    return Exported().eval()


def _dim_names(keys: list[str], batch: dict[str, Any], n: int) -> dict[str, str]:
    """Name of each input's first dimension: ``batch`` when it has one row per sample."""
    return {k: "batch" if batch[k].shape[0] == n else f"{k}_rows" for k in keys}


def _input_spec(keys: list[str], batch: dict[str, Any], dims: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for k in keys:
        t = batch[k]
        out.append({"name": k, "dtype": str(t.dtype).replace("torch.", ""),
                    "shape": [dims[k], *[int(s) for s in t.shape[1:]]]})
    return out


def _export_onnx(wrapper: Any, inputs: tuple[Any, ...], keys: list[str], dims: dict[str, str], path: Path) -> None:
    import torch

    shared: dict[str, Any] = {}
    dynamic = []
    for k, t in zip(keys, inputs):
        name = dims[k]
        if name not in shared:
            shared[name] = torch.export.Dim(name.replace("-", "_"), min=1)
        dynamic.append({0: shared[name]} if t.ndim >= 1 else {})
    with atomic_path(path) as tmp, warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(wrapper, inputs, dynamo=True, input_names=keys, output_names=["predictions"],
                                    dynamic_shapes=(tuple(dynamic),), external_data=False, optimize=True,
                                    verbose=False)
        program.save(str(tmp), external_data=False)


def _export_torchscript(wrapper: Any, inputs: tuple[Any, ...], path: Path) -> None:
    import torch

    module = wrapper.model
    module._jit_is_scripting = True  # what LightningModule.to_torchscript sets: no trainer needed
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(wrapper, inputs, check_trace=False, strict=False)
            torch.jit.save(traced, str(tmp))
    finally:
        module._jit_is_scripting = False


def _onnx_static_dims(path: Path) -> dict[str, int]:
    """Inputs whose first dimension the ONNX exporter fixed (the model code specialised it)."""
    import onnx

    static = {}
    for inp in onnx.load(str(path), load_external_data=False).graph.input:
        dims = inp.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value"):
            static[inp.name] = int(dims[0].dim_value)
    return static


def _agrees(fmt: Format, path: Path, inputs: dict[str, np.ndarray], expected: np.ndarray) -> bool:
    try:
        got = run_exported(fmt, path, inputs)
    except Exception:  # noqa: BLE001  (onnxruntime refuses another batch size: the batch is static)
        return False
    return got.shape == expected.shape and bool(np.allclose(got, expected, atol=ATOL, rtol=RTOL, equal_nan=True))


def run_exported(fmt: Format, path: Path, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Predictions of an exported model file on named numpy inputs (onnxruntime / torch.jit)."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        return session.run(["predictions"], {n: inputs[n] for n in names})[0]
    import torch

    module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return module(*[torch.from_numpy(v) for v in inputs.values()]).numpy()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def sample_batch(datamodule: Any, max_samples: int = 64) -> dict[str, Any]:
    """A batch of the run's own data (test split, else validation) for tracing and checking."""
    datamodule.setup()
    original = datamodule.batch_size
    datamodule.batch_size = min(int(original), max_samples)
    try:
        for name in ("test_dataloader", "val_dataloader", "train_dataloader"):
            try:
                loader = getattr(datamodule, name)()
                return next(iter(loader))
            except (RuntimeError, StopIteration, NotImplementedError):
                continue
    finally:
        datamodule.batch_size = original
    raise ConfigError(f"{type(datamodule).__name__}: no data split to take an example batch from")


def _open_for_export(run: str | Path, fmt: str, output: str | Path | None, which: str) -> tuple[Any, Any, Path]:
    """The run handle, its model (on the CPU, eval mode) and the output path; one-line errors for
    a combined or ensemble run, an unknown format, or an output named like the JSON."""
    from dltk.run import Run

    if fmt not in SUFFIX:
        raise ConfigError(f"--format must be one of {', '.join(SUFFIX)}, got {fmt!r}")
    handle = Run.open(run)
    model = handle.model(which, command="export").cpu().eval()  # type: ignore[arg-type]
    path = Path(output) if output else handle.dir / "export" / f"model{SUFFIX[fmt]}"
    if path.suffix == ".json":
        raise ConfigError(f"--output {path} is the model file, not its JSON (written beside it)")
    return handle, model, path


def export_run(run: str | Path, fmt: Format, output: str | Path | None = None, which: str = "best") -> Path:
    """Export the model of run directory ``run``; returns the model file (the JSON sits beside it)."""
    import torch

    from dltk.base import TARGET

    handle, model, path = _open_for_export(run, fmt, output, which)
    with _quiet():
        batch = sample_batch(handle.datamodule())
    batch = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
    keys = used_inputs(model, batch)
    n = int(batch[TARGET].shape[0]) if TARGET in batch else int(batch[keys[0]].shape[0])
    dims = _dim_names(keys, batch, n)
    inputs = tuple(batch[k] for k in keys)
    wrapper = _wrapper(model, keys)
    with torch.no_grad():
        expected = wrapper(*inputs).numpy()
    print(f"dltk: exporting {type(model).__name__} ({sum(p.numel() for p in model.parameters()):,} parameters) "
          f"to {fmt}: inputs {', '.join(keys)}", flush=True)
    if fmt == "onnx":
        _export_onnx(wrapper, inputs, keys, dims, path)
    else:
        _export_torchscript(wrapper, inputs, path)
    try:
        check = _check_exported(fmt, path, model, batch, keys, dims, expected)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    json_path = path.with_name(path.name + ".json")
    write_json(json_path, _description(handle, which, fmt, path, model, batch, keys, expected, check))
    print(f"dltk: wrote {path} and {json_path.name} (max |diff| vs Lightning {check['max_abs_diff']:.1e} on "
          f"{n} samples)")
    return path


def _check_exported(fmt: str, path: Path, model: Any, batch: dict[str, Any], keys: list[str],
                    dims: dict[str, Any], expected: np.ndarray) -> dict[str, Any]:
    """Run the exported file on the batch (and on half of it, to prove the batch is dynamic);
    refuse an export that disagrees with the Lightning model. Returns the check record."""
    got = run_exported(fmt, path, {k: batch[k].numpy() for k in keys})
    n = int(expected.shape[0])
    max_diff = float(np.max(np.abs(got - expected))) if expected.size else 0.0
    if got.shape != expected.shape or not np.allclose(got, expected, atol=ATOL, rtol=RTOL, equal_nan=True):
        raise ConfigError(f"exported {fmt} model disagrees with the Lightning model (max |diff| "
                          f"{max_diff:.2e}, shapes {got.shape} vs {expected.shape}); not exported")
    checked = [n]
    if fmt == "onnx":
        dims = {**dims, **_onnx_static_dims(path)}
    half = n // 2
    if half >= 1 and all(d == "batch" for d in dims.values()):
        if _agrees(fmt, path, {k: batch[k][:half].numpy() for k in keys}, expected[:half]):
            checked.append(half)
        else:
            dims = dict.fromkeys(dims, n)
    dynamic = all(isinstance(d, str) for d in dims.values())
    if not dynamic:
        print(f"dltk: warning: {type(model).__name__}.forward fixes the batch size when traced (e.g. len(x) "
              f"or a Python loop over samples; use x.shape[0]); the exported model takes exactly {n} samples "
              "per call", flush=True)
    return {"max_abs_diff": max_diff, "atol": ATOL, "rtol": RTOL, "batch_sizes": checked,
            "reference": "Lightning model on the run's test data", "dims": dims, "dynamic": dynamic}


def _description(handle: Any, which: str, fmt: str, path: Path, model: Any, batch: dict[str, Any],
                 keys: list[str], expected: np.ndarray, check: dict[str, Any]) -> dict[str, Any]:
    """The JSON written beside the model file."""
    import torch

    info = model.data_info.to_dict()
    task_type = info.get("task_type")
    meaning = {"classification": "probability of the positive class per task (sigmoid)",
               "regression": "predicted value per task, in the target's units",
               "multiclass": "class probabilities (softmax) over class_names"}.get(str(task_type), "model output")
    data_cfg = handle.config.get("data") or {}
    check = dict(check)
    dims, dynamic = check.pop("dims"), check.pop("dynamic")
    return {
        "format": fmt,
        "model_file": path.name,
        "dltk_version": __version__,
        "torch_version": torch.__version__,
        "plugin": handle.plugin.name,
        "task": handle.config.get("task"),
        "model_class": (handle.config.get("model") or {}).get("class_path"),
        "run": str(handle.dir.resolve()),
        "checkpoint": str(handle.checkpoint(which).relative_to(handle.dir)),
        "inputs": _input_spec(keys, batch, dims),
        "outputs": [{"name": "predictions", "dtype": str(expected.dtype),
                     "shape": ["batch", *[int(s) for s in expected.shape[1:]]], "meaning": meaning}],
        "labels": {"task_type": task_type, "task_names": list(info.get("task_names", [])),
                   "class_names": list(info.get("class_names", []) or [])},
        "preprocessing": {"data_class": data_cfg.get("class_path"), "data_settings": data_cfg.get("init_args") or {},
                          "data_info": info},
        "dynamic_batch": dynamic,
        "check": check,
    }
