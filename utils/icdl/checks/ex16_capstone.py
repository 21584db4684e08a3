"""Checks for the exercise notebook ``16_capstone``: a project on your own images, from the folder to the file.

    from icdl.checks import ex16_capstone as ex
    ex.q1.check(find_duplicates)      # exact duplicates by decoded pixels, not by file bytes
    ex.q2.check(answer)               # predict: torchvision's ImageFolder and an error page saved as .jpg
    ex.q3.check(stratified_split)     # debug a stratified split that puts images on both sides
    ex.q4.check(recall_shirt, precision_shirt, accuracy)   # read a confusion matrix (ValueQuestion)
    ex.q5.check(answer)               # predict: what the classifier answers for a class it has no images of
    ex.q6.check(predict_saved)        # debug: a reloaded classifier that predicts differently
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from .core import Incorrect, Question, call, describe, register
from .kinds import ChoiceQuestion, ValueQuestion

NOTEBOOK = "16_capstone"


# --------------------------------------------------------------------------
# q1: duplicates by decoded pixels
# --------------------------------------------------------------------------
def _pixels(seed: int, width: int, height: int):
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def duplicate_files(root) -> tuple[list, list]:
    """Write the files of Question 1 under ``root``: ``(paths, the groups of identical pictures)``.

    Copies by bytes, copies in other bytes (a BMP, a PNG with a text chunk), an image of the same size with other
    pixels, and two images whose pixel bytes are the same in different shapes (6x4 and 4x6).
    """
    import shutil

    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    root = Path(root)
    for sub in ("cat", "dog"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    a, b, c = _pixels(1, 8, 6), _pixels(2, 8, 6), _pixels(3, 8, 6)
    Image.fromarray(a).save(root / "cat" / "a.png")
    shutil.copy(root / "cat" / "a.png", root / "cat" / "a_copy.png")
    Image.fromarray(a).save(root / "dog" / "a.bmp")
    info = PngInfo()
    info.add_text("Comment", "taken on holiday")
    Image.fromarray(a).save(root / "cat" / "a_text.png", pnginfo=info)
    Image.fromarray(b).save(root / "dog" / "b.png")
    shutil.copy(root / "dog" / "b.png", root / "dog" / "b_copy.png")
    Image.fromarray(c).save(root / "cat" / "c.png")
    d = _pixels(4, 6, 4)
    Image.fromarray(d).save(root / "cat" / "d_wide.png")
    Image.fromarray(d.reshape(6, 4, 3)).save(root / "dog" / "d_tall.png")  # the same bytes, another shape
    paths = sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.as_posix())
    groups = [[root / "cat" / "a.png", root / "cat" / "a_copy.png", root / "dog" / "a.bmp",
               root / "cat" / "a_text.png"],
              [root / "dog" / "b.png", root / "dog" / "b_copy.png"]]
    return paths, groups


def _pixel_key(path):
    from PIL import Image

    with Image.open(path) as img:
        return img.mode, img.size, img.tobytes()


class FindDuplicates(Question):
    title = "find exact duplicates by their decoded pixels, not by their file bytes"
    hints = [
        "Two files hold the same picture when their decoded pixels are equal, whatever the format: open each file "
        "with PIL (`Image.open(path)`) and compare what `img.tobytes()` gives, not what `path.read_bytes()` gives.",
        "The same bytes of pixels can make two different pictures: a 6x4 image and a 4x6 image. Compare "
        "`(img.mode, img.size, img.tobytes())`, or a hash of it (`hashlib.sha1`).",
        "Skeleton: a dict from that key to the list of paths with it; return the lists that hold two paths or more.",
    ]

    def verify(self, fn):
        if not callable(fn):
            raise Incorrect(f"Pass your function itself (`find_duplicates`); got {describe(fn)}.")
        with tempfile.TemporaryDirectory(prefix="icdl-q1-") as tmp:
            paths, want = duplicate_files(tmp)
            root = Path(tmp)
            got = call(fn, list(paths), doing="`find_duplicates(paths)`")
            groups = self._groups(got, paths, root)
            name = {p.resolve(): p.relative_to(root).as_posix() for p in paths}
            for group in groups:
                keys = {p: _pixel_key(p) for p in group}
                for p, q in zip(group, group[1:]):
                    if keys[p] == keys[q]:
                        continue
                    if keys[p][2] == keys[q][2]:
                        raise Incorrect(f"{name[p]} ({keys[p][1][0]}x{keys[p][1][1]}) and {name[q]} "
                                        f"({keys[q][1][0]}x{keys[q][1][1]}) are in one group: their pixel bytes are "
                                        f"the same, but in another shape, so they are different pictures. Compare "
                                        f"the size (and mode) with the bytes.")
                    raise Incorrect(f"{name[p]} and {name[q]} are in one group, but their pixels differ"
                                    + (" (they only share their size and mode: compare the pixels themselves)."
                                       if keys[p][:2] == keys[q][:2] else "."))
            found = {frozenset(g) for g in groups}
            for group in want:
                group = [p.resolve() for p in group]
                if frozenset(group) in found:
                    continue
                home = {p: next((g for g in found if p in g), None) for p in group}
                for p, q in ((p, q) for p in group for q in group if p != q):
                    if home[p] is not None and home[p] is home[q]:
                        continue
                    if p.read_bytes() != q.read_bytes():
                        raise Incorrect(f"{name[p]} and {name[q]} hold the same pixels in other bytes (another file "
                                        f"format, or extra metadata), and your function did not group them: it "
                                        f"looks like you compared the files' bytes. Decode each image and compare "
                                        f"its pixels.")
                    raise Incorrect(f"{name[p]} and {name[q]} are byte-for-byte copies, and they are not in one "
                                    f"group.")
        return ("Correct! Pixels, size and mode identify a picture; the bytes of a file also depend on its format "
                "and metadata. `folder.scan_folder` hashes exactly that.")

    @staticmethod
    def _groups(got, paths, root) -> list:
        """The learner's groups as lists of resolved paths, after checking their form."""
        if isinstance(got, dict):
            raise Incorrect("`find_duplicates` returned a dict; return a list of groups, each a list of paths "
                            "(e.g. `[g for g in groups.values() if len(g) > 1]`).")
        if isinstance(got, (str, Path)) or not hasattr(got, "__iter__"):
            raise Incorrect(f"`find_duplicates` should return a list of groups (lists of paths); it returned "
                            f"{describe(got)}.")
        given = {p.resolve() for p in paths}
        groups, where = [], {}
        for group in got:
            if isinstance(group, (str, Path)) or not hasattr(group, "__iter__"):
                raise Incorrect(f"Each group should be a list of paths; one of them is {describe(group)}. Return "
                                f"a list of lists, such as [[path1, path2], [path3, path4, path5]].")
            members = []
            for p in group:
                if not isinstance(p, (str, Path)):
                    raise Incorrect(f"A group holds {describe(p)}; it should hold the paths it was given.")
                p = Path(p).resolve()
                if p not in given:
                    raise Incorrect(f"A group holds {p}, which is not one of the paths `find_duplicates` was given.")
                members.append(p)
            unique = list(dict.fromkeys(members))
            rel = [p.relative_to(Path(root).resolve()).as_posix() for p in unique]
            if len(unique) < 2:
                raise Incorrect(f"A group of one file ({rel[0] if rel else 'empty'}) is not a duplicate: return "
                                f"only the groups of two or more files.")
            for p, r in zip(unique, rel):
                if p in where:
                    raise Incorrect(f"{r} is in two groups: put all the copies of one picture in a single group "
                                    f"(not one group per pair).")
                where[p] = True
            groups.append(unique)
        return groups


