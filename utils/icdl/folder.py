"""Your own images: read an ImageFolder, check it, and ship the trained classifier as one file.

An *ImageFolder* is the layout torchvision's ``datasets.ImageFolder`` reads:
one sub-folder per class, the images inside it::

    root/cat/img_001.jpg
    root/cat/holiday/img_002.png     (sub-folders of a class belong to that class)
    root/dog/img_003.jpeg

* :func:`scan_folder` reads every file with PIL and returns a :class:`FolderReport`:
  the good images (``samples``), and a list of :class:`Problem` s, each naming the
  file and what is wrong with it. It never raises and never drops a good image: a
  missing root, a folder with one class, an empty class, a damaged image, a text
  file, a text file named ``.jpg``: each becomes a problem with its own message.
  It also finds exact duplicates (the same decoded pixels), within a class and
  across classes, and counts the images of every class (the imbalance ratio).
* :func:`load_images` turns the good samples into an :class:`~icdl.data.ImageSet`
  (uint8, resized to one square size), ready for the course's loaders.
* :func:`save_classifier` writes the weights together with the class names and the
  preprocessing (mean, std, size) in one file; :func:`load_classifier` rebuilds the
  model from it; :func:`predict_file` classifies one image file with exactly the
  preprocessing of training (:func:`image_tensor`, then the saved mean and std).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
BUNDLE_KEYS = ("state_dict", "classes", "mean", "std", "size")
BUNDLE_FORMAT = 1


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the folder: its ``kind``, the ``path`` concerned and a message for people."""

    kind: str      # missing_root, not_a_folder, stray_file, not_image, empty_file, not_image_data,
                   # corrupt, empty_class, too_few_classes, duplicate
    path: str      # relative to the root ("cat/notes.txt", "dog/"), or the root itself
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class FolderReport:
    """What :func:`scan_folder` found.

    ``samples``: ``(path, class index)`` of every good image, in sorted order;
    ``classes``: the class names (sorted folder names with at least one good image);
    ``problems``: the :class:`Problem` s; ``duplicates``: groups of relative paths
    with identical pixels; ``hashes``: the pixel hash of every sample, in order.
    """

    root: Path
    classes: list = field(default_factory=list)
    samples: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    duplicates: list = field(default_factory=list)
    hashes: list = field(default_factory=list)

    # -- class balance ------------------------------------------------------
    @property
    def counts(self) -> dict:
        """``{class name: number of good images}``."""
        counts = {c: 0 for c in self.classes}
        for _, label in self.samples:
            counts[self.classes[label]] += 1
        return counts

    @property
    def imbalance_ratio(self) -> float:
        """Images of the largest class divided by images of the smallest (1.0 is balanced)."""
        counts = [n for n in self.counts.values() if n > 0]
        return max(counts) / min(counts) if counts else float("nan")

    @property
    def majority_share(self) -> float:
        """The accuracy of always answering the largest class, on images distributed like these."""
        counts = list(self.counts.values())
        return max(counts) / sum(counts) if sum(counts) else float("nan")

    @property
    def ok(self) -> bool:
        """True when the folder can train a classifier: at least two classes with good images."""
        return len(self.classes) >= 2 and not any(p.kind in ("missing_root", "not_a_folder", "too_few_classes")
                                                  for p in self.problems)

    def of_kind(self, *kinds: str) -> list:
        """The problems of the given kinds."""
        return [p for p in self.problems if p.kind in kinds]

    def relative(self, path) -> str:
        return Path(path).relative_to(self.root).as_posix()

    def deduplicated(self) -> list:
        """``samples`` with one image per group of identical copies.

        Copies within one class keep their first file. Copies in different classes
        are all left out: their labels contradict each other, and at most one can be right.
        """
        drop = set()
        for group in self.duplicates:
            labels = {self._label_of(rel) for rel in group}
            drop.update(group if len(labels) > 1 else group[1:])
        return [(path, label) for path, label in self.samples if self.relative(path) not in drop]

    def _label_of(self, rel: str) -> int:
        return self.classes.index(rel.split("/", 1)[0])

    def text(self) -> str:
        """A short readable summary: classes and counts, then every problem."""
        lines = [f"{self.root}: {len(self.samples)} good images in {len(self.classes)} classes"]
        if self.classes:
            lines.append("  " + ", ".join(f"{c}: {n}" for c, n in self.counts.items())
                         + f" (imbalance ratio {self.imbalance_ratio:.2f})")
        lines.append(f"{len(self.problems)} problem(s)" + (":" if self.problems else ""))
        lines += [f"  - {p.message}" for p in self.problems]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"FolderReport({str(self.root)!r}: {len(self.samples)} images, {len(self.classes)} classes, "
                f"{len(self.problems)} problems)")


