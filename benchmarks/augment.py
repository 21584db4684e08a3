"""How much faster is batched on-device augmentation than the per-image PIL pipeline?

    python benchmarks/augment.py                 # 5,000 CIFAR-size images on this machine's best device
    python benchmarks/augment.py --device cpu --n 2000

Target: the batched path (``icdl.data.DeviceLoader`` + ``BatchAugment``) delivers
**at least 10x** the images per second of the seed lesson's per-image PIL
pipeline (``pil_train_transforms`` through a ``DataLoader``).

Fair comparison: the same images in the same run; both paths end in
normalised float32 batches of the same size; each is timed over one full pass
after a warm-up pass (which also starts the PIL workers, kept alive with
``persistent_workers``). The PIL path does more work per image (ColorJitter
with saturation, RandAugment), so the batched path is timed twice: crop + flip
only, and with its batched brightness/contrast jitter and random erasing on.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from icdl import data, env


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
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="DataLoader workers for the second PIL run (default: one per core)")
    args = parser.parse_args(argv)

    device = env.get_device(args.device)
    ds = data.take(data.load("cifar10"), args.n)
    print(machine_line(device))
    print(f"images: {len(ds):,} of {ds.name}{' (stand-in)' if ds.standin else ''}, shape {tuple(ds.images.shape[1:])}, "
          f"batch size {args.batch_size}\n")

    def fast(augment):
        return data.DeviceLoader(ds, args.batch_size, shuffle=True, device=device, augment=augment)

    def pil(workers):
        transform = data.pil_train_transforms(ds.mean, ds.std, size=ds.images.shape[-1])
        return data.torch_loader(ds, transform, args.batch_size, shuffle=True, num_workers=workers)

    runs = {
        "batched on device: crop + flip": fast(data.BatchAugment()),
        "batched on device: crop + flip + brightness/contrast + erasing":
            fast(data.BatchAugment(brightness=0.2, contrast=0.2, erasing=0.25)),
        "per-image PIL, num_workers=0": pil(0),
        f"per-image PIL, num_workers={args.workers}": pil(args.workers),
    }
    speed = {}
    for label, loader in runs.items():
        speed[label] = images_per_second(loader, device)
        print(f"{speed[label]:>12,.0f} images/s  {label}")

    fast_labels, pil_labels = list(runs)[:2], list(runs)[2:]
    print("\nspeed-up of the batched path over the PIL pipeline (target: at least 10x):")
    for f in fast_labels:
        for p in pil_labels:
            ratio = speed[f] / speed[p]
            print(f"  {ratio:6.1f}x  {'meets' if ratio >= 10 else 'MISSES'} target   {f.split(': ')[1]}  vs  {p}")
    print("\nNote: the PIL pipeline does RandomCrop, flip, ColorJitter (brightness, contrast, saturation), "
          "RandAugment (2 ops) and RandomErasing;\nthe batched path does crop + flip, and in its second run also "
          "brightness/contrast jitter and random erasing, but no saturation jitter and no RandAugment.")


if __name__ == "__main__":
    main()
