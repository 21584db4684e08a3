"""Tests of the checks of exercise 16 (a project on your own images): right answers pass, planted mistakes fail
with the message that names the mistake, untouched stubs say "not attempted"."""

import hashlib

import numpy as np
import pytest
import torch
from checkhelpers import assert_incorrect, assert_not_attempted
from icdl import folder
from icdl.checks import ex16_capstone as ex
from icdl.checks.core import Outcome
from PIL import Image
from sklearn.model_selection import train_test_split

ALL = [ex.q1, ex.q2, ex.q3, ex.q4, ex.q5, ex.q6]


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.name)
def test_every_question_has_a_title_two_hints_and_a_name(q):
    assert q.title and len(q.hints) >= 2 and q.notebook == "16_capstone"


def test_untouched_answers_are_not_attempted():
    for q in (ex.q1, ex.q3, ex.q6):
        assert_not_attempted(q)
    for q in (ex.q2, ex.q5):
        assert q.evaluate(None).outcome is Outcome.NOT_ATTEMPTED
    assert ex.q4.evaluate(None, None, None).outcome is Outcome.NOT_ATTEMPTED


# -- q1: duplicates by decoded pixels ------------------------------------------------------
def grouped(paths, key):
    groups = {}
    for path in paths:
        groups.setdefault(key(path), []).append(path)
    return [g for g in groups.values() if len(g) > 1]


def decoded(path):
    with Image.open(path) as img:
        return img.mode, img.size, hashlib.sha1(img.tobytes()).hexdigest()


def solution_q1(paths):
    return grouped(paths, decoded)


def pairwise_arrays(paths):  # another correct way: compare the arrays, one pair at a time, as strings
    arrays = [np.asarray(Image.open(p)) for p in paths]
    groups, used = [], set()
    for i, a in enumerate(arrays):
        if i in used:
            continue
        same = [j for j in range(i + 1, len(arrays)) if a.shape == arrays[j].shape and np.array_equal(a, arrays[j])]
        if same:
            used.update(same)
            groups.append([str(paths[i]), *(str(paths[j]) for j in same)])
    return groups


def test_q1_correct_in_two_ways_and_the_files_are_what_the_question_says(tmp_path):
    assert ex.q1.evaluate(solution_q1).outcome is Outcome.CORRECT
    assert ex.q1.evaluate(pairwise_arrays).outcome is Outcome.CORRECT
    paths, groups = ex.duplicate_files(tmp_path)
    report = folder.scan_folder(tmp_path)  # the course's scanner agrees with the expected groups
    found = {frozenset(tmp_path / rel for rel in g) for g in report.duplicates}
    assert found == {frozenset(g) for g in groups}
    assert len({p.read_bytes() for p in groups[0]}) == 3  # one picture in three different byte strings


@pytest.mark.parametrize("fn, fragments", [
    (lambda paths: grouped(paths, lambda p: p.read_bytes()), ["hold the same pixels in other bytes",
                                                              "compared the files' bytes"]),
    (lambda paths: grouped(paths, lambda p: Image.open(p).tobytes()), ["(6x4) and", "(4x6)", "another shape"]),
    (lambda paths: grouped(paths, lambda p: Image.open(p).size), ["their pixels differ", "only share their size"]),
    (lambda paths: [[p] for p in paths], ["A group of one file", "two or more"]),
    (lambda paths: [[a, b] for g in solution_q1(paths) for a, b in zip(g, g[1:])], ["is in two groups"]),
    (lambda paths: {i: g for i, g in enumerate(solution_q1(paths))}, ["returned a dict"]),
    (lambda paths: [p for g in solution_q1(paths) for p in g], ["Each group should be a list of paths"]),
    (lambda paths: solution_q1(paths) + [[paths[0].parent / "elsewhere.png", paths[1]]], ["not one of the paths"]),
    (lambda paths: solution_q1(paths)[:1], ["byte-for-byte copies", "not in one group"]),
    (lambda paths: 1 / 0, ["ZeroDivisionError"]),
    (lambda paths: 3, ["should return a list of groups"]),
    ("find_duplicates", ["Pass your function itself"]),
])
def test_q1_planted_mistakes(fn, fragments):
    assert_incorrect(ex.q1.evaluate(fn), *fragments)


# -- q2 and q5: choices -------------------------------------------------------------------
def test_q2_every_wrong_option_is_explained():
    assert ex.q2.evaluate("C").outcome is Outcome.CORRECT
    for letter, fragment in [("a", "no file is opened then"), ("b", "never decodes a file"),
                             ("d", "PIL cannot identify the file")]:
        assert_incorrect(ex.q2.evaluate(letter), fragment)
    assert_incorrect(ex.q2.evaluate("e"), "not one of the options")