# ==========================================================================
# Reading one file
# ==========================================================================
def _check_image(path: Path):
    """``(kind, message, pixel hash)``: kind None for a good image, else what is wrong with it."""
    from PIL import Image, UnidentifiedImageError

    size = path.stat().st_size
    if size == 0:
        return "empty_file", "is empty (0 bytes)", None
    try:
        with Image.open(path) as img:
            img.verify()               # the file's structure (checksums of PNG chunks, ...)
        with Image.open(path) as img:  # verify() leaves the image unusable: open again and decode it all
            img.load()
            pixels = hashlib.sha1(f"{img.mode}{img.size}".encode() + img.tobytes()).hexdigest()
    except UnidentifiedImageError:
        start = path.read_bytes()[:12]
        return ("not_image_data", f"has the extension {path.suffix} but holds no image data that PIL can read "
                                  f"(it starts with {start!r})", None)
    except Exception as exc:  # truncated or damaged data: OSError, SyntaxError, ValueError, ...
        return "corrupt", f"is a damaged image that cannot be decoded ({type(exc).__name__}: {exc})", None
    return None, "", pixels


def scan_folder(root) -> FolderReport:
    """Check an ImageFolder ``root/class_name/...``; return a :class:`FolderReport`. Never raises.

    Every file under a class folder is read: files whose extension is not one of
    ``IMAGE_EXTENSIONS`` are skipped with a note; images are opened, verified and
    fully decoded with PIL, and skipped with a message when that fails. Good images
    are never dropped; exact duplicates (identical decoded pixels) are reported.
    """
    root = Path(root).expanduser()
    report = FolderReport(root=root)
    if not root.exists():
        report.problems.append(Problem("missing_root", str(root), f"{root} does not exist: give the folder that "
                                       "holds one sub-folder of images per class"))
        return report
    if not root.is_dir():
        report.problems.append(Problem("not_a_folder", str(root), f"{root} is a file, not a folder: give the folder "
                                       "that holds one sub-folder of images per class"))
        return report

    entries = sorted(root.iterdir(), key=lambda p: p.name)
    for stray in (p for p in entries if p.is_file()):
        report.problems.append(Problem("stray_file", stray.name, f"{stray.name}: a file directly in the root belongs "
                                       "to no class (put it in a class folder): skipped"))
    found = {}  # class name -> [(path, pixel hash)]
    for folder in (p for p in entries if p.is_dir() and not p.name.startswith(".")):
        good = []
        files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.as_posix())
        for path in files:
            rel = path.relative_to(root).as_posix()
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                report.problems.append(Problem("not_image", rel, f"{rel}: not an image file (extension "
                                               f"{path.suffix or 'none'}): skipped"))
                continue
            kind, what, pixels = _check_image(path)
            if kind is None:
                good.append((path, pixels))
            else:
                report.problems.append(Problem(kind, rel, f"{rel}: {what}: skipped"))
        if good:
            found[folder.name] = good
        else:
            report.problems.append(Problem("empty_class", f"{folder.name}/",
                                           f"{folder.name}/: an empty class ({len(files)} file(s), no readable "
                                           f"image): skipped"))

    report.classes = sorted(found)
    for label, name in enumerate(report.classes):
        for path, pixels in found[name]:
            report.samples.append((path, label))
            report.hashes.append(pixels)
    if len(report.classes) < 2:
        names = ", ".join(report.classes) or "none"
        report.problems.append(Problem("too_few_classes", str(root),
                                       f"{root} has {len(report.classes)} class(es) with usable images ({names}): "
                                       f"a classifier needs >= 2 classes, one sub-folder per class"))

    groups = {}
    for (path, label), pixels in zip(report.samples, report.hashes):
        groups.setdefault(pixels, []).append(report.relative(path))
    for group in (g for g in groups.values() if len(g) > 1):
        report.duplicates.append(group)
        classes = sorted({rel.split("/", 1)[0] for rel in group})
        where = (f"in different classes ({', '.join(classes)}): at most one label can be right"
                 if len(classes) > 1 else f"in the class {classes[0]}")
        report.problems.append(Problem("duplicate", group[0], f"{' and '.join(group)}: the same pixels, "
                                       f"{where}"))
    return report