# --------------------------------------------------------------------------
# q2: torchvision's ImageFolder and a text file named .jpg
# --------------------------------------------------------------------------
class ImageFolderBadFile(ChoiceQuestion):
    title = "predict: what torchvision's ImageFolder does with an error page saved as .jpg"
    hints = [
        "What does ImageFolder look at when it is created: the names of the files, or their contents?",
        "A DataLoader opens an image only when a batch needs it; with shuffle=True, when is the bad file's turn?",
    ]
    options = {
        "a": "`ImageFolder(root)` raises an error when it is created, naming the file.",
        "b": "ImageFolder skips the file because it cannot be decoded, and training uses the good images.",
        "c": "ImageFolder lists the file, because its name ends in .jpg; the error comes only when a batch that "
             "holds it is loaded, at a random point of the first epoch.",
        "d": "The file is read as a black image, and trains with the label dog.",
    }
    answer = "c"
    why = {
        "a": "creating an ImageFolder only lists the file names with an image extension; no file is opened then "
             "(an empty class folder is what it refuses when it is created).",
        "b": "ImageFolder never decodes a file before `__getitem__`; nothing tells it the file is bad, so nothing "
             "skips it.",
        "d": "PIL cannot identify the file, and raises; no image, black or otherwise, is made of it.",
    }
    success = ("Correct! It crashes mid-epoch with PIL's UnidentifiedImageError, after the work of every batch "
               "before it: check the files before training (`folder.scan_folder`).")


