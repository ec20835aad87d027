"""`dltk serve` on an imaging run: base64 TIFF/PNG images and multipart uploads answer what
`dltk predict` writes for the same images (a small `images` run on a generated folder, 1 epoch)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from serveutil import as_frame, same_table, served
from testutil import preserved_environ

from dltk.cli import main
from dltk.client import Client

tifffile = pytest.importorskip("tifffile")
pytest.importorskip("timm")


def _tiff(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("images-serve")
    for k, name in enumerate(("dim", "bright")):
        (root / "data" / name).mkdir(parents=True)
        for i in range(12):
            image = (rng.integers(0, 300, (2, 24, 24)) + 900 * k).astype(np.uint16)
            (root / "data" / name / f"{i}.tif").write_bytes(_tiff(image))
    with preserved_environ():
        assert main(["train", "--plugin", "imaging", "--task", "images", "--data.path", str(root / "data"),
                     "--model.backbone", "test_resnet", "--trainer.max_epochs", "1", "--data.batch_size", "8",
                     "--run-dir", str(root / "run")]) == 0
    return root / "run"


@pytest.mark.slow  # a training run and a server start: ~1 min on two busy cores
def test_images_equal_dltk_predict(image_run: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = [_tiff((rng.integers(0, 300, (2, 24, 24)) + 900 * k).astype(np.uint16)) for k in (0, 1, 1)]
    images.append(b"II*\x00 truncated")  # a corrupt image: an error on its row, the others scored
    folder = tmp_path / "in"
    folder.mkdir()
    for i, data in enumerate(images):
        (folder / f"{i:06d}.tif").write_bytes(data)
    with preserved_environ():
        assert main(["predict", "--run", str(image_run), "--input", str(folder), "--output",
                     str(tmp_path / "out.csv")]) == 0
    expected = pd.read_csv(tmp_path / "out.csv")
    expected["id"] = [Path(p).name for p in expected["id"]]
    expected["error"] = expected["error"].fillna("").str.replace(str(folder) + "/", "", regex=False)
    encoded = [base64.b64encode(d).decode() for d in images]
    with served(image_run, log_dir=tmp_path) as server, Client(server.url) as client:
        answer = client.answer({"images": encoded})
        uploaded = httpx.post(server.url + "/predict", files=[("files", (f"x{i}", d)) for i, d in enumerate(images)])
        bad = httpx.post(server.url + "/predict", json={"images": ["not base64!"]})
        info = client.info()
    served_frame = as_frame(answer)
    served_frame["error"] = served_frame["error"].fillna("")
    same_table(served_frame, expected)
    rows = answer["predictions"]
    assert [r["id"] for r in rows] == ["000000.tif", "000001.tif", "000002.tif", "000003.tif"]
    assert rows[3]["error"] and rows[3]["prob_bright"] is None and not rows[0]["error"]
    assert uploaded.status_code == 200 and uploaded.json() == answer  # the same images uploaded
    assert bad.status_code == 422 and bad.json()["detail"] == "body.images[0]: not valid base64"
    assert info["uploads"] is True and info["plugin"] == "imaging"
