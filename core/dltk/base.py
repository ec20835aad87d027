"""Base classes every plugin builds on: :class:`BaseDataModule` and :class:`BaseTask`.

Batches are ``dict[str, Tensor]``. Core defines two keys, :data:`INPUT` and :data:`TARGET`;
plugins add keys of their own but never rename these. Targets are float tensors of shape
``(batch, num_tasks)`` with NaN for a missing label; every loss and metric masks them out.

A datamodule describes its data to the model through :meth:`BaseDataModule.data_info`, a
:class:`~dltk.datainfo.DataInfo` (task names, task type, class names, training-set statistics, and
the plugin's own facts from :meth:`BaseDataModule.extra_info`). Core passes it to
:meth:`BaseTask.bind`, which stores it in the model's hyper-parameters, so a checkpoint rebuilds its
model without the data (``dltk predict`` on new molecules needs no training files).

Every optional hook is declared here with its default: a plugin overrides only what it needs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from dltk.datainfo import DataInfo
from dltk.metrics import PRIMARY, MultitaskMetrics, TaskType
from dltk.serving import NotServable, RequestFiles, RequestRows

INPUT = "x"
TARGET = "y"


class TensorDictDataset(Dataset):
    """In-memory dataset of aligned arrays; item ``i`` is ``{key: tensor[i]}``."""

    def __init__(self, **arrays: np.ndarray | Tensor) -> None:
        lengths = {len(a) for a in arrays.values()}
        if len(lengths) != 1:
            raise ValueError(f"arrays differ in length: { {k: len(v) for k, v in arrays.items()} }")
        self.arrays = {k: torch.as_tensor(v) for k, v in arrays.items()}
        self.length = lengths.pop()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {k: v[index] for k, v in self.arrays.items()}


class BaseDataModule(L.LightningDataModule):
    """Shared datamodule behaviour: splits held as datasets, loaders, records and prediction input.

    Subclasses implement :meth:`load` (fill ``train_dataset``, ``val_dataset``, ``test_dataset``,
    ``task_names``, ``task_type`` and the test records) and :meth:`predict_chunks`.

    Args:
        batch_size: samples per batch.
        num_workers: DataLoader worker processes. 0 (the default) loads in the main process, the
            fastest for the in-memory tensor datasets most presets use; -1 starts one per CPU core
            (at most 8; :func:`loader_workers`), for datasets that decode or crop per sample.
        split_seed: seed of the train/validation(/test) split, independent of the model's seed so
            that several model seeds are evaluated on the same split.
    """

    collate_fn: Any = None
    """How a list of items becomes a batch (None: torch's default stacking). Plugins whose items
    are not fixed-size tensors, e.g. molecular graphs, set their own."""

    predict_options: ClassVar[type | None] = None
    """A dataclass declaring the plugin-specific options of ``dltk predict`` for this datamodule
    (see :mod:`dltk.options`); core parses them, lists them under ``dltk predict --run DIR
    --help`` and passes the instance to :meth:`predict_file`. None: no options."""

    def __init__(self, batch_size: int = 128, num_workers: int = 0, split_seed: int = 0) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.split_seed = split_seed
        self.task_names: list[str] = []
        self.task_type: TaskType = "classification"
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self.test_dataset: Dataset | None = None
        self._test_records: pd.DataFrame | None = None
        self._loaded = False

    # -- hooks for subclasses ---------------------------------------------------------------
    def load(self) -> None:
        """Read, featurize and split the data (called once, from :meth:`setup`)."""
        raise NotImplementedError

    def extra_info(self) -> dict[str, Any]:
        """Plugin-specific facts the model needs (input sizes, statistics); JSON-serialisable."""
        return {}

    def predict_chunks(self, path: str, **kwargs: Any) -> Iterator[tuple[pd.DataFrame, DataLoader | None]]:
        """Stream a user's input file as ``(records, loader)`` chunks for ``dltk predict``.

        ``records`` has one row per input row (with an ``error`` column, empty when the row is
        usable); ``loader`` yields batches for the usable rows, in order (None if there are none).
        """
        raise NotImplementedError(f"{type(self).__name__} does not support prediction on new files")

    def test_artifacts(self, run_dir: Path, preds: np.ndarray, target: np.ndarray) -> list[Path]:
        """Extra files written after the standard test evaluation (e.g. an ethogram PNG), given the
        test predictions and targets in test-loader order. Returns the paths written."""
        return []

    def predict_file(self, input_path: str, output_path: str, models: list[Any],
                     options: Any = None) -> dict[str, int] | None:
        """Escape hatch for ``dltk predict`` when the input is not a table of rows (an image folder,
        a slide, a video): predict with ``models`` (averaged), write ``output_path`` atomically and
        return counts such as ``{"rows": ..., "predicted": ..., "errors": ...}``. ``options`` is
        the parsed instance of :attr:`predict_options` (None when it declares none). Return None
        (the default) to use :meth:`predict_chunks` instead."""
        return None

    @classmethod
    def request_schema(cls) -> dict[str, Any] | None:
        """JSON schema of a ``dltk serve`` ``POST /predict`` body (see :mod:`dltk.serving`).
        None (the default): this datamodule is not servable."""
        return None

    @classmethod
    def decode_request(cls, payload: dict[str, Any]) -> RequestRows | RequestFiles:
        """A request body, already checked against :meth:`request_schema`, as rows of the input
        table :meth:`predict_chunks` reads or as files for :meth:`predict_file`. Raise
        :class:`~dltk.serving.RequestError` for a body that cannot be decoded (answered 422)."""
        raise NotServable(f"{cls.__name__} does not declare how to serve requests")

    @classmethod
    def decode_upload(cls, files: list[bytes]) -> RequestRows | RequestFiles | None:
        """The contents of a multipart ``POST /predict`` upload (file names are never used). None
        (the default): this datamodule takes JSON bodies only."""
        return None

    @classmethod
    def contract_overrides(cls, tmp_dir: Path) -> list[str] | None:
        """Extra ``dltk train`` arguments that make a preset of this datamodule small enough for
        the plugin contract's few-batch CPU run (e.g. a generated input file written into
        ``tmp_dir``, fewer features). None (the default): run the preset as it is."""
        return None

    # -- shared behaviour -------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if not self._loaded:
            self.load()
            self._loaded = True

    def data_info(self) -> DataInfo:
        """What the model needs to know about the data; stored in the checkpoint."""
        self.setup()
        info: dict[str, Any] = {"task_names": list(self.task_names), "task_type": self.task_type}
        info.update(self.extra_info())
        return DataInfo.from_dict(info)

    def test_records(self) -> pd.DataFrame:
        """Identifying columns of the test split (e.g. id, smiles), in test-loader order."""
        self.setup()
        if self._test_records is None:
            return pd.DataFrame(index=range(len(self.test_dataset or [])))
        return self._test_records

    def _loader(self, dataset: Dataset | None, shuffle: bool) -> DataLoader:
        """A loader over ``dataset``; shuffled loaders draw a permutation that depends only on the
        run's seed and the epoch (:class:`dltk.resilience.EpochSeededSampler`), so a resumed run
        sees the same batches as an uninterrupted one."""
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}: split not loaded")
        sampler = None
        if shuffle:
            from dltk.resilience import EpochSeededSampler

            sampler = EpochSeededSampler(len(dataset), seed=int(os.environ.get("PL_GLOBAL_SEED", "0")))
        workers = loader_workers(self.num_workers)
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, collate_fn=self.collate_fn,
                          num_workers=workers, persistent_workers=workers > 0, pin_memory=self._pin_memory())

    def _pin_memory(self) -> bool:
        """Page-locked batches when the trainer runs on a CUDA device, so that Lightning's
        ``non_blocking`` copy overlaps the transfer with the previous step's compute."""
        trainer = self.trainer
        return trainer is not None and trainer.strategy.root_device.type == "cuda"

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_dataset, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_dataset, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()


