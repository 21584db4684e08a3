"""Tests of icdl.data, all offline.

The real-dataset code paths run on tiny files that these tests write in the
real on-disk formats (MNIST IDX files, CIFAR-10 pickled batches), and a
download failure is simulated inside torchvision's own download function.
"""

import dataclasses
import gzip
import hashlib
import pickle
import struct
import urllib.error

import numpy as np
import pytest
import torch
import torchvision.datasets
import torchvision.datasets.utils
from icdl import data


# --------------------------------------------------------------------------
# Tiny files in the real formats
# --------------------------------------------------------------------------
def write_idx(path, array: np.ndarray) -> None:
    """An IDX file (LeCun's MNIST format): magic 0x00 0x00 0x08 <ndim>, big-endian int32 sizes, uint8 data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist_files(root, folder="MNIST", n_train=12, n_test=5, seed=0):
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        arrays[prefix] = (images, labels)
    return arrays


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar_files(root, monkeypatch, per_batch=4, n_test=3, seed=0):
    """cifar-10-batches-py as torchvision reads it; its md5 table is pointed at these files.

    Only the expected checksums change: torchvision still checks every file's md5.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = {}
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        rows = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)  # each row: R plane, G plane, B plane
        labels = rng.integers(0, 10, size=n).tolist()
        (folder / name).write_bytes(pickle.dumps({"data": rows, "labels": labels}))
        batches[name] = (rows, labels)
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": classes}))
    cls = torchvision.datasets.CIFAR10
    monkeypatch.setattr(cls, "train_list", [[n, md5(folder / n)] for n in names[:5]])
    monkeypatch.setattr(cls, "test_list", [["test_batch", md5(folder / "test_batch")]])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(folder / "batches.meta")})
    return batches, classes


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("COURSE_DATA", raising=False)
    monkeypatch.delenv("CI", raising=False)  # as on a laptop: downloads are tried; tests that want CI set it
    return tmp_path


# --------------------------------------------------------------------------
# Real loaders on real-format files
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_style_files_round_trip(data_dir, capsys, name, folder):
    arrays = write_mnist_files(data_dir, folder)
    train = data.load(name, "train", source="real")
    test = data.load(name, "test", source="real")
    assert f"{len(train):,} real images from {data_dir / folder}" in capsys.readouterr().out
    for ds, (images, labels) in ((train, arrays["train"]), (test, arrays["t10k"])):
        assert not ds.standin and ds.name == name
        assert ds.images.dtype == torch.uint8 and ds.images.shape == (len(labels), 1, 28, 28)
        assert ds.labels.dtype == torch.int64
        assert torch.equal(ds.images[:, 0], torch.from_numpy(images))
        assert torch.equal(ds.labels, torch.from_numpy(labels).long())
        assert len(ds.classes) == 10
    # Both splits are normalised with the statistics of the training images.
    expected = arrays["train"][0] / 255
    assert train.mean == test.mean == pytest.approx((expected.mean(),), abs=1e-4)
    assert train.std == test.std == pytest.approx((expected.std(),), abs=1e-4)
    if name == "fashion_mnist":
        assert train.classes[0] == "T-shirt/top"


def test_hand_downloaded_gz_files_are_read_as_they_are(data_dir, offline):
    """The four .gz files as downloaded, put into MNIST/raw/ by hand: read directly, nothing downloaded."""
    arrays = write_mnist_files(data_dir)
    raw = data_dir / "MNIST" / "raw"
    for path in sorted(raw.iterdir()):
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()  # only the archives are there
    ds = data.load("mnist", "test", source="real")
    assert offline == [], "it downloaded although the archives were there"
    assert torch.equal(ds.images[:, 0], torch.from_numpy(arrays["t10k"][0]))
    assert not list(data_dir.glob(".partial-*"))


def test_damaged_files_are_reported_not_taken_for_data(data_dir, offline, no_system_fashion, capsys):
    write_mnist_files(data_dir)
    image_file = data_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    image_file.write_bytes(image_file.read_bytes()[:-100])  # cut short
    with pytest.raises(data.DatasetUnavailable, match="damaged.*delete them"):
        data.load("mnist", "test", source="real")
    ds = data.load("mnist", "test")  # auto: says why and falls back
    assert ds.standin and "digits" in ds.source
    assert "damaged" in capsys.readouterr().out


