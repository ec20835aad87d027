"""Tiled inference equals whole-image inference; the U-Net contract; predict and evaluate end to end."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from dltk.errors import ConfigError
from dltk.options import parse as parse_options
from dltk_imaging.seg_datamodules import NucleiDataModule
from dltk_imaging.seg_models import NucleiUNet, tiled_predict
from dltk_imaging.options import NucleiPredictOptions
from dltk_imaging.seg_predict import predict_folder
from PIL import Image
from torch import nn


def _local_net() -> nn.Module:
    """A fully convolutional net whose output depends on a 7x7 neighbourhood (3 convs of 3x3)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 4, 3, padding=1), nn.Tanh(),
                         nn.Conv2d(4, 2, 3, padding=1)).eval()


@pytest.mark.parametrize("shape", [(100, 150), (64, 200), (97, 64), (65, 65)])
def test_tiled_equals_whole_image(shape: tuple[int, int]) -> None:
    net = _local_net()
    image = np.random.default_rng(1).random(shape).astype(np.float32)
    with torch.no_grad():
        whole = net(torch.from_numpy(image)[None, None])[0].numpy()
    tiled = tiled_predict(net, image, tile=32, overlap=12, divisor=1, batch_tiles=3)
    assert tiled.shape == whole.shape
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
    # too little overlap for the 3-pixel context: the seams show
    seams = tiled_predict(net, image, tile=32, overlap=2, divisor=1)
    assert np.abs(seams - whole).max() > 1e-3


def test_small_image_runs_whole_padded_to_divisor() -> None:
    calls = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return torch.cat([x, -x], dim=1)

    image = np.random.default_rng(0).random((40, 50)).astype(np.float32)
    out = tiled_predict(fn, image, tile=64, overlap=16, divisor=32)
    assert calls == [(1, 1, 64, 64)]
    np.testing.assert_array_equal(out[0], image)
    with pytest.raises(ConfigError):
        tiled_predict(fn, image, tile=32, overlap=32)


def test_unet_tiled_close_to_whole_image() -> None:
    kwargs, info, _ = NucleiUNet.example()
    model = NucleiUNet(**kwargs, data_info={**info, "crop_size": 64}, tile_overlap=32).eval()
    image = np.random.default_rng(0).random((96, 160)).astype(np.float32)
    tiled = model.predict_image(image)
    with torch.no_grad():
        whole = torch.sigmoid(model.net(torch.from_numpy(image)[None, None]))[0].numpy()
    assert tiled.shape == (2, 96, 160)
    # a deep encoder sees past any overlap, so equality is approximate for the U-Net
    assert np.abs(tiled - whole).mean() < 0.05


def test_contract_example_trains() -> None:
    kwargs, info, batch = NucleiUNet.example()
    model = NucleiUNet(**kwargs, data_info=info)
    loss = model.training_step(batch, 0)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert model.net.encoder.conv1.weight.grad is not None
    assert model.monitor == ("val/dice", "max")


def test_unknown_encoder_and_missing_weights_are_config_errors(tmp_path: Path) -> None:
    _, info, _ = NucleiUNet.example()
    with pytest.raises(ConfigError, match="not a segmentation_models_pytorch encoder"):
        NucleiUNet(encoder="no_such_encoder", data_info=info)
    with pytest.raises(ConfigError, match="no such file"):
        NucleiUNet(encoder="resnet18", decoder_width=4, encoder_weights_path=str(tmp_path / "w.pt"), data_info=info)


def test_local_encoder_weights_are_loaded(tmp_path: Path) -> None:
    kwargs, info, _ = NucleiUNet.example()
    donor = NucleiUNet(**kwargs, data_info=info)
    torch.save(donor.net.encoder.state_dict(), tmp_path / "enc.pt")
    model = NucleiUNet(**kwargs, encoder_weights_path=str(tmp_path / "enc.pt"), data_info=info)
    torch.testing.assert_close(model.net.encoder.layer1[0].conv1.weight, donor.net.encoder.layer1[0].conv1.weight)