# ==========================================================================
# Images as tensors
# ==========================================================================
def image_tensor(path, size: int) -> torch.Tensor:
    """One image file as uint8 ``(3, size, size)``: RGB, the largest central square, resized (bicubic).

    The one preprocessing of the pixels, used for training (:func:`load_images`)
    and for prediction (:func:`predict_file`), so the two can never differ.
    """
    import numpy as np
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")  # phone photos store their rotation in EXIF
        img = ImageOps.fit(img, (size, size), method=Image.Resampling.BICUBIC)
        return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).contiguous()


def load_images(samples, classes, size: int, mean, std, name: str = "folder", source: str = ""):
    """``samples`` (``(path, label)`` pairs) as an ``ImageSet`` of uint8 ``(N, 3, size, size)`` images."""
    from .data.images import ImageSet

    if not samples:
        raise ValueError("No images to load: the list of samples is empty (see the folder report).")
    images = torch.stack([image_tensor(path, size) for path, _ in samples])
    labels = torch.tensor([label for _, label in samples], dtype=torch.long)
    return ImageSet(images, labels, list(classes), name, False, tuple(mean), tuple(std), source or name)


# ==========================================================================
# The trained classifier as one file
# ==========================================================================
def save_classifier(path, model, *, classes, mean, std, size: int, architecture: str = "") -> Path:
    """Write the weights, the class names and the preprocessing to ``path`` in one dict (``torch.save``).

    Only tensors, strings and numbers: the file loads with ``torch.load(weights_only=True)``.
    Written to a temporary file first, so a crash never leaves half a file behind.
    """
    path = Path(path)
    bundle = {"format": BUNDLE_FORMAT, "architecture": architecture,
              "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
              "classes": [str(c) for c in classes], "mean": [float(v) for v in mean],
              "std": [float(v) for v in std], "size": int(size)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(bundle, tmp)
    os.replace(tmp, path)
    return path


def load_classifier(path, build):
    """``(model, info)`` from a file of :func:`save_classifier`.

    ``build(num_classes)`` makes a fresh model of the saved architecture; the weights
    load into it with ``strict=True`` and it is returned in eval mode. ``info`` holds
    everything else: classes, mean, std, size, architecture.
    """
    bundle = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(bundle, dict) or "state_dict" not in bundle:
        raise ValueError(f"{path} holds {type(bundle).__name__}, not the dict save_classifier writes "
                         f"(keys {list(BUNDLE_KEYS)}); a bare state_dict has no class names or preprocessing.")
    missing = [k for k in BUNDLE_KEYS if k not in bundle]
    if missing:
        raise ValueError(f"{path} lacks {missing}: without them a prediction cannot be preprocessed or named.")
    model = build(len(bundle["classes"]))
    model.load_state_dict(bundle["state_dict"], strict=True)
    info = {k: v for k, v in bundle.items() if k != "state_dict"}
    return model.eval(), info


@torch.no_grad()
def predict_file(model, path, *, classes, mean, std, size: int) -> tuple[str, float]:
    """``(class name, probability)`` of the most likely class for one image file."""
    x = image_tensor(path, size).float().div(255)
    mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        probs = model(((x - mean) / std).unsqueeze(0).to(device)).float().softmax(dim=1)[0]
    finally:
        model.train(was_training)
    best = int(probs.argmax())
    return classes[best], float(probs[best])
