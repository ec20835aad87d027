"""DeepChem's PyTorch models trained by dltk's Lightning loop.

:class:`DeepChemModel` builds a DeepChem ``TorchModel`` (``MultitaskClassifier``,
``MultitaskRegressor``, ``ProgressiveMultitaskModel``, ... any ``dc.models`` class taking
``n_tasks`` and ``n_features``) from the datamodule's ``data_info``, keeps only its ``torch.nn.Module``
(``TorchModel.model``) and trains that network with dltk's masked loss, validation metrics, early
stopping, checkpoints, plots, ensembles and export. The hyper-parameters are plain values (the
network's class name and its keyword arguments), so checkpoints load with ``weights_only=True``.

Why not ``deepchem.models.lightning.DCLightningModule``: it steps DeepChem's own batch generator
(``default_generator`` over a ``dc.data.Dataset``) with the model's weighted loss and has no
validation step, so it cannot take dltk's dict batches, missing-label masks, validation metrics or
checkpoint selection. The network is the same object either way; only the loop differs.

Outputs: a classifier's two-class logits ``(B, T, 2)`` become one logit per task, ``l1 - l0``; the
masked binary cross-entropy on it equals DeepChem's softmax cross-entropy over the two classes with
weight 1 on labelled entries and 0 on missing ones (DeepChem's ``w``). A regressor's ``(B, T, 1)``
prediction is read as standardised values (dltk scales regression targets by the training mean/std).
DeepChem's own ``weight_decay_penalty`` is not applied; use ``--model.weight_decay``.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

import torch
from torch import Tensor

from dltk.base import INPUT, BaseTask
from dltk.errors import ConfigError


def network_class(name: str) -> type:
    """``deepchem.models.<name>`` (or ``deepchem.models.torch_models.<name>``), a ``TorchModel``."""
    from dltk_chem.deepchem_features import require_deepchem

    require_deepchem(f"model.network {name}")
    import deepchem.models as models
    import deepchem.models.torch_models as torch_models

    found = None
    if not name.startswith("_"):
        found = getattr(models, name, None) or getattr(torch_models, name, None)
    if not isinstance(found, type) or not issubclass(found, torch_models.TorchModel):
        raise ConfigError(f"model.network: {name!r} is not a DeepChem TorchModel (e.g. MultitaskClassifier, "
                          "MultitaskRegressor, ProgressiveMultitaskModel)")
    return found


class DeepChemModel(BaseTask):
    """A DeepChem PyTorch network (its ``TorchModel.model``) trained as a dltk model.

    Args:
        network: the ``dc.models`` class, e.g. ``MultitaskClassifier``, ``MultitaskRegressor``,
            ``ProgressiveMultitaskModel``.
        network_args: its keyword arguments besides ``n_tasks`` and ``n_features`` (plain values,
            e.g. ``{"layer_sizes": [1000], "dropouts": 0.5}``); ``mode`` is set from the task type
            when the class takes one.
        lr: learning rate (DeepChem's default 0.001).
        optimizer: DeepChem's default is Adam.
        **kwargs: other optimiser settings, see :class:`dltk.base.BaseTask`.
    """

    def __init__(self, network: str = "MultitaskClassifier", network_args: dict[str, Any] | None = None,
                 lr: float = 1e-3, optimizer: Literal["adamw", "adam", "sgd"] = "adam", **kwargs: Any) -> None:
        super().__init__(lr=lr, optimizer=optimizer, **kwargs)

    def configure_models(self) -> None:
        if self.task_type == "multiclass":
            raise ConfigError("model: DeepChemModel supports binary classification and regression tasks")
        cls = network_class(self.hparams.network)
        args = dict(self.hparams.network_args or {})
        if "mode" in inspect.signature(cls.__init__).parameters:
            args.setdefault("mode", "classification" if self.task_type == "classification" else "regression")
        try:
            wrapper = cls(n_tasks=self.num_tasks, n_features=int(self.data_info["in_features"]),
                          device=torch.device("cpu"), **args)
        except TypeError as exc:
            raise ConfigError(f"model.network_args: {self.hparams.network}: {exc}") from None
        self.net = wrapper.model
        self.output_types = list(wrapper.output_types or ["prediction"])
        del wrapper  # its temporary model_dir goes with it
        self._check_outputs()

    def _check_outputs(self) -> None:
        """One dry forward: the network's outputs must fit the task type."""
        was_training = self.net.training
        self.net.eval()
        with torch.no_grad():
            x = torch.zeros(2, int(self.data_info["in_features"]))
            try:
                out = self.forward({INPUT: x})
            except (RuntimeError, ValueError, IndexError) as exc:
                raise ConfigError(f"model.network: {self.hparams.network} does not fit a {self.task_type} task "
                                  f"with {self.num_tasks} task(s): {exc}") from None
        self.net.train(was_training)
        if tuple(out.shape) != (2, self.num_tasks):
            raise ConfigError(f"model.network: {self.hparams.network} gives outputs of shape {tuple(out.shape)[1:]} "
                              f"for a {self.task_type} task with {self.num_tasks} task(s)")

    def forward(self, batch: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        out = self.net(batch[INPUT].float())
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        n = len(batch[INPUT])
        if self.task_type == "classification":
            if "loss" in self.output_types:  # DeepChem's logits (B, T, 2)
                logits = outs[self.output_types.index("loss")].reshape(n, self.num_tasks, -1)
                return logits[..., 1] - logits[..., 0]
            probs = outs[0].reshape(n, self.num_tasks, -1).clamp(1e-7, 1.0)
            return torch.log(probs[..., 1]) - torch.log(probs[..., 0])
        index = self.output_types.index("prediction") if "prediction" in self.output_types else 0
        return outs[index].reshape(n, self.num_tasks)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], dict[str, Any], dict[str, Tensor]]:
        """Plugin contract: a 16-unit MultitaskClassifier on 4 random 32-bit fingerprints (skipped
        when DeepChem is not installed)."""
        from dltk.contract import ContractSkip
        from dltk.plugin import Requirement

        if not Requirement("deepchem").is_installed():
            raise ContractSkip("DeepChem is not installed: pip install 'dltk[deepchem]'")
        kwargs = {"network": "MultitaskClassifier", "network_args": {"layer_sizes": [16], "dropouts": 0.1}}
        from dltk_chem.models import example_fingerprint_batch

        return (kwargs, *example_fingerprint_batch())