def loader_workers(num_workers: int) -> int:
    """DataLoader workers for a ``num_workers`` setting: itself when >= 0; -1 means one per CPU core
    this process may use, at most 8 (more rarely helps one GPU and multiplies memory)."""
    if num_workers >= 0:
        return num_workers
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def masked_loss(output: Tensor, target: Tensor, task_type: TaskType,
                pos_weight: Tensor | None = None, class_weight: Tensor | None = None) -> Tensor:
    """Mean loss over the labelled entries only (NaN targets are ignored).

    Classification uses BCE on logits (optionally with per-task ``pos_weight``); regression uses MSE;
    multiclass uses cross-entropy on logits ``(B[, T], C)`` against class indices ``(B[, T])``
    (optionally with per-class ``class_weight``). A batch without any label gives 0 (and zero
    gradients). Written with masks and sums instead of boolean indexing, so that a training step
    never waits for the GPU to tell the host how many entries are labelled.
    """
    if task_type == "multiclass":
        logits = output.reshape(-1, output.shape[-1])
        flat = target.reshape(-1)
        keep = ~torch.isnan(flat)
        classes = torch.where(keep, flat, torch.zeros_like(flat)).long()
        per_entry = nn.functional.cross_entropy(logits, classes, weight=class_weight, reduction="none")
        weight = keep.to(per_entry.dtype)
        if class_weight is not None:  # torch's weighted mean divides by the weights of the targets
            weight = weight * class_weight.to(per_entry.dtype)[classes]
        total = torch.where(keep, per_entry, torch.zeros_like(per_entry)).sum()
        return total / weight.sum().clamp_min(1e-12)
    mask = ~torch.isnan(target)
    filled = torch.where(mask, target, torch.zeros_like(target))
    if task_type == "classification":
        loss = nn.functional.binary_cross_entropy_with_logits(output, filled, reduction="none",
                                                              pos_weight=pos_weight)
    else:
        loss = (output - filled) ** 2
    total = torch.where(mask, loss, torch.zeros_like(loss)).sum()
    return total / mask.sum().clamp_min(1).to(loss.dtype)