def test_q2_matches_what_torchvision_does(tmp_path):
    import torchvision

    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / name / "a.png")
    (tmp_path / "dog" / "dog_17.jpg").write_text("<html>404</html>")
    tv = torchvision.datasets.ImageFolder(tmp_path)  # created without complaint: option (a) is wrong
    assert len(tv) == 3
    with pytest.raises(Exception, match="cannot identify image file"):
        [tv[i] for i in range(len(tv))]
    (tmp_path / "bird").mkdir()
    with pytest.raises(FileNotFoundError, match="bird"):  # an empty class is what it refuses when created
        torchvision.datasets.ImageFolder(tmp_path)


def test_q5_every_wrong_option_is_explained():
    assert ex.q5.evaluate(" d ").outcome is Outcome.CORRECT
    for letter, fragment in [("a", "it holds no sandals"), ("b", "at least one gets 0.2"),
                             ("c", "the empty folder is skipped")]:
        assert_incorrect(ex.q5.evaluate(letter), fragment)
    assert_incorrect(ex.q5.evaluate(4), "a letter")


# -- q3: the stratified split ---------------------------------------------------------------
def solution_q3(labels, test_fraction, seed):
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = round(len(idx) * test_fraction)
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    return np.sort(train), np.sort(test)


def with_sklearn(labels, test_fraction, seed):
    return train_test_split(np.arange(len(labels)), test_size=test_fraction, stratify=labels, random_state=seed)


def not_stratified(labels, test_fraction, seed):
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = round(len(labels) * test_fraction)
    return order[n_test:], order[:n_test]


def with_replacement(labels, test_fraction, seed):
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n_test = round(len(idx) * test_fraction)
        drawn = rng.choice(idx, n_test, replace=True)
        test.extend(drawn)
        train.extend(np.setdiff1d(idx, drawn))
    return np.array(train), np.array(test)


def first_images(labels, test_fraction, seed):  # ignores the seed: always the first images of every class
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n_test = round(len(idx) * test_fraction)
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    return np.array(train), np.array(test)


def unseeded(labels, test_fraction, seed):
    return solution_q3(labels, test_fraction, np.random.randint(1_000_000))


def test_q3_correct_in_two_ways_and_the_given_function_fails_with_its_own_message():
    assert ex.q3.evaluate(solution_q3).outcome is Outcome.CORRECT
    assert ex.q3.evaluate(with_sklearn).outcome is Outcome.CORRECT
    assert ex.q3.evaluate(lambda *a: tuple(list(p) for p in solution_q3(*a))).outcome is Outcome.CORRECT
    assert ex.q3.evaluate(lambda *a: tuple(torch.as_tensor(p) for p in solution_q3(*a))).outcome is Outcome.CORRECT
    assert_incorrect(ex.q3.evaluate(ex.given_split), "in both parts", "the given function's bug")


@pytest.mark.parametrize("fn, fragments", [
    (not_stratified, ["a stratified split puts about", "class by class"]),
    (with_replacement, ["appears twice in the test part", "without replacement"]),
    (first_images, ["gave the same test part", "at random"]),
    (unseeded, ["same seed gave different test parts", "default_rng(seed)"]),
    (lambda *a: (solution_q3(*a)[0][1:], solution_q3(*a)[1]), ["in neither part"]),
    (lambda *a: (np.arange(len(a[0])), solution_q3(*a)[1]), ["in both parts"]),
    (lambda *a: (*solution_q3(*a), None), ["should return two index arrays"]),
    (lambda *a: tuple(p.astype(float) for p in solution_q3(*a)), ["integer indices"]),
    (lambda *a: (solution_q3(*a)[0], solution_q3(*a)[1] + 100), ["there are only"]),
    (lambda *a: 1 / 0, ["ZeroDivisionError"]),
    (5, ["Pass your function itself"]),
])
def test_q3_planted_mistakes(fn, fragments):
    assert_incorrect(ex.q3.evaluate(fn), *fragments)


# -- q4: the confusion matrix -------------------------------------------------------------------
CM = np.array(ex.CONFUSION)
K = ex.CLASSES.index("shirt")
RECALL, PRECISION, ACCURACY = CM[K, K] / CM[K].sum(), CM[K, K] / CM[:, K].sum(), np.trace(CM) / CM.sum()


def test_q4_correct_also_rounded_and_the_table_is_the_matrix():
    assert ex.q4.evaluate(RECALL, PRECISION, ACCURACY).outcome is Outcome.CORRECT
    assert ex.q4.evaluate(round(RECALL, 3), round(PRECISION, 3), round(ACCURACY, 3)).outcome is Outcome.CORRECT
    text = ex.confusion_text()
    assert all(name in text for name in ex.CLASSES) and " 19" in text


