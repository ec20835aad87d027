"""Image loading throughput: the imaging plugin's reader against a naive per-file PIL loop.

A class-folder dataset of ``--n`` generated images (default 2,000 RGB 8-bit PNGs of 64x64 pixels,
4 classes, seeded) is written to a temporary folder. Then, in round-robin order over
``--repeats`` rounds (median reported, so load changes hit every variant alike):

``naive PIL loop``
    ``np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])``: one file after the
    other, the usual first script.
``dltk read_folder (decode)``
    :func:`dltk_imaging.readers.read_folder` without its cache: listing, threaded decoding
    (PIL releases the GIL), channel/size/bit-depth checks, one ``(N, C, H, W)`` stack.
``dltk read_folder (cached)``
    the same call again with its decoded cache (one uncompressed ``.npz`` under the dltk cache):
    what every run after the first pays.
``epoch, per-file Dataset``
    a training epoch through a ``DataLoader`` whose ``Dataset`` opens each PNG in ``__getitem__``
    (the usual torchvision ``ImageFolder`` pattern), batch 64, no workers.
``epoch, dltk in memory``
    a training epoch over the plugin's in-memory tensors (what the datamodules do), batch 64.

Ratios are printed against the naive loop (and the per-file epoch) measured in the same run.

Usage::

    python benchmarks/bench_imaging_loader.py [--n 2000] [--size 64] [--repeats 3] [--threads 0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def write_dataset(root: Path, n: int, size: int) -> list[Path]:
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        folder = root / f"class{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        # smooth-ish content so PNG compression is realistic (not incompressible noise)
        base = rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)
        image = np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))
        image = (image.astype(np.int16) + rng.integers(-8, 8, image.shape)).clip(0, 255).astype(np.uint8)
        path = folder / f"{i:06d}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return sorted(paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="decoding threads (0: the reader's default)")
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")  # the readers' progress bars would interleave with the table

    import torch
    from dltk.base import TensorDictDataset
    from dltk_imaging import readers
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DLTK_CACHE"] = str(Path(tmp) / "cache")
        root = Path(tmp) / "data"
        t0 = time.perf_counter()
        paths = write_dataset(root, args.n, args.size)
        print(f"wrote {len(paths)} RGB PNGs {args.size}x{args.size} in {time.perf_counter() - t0:.1f} s "
              f"({os.cpu_count()} CPUs visible; load average {os.getloadavg()[0]:.1f})")

        def naive() -> np.ndarray:
            return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])

        def dltk_decode() -> np.ndarray:
            if args.threads:
                images, _, _ = readers.read_images(paths, n_threads=args.threads, progress=False)
                return images
            return readers.read_folder(root, use_cache=False).images

        readers.read_folder(root)  # fill the decoded cache once

        def dltk_cached() -> np.ndarray:
            return readers.read_folder(root).images

        class PerFile(Dataset):
            def __len__(self) -> int:
                return len(paths)

            def __getitem__(self, i: int) -> dict:
                image = np.asarray(Image.open(paths[i]).convert("RGB"))
                return {"x": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), "y": i % 4}

        memory = TensorDictDataset(x=readers.read_folder(root).images, y=np.arange(len(paths)) % 4)

        def epoch(dataset: Dataset) -> int:
            seen = 0
            for batch in DataLoader(dataset, batch_size=64, shuffle=True):
                seen += len(batch["x"])
            return seen

        variants = {
            "naive PIL loop": naive,
            "dltk read_folder (decode)": dltk_decode,
            "dltk read_folder (cached)": dltk_cached,
            "epoch, per-file Dataset": lambda: epoch(PerFile()),
            "epoch, dltk in memory": lambda: epoch(memory),
        }
        reference = naive()
        assert np.array_equal(dltk_decode(), reference.transpose(0, 3, 1, 2)), "readers disagree with PIL"
        times: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.repeats):
            for name, fn in variants.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    rate = {k: args.n / statistics.median(v) for k, v in times.items()}
    print(f"\n{'variant':<28} {'images/s':>10} {'ratio':>8}")
    for name in variants:
        peer = "epoch, per-file Dataset" if name.startswith("epoch") else "naive PIL loop"
        print(f"{name:<28} {rate[name]:>10.0f} {rate[name] / rate[peer]:>7.1f}x")
    print("\nratios: read vs the naive PIL loop; epochs vs the per-file Dataset epoch (same run, medians of "
          f"{args.repeats})")


if __name__ == "__main__":
    main()
