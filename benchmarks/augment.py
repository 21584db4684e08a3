"""How much faster is batched on-device augmentation than the per-image pipeline?

    python benchmarks/augment.py                 # 5,000 CIFAR-size images on this machine's best device
    python benchmarks/augment.py --device cpu --n 2000

Target: the batched path (``icdl.data.DeviceLoader`` + ``BatchAugment.reference()``)
delivers **at least 10x** the images per second of the reference per-image
pipeline (``icdl.augment.reference_transforms`` through a ``DataLoader``) with
two workers.

Fair comparison: the same images in the same run; both paths apply the same
families of operations (random crop with padding, flip, brightness, contrast
and saturation jitter, two RandAugment operations of magnitude 9, random
erasing) and end in normalised float32 batches of the same size; each is timed
over one full pass after a warm-up pass (which also starts the workers, kept
alive with ``persistent_workers``). The batched path is also timed with crop
and flip only, the setting the chapters train with.

Threads: this process runs torch on one thread (``--threads``), like each
``DataLoader`` worker does. On a CPU the batched path then uses one core while
the two-worker pipeline uses two, so the ratio is, if anything, unfair to the
batched path; more threads than free cores make both paths several times
slower (the threads wait for each other) and the numbers meaningless.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from icdl import augment, data, env


def images_per_second(loader, device: torch.device) -> float:
    """One warm-up pass, then a timed full pass; every batch is consumed on ``device``."""
    def one_pass():
        n = 0
        for x, y in loader:
            x = x.to(device, non_blocking=True)
            n += len(y)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return n

    one_pass()
    start = time.perf_counter()
    n = one_pass()
    return n / (time.perf_counter() - start)


def machine_line(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    return (f"machine: {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, device {device} ({name}), "
            f"torch {torch.__version__}, Python {platform.python_version()}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="number of CIFAR-size images")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default=None, help="default: cuda > mps > cpu")
    parser.add_argument("--workers", type=int, default=2,
                        help="DataLoader workers for the second per-image run (default 2, Colab's core count)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of this process (default 1)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = env.get_device(args.device)
    ds = data.take(data.load("cifar10"), args.n)
    print(machine_line(device))
    print(f"images: {len(ds):,} of {ds.name}{' (stand-in)' if ds.standin else ''}, shape {tuple(ds.images.shape[1:])}, "
          f"batch size {args.batch_size}\n")

    def batched(augmenter):
        return data.DeviceLoader(ds, args.batch_size, shuffle=True, device=device, augment=augmenter)

    def per_image(workers):
        transform = augment.reference_transforms(ds.mean, ds.std, size=ds.images.shape[-1])
        return data.torch_loader(ds, transform, args.batch_size, shuffle=True, num_workers=workers)

    whole = augment.BatchAugment.reference()
    runs = {
        "batched on device: crop + flip": batched(augment.BatchAugment()),
        f"batched on device: whole pipeline, {whole!r}": batched(whole),
        "per-image reference pipeline, num_workers=0": per_image(0),
        f"per-image reference pipeline, num_workers={args.workers}": per_image(args.workers),
    }
    speed = {}
    for label, loader in runs.items():
        speed[label] = images_per_second(loader, device)
        print(f"{speed[label]:>12,.0f} images/s  {label}")

    batched_labels, per_image_labels = list(runs)[:2], list(runs)[2:]
    print("\nspeed-up of the batched path over the per-image pipeline "
          "(target: at least 10x for the whole pipeline against the workers):")
    for b in batched_labels:
        for p in per_image_labels:
            ratio = speed[b] / speed[p]
            verdict = ("meets" if ratio >= 10 else "MISSES") + " target" if b == batched_labels[1] else "(no target)"
            print(f"  {ratio:6.1f}x  {verdict:14}  {b.split(': ')[1].split(',')[0]}  vs  {p.split(', ')[1]}")
    print("\nBoth whole pipelines: random crop (padding 4), flip, brightness/contrast/saturation jitter (0.2), "
          "RandAugment (2 ops, magnitude 9) and random erasing (p = 0.25).\nThe batched RandAugment chooses from "
          f"{len(augment.RAND_AUGMENT_OPS)} operations (torchvision's 14 less histogram equalisation).")


if __name__ == "__main__":
    main()