@pytest.mark.parametrize("answers, fragment", [
    ((PRECISION, PRECISION, ACCURACY), "that is the precision"),
    ((100 * RECALL, PRECISION, ACCURACY), "not a percentage"),
    ((CM[K, K] / CM.sum(), PRECISION, ACCURACY), "divides by every image"),
    ((RECALL, RECALL, ACCURACY), "that is the recall"),
    ((RECALL, PRECISION, np.mean(np.diag(CM) / CM.sum(1))), "balanced accuracy"),
    ((RECALL, PRECISION, 100 * ACCURACY), "not a percentage"),
    ((RECALL, PRECISION, 0.5), "work it out from the rows"),
    ((RECALL, "0.54", ACCURACY), "should be a number"),
])
def test_q4_planted_mistakes(answers, fragment):
    assert_incorrect(ex.q4.evaluate(*answers), fragment)


def test_q4_takes_three_answers():
    assert_incorrect(ex.q4.evaluate(RECALL, PRECISION), "takes 3 answers")


# -- q6: a reloaded classifier --------------------------------------------------------------------
def solution_q6(model_file, image_file, build):
    model, info = folder.load_classifier(model_file, build)
    return folder.predict_file(model, image_file, classes=info["classes"], mean=info["mean"], std=info["std"],
                               size=info["size"])


def by_hand(model_file, image_file, build, *, size=None, mean=None, std=None, scale=255.0, eval_mode=True,
            tensor_prob=False, classes=None):
    bundle = torch.load(model_file, weights_only=True)
    model = build(len(bundle["classes"]))
    model.load_state_dict(bundle["state_dict"])
    model.train(not eval_mode)
    x = folder.image_tensor(image_file, size or bundle["size"]).float() / scale
    x = (x - torch.tensor(mean or bundle["mean"]).view(3, 1, 1)) / torch.tensor(std or bundle["std"]).view(3, 1, 1)
    with torch.no_grad():
        probs = model(x[None]).softmax(dim=1)[0]
    names = classes or bundle["classes"]
    return names[int(probs.argmax())], (probs.max() if tensor_prob else float(probs.max()))


def given_q6(model_file, image_file, build):  # the notebook's function
    return by_hand(model_file, image_file, build, size=224, mean=(0.5,) * 3, std=(0.5,) * 3)


def test_q6_correct_in_two_ways_and_the_given_function_fails_with_its_own_message(tmp_path):
    assert ex.q6.evaluate(solution_q6).outcome is Outcome.CORRECT
    assert ex.q6.evaluate(lambda *a: by_hand(*a, tensor_prob=True)).outcome is Outcome.CORRECT
    assert_incorrect(ex.q6.evaluate(given_q6), "the given function's bug")
    model_file, images = ex.demo_files(tmp_path)  # the demonstration shows a prediction that changes class
    assert any(given_q6(model_file, p, ex.tiny_net)[0] != solution_q6(model_file, p, ex.tiny_net)[0] for p in images)


@pytest.mark.parametrize("fn, fragments", [
    (lambda *a: by_hand(*a, mean=(0.5,) * 3, std=(0.5,) * 3), ["normalised with mean and std 0.5"]),
    (lambda *a: by_hand(*a, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)), ["ImageNet's mean and std"]),
    (lambda *a: by_hand(*a, size=224), ["resized the image to 224"]),
    (lambda *a: by_hand(*a, mean=(0.0,) * 3, std=(1.0,) * 3), ["left out the normalisation"]),
    (lambda *a: by_hand(*a, scale=1.0), ["divide the uint8 values by 255"]),
    (lambda *a: by_hand(*a, eval_mode=False), ["training mode", "model.eval()"]),
    (lambda *a: by_hand(*a, classes=["cat", "dog", "fox"]), ["the classes are the ones saved in the file"]),
    (lambda *a: solution_q6(*a)[0], ["should return (class name, probability)"]),
    (lambda *a: (0, solution_q6(*a)[1]), ["should be its name, a string"]),
    (lambda *a: (solution_q6(*a)[0], "high"), ["should be a number"]),
    (lambda *a: (solution_q6(*a)[0], 3.2), ["not between 0 and 1"]),
    (lambda *a: (solution_q6(*a)[0], solution_q6(*a)[1] * 0.9), ["returned the probability"]),
    (lambda *a: 1 / 0, ["ZeroDivisionError"]),
    (lambda *a: None, ["returned None", "forget the `return`"]),
    ([], ["Pass your function itself"]),
])
def test_q6_planted_mistakes(fn, fragments):
    assert_incorrect(ex.q6.evaluate(fn), *fragments)
