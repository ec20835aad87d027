""":class:`DataInfo`: what a datamodule tells a model about its data.

A datamodule builds it in :meth:`dltk.base.BaseDataModule.data_info`; core hands it to
:meth:`dltk.base.BaseModel.bind`, which stores it (as a plain dict) in the model's
hyper-parameters, so a checkpoint rebuilds its model without the training data. The fields core
reads are typed attributes; everything a plugin adds (input sizes, feature recipes, normaliser
statistics) goes through :meth:`~dltk.base.BaseDataModule.extra_info` into :attr:`DataInfo.extra`.

``DataInfo`` is also a read-only mapping over all of its keys -- core fields that are set and the
plugin's extras -- so ``info["n_features"]``, ``info.get("class_names")`` and ``dict(info)`` work
as they did when it was a dict, and checkpoints written before it existed load unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from dltk.metrics import TaskType


@dataclass(frozen=True)
class DataInfo(Mapping[str, Any]):
    """The description of a run's data that travels with its checkpoints.

    Args:
        task_names: one name per predicted label column (a multiclass task has one).
        task_type: ``classification`` (independent binary labels), ``regression`` or
            ``multiclass``.
        class_names: the classes of a multiclass task, in output order.
        primary_metric: ``(metric, "max"|"min")`` selecting checkpoints when not the task type's
            default (e.g. ``("f1/Supported", "max")``).
        pos_fraction: per task, the fraction of positive training labels (``class_weight: balanced``).
        class_counts: per class, the training counts (multiclass ``class_weight: balanced``).
        target_mean: regression targets' training mean (outputs are de-standardised with it).
        target_std: regression targets' training standard deviation.
        extra: the plugin's own facts (``extra_info()``), JSON-serialisable.
    """

    task_names: list[str]
    task_type: TaskType = "classification"
    class_names: list[str] | None = None
    primary_metric: tuple[str, str] | None = None
    pos_fraction: list[float] | None = None
    class_counts: list[int] | None = None
    target_mean: float | list[float] | None = None
    target_std: float | list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def core_keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if f.name != "extra")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataInfo:
        """From a checkpoint's ``data_info`` dict (or another DataInfo)."""
        if isinstance(data, DataInfo):
            return data
        if "task_names" not in data:
            raise ValueError("data_info has no 'task_names'")
        core = {k: data[k] for k in cls.core_keys() if k in data and data[k] is not None}
        core["task_names"] = list(core["task_names"])
        if core.get("class_names") is not None:
            core["class_names"] = list(core["class_names"])
        if core.get("primary_metric") is not None:
            name, mode = core["primary_metric"]
            if mode not in ("max", "min"):
                raise ValueError(f"primary_metric mode must be 'max' or 'min', got {mode!r}")
            core["primary_metric"] = (str(name), str(mode))
        extra = {k: v for k, v in data.items() if k not in cls.core_keys()}
        return cls(**core, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every set key (what checkpoints and JSON files hold)."""
        out: dict[str, Any] = {}
        for key in self.core_keys():
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if key == "primary_metric" else value
        out.update(self.extra)
        return out

    # -- read-only mapping over every key ----------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        if key in self.core_keys():
            value = getattr(self, key)
            if value is None:
                raise KeyError(key)
            return list(value) if key == "primary_metric" else value
        return self.extra[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())
