"""Image classifier: a timm backbone with any channel count, normalising and augmenting on device.

The network is ``timm.create_model(backbone, pretrained=False, in_chans=C, num_classes=K)``
(no weights are downloaded; a local weights file can be loaded with ``--model.weights PATH``). The
model receives **raw** intensities: ``forward`` applies the training-set percentile normalisation
stored in ``data_info`` (:mod:`dltk_imaging.normalize`), then, while training, the batched
augmentations of :mod:`dltk_imaging.augment` — both on the batch's device (the GPU when present).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import torch
from dltk.base import INPUT, TARGET, BaseTask
from dltk.errors import ConfigError, DataError
from torch import Tensor, nn

from dltk_imaging.augment import augment_batch
from dltk_imaging.normalize import apply_torch

log = logging.getLogger("dltk.imaging")


class ImageClassifier(BaseTask):
    """timm backbone + linear head over ``K`` classes for ``(B, C, H, W)`` images.

    Args:
        backbone: any timm model name (``timm.list_models()``), built with ``pretrained=False``.
        stem: ``default`` keeps the backbone as designed for 224-pixel photos; ``no_maxpool``
            removes a ResNet's stem max-pooling (stride 4 -> 2), which keeps more resolution for
            small inputs such as 40x40 cell crops.
        input_size: resize inputs to this many pixels (bilinear) inside the model; 0 = as given.
        drop_rate: dropout before the classifier.
        weights: optional local weights file (``.safetensors``, or a ``torch.save`` state dict
            read with ``weights_only=True``); tensors whose names and shapes match are loaded, the
            first convolution is adapted to the channel count (timm's ``adapt_input_conv``), the
            classifier is left freshly initialised when the class count differs.
        augment: random flips, 90-degree rotations and per-channel gain/offset jitter while
            training.
        jitter_gain: standard deviation of the per-channel multiplicative jitter.
        jitter_offset: standard deviation of the per-channel additive jitter (normalised units).
        **kwargs: optimiser settings, see :class:`dltk.base.BaseTask`.
    """

    def __init__(self, backbone: str = "resnet18", stem: Literal["default", "no_maxpool"] = "default",
                 input_size: int = 0, drop_rate: float = 0.0, weights: str | None = None, augment: bool = True,
                 jitter_gain: float = 0.1, jitter_offset: float = 0.05, weight_decay: float = 0.05,
                 scheduler: Literal["none", "cosine", "plateau"] = "cosine",
                 class_weight: Literal["none", "balanced"] = "balanced", **kwargs: Any) -> None:
        super().__init__(weight_decay=weight_decay, scheduler=scheduler, class_weight=class_weight, **kwargs)

    # -- construction -----------------------------------------------------------------------
    def configure_models(self) -> None:
        import timm

        hp = self.hparams
        info = self.data_info
        in_chans = int(info["in_chans"])
        if not timm.is_model(hp.backbone):
            close = timm.list_models(f"*{hp.backbone}*")[:5]
            raise ConfigError(f"model.backbone: unknown timm model {hp.backbone!r}"
                              + (f"; similar: {', '.join(close)}" if close else ""))
        self.net = timm.create_model(hp.backbone, pretrained=False, in_chans=in_chans,
                                     num_classes=self.num_classes, drop_rate=hp.drop_rate)
        if hp.stem == "no_maxpool":
            if not isinstance(getattr(self.net, "maxpool", None), nn.MaxPool2d):
                raise ConfigError(f"model.stem no_maxpool: backbone {hp.backbone!r} has no stem max-pooling "
                                  "(ResNet-style backbones only)")
            self.net.maxpool = nn.Identity()
        low = torch.tensor(info.get("norm_low", [0.0] * in_chans), dtype=torch.float32)
        high = torch.tensor(info.get("norm_high", [1.0] * in_chans), dtype=torch.float32)
        self.register_buffer("norm_low", low, persistent=False)
        self.register_buffer("norm_high", high, persistent=False)
        if hp.weights:
            self.load_backbone_weights(hp.weights)

    def load_backbone_weights(self, path: str) -> dict[str, int]:
        """Load matching tensors from a local weights file; returns counts (loaded, adapted, skipped)."""
        file = Path(path)
        if not file.is_file():
            raise DataError(file, "weights file not found")
        try:
            if file.suffix == ".safetensors":
                from safetensors.torch import load_file

                state = load_file(str(file))
            else:
                state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise DataError(file, f"cannot read weights ({type(exc).__name__}: {str(exc)[:120]})") from exc
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise DataError(file, "expected a state dict (name -> tensor)")
        from timm.models import adapt_input_conv

        own = self.net.state_dict()
        first_conv = next((k for k, v in own.items() if v.ndim == 4), None)
        loaded: dict[str, Tensor] = {}
        adapted = skipped = 0
        for key, value in state.items():
            name = key
            for prefix in ("net.", "model.", "module."):
                if name.startswith(prefix) and name[len(prefix):] in own:
                    name = name[len(prefix):]
            if name not in own or not isinstance(value, Tensor):
                skipped += 1
                continue
            if value.shape != own[name].shape:
                if name == first_conv and value.ndim == 4 and value.shape[0] == own[name].shape[0]:
                    value = adapt_input_conv(own[name].shape[1], value.float())
                    adapted += 1
                else:
                    skipped += 1
                    continue
            loaded[name] = value.to(own[name].dtype)
        if not loaded:
            raise DataError(file, f"no tensor matches backbone {self.hparams.backbone!r} (wrong architecture?)")
        self.net.load_state_dict(loaded, strict=False)
        counts = {"loaded": len(loaded), "adapted": adapted, "skipped": skipped, "missing": len(own) - len(loaded)}
        print(f"dltk imaging: weights {file.name}: loaded {counts['loaded']} tensors ({adapted} input conv "
              f"adapted), skipped {skipped}, {counts['missing']} left at initialisation", flush=True)
        return counts

    # -- forward ----------------------------------------------------------------------------
    def prepare(self, x: Tensor) -> Tensor:
        """Raw ``(B, C, H, W)`` -> the network's normalised (and, when training, augmented) input."""
        x = apply_torch(x, self.norm_low, self.norm_high)
        if self.training and self.hparams.augment:
            x = augment_batch(x, gain=self.hparams.jitter_gain, offset=self.hparams.jitter_offset)
        size = int(self.hparams.input_size)
        if size and tuple(x.shape[-2:]) != (size, size):
            x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return x

    def forward(self, batch: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        return self.net(self.prepare(batch[INPUT]))

    # -- contract ---------------------------------------------------------------------------
    @classmethod
    def example(cls) -> tuple[dict[str, Any], dict[str, Any], dict[str, Tensor]]:
        """Tiny timm test ResNet on 2-channel 16x16 uint16-range images, 3 classes."""
        kwargs = {"backbone": "test_resnet"}
        info = {"task_names": ["label"], "task_type": "multiclass", "class_names": ["a", "b", "c"],
                "class_counts": [5, 3, 1], "in_chans": 2, "image_size": [16, 16],
                "norm_low": [100.0, 0.0], "norm_high": [4000.0, 900.0],
                "primary_metric": ["balanced_accuracy", "max"]}
        gen = torch.Generator().manual_seed(0)
        batch = {INPUT: torch.randint(0, 4000, (4, 2, 16, 16), generator=gen).float(),
                 TARGET: torch.tensor([0.0, 1.0, 2.0, float("nan")])}
        return kwargs, info, batch