@pytest.fixture
def no_system_fashion(monkeypatch):
    """As on a laptop without Debian's dataset-fashion-mnist package."""
    monkeypatch.setitem(data.REAL, "fashion_mnist", dataclasses.replace(data.REAL["fashion_mnist"], system_dirs=()))


@pytest.fixture
def system_fashion(tmp_path, monkeypatch):
    """A package-manager folder holding Fashion-MNIST's four .gz files (tiny, real format), as Debian installs them."""
    folder = tmp_path / "usr-share-datasets-fashion-mnist"
    folder.mkdir()
    arrays = write_mnist_files(tmp_path / "scratch", folder="plain")
    for path in sorted((tmp_path / "scratch" / "plain" / "raw").iterdir()):
        (folder / (path.name + ".gz")).write_bytes(gzip.compress(path.read_bytes()))
    monkeypatch.setitem(data.REAL, "fashion_mnist",
                        dataclasses.replace(data.REAL["fashion_mnist"], system_dirs=(str(folder),)))
    return folder, arrays


def test_fashion_mnist_from_the_system_folder_offline(data_dir, offline, system_fashion, monkeypatch, capsys):
    folder, arrays = system_fashion
    monkeypatch.setenv("CI", "true")
    ds = data.load("fashion_mnist", "test")
    assert not ds.standin and ds.source == "Fashion-MNIST" and ds.classes[0] == "T-shirt/top"
    assert torch.equal(ds.images[:, 0], torch.from_numpy(arrays["t10k"][0]))
    assert f"real images from {folder}" in capsys.readouterr().out
    assert offline == []


def test_cifar10_offline_uses_real_fashion_mnist_padded(data_dir, offline, system_fashion, monkeypatch, capsys):
    folder, arrays = system_fashion
    monkeypatch.setenv("CI", "true")
    train, test = data.load("cifar10"), data.load("cifar10", "test")
    out = capsys.readouterr().out
    assert offline == [], "a CI run tried to download"
    assert out.count("\n") == 2 and "CIFAR-10 is not on this machine and CI runs do not download" in out
    assert "Fashion-MNIST" in out and str(folder) in out and "COURSE_DATA=real" in out
    assert test.standin and test.name == "cifar10" and "padded to 32x32" in test.source
    assert test.images.shape == (5, 3, 32, 32) and test.images.dtype == torch.uint8
    original = torch.from_numpy(arrays["t10k"][0])
    for c in range(3):  # grey repeated in every channel, in the middle of a 2-pixel black frame
        assert torch.equal(test.images[:, c, 2:30, 2:30], original)
    assert test.images[:, :, :2].sum() == 0 and test.images[:, :, :, 30:].sum() == 0
    assert train.mean == test.mean and len(train.mean) == 3 and train.classes[0] == "T-shirt/top"
    mnist = data.load("mnist", "test")
    assert mnist.standin and mnist.source == "Fashion-MNIST" and mnist.images.shape == (5, 1, 28, 28)


def test_without_any_real_data_the_photo_standin_is_used(data_dir, offline, no_system_fashion, monkeypatch, capsys):
    monkeypatch.setenv("CI", "true")
    ds = data.load("cifar10", "test")
    assert ds.standin and ds.classes == data.standins.PHOTO_CLASSES and "scikit-image" in ds.source
    assert "disjoint regions" in capsys.readouterr().out


def test_load_hands_out_copies(data_dir, system_fashion, monkeypatch):
    monkeypatch.setenv("CI", "true")
    for name in ("cifar10", "fashion_mnist", "photos", "digits"):
        first = data.load(name, "test")
        first.images.zero_()
        first.labels.fill_(3)
        again = data.load(name, "test")
        assert again.images.float().std() > 0 and not (again.labels == 3).all(), name


