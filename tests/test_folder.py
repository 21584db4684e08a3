"""Tests of icdl.folder: every kind of bad input gets its own message, good images are never dropped,
duplicates and class balance are counted, and a saved classifier reloads to identical logits."""

import io
import shutil

import numpy as np
import pytest
import torch
from icdl import folder
from PIL import Image
from torch import nn


def write_image(path, seed, size=(12, 10), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


def image_bytes(seed, fmt):
    buf = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def good(tmp_path):
    root = tmp_path / "data"
    for c, name in enumerate(["cat", "dog"]):
        for i in range(3):
            write_image(root / name / f"{i}.png", seed=10 * c + i)
    write_image(root / "dog" / "3.jpg", seed=99)
    return root


def test_a_clean_folder_has_no_problems(good):
    report = folder.scan_folder(good)
    assert report.ok and report.problems == []
    assert report.classes == ["cat", "dog"]
    assert report.counts == {"cat": 3, "dog": 4}
    assert [report.relative(p) for p, _ in report.samples][:2] == ["cat/0.png", "cat/1.png"]
    assert [y for _, y in report.samples] == [0, 0, 0, 1, 1, 1, 1]
    assert report.imbalance_ratio == pytest.approx(4 / 3) and report.majority_share == pytest.approx(4 / 7)
    assert "7 good images in 2 classes" in report.text()


@pytest.mark.parametrize("root_kind", ["missing", "file"])
def test_a_missing_root_or_a_file_is_reported_not_raised(tmp_path, root_kind):
    root = tmp_path / "nowhere"
    if root_kind == "file":
        root.write_text("hello")
    report = folder.scan_folder(root)
    assert not report.ok and report.samples == []
    (problem,) = report.problems
    assert problem.kind == ("missing_root" if root_kind == "missing" else "not_a_folder")
    assert ("does not exist" if root_kind == "missing" else "is a file, not a folder") in problem.message


def test_one_class_needs_a_second(tmp_path):
    write_image(tmp_path / "only" / "a.png", 1)
    report = folder.scan_folder(tmp_path)
    assert not report.ok and len(report.samples) == 1
    (problem,) = report.of_kind("too_few_classes")
    assert "a classifier needs >= 2 classes" in problem.message and "(only)" in problem.message


def test_an_empty_class_is_named_and_skipped(good):
    (good / "bird").mkdir()
    report = folder.scan_folder(good)
    assert report.classes == ["cat", "dog"] and report.ok
    (problem,) = report.problems
    assert problem.kind == "empty_class" and problem.path == "bird/" and "bird/: an empty class" in problem.message


@pytest.mark.parametrize("fmt, suffix", [("PNG", ".png"), ("JPEG", ".jpg")])
def test_a_truncated_image_is_reported_and_the_rest_kept(good, fmt, suffix):
    data = image_bytes(5, fmt)
    (good / "cat" / f"broken{suffix}").write_bytes(data[:len(data) // 2])
    report = folder.scan_folder(good)
    (problem,) = report.problems
    assert problem.kind == "corrupt" and problem.path == f"cat/broken{suffix}"
    assert f"cat/broken{suffix}: is a damaged image" in problem.message and "skipped" in problem.message
    assert len(report.samples) == 7  # every good image is still there


def test_a_text_file_is_skipped_with_a_note(good):
    (good / "cat" / "notes.txt").write_text("taken on holiday")
    report = folder.scan_folder(good)
    (problem,) = report.problems
    assert problem.kind == "not_image" and "cat/notes.txt: not an image file (extension .txt)" in problem.message
    assert len(report.samples) == 7


def test_text_saved_as_jpg_is_not_image_data(good):
    (good / "dog" / "fake.jpg").write_text("this is not a photo")
    report = folder.scan_folder(good)
    (problem,) = report.problems
    assert problem.kind == "not_image_data"
    assert "dog/fake.jpg: has the extension .jpg but holds no image data" in problem.message
    assert "(it starts with b'this is not" in problem.message


def test_an_empty_file_and_a_stray_file(good):
    (good / "dog" / "zero.png").write_bytes(b"")
    (good / "README.md").write_text("my photos")
    kinds = {p.kind: p.message for p in folder.scan_folder(good).problems}
    assert "is empty (0 bytes)" in kinds["empty_file"] and "belongs to no class" in kinds["stray_file"]


def test_a_class_of_only_bad_files_is_an_empty_class(good):
    (good / "fish").mkdir()
    (good / "fish" / "fake.png").write_text("nope")
    report = folder.scan_folder(good)
    assert report.classes == ["cat", "dog"]
    assert [p.kind for p in report.problems] == ["not_image_data", "empty_class"]
    assert "1 file(s), no readable image" in report.problems[-1].message


def test_images_in_sub_folders_belong_to_their_class(good):
    write_image(good / "cat" / "holiday" / "x.png", 77)
    report = folder.scan_folder(good)
    assert report.counts["cat"] == 4 and "cat/holiday/x.png" in [report.relative(p) for p, _ in report.samples]


def test_duplicates_within_and_across_classes(good):
    shutil.copy(good / "cat" / "0.png", good / "cat" / "copy.png")
    shutil.copy(good / "cat" / "1.png", good / "dog" / "also_cat.png")
    report = folder.scan_folder(good)
    assert len(report.samples) == 9  # duplicates are good images: reported, not dropped
    assert sorted(report.duplicates) == [["cat/0.png", "cat/copy.png"], ["cat/1.png", "dog/also_cat.png"]]
    messages = [p.message for p in report.of_kind("duplicate")]
    assert any("in the class cat" in m for m in messages)
    assert any("in different classes (cat, dog): at most one label can be right" in m for m in messages)
    kept = [report.relative(p) for p, _ in report.deduplicated()]
    assert "cat/0.png" in kept and "cat/copy.png" not in kept
    assert "cat/1.png" not in kept and "dog/also_cat.png" not in kept  # contradicting labels: both out
    assert len(kept) == 6


def test_duplicates_are_found_by_pixels_not_by_file_bytes(good):
    Image.open(good / "cat" / "2.png").save(good / "dog" / "same.bmp")  # other bytes, the same pixels
    assert folder.scan_folder(good).duplicates == [["cat/2.png", "dog/same.bmp"]]


def test_load_images_gives_an_imageset_of_one_size(good):
    write_image(good / "cat" / "wide.png", 3, size=(40, 10))
    report = folder.scan_folder(good)
    ds = folder.load_images(report.samples, report.classes, 16, (0.5,) * 3, (0.25,) * 3, source="test")
    assert ds.images.shape == (8, 3, 16, 16) and ds.images.dtype == torch.uint8
    assert ds.labels.tolist() == [y for _, y in report.samples] and ds.classes == ["cat", "dog"]
    grey = good / "dog" / "grey.png"
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(grey)
    assert folder.image_tensor(grey, 5).shape == (3, 5, 5)
    with pytest.raises(ValueError, match="empty"):
        folder.load_images([], ["a", "b"], 8, (0,) * 3, (1,) * 3)


class Tiny(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten(), nn.Linear(4, num_classes))

    def forward(self, x):
        return self.net(x)


def test_save_load_round_trip_gives_identical_logits_and_predictions(good, tmp_path):
    torch.manual_seed(0)
    model = Tiny(2).eval()
    model.net[1].running_mean.uniform_(-1, 1)  # buffers travel too
    meta = dict(classes=["cat", "dog"], mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.25), size=16)
    path = folder.save_classifier(tmp_path / "out" / "model.pt", model, architecture="Tiny", **meta)
    assert not path.with_name("model.pt.tmp").exists()
    bundle = torch.load(path, weights_only=True)
    assert set(folder.BUNDLE_KEYS) <= set(bundle) and bundle["architecture"] == "Tiny"
    torch.manual_seed(1)
    again, info = folder.load_classifier(path, Tiny)
    assert info["classes"] == ["cat", "dog"] and info["size"] == 16 and not again.training
    x = torch.randn(3, 3, 16, 16)
    assert torch.equal(model(x), again(x))
    name, prob = folder.predict_file(again, good / "dog" / "3.jpg", **meta)
    x1 = (folder.image_tensor(good / "dog" / "3.jpg", 16).float() / 255 - torch.tensor(meta["mean"]).view(3, 1, 1)) \
        / torch.tensor(meta["std"]).view(3, 1, 1)
    probs = model(x1[None]).softmax(1)[0].detach()
    assert name == meta["classes"][int(probs.argmax())] and prob == pytest.approx(float(probs.max()), abs=1e-6)


def test_load_classifier_names_what_a_bare_state_dict_lacks(tmp_path):
    torch.save(Tiny(2).state_dict(), tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="no class names"):
        folder.load_classifier(tmp_path / "bare.pt", Tiny)
    torch.save({"state_dict": Tiny(2).state_dict(), "classes": ["a", "b"]}, tmp_path / "half.pt")
    with pytest.raises(ValueError, match=r"lacks \['mean', 'std', 'size'\]"):
        folder.load_classifier(tmp_path / "half.pt", Tiny)