# --------------------------------------------------------------------------
# q3: a stratified split that leaks
# --------------------------------------------------------------------------
def given_split(labels, test_fraction, seed):
    """The notebook's given function (one bug): its training part is not the complement of its test part."""
    import numpy as np

    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n_test = round(len(idx) * test_fraction)
        test.extend(rng.choice(idx, n_test, replace=False))
        train.extend(idx[n_test:])
    return np.array(train), np.array(test)


def _split_cases():
    import numpy as np

    rng = np.random.default_rng(0)
    shuffled = rng.permutation(np.repeat(np.arange(3), [40, 12, 5]))
    rare = rng.permutation(np.repeat(np.arange(3), [20, 3, 9]))
    return [("30 labels, 10 of each of 3 classes, in order", np.repeat(np.arange(3), 10), 0.2),
            ("57 shuffled labels, classes of 40, 12 and 5", shuffled, 0.25),
            ("32 shuffled labels, one class of only 3", rare, 0.3)]


def _indices(part, name: str, label: str, n: int):
    import numpy as np

    try:
        array = np.asarray(part.detach().cpu() if hasattr(part, "detach") else part)
    except Exception:
        array = None
    if array is None or array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise Incorrect(f"{label}: the {name} part should be a 1-D array or list of integer indices; it is "
                        f"{describe(part)}.")
    bad = [int(i) for i in array if not 0 <= int(i) < n]
    if bad:
        raise Incorrect(f"{label}: the {name} part holds the index {bad[0]}, but there are only {n} images "
                        f"(0 to {n - 1}).")
    if len(set(array.tolist())) != len(array):
        twice = next(int(i) for i in array if (array == i).sum() > 1)
        raise Incorrect(f"{label}: index {twice} appears twice in the {name} part; draw without replacement.")
    return array.astype(int)


class LeakySplit(Question):
    title = "debug a stratified split: no image on both sides, every class in proportion"
    hints = [
        "Run the given function and count the indices that are in both parts, and those in neither. Which images "
        "does it put in the training part, and which did it draw for the test part?",
        "For each class: shuffle its indices with the seeded generator, take the first round(n * test_fraction) "
        "for the test part and *the rest of the same shuffled list* for training.",
        "scikit-learn does it in one call: `train_test_split(np.arange(len(labels)), test_size=test_fraction, "
        "stratify=labels, random_state=seed)`.",
    ]

    def verify(self, fn):
        import numpy as np

        if not callable(fn):
            raise Incorrect(f"Pass your function itself (`stratified_split`); got {describe(fn)}.")
        for text, labels, fraction in _split_cases():
            tests = []
            for seed in (0, 1, 2):
                label = f"`stratified_split(labels, {fraction}, seed={seed})` on {text}"
                out = call(fn, labels.copy(), fraction, seed, doing=label)
                if not isinstance(out, (tuple, list)) or len(out) != 2:
                    raise Incorrect(f"{label} should return two index arrays, (train_idx, test_idx); it returned "
                                    f"{describe(out)}.")
                train_idx = _indices(out[0], "training", label, len(labels))
                test_idx = _indices(out[1], "test", label, len(labels))
                both = np.intersect1d(train_idx, test_idx)
                if len(both):
                    given = given_split(labels.copy(), fraction, seed)
                    same = (np.array_equal(np.sort(given[0]), np.sort(train_idx))
                            and np.array_equal(np.sort(given[1]), np.sort(test_idx)))
                    raise Incorrect(f"{label}: {len(both)} images are in both parts (e.g. index {int(both[0])}): the "
                                    f"network would be tested on images it trained on"
                                    + (" (the given function's bug)" if same else "")
                                    + ". The training part must be exactly the images not drawn for the test part.")
                neither = np.setdiff1d(np.arange(len(labels)), np.union1d(train_idx, test_idx))
                if len(neither):
                    raise Incorrect(f"{label}: {len(neither)} images are in neither part (e.g. index "
                                    f"{int(neither[0])}); every image belongs to one of the two.")
                for c in np.unique(labels):
                    n_c, k = int((labels == c).sum()), int((labels[test_idx] == c).sum())
                    if abs(k - n_c * fraction) > 1 + 1e-9:
                        raise Incorrect(f"{label}: class {int(c)} has {k} of its {n_c} images in the test part; a "
                                        f"stratified split puts about {n_c} x {fraction} = {n_c * fraction:g} there. "
                                        f"Draw the test images class by class (or pass stratify=labels).")
                again = call(fn, labels.copy(), fraction, seed, doing=label)
                again = again[1] if isinstance(again, (tuple, list)) and len(again) == 2 else again
                if not np.array_equal(np.sort(_indices(again, "test", label, len(labels))), np.sort(test_idx)):
                    raise Incorrect(f"{label}: two calls with the same seed gave different test parts; draw with a "
                                    f"generator made from the seed (`np.random.default_rng(seed)`), so that a "
                                    f"split can be repeated.")
                tests.append(tuple(np.sort(test_idx)))
            if len(set(tests)) == 1:
                raise Incorrect(f"On {text}, the seeds 0, 1 and 2 gave the same test part: the test images should "
                                f"be drawn at random, with the seed.")
        return ("Correct! Each class is split in proportion, the two parts are complements of each other, and the "
                "seed repeats the split.")


