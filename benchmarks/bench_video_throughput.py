"""Video plugin throughput, as ratios against peers measured in the same run.

1. Decoding + encoding frames/s on the real open-field mp4 (2,330 frames, 640x480, 30 fps;
   ``dltk_video.datasets.FILES["dlc_openfield/video"]``) versus decoding alone (PyAV, same
   resize: the physical floor of the streaming path), for the video_behavior preset's encoder
   (resnet10t at 64 px, 2x2 grid) and a larger one (resnet18 at 112 px).
2. Memory flat with video length: peak resident memory of a fresh process that decodes + encodes
   the video once versus 4 times in a row (``repeat=4``: 9,320 frames), embeddings streamed to
   disk; the ratio should be ~1.
3. Pose-sequence training frames/s: the pose_behavior preset model (BiGRU, window 64) trained on
   the Sturman features, versus the recording's 25 frames/s (real time).

    DLTK_DATA_DIR=/path/to/shared/data python benchmarks/bench_video_throughput.py [--json out.json]

Exit status 1 only if a correctness check fails (frame counts, memory ratio > 1.5).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

MEMORY_CHILD = """
import resource, sys
from dltk.data.registry import fetch
from dltk_video.datasets import FILES
from dltk_video.video import EncoderConfig, encode_video
path = fetch(FILES["dlc_openfield/video"])
X = encode_video(path, EncoderConfig("resnet10t", 64, pool=2), chunk=64, cache=False, progress=False,
                 repeat=int(sys.argv[1]))
print(len(X), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def decode_only(path: str, size: int) -> tuple[int, float]:
    from dltk_video.video import iter_frames

    t = time.perf_counter()
    n = sum(len(c) for c in iter_frames(path, size, chunk=64))
    return n, time.perf_counter() - t


def decode_encode(path: str, config) -> tuple[int, float]:
    from dltk_video.video import build_encoder, encode_video

    model = build_encoder(config)
    t = time.perf_counter()
    X = encode_video(path, config, chunk=64, cache=False, progress=False, model=model)
    return len(X), time.perf_counter() - t


def pose_training(steps: int) -> tuple[int, float]:
    import torch
    from dltk_video.datamodules import SturmanOFTDataModule
    from dltk_video.models import PoseSequenceClassifier

    dm = SturmanOFTDataModule(stride=8)
    dm.setup()
    model = PoseSequenceClassifier(hidden_dim=64, num_layers=2, data_info=dm.data_info())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loader = dm.train_dataloader()
    frames, done = 0, 0
    t = time.perf_counter()
    while done < steps:
        for batch in loader:
            loss = model.loss(model(batch), batch["y"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            frames += batch["x"].shape[0] * batch["x"].shape[1]
            done += 1
            if done == steps:
                break
    return frames, time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", default=None)
    parser.add_argument("--train-steps", type=int, default=40)
    args = parser.parse_args()
    import torch
    from dltk.data.registry import fetch
    from dltk_video.datasets import FILES
    from dltk_video.video import EncoderConfig

    path = str(fetch(FILES["dlc_openfield/video"]))
    out: dict = {"threads": torch.get_num_threads(), "load_before": os.getloadavg()[0]}
    ok = True
    for name, config in (("resnet10t@64 grid2 (preset)", EncoderConfig("resnet10t", 64, pool=2)),
                         ("resnet18@112", EncoderConfig("resnet18", 112))):
        n0, t0 = decode_only(path, config.image_size)
        n1, t1 = decode_encode(path, config)
        ok &= n0 == n1 == 2330
        out[name] = {"frames": n1, "decode_fps": n0 / t0, "decode_encode_fps": n1 / t1,
                     "ratio_to_decode_only": (n1 / t1) / (n0 / t0)}
        print(f"{name}: decode only {n0 / t0:7.1f} frames/s, decode+encode {n1 / t1:7.1f} frames/s "
              f"({(n1 / t1) / (n0 / t0):.2f} of the decoding floor), {n1} frames")
    rss = {}
    for repeat in (1, 4):
        res = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(repeat)], capture_output=True, text=True,
                             check=True, env={**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())})
        n, kib = map(int, res.stdout.split()[-2:])
        ok &= n == 2330 * repeat
        rss[repeat] = kib / 1024
        print(f"decode+encode {repeat}x the video ({n} frames): peak RSS {kib / 1024:.0f} MiB")
    out["peak_rss_mib"] = rss
    out["rss_ratio_4x_to_1x"] = rss[4] / rss[1]
    ok &= rss[4] / rss[1] < 1.5
    print(f"memory 4x / 1x: {rss[4] / rss[1]:.3f}")
    frames, t = pose_training(args.train_steps)
    out["pose_training_fps"] = frames / t
    out["pose_training_x_realtime"] = frames / t / 25.0
    print(f"pose-sequence training: {frames / t:,.0f} frames/s ({frames / t / 25:,.0f}x the 25-fps recording)")
    out["load_after"] = os.getloadavg()[0]
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
