"""The timm classifier: contract example, local weights (safetensors / torch state dict, adapted input
convolution), model-side normalisation, and the class-balanced sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("timm")

from dltk.errors import ConfigError, DataError
from dltk_imaging.cls_datamodules import ImageDataModule
from dltk_imaging.cls_models import ImageClassifier


def _model(in_chans: int, classes: int = 3, **kwargs: object) -> ImageClassifier:
    kw, info, _ = ImageClassifier.example()
    info = {**info, "in_chans": in_chans, "class_names": [f"c{i}" for i in range(classes)],
            "class_counts": [1] * classes, "norm_low": [0.0] * in_chans, "norm_high": [1.0] * in_chans}
    return ImageClassifier(**{**kw, **kwargs}, data_info=info)


def test_example_trains_and_normalises_inside_forward() -> None:
    kwargs, info, batch = ImageClassifier.example()
    model = ImageClassifier(**kwargs, data_info=info)
    loss = model.training_step(batch, 0)
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss)
    model.eval()
    x = batch["x"]
    expected = (x - torch.tensor([100.0, 0.0])[None, :, None, None]) / torch.tensor([3900.0, 900.0])[None, :, None, None]
    assert torch.allclose(model.prepare(x), expected)
    with pytest.raises(ConfigError, match="unknown timm model 'resnet_nope'"):
        ImageClassifier(backbone="resnet_nope", data_info=info)


def test_local_weights_load_and_adapt(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from safetensors.torch import save_file

    source = _model(3, classes=5)
    save_file({k: v.contiguous() for k, v in source.net.state_dict().items()}, str(tmp_path / "w.safetensors"))
    target = _model(2, classes=3, weights=str(tmp_path / "w.safetensors"))
    out = capsys.readouterr().out
    assert "1 input conv adapted" in out and "skipped 2" in out  # fc.weight, fc.bias (5 vs 3 classes)
    own, src = target.net.state_dict(), source.net.state_dict()
    assert torch.equal(own["layer1.0.conv1.weight"], src["layer1.0.conv1.weight"])
    first = "conv1.0.weight"
    assert own[first].shape[1] == 2 and not torch.equal(own["fc.weight"][:3], src["fc.weight"][:3])

    torch.save({"state_dict": {"net." + k: v for k, v in src.items()}}, tmp_path / "w.pt")
    again = _model(3, classes=5, weights=str(tmp_path / "w.pt"))
    assert all(torch.equal(again.net.state_dict()[k], v) for k, v in src.items() if v.dtype.is_floating_point)

    with pytest.raises(DataError, match="weights file not found"):
        _model(3, weights=str(tmp_path / "missing.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="cannot read weights"):
        _model(3, weights=str(tmp_path / "junk.pt"))


def test_balanced_sampler_draws_classes_equally(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], [300, 60, 15])
    np.savez(tmp_path / "a.npz", images=rng.integers(0, 255, (len(labels), 1, 8, 8), dtype=np.uint8),
             labels=labels)
    dm = ImageDataModule(path=str(tmp_path / "a.npz"), sampler="balanced", batch_size=64)
    dm.setup()
    assert dm.data_info()["class_counts"] == [210, 42, 10]
    torch.manual_seed(0)
    drawn = torch.cat([b["y"] for b in dm.train_dataloader()]).long()
    counts = torch.bincount(drawn, minlength=3).numpy()
    assert counts.sum() == 262 and (np.abs(counts / counts.sum() - 1 / 3) < 0.08).all()


def test_manifest_split_is_used_and_normalisation_is_fitted_on_train(tmp_path: Path) -> None:
    from PIL import Image

    rows = ["path,label,split"]
    for i in range(12):
        split = "train" if i < 8 else ("val" if i < 10 else "test")
        value = 10 * i  # train images 0..70, val/test brighter: the percentiles must ignore them
        Image.fromarray(np.full((6, 6), value, np.uint8)).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,{'ab'[i % 2]},{split}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    dm = ImageDataModule(path=str(tmp_path / "m.csv"), norm_low=0.0, norm_high=100.0)
    dm.setup()
    assert (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset)) == (8, 2, 2)
    info = dm.data_info()
    assert info["norm_low"] == [0.0] and info["norm_high"] == [70.0] and info["class_names"] == ["a", "b"]
    assert info["bit_depth"] == "8-bit" and info["in_chans"] == 1 and info["class_counts"] == [4, 4]