# --------------------------------------------------------------------------
# q4: reading a confusion matrix
# --------------------------------------------------------------------------
CLASSES = ("t-shirt_top", "pullover", "coat", "shirt")
CONFUSION = ((41, 1, 0, 8),   # rows: the true class; columns: the predicted class
             (0, 37, 9, 4),
             (1, 7, 38, 4),
             (10, 6, 5, 19))


def confusion_text() -> str:
    """The confusion matrix of Question 4 as a table (rows: true class, columns: predicted class)."""
    width = max(len(c) for c in CLASSES) + 2
    lines = ["true \\ predicted".ljust(width + 4) + "".join(f"{c:>{width}}" for c in CLASSES)]
    lines += [f"{name:<{width + 4}}" + "".join(f"{v:>{width}}" for v in row) for name, row in zip(CLASSES, CONFUSION)]
    return "\n".join(lines)


def _confusion_numbers() -> dict:
    k = CLASSES.index("shirt")
    rows = [sum(r) for r in CONFUSION]
    cols = [sum(r[j] for r in CONFUSION) for j in range(len(CLASSES))]
    diag = [CONFUSION[i][i] for i in range(len(CLASSES))]
    total = sum(rows)
    return {"recall": diag[k] / rows[k], "precision": diag[k] / cols[k], "accuracy": sum(diag) / total,
            "balanced": sum(d / r for d, r in zip(diag, rows)) / len(rows), "over_total": diag[k] / total}


class ConfusionReading(ValueQuestion):
    title = "read a confusion matrix: recall and precision of one class, and the accuracy"
    hints = [
        "Rows are the true classes, columns the predictions. Recall of shirt: of the true shirts (its row), the "
        "share predicted shirt. Precision of shirt: of the images predicted shirt (its column), the share that are "
        "shirts.",
        "Accuracy counts every image once: the sum of the diagonal divided by the sum of the whole matrix. Give "
        "fractions between 0 and 1.",
    ]
    names = ("recall_shirt", "precision_shirt", "accuracy")
    integer = False
    rel = 2e-3
    mistakes = {
        "recall_shirt": [
            (lambda r, p, a: p, "that is the precision; recall divides the diagonal cell by its row, all the true "
                                "shirts"),
            (lambda r, p, a: 100 * r, "give a fraction between 0 and 1, not a percentage"),
            (lambda r, p, a: _confusion_numbers()["over_total"], "that divides by every image; recall divides by the "
                                                                 "true shirts only (the row)"),
        ],
        "precision_shirt": [
            (lambda r, p, a: r, "that is the recall; precision divides the diagonal cell by its column, every "
                                "image predicted shirt"),
            (lambda r, p, a: 100 * p, "give a fraction between 0 and 1, not a percentage"),
        ],
        "accuracy": [
            (lambda r, p, a: _confusion_numbers()["balanced"],
             "that is the mean of the four recalls (the balanced accuracy), which weighs the small shirt class as "
             "much as the others; accuracy counts every image once"),
            (lambda r, p, a: 100 * a, "give a fraction between 0 and 1, not a percentage"),
        ],
    }
    wrong = "work it out from the rows (true classes) and the columns (predictions) of the matrix"
    success = ("Correct! The shirts are the weakest class: fewer than half are found, and many true t-shirts are "
               "taken for shirts. The accuracy alone hides both.")

    def expected(self):
        n = _confusion_numbers()
        return n["recall"], n["precision"], n["accuracy"]


