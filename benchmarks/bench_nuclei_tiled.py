"""Nucleus segmentation at scale: megapixels/s and peak memory, block-wise vs whole-image.

A grey mosaic of real nuclei is generated: the DSB2018 stage-1 *training* images of 256 x 256
fluorescence, laid side by side (``--sizes`` sides, rounded up to 256; default 2,560, 5,120 and
10,240 pixels) and written tile by tile as a tiled zlib TIFF (bounded memory). Each measurement
runs in a fresh subprocess that opens the TIFF lazily, segments it with
:func:`dltk_imaging.seg_blocks.segment_image` (table + instance mask TIFF written) and reports
wall time, CPU time (megapixels per CPU-second is the figure that survives a loaded machine) and
its peak resident memory (``VmHWM``) beside its resident memory after imports:

``blocks``
    ``--block`` (default 1,024) x ``--block`` cores with a 64-pixel margin: the ``dltk predict``
    path. Peak memory should not grow with the image.
``whole``
    the peer in the same run: one block holding the whole image (what an image-at-once pipeline
    costs). Run up to ``--whole-max`` pixels a side (default 5,120) to stay in memory and time.

Segmenters: ``classical`` (threshold + distance-transform watershed, default parameters) on every
size, and ``model`` (the nuclei U-Net: a trained run with ``--run DIR``, else an untrained one with
the preset's architecture, which costs the same) on the ``--model-sizes`` (default 1,024 and 2,048).

Usage::

    DLTK_DATA_DIR=/path/to/shared/data python benchmarks/bench_nuclei_tiled.py [--sizes 2560 5120 10240]
        [--model-sizes 1024 2048] [--run RUN] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TILE = 256


def write_mosaic(path: Path, side: int) -> int:
    """A side x side (rounded up to 256) mosaic of the 256 x 256 DSB2018 training fluorescence images."""
    import tifffile
    from dltk_imaging.seg_data import load_dsb2018

    tiles = [s.image for s in load_dsb2018("train") if s.image.shape == (TILE, TILE) and s.kind == "fluorescence"]
    n = -(-side // TILE)

    def gen():
        for i in range(n * n):
            yield tiles[(i * 7) % len(tiles)]

    tifffile.imwrite(path, gen(), shape=(n * TILE, n * TILE), dtype=np.uint8, tile=(TILE, TILE), compression="zlib")
    return n * TILE


def _rss(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def child(args: argparse.Namespace) -> None:
    """One measurement (in its own process): prints a JSON line."""
    from dltk_imaging.seg_blocks import open_image, segment_image

    if args.segmenter == "classical":
        from dltk_imaging.seg_classical import ClassicalSegmenter

        segmenter = ClassicalSegmenter()
    else:
        segmenter = _model_segmenter(args.run)
    source = open_image(Path(args.image))
    h, w = source.shape
    block = max(h, w) if args.mode == "whole" else args.block
    import resource

    base = _rss("VmRSS")
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = segment_image(source, segmenter, "mosaic", block=block, margin=64, mask_path=Path(tmp) / "m.tif")
        result.table.to_csv(Path(tmp) / "objects.csv", index=False)
    seconds = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    print(json.dumps({"cpu_seconds": cpu, "mp_per_cpu_s": h * w / 1e6 / cpu, "segmenter": args.segmenter,
                      "mode": args.mode, "side": h, "megapixels": h * w / 1e6,
                      "seconds": seconds, "mp_per_s": h * w / 1e6 / seconds, "objects": result.n_objects,
                      "truncated": result.truncated, "blocks": result.blocks,
                      "rss_after_imports_mb": base, "peak_rss_mb": _rss("VmHWM")}))


def _model_segmenter(run: str):
    import torch
    from dltk_imaging.seg_predict import ModelSegmenter

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "2"))))
    if run:
        from dltk.run import Run

        return ModelSegmenter(Run.open(run).models("best"))
    import yaml
    from dltk_imaging.seg_models import NucleiUNet

    preset = Path(__file__).parents[1] / "plugins/imaging/dltk_imaging/configs/nuclei.yaml"
    config = yaml.safe_load(preset.read_text())
    init = config["model"]["init_args"]
    info = {"task_names": ["nucleus"], "task_type": "classification", "in_channels": 1,
            "crop_size": config["data"]["init_args"]["crop_size"], "nucleus_radius": 0.0,
            "primary_metric": ["dice", "max"]}
    torch.manual_seed(0)  # the same untrained weights in every measurement
    return ModelSegmenter([NucleiUNet(**init, data_info=info).eval()])


def measure(image: Path, segmenter: str, mode: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", "--image", str(image), "--segmenter", segmenter, "--mode", mode,
           "--block", str(args.block), "--run", args.run]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=args.timeout)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{row['segmenter']:9s} {row['mode']:6s} {row['side']:6d}^2 {row['megapixels']:7.1f} MP "
          f"{row['seconds']:7.1f} s {row['mp_per_s']:6.2f} MP/s ({row.get('mp_per_cpu_s', 0):.2f} per CPU-s)  "
          f"peak {row['peak_rss_mb']:7.0f} MB "
          f"(after imports {row['rss_after_imports_mb']:5.0f})  {row['objects']} objects, "
          f"{row['truncated']} truncated, {row['blocks']} blocks", flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[2560, 5120, 10240])
    p.add_argument("--model-sizes", type=int, nargs="*", default=[1024, 2048])
    p.add_argument("--whole-max", type=int, default=5120)
    p.add_argument("--block", type=int, default=1024)
    p.add_argument("--run", default="")
    p.add_argument("--timeout", type=int, default=1200)
    p.add_argument("--json", default="")
    p.add_argument("--child", action="store_true")
    p.add_argument("--image", default="")
    p.add_argument("--segmenter", default="classical")
    p.add_argument("--mode", default="blocks")
    args = p.parse_args()
    if args.child:
        return child(args)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dltk-mosaic-") as tmp:
        plan = [("classical", s) for s in args.sizes] + [("model", s) for s in args.model_sizes]
        for segmenter, side in plan:
            image = Path(tmp) / f"mosaic{side}.tif"
            if not image.exists():
                side = write_mosaic(image, side)
            for mode in ("blocks", "whole"):
                if mode == "whole" and side > args.whole_max:
                    continue
                rows.append(measure(image, segmenter, mode, args))
    for seg in ("classical", "model"):
        mine = [r for r in rows if r["segmenter"] == seg and r["mode"] == "blocks"]
        for r in mine:
            peer = next((q for q in rows if q["segmenter"] == seg and q["mode"] == "whole"
                         and q["side"] == r["side"]), None)
            if peer:
                print(f"{seg} {r['side']}^2: blocks/whole peak memory {r['peak_rss_mb'] / peer['peak_rss_mb']:.2f}x, "
                      f"throughput {r['mp_per_s'] / peer['mp_per_s']:.2f}x, "
                      f"objects {r['objects']} vs {peer['objects']}")
        if len(mine) > 1:
            print(f"{seg}: peak memory {mine[-1]['side']}^2 / {mine[0]['side']}^2 = "
                  f"{mine[-1]['peak_rss_mb'] / mine[0]['peak_rss_mb']:.2f}x for "
                  f"{mine[-1]['megapixels'] / mine[0]['megapixels']:.0f}x the pixels")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "load": os.getloadavg()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
