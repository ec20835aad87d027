"""Training-step throughput (images/s) of the imaging classifier's default backbone on this machine.

One step = the plugin's own ``ImageClassifier.training_step`` (percentile normalisation, batched
flips/rotations/jitter, forward, class-weighted cross-entropy) + backward + AdamW step, on a batch
of ``--batch`` random uint16-range images shaped like BBBC048 cells (3 x 40 x 40, 7 classes).
Backbones are timed in round-robin rounds (median reported) so that load changes hit all alike:
the ``cell_phenotype`` default ``test_resnet`` and, as peers measured in the same run, ``resnet18``
(the usual first choice) and ``resnet18`` without its stem max-pooling. Ratios are against
``resnet18``.

On a CUDA machine the script also times each backbone on the GPU in float32 and with bfloat16
autocast (the mixed precision ``--trainer.precision bf16-mixed`` uses), ``--gpu-batch`` images per
step.

Usage::

    python benchmarks/bench_imaging_train.py [--batch 64] [--steps 10] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

BACKBONES = (("test_resnet", "default"), ("resnet18", "default"), ("resnet18", "no_maxpool"))


def build(backbone: str, stem: str, device: str):  # type: ignore[no-untyped-def]
    import torch
    from dltk_imaging.cls_models import ImageClassifier

    info = {"task_names": ["phase"], "task_type": "multiclass", "class_names": [str(i) for i in range(7)],
            "class_counts": [630, 630, 630, 424, 48, 10, 20], "in_chans": 3, "image_size": [40, 40],
            "norm_low": [500.0, 30.0, 0.0], "norm_high": [900.0, 1000.0, 100.0], "bit_depth": "16-bit",
            "primary_metric": ["balanced_accuracy", "max"]}
    model = ImageClassifier(backbone=backbone, stem=stem, data_info=info).to(device).train()
    model.log = lambda *a, **k: None  # type: ignore[method-assign]  # no trainer attached
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return model, opt


def time_steps(backbone: str, stem: str, batch: int, steps: int, device: str, amp: bool) -> float:
    import torch

    model, opt = build(backbone, stem, device)
    gen = torch.Generator().manual_seed(0)
    data = {"x": torch.randint(0, 1200, (batch, 3, 40, 40), generator=gen).float().to(device),
            "y": torch.randint(0, 7, (batch,), generator=gen).float().to(device)}

    def step() -> None:
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=amp):
            loss = model.training_step(data, 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):  # warm-up (allocator, cuDNN autotuning)
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    parser.add_argument("--gpu-batch", type=int, default=512)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"CPU: {args.threads} torch thread(s), batch {args.batch}, {args.steps} steps x {args.rounds} rounds; "
          f"load average {os.getloadavg()[0]:.1f}")
    rates: dict[str, list[float]] = {f"{b}/{s}": [] for b, s in BACKBONES}
    for _ in range(args.rounds):
        for backbone, stem in BACKBONES:
            rates[f"{backbone}/{stem}"].append(time_steps(backbone, stem, args.batch, args.steps, "cpu", False))
    peer = statistics.median(rates["resnet18/default"])
    print(f"\n{'backbone/stem':<24} {'CPU images/s':>13} {'vs resnet18':>12}")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:<24} {median:>13.0f} {median / peer:>11.2f}x")
    if torch.cuda.is_available():
        print(f"\nGPU: {torch.cuda.get_device_name(0)}, batch {args.gpu_batch}")
        print(f"{'backbone/stem':<24} {'fp32 img/s':>11} {'bf16 img/s':>11} {'bf16/fp32':>10}")
        for backbone, stem in BACKBONES:
            fp32 = time_steps(backbone, stem, args.gpu_batch, 30, "cuda", False)
            bf16 = time_steps(backbone, stem, args.gpu_batch, 30, "cuda", True)
            print(f"{backbone + '/' + stem:<24} {fp32:>11.0f} {bf16:>11.0f} {bf16 / fp32:>9.2f}x")
    else:
        print("\n(no CUDA device: GPU mixed-precision throughput not measured)")


if __name__ == "__main__":
    main()
