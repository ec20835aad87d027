""":class:`DataInfo`: what a datamodule tells a model about its data.

A datamodule builds it in :meth:`dltk.base.BaseDataModule.data_info`; core hands it to
:meth:`dltk.base.BaseModel.bind`, which stores it (as a plain dict) in the model's
hyper-parameters, so a checkpoint rebuilds its model without the training data. The fields core
reads are typed, validated attributes; everything a plugin adds (input sizes, feature recipes,
normaliser statistics) goes through :meth:`~dltk.base.BaseDataModule.extra_info` and is found in
:attr:`DataInfo.extra`.

``DataInfo`` is a ``dict`` of every key -- core fields that are set and the plugin's extras -- so
``info["n_features"]``, ``info.get("class_names")``, ``dict(info)`` and ``json.dumps(info)`` work as
they did when it was a plain dict, and checkpoints written before it existed load unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from dltk.metrics import TaskType

CORE_KEYS = ("task_names", "task_type", "class_names", "primary_metric", "pos_fraction", "class_counts",
             "target_mean", "target_std")
"""The keys core reads; every other key belongs to the plugin (:attr:`DataInfo.extra`)."""

TASK_TYPES = ("classification", "regression", "multiclass")


class DataInfo(dict):  # type: ignore[type-arg]
    """The description of a run's data that travels with its checkpoints.

    Keys core reads (each also a typed attribute):

    - ``task_names``: one name per predicted label column (a multiclass task has one);
    - ``task_type``: ``classification`` (independent binary labels), ``regression`` or ``multiclass``;
    - ``class_names``: the classes of a multiclass task, in output order;
    - ``primary_metric``: ``(metric, "max"|"min")`` selecting checkpoints when not the task type's
      default (e.g. ``("f1/Supported", "max")``);
    - ``pos_fraction``: per task, the fraction of positive training labels (``class_weight: balanced``);
    - ``class_counts``: per class, the training counts (multiclass ``class_weight: balanced``);
    - ``target_mean``, ``target_std``: regression targets' training statistics.

    Every other key is the plugin's (:attr:`extra`), JSON-serialisable.
    """

    def __init__(self, data: Mapping[str, Any] | None = None, **fields: Any) -> None:
        merged = {**(dict(data) if data is not None else {}), **fields}
        super().__init__({k: v for k, v in merged.items() if not (k in CORE_KEYS and v is None)})
        self.setdefault("task_names", [])
        self.setdefault("task_type", "classification")
        self._validate()

    def _validate(self) -> None:
        self["task_names"] = [str(t) for t in self["task_names"]]
        if self["task_type"] not in TASK_TYPES:
            raise ValueError(f"task_type must be one of {', '.join(TASK_TYPES)}, got {self['task_type']!r}")
        if "class_names" in self:
            self["class_names"] = [str(c) for c in self["class_names"]]
        if "primary_metric" in self:
            name, mode = self["primary_metric"]
            if mode not in ("max", "min"):
                raise ValueError(f"primary_metric mode must be 'max' or 'min', got {mode!r}")
            self["primary_metric"] = [str(name), str(mode)]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataInfo:
        """From a checkpoint's ``data_info`` dict (or another DataInfo)."""
        if "task_names" not in data:
            raise ValueError("data_info has no 'task_names'")
        return data if isinstance(data, DataInfo) else cls(data)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of every set key (what checkpoints and JSON files hold)."""
        return dict(self)

    # -- typed views of the keys core reads ------------------------------------------------------
    @property
    def task_names(self) -> list[str]:
        return cast(list[str], self["task_names"])

    @property
    def task_type(self) -> TaskType:
        return cast(TaskType, self["task_type"])

    @property
    def class_names(self) -> list[str] | None:
        return self.get("class_names")

    @property
    def primary_metric(self) -> tuple[str, str] | None:
        value = self.get("primary_metric")
        return (value[0], value[1]) if value else None

    @property
    def pos_fraction(self) -> list[float] | None:
        return self.get("pos_fraction")

    @property
    def class_counts(self) -> list[int] | None:
        return self.get("class_counts")

    @property
    def target_mean(self) -> float | list[float] | None:
        return self.get("target_mean")

    @property
    def target_std(self) -> float | list[float] | None:
        return self.get("target_std")

    @property
    def extra(self) -> dict[str, Any]:
        """The plugin's own keys (everything but :data:`CORE_KEYS`)."""
        return {k: v for k, v in self.items() if k not in CORE_KEYS}
