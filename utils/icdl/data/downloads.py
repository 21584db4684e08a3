"""Getting the real datasets' files: local copies first, then a safe download.

Where the files are looked for, in order:

1. the course's data folder, :func:`cache_dir` (``COURSE_DATA_DIR`` if set,
   else ``~/.cache/icdl/data``), where downloads land and where files
   downloaded by hand go;
2. system folders that hold a dataset installed by a package manager, such as
   Debian's ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``).

Only then is the dataset downloaded through torchvision, into a staging folder
that is moved into place when complete, so an interrupted download never
leaves a file that a later run takes for good data.
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import tempfile
import time
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

DOWNLOAD_TIMEOUT_S = 60


class DatasetUnavailable(RuntimeError):
    """The real dataset is not on disk and could not be downloaded."""


def cache_dir() -> Path:
    """Where real datasets are downloaded: ``COURSE_DATA_DIR`` or ``~/.cache/icdl/data``."""
    return Path(os.environ.get("COURSE_DATA_DIR") or Path.home() / ".cache" / "icdl" / "data").expanduser()


@dataclass(frozen=True)
class RealSpec:
    """How to get one real dataset: torchvision class, folder, URL, where files go by hand."""

    title: str          # the dataset's name in prose ("Fashion-MNIST")
    torchvision: str    # torchvision class name, also its folder for MNIST-style sets
    folder: str         # where the data lands inside cache_dir()
    url: str            # what the learner would download by hand
    by_hand: str        # where to put hand-downloaded files ({root} is filled in)
    system_dirs: tuple = field(default=())  # folders a package manager installs the files into


IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format, gzipped or not) as a uint8 array.

    Format: two zero bytes, type 0x08 (uint8), the number of dimensions, then
    one big-endian int32 per dimension, then the data.
    """
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not a uint8 IDX file")
    ndim = raw[3]
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} holds {data.size:,} bytes of data where its header promises {shape}")
    return data.reshape(shape)


def _idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_idx(spec: RealSpec) -> Path | None:
    """The first folder holding all four IDX files of ``spec`` (plain or .gz), or None."""
    root = cache_dir()
    for folder in (root / spec.folder / "raw", root / spec.folder, *map(Path, spec.system_dirs)):
        if all(_idx_file(folder, stem) for pair in IDX_FILES.values() for stem in pair):
            return folder
    return None


def read_idx_split(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images ``(N, 1, H, W)`` and int64 labels ``(N,)`` of one split from IDX files in ``folder``."""
    images, labels = (read_idx(_idx_file(folder, stem)) for stem in IDX_FILES[split])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"the IDX files in {folder} do not fit together: images {images.shape}, "
                         f"labels {labels.shape}")
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def _torchvision_class(spec: RealSpec):
    import torchvision.datasets

    return getattr(torchvision.datasets, spec.torchvision)


def _archives(spec: RealSpec) -> list[str]:
    """The archives torchvision downloads for ``spec``, relative to the data root."""
    cls = _torchvision_class(spec)
    if hasattr(cls, "resources"):  # MNIST-style: several .gz files in <Class>/raw/
        return [f"{spec.folder}/raw/{filename}" for filename, _ in cls.resources]
    return [cls.filename]          # CIFAR: one .tar.gz next to its folder


def friendly_reason(exc: BaseException) -> str:
    """What went wrong with a download, in words a learner understands (not a raw ``<urlopen error>``)."""
    chain, inner = [], exc
    while inner is not None and len(chain) < 10:
        chain.append(inner)
        inner = inner.__cause__ or inner.__context__
    for inner in chain:
        if isinstance(inner, urllib.error.HTTPError):
            return f"the server answered HTTP {inner.code}"
    text = " ".join(" ".join(str(e) for e in chain).split())
    offline = (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, socket.gaierror)
    if any(isinstance(e, offline) for e in chain) or "urlopen error" in text:
        return "no internet connection (the download server could not be reached)"
    text = " ".join(str(chain[-1]).split()) or type(chain[-1]).__name__
    return text if len(text) <= 90 else text[:87] + "..."


def download(spec: RealSpec, root: Path) -> None:
    """Download ``spec`` into ``root`` via a staging folder, so nothing half-written is ever left in ``root``.

    torchvision's MNIST takes any file with the right name as good data, so a
    download cut short must not leave one there: files appear in ``root`` only
    after the whole download and extraction succeeded, one atomic rename each.
    """
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f".partial-{spec.folder}-*"):  # left by a run that was killed a day or more ago
        if time.time() - stale.stat().st_mtime > 86_400:
            shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".partial-{spec.folder}-", dir=root))
    try:
        for archive in _archives(spec):  # archives downloaded by hand: torchvision checks their md5 and uses them
            if (root / archive).is_file():
                (staging / archive).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / archive, staging / archive)
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # a dead network fails in a minute instead of hanging
        try:
            _torchvision_class(spec)(root=str(staging), train=True, download=True)
        finally:
            socket.setdefaulttimeout(previous)
        for src in sorted((staging / spec.folder).rglob("*")):
            dst = root / spec.folder / src.relative_to(staging / spec.folder)
            if src.is_dir():
                dst.mkdir(parents=True, exist_ok=True)
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
    except Exception as exc:  # network, checksum, extraction: all mean "not available"
        where = spec.by_hand.format(root=root)
        detail = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        raise DatasetUnavailable(
            f"Could not download {spec.torchvision} from {spec.url}: {friendly_reason(exc)} ({detail}). "
            f"What to do: check your internet connection and run again; or download it by hand from "
            f"{spec.url} and put {where}; or set COURSE_DATA=standin to use the offline substitute. "
            f"No partial files were left in {root}."
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_torchvision(spec: RealSpec, split: str, root: Path) -> tuple[torch.Tensor, torch.Tensor, list]:
    """The dataset as torchvision reads it from ``root``: uint8 ``(N, C, H, W)``, int64 labels, classes.

    Raises torchvision's ``RuntimeError`` when the files are not there.
    """
    dataset = _torchvision_class(spec)(root=str(root), train=split == "train", download=False)
    data = dataset.data
    if isinstance(data, np.ndarray):          # CIFAR: numpy (N, H, W, C)
        images = torch.from_numpy(data).permute(0, 3, 1, 2).contiguous()
    else:                                      # MNIST-style: tensor (N, H, W)
        images = data.unsqueeze(1).contiguous()
    return images, torch.as_tensor(dataset.targets, dtype=torch.long), list(dataset.classes)


def class_names(spec: RealSpec) -> list:
    """The class names torchvision gives ``spec`` (no files needed for MNIST-style sets)."""
    return list(_torchvision_class(spec).classes)