# --------------------------------------------------------------------------
# q5: a class without images
# --------------------------------------------------------------------------
class UnseenClass(ChoiceQuestion):
    title = "predict: what the classifier answers for a class it has no images of"
    hints = [
        "What are the outputs of the network, and what does the softmax make of them, whatever the image?",
        "Does the test set, drawn from the same folder, contain any sandal?",
    ]
    options = {
        "a": "The test accuracy drops, because the sandals of the test set are counted as mistakes.",
        "b": "The network answers with a low probability for every class, so sandals are easy to recognise.",
        "c": "Training fails, because one class has no images.",
        "d": "The test accuracy is not affected, but every sandal a user photographs is given one of the five "
             "classes, often with high confidence.",
    }
    answer = "d"
    why = {
        "a": "the test set comes from the same folder: it holds no sandals, so none is counted. That is exactly why "
             "the test accuracy cannot reveal the problem.",
        "b": "the softmax shares a probability of 1 among the five classes, so at least one gets 0.2 or more; and "
             "nothing trains the network to be unsure about images unlike its training set.",
        "c": "the empty folder is skipped (`folder.scan_folder` reports it), and the network is built for the five "
             "classes that have images.",
    }
    success = ("Correct! Chapter 16 measures it (section 7): sandals get one of the known classes, mostly the "
               "nearest-looking one, with a confidence that does not give them away.")


# --------------------------------------------------------------------------
# q6: a reloaded classifier that predicts differently
# --------------------------------------------------------------------------
DEMO_CLASSES = ("sneaker", "coat", "bag")
DEMO_MEAN, DEMO_STD, DEMO_SIZE = (0.3, 0.4, 0.5), (0.2, 0.25, 0.3), 24


def tiny_net(num_classes: int):
    """A small CNN with batch norm: the architecture's factory, ``build(num_classes)``, for Question 6."""
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))


def demo_files(root, seed: int = 5) -> tuple[Path, list]:
    """A classifier saved with :func:`icdl.folder.save_classifier`, and four image files (the last one grey):
    ``(model_file, image_files)``."""
    import numpy as np
    import torch
    from PIL import Image

    from .. import folder

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = tiny_net(len(DEMO_CLASSES))
    with torch.no_grad():  # batch-norm statistics that are not the defaults, and confident outputs
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
        model[-1].weight.mul_(4)
    model_file = folder.save_classifier(root / "classifier.pt", model.eval(), classes=DEMO_CLASSES, mean=DEMO_MEAN,
                                        std=DEMO_STD, size=DEMO_SIZE, architecture="tiny_net")
    rng = np.random.default_rng(seed)
    images = []
    for i, colour in enumerate([(220, 40, 40), (40, 200, 60), (50, 60, 230), (128, 128, 128)]):
        height = 30 + 4 * i
        ramp = 0.4 + 0.6 * np.arange(40)[None, :, None] / 40  # darker on the left
        pixels = np.asarray(colour)[None, None] * ramp + rng.normal(0, 20, (height, 40, 3))
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        path = root / f"photo_{i}.png"
        (image.convert("L") if i == 3 else image).save(path)
        images.append(path)
    return model_file, images


def _variant(model_file, image_file, *, size=None, mean=None, std=None, scale=255.0, eval_mode=True):
    """``(name, prob)`` with the saved preprocessing, or with one part of it replaced (a listed slip)."""
    import torch

    from .. import folder

    model, info = folder.load_classifier(model_file, tiny_net)
    model.train(not eval_mode)
    size = size or info["size"]
    mean = torch.tensor(mean if mean is not None else info["mean"]).view(3, 1, 1)
    std = torch.tensor(std if std is not None else info["std"]).view(3, 1, 1)
    x = (folder.image_tensor(image_file, size).float() / scale - mean) / std
    with torch.no_grad():
        probs = model(x[None]).softmax(dim=1)[0]
    return info["classes"][int(probs.argmax())], float(probs.max())


IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
RELOAD_SLIPS = [
    ("resized to 224 and normalised with 0.5 / 0.5, the colleague's own defaults, not the preprocessing saved in "
     "the file (the given function's bug)", dict(size=224, mean=(0.5,) * 3, std=(0.5,) * 3)),
    ("normalised with mean and std 0.5; use the mean and std saved in the file (`info['mean']`, `info['std']`)",
     dict(mean=(0.5,) * 3, std=(0.5,) * 3)),
    ("normalised with ImageNet's mean and std; this classifier was saved with others: read them from the file",
     dict(mean=IMAGENET[0], std=IMAGENET[1])),
    ("resized the image to 224 pixels; use the size saved in the file (`info['size']`)", dict(size=224)),
    ("left out the normalisation: subtract the saved mean and divide by the saved std",
     dict(mean=(0.0,) * 3, std=(1.0,) * 3)),
    ("forgot to scale the pixels to 0..1 (divide the uint8 values by 255) before normalising", dict(scale=1.0)),
    ("left the model in training mode: call `model.eval()`, or batch norm normalises with the statistics of this "
     "one image", dict(eval_mode=False)),
]


class ReloadedPrediction(Question):
    title = "debug: a reloaded classifier that predicts differently"
    hints = [
        "The weights load exactly. Compare the colleague's preprocessing with what was saved in the file: "
        "`torch.load(model_file, weights_only=True)` is a dict; print everything in it but the state_dict.",
        "`folder.load_classifier(model_file, build)` returns the model (in eval mode) and `info`, with the classes, "
        "mean, std and size the model was trained with.",
        "`folder.predict_file(model, image_file, classes=..., mean=..., std=..., size=...)` preprocesses a file "
        "exactly as in training.",
    ]

    def verify(self, fn):
        if not callable(fn):
            raise Incorrect(f"Pass your function itself (`predict_saved`); got {describe(fn)}.")
        with tempfile.TemporaryDirectory(prefix="icdl-q6-") as tmp:
            model_file, images = demo_files(tmp)
            for image in images:
                label = f"`predict_saved(model_file, {image.name!r}, build)`"
                got = call(fn, model_file, image, tiny_net, doing=label)
                name, prob = self._pair(got, label)
                want = _variant(model_file, image)
                if name == want[0] and math.isclose(prob, want[1], abs_tol=1e-5):
                    continue
                for message, switches in RELOAD_SLIPS:
                    slip = _variant(model_file, image, **switches)
                    if slip[0] == name and math.isclose(prob, slip[1], abs_tol=1e-5) \
                            and not math.isclose(slip[1], want[1], abs_tol=1e-5):
                        raise Incorrect(f"{label} returned ({name!r}, {prob:.4f}): it looks like you {message}.")
                if name not in DEMO_CLASSES:
                    raise Incorrect(f"{label} returned the class {name!r}; the classes are the ones saved in the file "
                                    f"(`info['classes']`), in their saved order.")
                if name != want[0]:
                    raise Incorrect(f"{label} returned the class {name!r}, not the one the saved classifier predicts "
                                    f"with its saved preprocessing.")
                raise Incorrect(f"{label} returned the probability {prob:.4f}, not the one the saved classifier gives "
                                f"with its saved preprocessing.")
        return ("Correct! The weights were never the problem: a classifier is its weights *and* its preprocessing, and "
                "the file must carry both (with the class names).")

    @staticmethod
    def _pair(got, label):
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Incorrect(f"{label} should return (class name, probability), like ('coat', 0.87); it returned "
                            f"{describe(got)}.")
        name, prob = got
        if not isinstance(name, str):
            raise Incorrect(f"{label}: the class should be its name, a string from the file's `classes`; it is "
                            f"{describe(name)}.")
        try:
            prob = float(prob.item() if hasattr(prob, "item") else prob)
        except Exception:
            raise Incorrect(f"{label}: the probability should be a number; it is {describe(prob)}.") from None
        if not 0.0 <= prob <= 1.0:
            raise Incorrect(f"{label}: the probability {prob:.4g} is not between 0 and 1: return the softmax "
                            f"probability of the chosen class, not its logit.")
        return name, prob


q1 = FindDuplicates()
q2 = ImageFolderBadFile()
q3 = LeakySplit()
q4 = ConfusionReading()
q5 = UnseenClass()
q6 = ReloadedPrediction()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5, q6=q6)

__all__ = ["CLASSES", "CONFUSION", "confusion_text", "demo_files", "duplicate_files", "given_split", "tiny_net",
           "q1", "q2", "q3", "q4", "q5", "q6"]