class BaseModel(L.LightningModule):
    """A multitask model trained with a masked loss, validated and tested with masked metrics.

    (Formerly ``BaseTask``; that name still imports. In the glossary a *task* is one predicted
    label column, a *preset* the named configuration, and the *model* this LightningModule.)

    Subclasses implement :meth:`configure_models` (build layers from ``self.data_info``) and
    :meth:`forward` (batch dict -> raw outputs of shape ``(batch, num_tasks)``: logits for
    classification, standardised values for regression).

    Args:
        lr: learning rate.
        weight_decay: decoupled weight decay (AdamW) or L2 (SGD).
        optimizer: ``adamw``, ``adam`` or ``sgd``.
        scheduler: ``none``, ``cosine`` (to zero over ``max_epochs``) or ``plateau`` (on the
            monitored validation metric).
        class_weight: ``balanced`` weights each task's positives by its negative/positive ratio
            in the training split (classification only).
        data_info: filled by core from the datamodule; leave unset in configs.
    """

    def __init__(self, lr: float = 1e-3, weight_decay: float = 0.0,
                 optimizer: Literal["adamw", "adam", "sgd"] = "adamw",
                 scheduler: Literal["none", "cosine", "plateau"] = "none",
                 class_weight: Literal["none", "balanced"] = "none",
                 data_info: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.data_info = DataInfo(task_names=[])
        if data_info is not None:
            self.bind(data_info)

    # -- hooks for subclasses ---------------------------------------------------------------
    def configure_models(self) -> None:
        """Build the network from ``self.data_info``."""
        raise NotImplementedError

    def forward(self, batch: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        raise NotImplementedError

    @classmethod
    def example(cls) -> tuple[dict[str, Any], dict[str, Any], dict[str, Tensor]]:
        """A tiny instance for the plugin contract tests: ``(init kwargs, data_info, fake batch)``
        such that ``cls(**kwargs, data_info=data_info).training_step(batch, 0)`` is a scalar loss
        that backpropagates, in well under a second. Every registered model implements it."""
        raise NotImplementedError(f"{cls.__name__} does not provide a contract example()")

    # -- evaluation hooks (the standard behaviour; override for other output shapes) ---------
    def test_metrics(self, preds: np.ndarray, target: np.ndarray) -> dict[str, float]:
        """Test metrics (no ``test/`` prefix) from predictions and targets in loader order."""
        from dltk.metrics import compute_metrics

        return compute_metrics(torch.as_tensor(preds), torch.as_tensor(target), self.task_type,
                               self.task_names, self.class_names)

    def output_columns(self, preds: np.ndarray, std: np.ndarray | None = None,
                       target: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Columns of the prediction table, one row per prediction.

        With ``target`` (``predictions/test.csv``): ``true_<task>``, ``pred_<task>`` and, for an
        ensemble, ``std_<task>``. Without (``dltk predict``): ``<task>`` and ``<task>_std``.
        Multiclass: the predicted class name and one probability column per class.
        """
        cols: dict[str, np.ndarray] = {}
        test = target is not None
        if self.task_type == "multiclass":
            names = np.asarray(self.class_names, dtype=object)
            flat = preds.reshape(-1, preds.shape[-1])
            task = self.task_names[0]
            if test:
                t = np.asarray(target, dtype=np.float64).reshape(-1)
                true = np.full(len(t), "", dtype=object)
                ok = ~np.isnan(t)
                true[ok] = names[t[ok].astype(int)]
                cols[f"true_{task}"] = true
            cols[f"pred_{task}" if test else task] = names[flat.argmax(axis=1)]
            flat_std = None if std is None else std.reshape(-1, std.shape[-1])
            for c, name in enumerate(self.class_names or []):
                cols[f"prob_{name}"] = flat[:, c]
                if flat_std is not None:
                    cols[f"std_{name}" if test else f"prob_{name}_std"] = flat_std[:, c]
            return cols
        for j, name in enumerate(self.task_names):
            if test:
                cols[f"true_{name}"] = target[:, j]
            cols[f"pred_{name}" if test else name] = preds[:, j]
            if std is not None:
                cols[f"std_{name}" if test else f"{name}_std"] = std[:, j]
        return cols

    def write_test_plots(self, plot_dir: Path, preds: np.ndarray, target: np.ndarray, title: str) -> list[Path]:
        """Plots of the test predictions: ROC + precision-recall curves per task
        (classification), predicted vs measured (regression), confusion matrix (multiclass)."""
        from dltk import plots

        if self.task_type == "classification":
            return [plots.roc_curves(target, preds, self.task_names, plot_dir / "roc_curves.png", title),
                    plots.pr_curves(target, preds, self.task_names, plot_dir / "pr_curves.png", title)]
        if self.task_type == "multiclass":
            from dltk.metrics import flatten_multiclass

            p, t = flatten_multiclass(preds, target)
            return [plots.confusion_matrix(t, p.argmax(axis=1), self.class_names or [],
                                           plot_dir / "confusion_matrix.png", title)]
        return [plots.parity(target, preds, self.task_names, plot_dir / "parity.png", title)]

    def evaluate_run(self, datamodule: BaseDataModule, models: list[BaseModel],
                     run_dir: Path | None) -> dict[str, float] | None:
        """Escape hatch: evaluate the test split entirely in the plugin (e.g. tiled segmentation).

        Return flat metrics (no ``test/`` prefix) and, when ``run_dir`` is given, write predictions
        and plots into it. Return None (the default) for core's standard evaluation:
        :func:`dltk.inference.ensemble_inference` on the test loader, then :meth:`test_metrics`,
        :meth:`output_columns`, :meth:`write_test_plots` and the datamodule's
        :meth:`~BaseDataModule.test_artifacts`.
        """
        return None

    # -- binding to the data ----------------------------------------------------------------
    def bind(self, data_info: Mapping[str, Any]) -> None:
        """Attach the datamodule's description (a :class:`~dltk.datainfo.DataInfo` or the plain
        dict a checkpoint holds), then build the network, loss and metrics."""
        self.data_info = DataInfo.from_dict(data_info)
        self.hparams["data_info"] = self.data_info.to_dict()
        self.task_names: list[str] = list(self.data_info.task_names)
        self.task_type: TaskType = self.data_info.task_type
        self.class_names: list[str] | None = list(self.data_info.class_names) if self.data_info.class_names else None
        if self.task_type == "multiclass" and not self.class_names:
            raise ValueError("a multiclass datamodule must give 'class_names' in extra_info()")
        self.configure_models()
        self.configure_losses()
        self.configure_metrics()

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    @property
    def num_classes(self) -> int:
        """Number of classes of a multiclass task (0 otherwise)."""
        return len(self.class_names or [])

    @property
    def primary_metric(self) -> tuple[str, str]:
        """(metric name, mode) that selects checkpoints and heads summaries: the datamodule's
        ``extra_info()["primary_metric"]`` when given (e.g. ``["f1/Supported", "max"]``), otherwise
        ``auroc`` / ``rmse`` / ``macro_f1`` by task type."""
        return self.data_info.primary_metric or PRIMARY[self.task_type]

    @property
    def monitor(self) -> tuple[str, str]:
        """(metric key, mode) that selects the best checkpoint, e.g. ``("val/auroc", "max")``."""
        name, mode = self.primary_metric
        return f"val/{name}", mode

    def configure_losses(self) -> None:
        pos_weight = None
        class_weight = None
        weighting = self.hparams.get("class_weight", "none")  # subclasses may not expose it
        if self.task_type == "classification" and weighting == "balanced":
            frac = torch.tensor(self.data_info.get("pos_fraction", [0.5] * self.num_tasks))
            pos_weight = ((1 - frac) / frac.clamp_min(1e-3)).clamp(1.0, 100.0)
        if self.task_type == "multiclass" and weighting == "balanced":
            counts = torch.tensor(self.data_info.get("class_counts", [1] * self.num_classes), dtype=torch.float32)
            if len(counts) != self.num_classes:
                raise ValueError(f"class_counts has {len(counts)} entries for {self.num_classes} classes")
            class_weight = (counts.sum() / (self.num_classes * counts.clamp_min(1.0))).clamp(max=100.0)
        self.register_buffer("pos_weight", pos_weight, persistent=False)
        self.register_buffer("class_weight", class_weight, persistent=False)

    def configure_metrics(self) -> None:
        self.val_metrics = MultitaskMetrics(self.task_type, self.task_names, self.class_names)

    # -- outputs ----------------------------------------------------------------------------
    def postprocess(self, output: Tensor) -> Tensor:
        """Raw outputs -> probabilities (classification) or values in the target's units."""
        if self.task_type == "classification":
            return torch.sigmoid(output)
        if self.task_type == "multiclass":
            return torch.softmax(output, dim=-1)
        mean = torch.as_tensor(self.data_info.get("target_mean", 0.0), device=output.device)
        std = torch.as_tensor(self.data_info.get("target_std", 1.0), device=output.device)
        return output * std + mean

    def _scaled_target(self, target: Tensor) -> Tensor:
        if self.task_type != "regression":
            return target
        mean = torch.as_tensor(self.data_info.get("target_mean", 0.0), device=target.device)
        std = torch.as_tensor(self.data_info.get("target_std", 1.0), device=target.device)
        return (target - mean) / std

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return masked_loss(output, self._scaled_target(target), self.task_type, self.pos_weight,
                           self.class_weight)

    # -- Lightning steps --------------------------------------------------------------------
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.loss(self(batch), batch[TARGET])
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=len(batch[TARGET]))
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        output = self(batch)
        self.log("val/loss", self.loss(output, batch[TARGET]), on_epoch=True, prog_bar=False,
                 batch_size=len(batch[TARGET]), sync_dist=True)
        self.val_metrics.update(self.postprocess(output), batch[TARGET])

    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        primary = self.primary_metric[0]
        logged = {f"val/{k}": (v if not math.isnan(v) else 0.0) for k, v in values.items()}
        if f"val/{primary}" not in logged:
            raise KeyError(f"primary metric {primary!r} is not among the validation metrics {sorted(values)}")
        main = logged.pop(f"val/{primary}")
        self.log_dict(logged, prog_bar=False)
        self.log(f"val/{primary}", main, prog_bar=True)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int = 0, dataloader_idx: int = 0) -> Tensor:
        return self.postprocess(self(batch))

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        if hp.optimizer == "sgd":
            opt = torch.optim.SGD(self.parameters(), lr=hp.lr, momentum=0.9, weight_decay=hp.weight_decay)
        elif hp.optimizer == "adam":
            opt = torch.optim.Adam(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        else:
            opt = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.scheduler == "cosine":
            epochs = max(1, int(self.trainer.max_epochs or 1)) if self._trainer else 1
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
        if hp.scheduler == "plateau":
            key, mode = self.monitor
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, factor=0.5, patience=3)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": key}}
        return opt


BaseTask = BaseModel
"""The former name of :class:`BaseModel`, kept so that existing plugins import unchanged."""