def test_cifar10_pickles_round_trip(data_dir, monkeypatch, capsys):
    batches, classes = write_cifar_files(data_dir, monkeypatch)
    train = data.load("cifar10", "train", source="real")
    test = data.load("cifar10", "test", source="real")
    assert "20 real images" in capsys.readouterr().out
    rows = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    labels = sum((batches[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert train.images.shape == (20, 3, 32, 32) and train.images.dtype == torch.uint8
    assert torch.equal(train.images.reshape(20, -1), torch.from_numpy(rows))  # CHW order restored exactly
    assert train.labels.tolist() == labels and train.labels.dtype == torch.int64
    assert torch.equal(test.images.reshape(3, -1), torch.from_numpy(batches["test_batch"][0]))
    assert train.classes == test.classes == classes
    per_channel = rows.reshape(20, 3, -1).transpose(1, 0, 2).reshape(3, -1) / 255
    assert test.mean == pytest.approx(tuple(per_channel.mean(1)), abs=1e-4)
    assert test.std == pytest.approx(tuple(per_channel.std(1)), abs=1e-4)


def test_corrupted_cifar_file_is_not_taken_for_good_data(data_dir, monkeypatch):
    write_cifar_files(data_dir, monkeypatch)
    (data_dir / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"truncated")
    monkeypatch.setattr(torchvision.datasets.utils, "_get_redirect_url", lambda url, max_hops=3: url)
    monkeypatch.setattr(torchvision.datasets.utils, "_urlretrieve", offline_urlretrieve([]))
    with pytest.raises(data.DatasetUnavailable, match="CIFAR10"):
        data.load("cifar10", source="real")


# --------------------------------------------------------------------------
# A failed download
# --------------------------------------------------------------------------
def offline_urlretrieve(written):
    """Stands in for torchvision's low-level download: writes half a file, then the network drops."""
    def fake(url, filename, chunk_size=1024 * 32):
        with open(filename, "wb") as f:
            f.write(gzip.compress(b"\x00" * 100)[:20])
        written.append(filename)
        raise urllib.error.URLError("simulated: network unreachable")
    return fake


@pytest.fixture
def offline(monkeypatch):
    written = []
    monkeypatch.setattr(torchvision.datasets.utils, "_get_redirect_url", lambda url, max_hops=3: url)
    monkeypatch.setattr(torchvision.datasets.utils, "_urlretrieve", offline_urlretrieve(written))
    return written


@pytest.mark.parametrize("name, title, url", [
    ("mnist", "MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
    ("cifar10", "CIFAR10", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
])
def test_failed_download_explains_and_leaves_nothing(data_dir, offline, no_system_fashion, monkeypatch, capsys,
                                                     name, title, url):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("COURSE_DATA", "real")
    with pytest.raises(data.DatasetUnavailable) as info:
        data.load(name)
    message = str(info.value)
    assert f"Could not download {title} from {url}" in message
    assert "no internet connection" in message and "simulated: network unreachable" in message
    assert "check your internet connection" in message and "COURSE_DATA=standin" in message
    assert str(data_dir) in message  # where to put files downloaded by hand
    assert offline, "the download function was never reached"
    assert [p for p in data_dir.rglob("*") if p.is_file()] == [], "a partial file was left behind"

    monkeypatch.setenv("COURSE_DATA", "auto")
    ds = data.load(name)
    out = capsys.readouterr().out
    assert ds.standin and ds.name == name
    assert out.count("\n") == 1 and "could not be downloaded: no internet connection" in out
    assert "urlopen" not in out and "simulated" not in out  # no raw error text in the notice
    assert [p for p in data_dir.rglob("*") if p.is_file()] == []


def test_standin_source_never_downloads(data_dir, offline, no_system_fashion, capsys):
    ds = data.load("cifar10", "test", source="standin")
    assert ds.standin and offline == []
    assert "because COURSE_DATA=standin" in capsys.readouterr().out


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load("imagenet")
    with pytest.raises(ValueError, match="split"):
        data.load("digits", "val")
    with pytest.raises(ValueError, match="COURSE_DATA"):
        data.load("mnist", source="internet")


# --------------------------------------------------------------------------
# Stand-ins
# --------------------------------------------------------------------------
def neighbour_correlation(images: torch.Tensor) -> float:
    """Correlation of horizontally adjacent pixels: about 0 for noise, high for real images."""
    x = images.float()
    a, b = x[..., :-1].flatten(), x[..., 1:].flatten()
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def test_digits_standin(no_system_fashion, data_dir, capsys):
    train, test = data.load("mnist", source="standin"), data.load("mnist", "test", source="standin")
    assert "handwritten digits" in capsys.readouterr().out and "1,437 images" in ''.join([repr(train)])
    assert (len(train), len(test)) == (1437, 360)
    assert train.images.shape[1:] == (1, 28, 28) and train.images.dtype == torch.uint8
    assert train.labels.dtype == torch.int64 and train.classes == [str(d) for d in range(10)]
    from sklearn.datasets import load_digits

    per_class = torch.bincount(torch.from_numpy(load_digits().target))
    assert ((torch.bincount(train.labels) - 0.8 * per_class).abs() <= 1).all()  # stratified 80/20
    assert train.images[..., :4, :].max() == 0  # MNIST-like 4-pixel empty border
    assert train.images.float().std(dim=(1, 2, 3)).min() > 10  # no blank image
    assert neighbour_correlation(train.images) > 0.7
    # Real digits: every class has its own average shape.
    means = torch.stack([train.images[train.labels == k].float().mean(0).flatten() for k in range(10)])
    distances = torch.cdist(means, means) + torch.eye(10) * 1e9
    assert distances.min() > 100
    # Train and test are disjoint pieces of the 1,797 digits.
    both = torch.cat([train.images, test.images]).flatten(1)
    assert len(torch.unique(both, dim=0)) >= 1790


def test_photo_standin():
    train, test = data.load("photos"), data.load("photos", "test")
    assert not train.standin and len(train.classes) == 10
    assert train.images.shape == (5000, 3, 32, 32) and test.images.shape == (1000, 3, 32, 32)
    assert torch.bincount(train.labels).tolist() == [500] * 10
    assert torch.bincount(test.labels).tolist() == [100] * 10
    assert neighbour_correlation(train.images) > 0.5
    means = torch.stack([train.images[train.labels == k].float().mean(0).flatten() for k in range(10)])
    assert (torch.cdist(means, means) + torch.eye(10) * 1e9).min() > 50
    assert len(torch.unique(train.images.flatten(1), dim=0)) == 5000  # no duplicated crops
    assert all(0 < s < 1 for s in train.mean + train.std)
    # Test crops come from other parts of each photo than training crops: almost none is a near-copy.
    assert data.near_duplicate_share(test.images, train.images, threshold=0.99) < 0.02


def test_near_duplicate_share_finds_copies():
    """The control: the measure used above does see copies, even brightened ones."""
    images = torch.randint(0, 200, (50, 3, 8, 8), dtype=torch.uint8)
    copies = (images[:10].float() * 1.2 + 5).round().clamp(0, 255).to(torch.uint8)
    others = torch.randint(0, 200, (10, 3, 8, 8), dtype=torch.uint8)
    assert data.near_duplicate_share(torch.cat([copies, others]), images) == 0.5


def test_standins_are_deterministic():
    first = data.load("photos").images.clone(), data.load("digits").images.clone()
    data.standins.photos.cache_clear()
    data.standins.digits.cache_clear()
    again = data.load("photos").images, data.load("digits").images
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])


# --------------------------------------------------------------------------
# split and take
# --------------------------------------------------------------------------
def ids(ds):
    """Identify examples by their pixels (all digits stand-in images differ)."""
    return {bytes(img.numpy()) for img in ds.images}


def test_split_sizes_disjoint_deterministic():
    ds = data.load("digits")
    train, val = data.split(ds, val_fraction=0.2, seed=1)
    assert (len(train), len(val)) == (1150, 287)
    assert ids(train).isdisjoint(ids(val)) and len(ids(train) | ids(val)) == len(ids(ds))
    assert val.mean == ds.mean and val.classes == ds.classes
    again = data.split(ds, val_fraction=0.2, seed=1)[1]
    other = data.split(ds, val_fraction=0.2, seed=2)[1]
    assert torch.equal(val.images, again.images) and not torch.equal(val.images, other.images)


def test_take():
    ds = data.load("digits")
    small = data.take(ds, 50, seed=3)
    assert len(small) == 50 and ids(small) <= ids(ds)
    assert torch.equal(small.labels, data.take(ds, 50, seed=3).labels)
    assert not torch.equal(small.images, data.take(ds, 50, seed=4).images)
    assert data.take(ds, 10_000) is ds


# --------------------------------------------------------------------------
# DeviceLoader
# --------------------------------------------------------------------------
def test_device_loader_batches_and_normalisation():
    ds = data.take(data.load("photos"), 1000)
    loader = data.DeviceLoader(ds, batch_size=128)
    batches = list(loader)
    assert len(loader) == len(batches) == 8 and loader.dataset is ds
    x, y = batches[0]
    assert x.shape == (128, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert batches[-1][0].shape[0] == 1000 - 7 * 128
    full = torch.cat([b[0] for b in batches])
    # normalised with the training set's mean/std: mean about 0, std about 1 per channel
    assert full.mean(dim=(0, 2, 3)).abs().max() < 0.1
    assert (full.std(dim=(0, 2, 3)) - 1).abs().max() < 0.15
    raw = data.DeviceLoader(ds, batch_size=1000, normalize=False)
    assert torch.equal(next(iter(raw))[0], ds.images.float() / 255)


def test_device_loader_drop_last_shuffle_resize():
    ds = data.take(data.load("digits"), 100)
    assert len(data.DeviceLoader(ds, 32, drop_last=True)) == 3
    assert [len(y) for _, y in data.DeviceLoader(ds, 32, drop_last=True)] == [32, 32, 32]

    def epoch(seed):
        return torch.cat([y for _, y in data.DeviceLoader(ds, 32, shuffle=True, seed=seed)])

    assert torch.equal(epoch(0), epoch(0)) and not torch.equal(epoch(0), epoch(1))
    assert sorted(epoch(0).tolist()) == sorted(ds.labels.tolist())  # each example once per epoch
    loader = data.DeviceLoader(ds, 32, shuffle=True, seed=0)
    assert not torch.equal(torch.cat([y for _, y in loader]), torch.cat([y for _, y in loader]))
    x, _ = next(iter(data.DeviceLoader(ds, 8, resize=(32, 32))))
    assert x.shape == (8, 1, 32, 32)


# --------------------------------------------------------------------------
# Augmentation on the DeviceLoader (the augmentations themselves: tests/test_augment.py)
# --------------------------------------------------------------------------
def test_loader_augments_with_its_own_seeded_generator():
    ds = data.take(data.load("photos"), 256)
    plain = next(iter(data.DeviceLoader(ds, 256)))[0]

    def first_batch(seed):
        return next(iter(data.DeviceLoader(ds, 256, augment=data.BatchAugment.reference(), seed=seed)))[0]

    augmented = first_batch(0)
    assert augmented.shape == plain.shape and not torch.equal(augmented, plain)
    assert torch.equal(first_batch(0), augmented) and not torch.equal(first_batch(1), augmented)


def test_chapter_names_still_import_from_data():
    from icdl import augment

    assert data.BatchAugment is augment.BatchAugment
    assert data.pil_train_transforms is augment.reference_transforms
    assert data.pil_eval_transforms is augment.eval_transforms


# --------------------------------------------------------------------------
# The classic per-image pipeline (uint8 tensors through transforms.v2)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name, channels", [("digits", 1), ("photos", 3)])
def test_pil_pipeline(name, channels):
    ds = data.take(data.load(name), 20)
    size = ds.images.shape[-1]
    train = data.torch_loader(ds, data.pil_train_transforms(ds.mean, ds.std, size=size), batch_size=8, shuffle=True)
    x, y = next(iter(train))
    assert x.shape == (8, channels, size, size) and x.dtype == torch.float32 and y.dtype == torch.int64
    evaluation = data.torch_loader(ds, data.pil_eval_transforms(ds.mean, ds.std), batch_size=20)
    x, y = next(iter(evaluation))
    fast, fast_y = next(iter(data.DeviceLoader(ds, 20)))
    assert torch.allclose(x, fast, atol=1e-5) and torch.equal(y, fast_y)  # both pipelines agree without augmentation


def test_per_image_loader_hands_uint8_tensors_to_the_transform():
    ds = data.take(data.load("photos"), 4)
    seen = []
    loader = data.torch_loader(ds, lambda image: seen.append(image) or image.float(), batch_size=4)
    x, _ = next(iter(loader))
    assert all(isinstance(im, torch.Tensor) and im.dtype == torch.uint8 and im.shape == (3, 32, 32) for im in seen)
    assert torch.equal(x, ds.images.float())


# --------------------------------------------------------------------------
# The package's layout: one job per module, imports in one direction
# --------------------------------------------------------------------------
def test_data_modules_import_in_one_direction():
    import ast
    from pathlib import Path

    allowed = {"images": set(), "standins": {"images"}, "downloads": set(), "loaders": {"images"},
               "catalogue": {"images", "standins", "downloads"}}
    folder = Path(data.__file__).parent
    for name, may_use in allowed.items():
        tree = ast.parse((folder / f"{name}.py").read_text())
        used = {node.module.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module}
        used |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1
                 and not node.module for alias in node.names}
        assert used <= may_use, f"icdl.data.{name} imports {sorted(used - may_use)}"