def _discs(rng: np.random.Generator, shape: tuple[int, int], n: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    labels = np.zeros(shape, np.uint16)
    centres = [(cy, cx) for cy in range(10, shape[0] - 8, 20) for cx in range(10, shape[1] - 8, 20)]
    for i, k in enumerate(rng.choice(len(centres), n, replace=False), start=1):
        cy, cx = centres[k][0] + rng.integers(-3, 4), centres[k][1] + rng.integers(-3, 4)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= 25] = i
    image = np.where(labels > 0, 200, 20).astype(np.uint8)
    return image, labels


def test_evaluate_run_and_predict_on_generated_folders(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for k in range(6):
        image, labels = _discs(rng, (64, 96), 5)
        tifffile.imwrite(images / f"img{k}.tif", image)
        tifffile.imwrite(masks / f"img{k}.tif", labels)
    dm = NucleiDataModule(images=str(images), masks=str(masks), crop_size=64, crops_per_epoch=4, n_test=2,
                          n_val=1, batch_size=2)
    dm.setup()
    assert [len(v) for v in dm.splits.values()] == [3, 1, 2]
    info = dm.data_info()
    assert info["primary_metric"] == ["dice", "max"] and info["in_channels"] == 1
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (2, 1, 64, 64) and batch["y"].shape == (2, 2, 64, 64)
    val = next(iter(dm.val_dataloader()))
    assert val["x"].shape == (1, 1, 64, 96) and val["valid"].sum() == 64 * 96
    kwargs, _, _ = NucleiUNet.example()
    model = NucleiUNet(**kwargs, data_info=info)
    run = tmp_path / "run"
    metrics = model.evaluate_run(dm, [model], run)
    assert set(metrics) >= {"dsb_score", "ap50", "dice", "baseline_otsu_dsb_score", "test_images"}
    assert metrics["test_images"] == 2
    assert metrics["baseline_otsu_dsb_score"] > 0.9  # clean discs: Otsu is near perfect
    with open(run / "predictions" / "test.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and rows[0]["true_nuclei"] == "5"
    assert Image.open(run / "plots" / "test_overlays.png").format == "PNG"

    (images / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "pred"
    counts = predict_folder([model], images, out, parse_options(NucleiPredictOptions, ["--overlay"], "predict"))
    assert counts["images"] == 7 and counts["skipped"] == 1 and counts["segmented"] == 6
    labels = tifffile.imread(out / "img0_labels.tif")
    assert labels.shape == (64, 96) and labels.dtype == np.uint16
    assert (out / "img0_overlay.png").is_file()
    with open(out / "counts.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["file"] for r in rows][:2] == ["broken.png", "img0.tif"]
    assert "unreadable image" in rows[0]["error"] and rows[1]["nuclei"] == str(labels.max())
    with pytest.raises(ConfigError, match="unknown option --bogus"):
        parse_options(NucleiPredictOptions, ["--bogus"], "dltk predict (imaging/nuclei)")


def test_large_nuclei_are_predicted_at_the_training_scale() -> None:
    kwargs, info, _ = NucleiUNet.example()
    model = NucleiUNet(**kwargs, data_info={**info, "nucleus_radius": 10.0}).eval()
    seen = []
    real = model.net.forward

    def spy(x: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape[-2:]))
        return torch.cat([x * 20 - 10, x * 0], dim=1)  # foreground logit: the image itself

    model.net.forward = spy
    yy, xx = np.mgrid[:120, :120]
    image = ((yy - 60) ** 2 + (xx - 60) ** 2 <= 40 ** 2).astype(np.float32)  # one nucleus of radius 40
    probs = model.predict_image(image)
    model.net.forward = real
    assert probs.shape == (2, 120, 120)
    assert seen[0] == (64, 64) or len(seen) > 1  # first pass at full size (tiles of 64)
    assert seen[-1] == (32, 32)  # second pass: 120 * 10/40 = 30 px, padded to 32
    assert probs[0, 60, 60] > 0.99 and probs[0, 2, 2] < 0.01
