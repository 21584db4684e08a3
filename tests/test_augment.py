"""Tests of icdl.augment: each augmentation does what it says, as often as it says, over the range it says.

The statistical tests draw thousands of images with a fixed seed, so each one
is deterministic; the tolerances are set from the distribution the count or
the factor should follow (about 4 standard deviations, or a chi-square
quantile far in the tail), so that a correct implementation would pass with
any seed except with a negligible probability, while a wrong probability or a
wrong range falls far outside them.
"""

import math

import pytest
import torch
from icdl import augment, data


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def within_binomial(count, n, p, sds=4):
    """``count`` is within ``sds`` standard deviations of a Binomial(n, p) count's mean."""
    return abs(count - n * p) <= sds * math.sqrt(n * p * (1 - p))


def asymmetric_batch(b=64, c=3, h=8, w=8):
    """Every pixel different (and above 0), so any move of a pixel shows."""
    return ((torch.arange(c * h * w, dtype=torch.float32) + 1) / (c * h * w + 1)).view(1, c, h, w).repeat(b, 1, 1, 1)


# --------------------------------------------------------------------------
# Crop and flip
# --------------------------------------------------------------------------
def test_gather_crops_flip_and_offsets():
    x = asymmetric_batch(b=2)
    flipped = augment.gather_crops(x, torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long), 8, 8,
                                   flip=torch.tensor([True, False]))
    assert torch.equal(flipped[0], x[0].flip(-1)) and torch.equal(flipped[1], x[1])
    window = augment.gather_crops(x, torch.tensor([1, 2]), torch.tensor([3, 0]), 4, 5)
    assert torch.equal(window[0], x[0, :, 1:5, 3:8]) and torch.equal(window[1], x[1, :, 2:6, 0:5])
    assert data.gather_crops is augment.gather_crops


def test_crop_offsets_are_uniform_over_every_position():
    pad, n = 2, 2500
    x = asymmetric_batch(b=n, c=1)
    out = augment.random_crop(x, pad, generator=gen(0))
    # Every output is a window of the padded image.
    padded = torch.nn.functional.pad(x[0], (pad, pad, pad, pad))
    windows = {(t, l): padded[:, t:t + 8, l:l + 8] for t in range(2 * pad + 1) for l in range(2 * pad + 1)}
    # Output pixel (pad, pad) is input pixel (top, left) for every offset, so it tells the offset.
    code = (out[:, 0, pad, pad] * (8 * 8 + 1)).round().long() - 1
    top, left = code // 8, code % 8
    assert all(torch.equal(out[i], windows[(int(top[i]), int(left[i]))]) for i in range(0, n, 97))
    counts = torch.bincount(top * (2 * pad + 1) + left, minlength=(2 * pad + 1) ** 2).double()
    assert len(counts) == 25 and counts.min() > 0  # both extremes of both offsets occur
    # Pearson's chi-square against 25 equally likely offsets has 24 degrees of freedom: mean 24, sd 6.9;
    # its 99.99% quantile is about 55. Offsets drawn from 0..2*pad-1 only (one position never reached,
    # 104 expected there) give over 100; drawing from -pad..pad shifts whole rows and is far worse.
    expected = n / 25
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 55, f"crop offsets not uniform: chi-square {chi2:.1f} over 24 degrees of freedom"


def test_crop_keeps_pixels_in_bounds_and_padding_at_most_pad_wide():
    pad = 3
    out = augment.random_crop(asymmetric_batch(b=200), pad, generator=gen(1))
    assert out.shape == (200, 3, 8, 8)
    assert ((out > 0).flatten(1).sum(1) >= 3 * (8 - pad) ** 2).all()
    assert torch.equal(augment.random_crop(asymmetric_batch(b=5), 0, generator=gen(1)), asymmetric_batch(b=5))


@pytest.mark.parametrize("p", [0.5, 0.2])
def test_flip_frequency_is_p(p):
    n = 4000
    x = asymmetric_batch(b=n, c=1, h=2, w=3)
    out = augment.random_flip(x, p, generator=gen(2))
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert bool((same ^ mirrored).all())  # each image is either itself or its mirror image
    # A Binomial(4000, p) count: sd 31.6 at p = 0.5 (25.3 at 0.2); 4 sd is about 127 (101) images,
    # while p = 0.6 instead of 0.5 would move the mean by 400.
    assert within_binomial(int(mirrored.sum()), n, p)


def test_batch_augment_flips_half_of_the_images():
    n = 4000
    x = asymmetric_batch(b=n, c=1, h=2, w=3)
    out = augment.BatchAugment(crop_padding=0, flip=True)(x, generator=gen(3))
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert bool(((out == x).flatten(1).all(1) ^ mirrored).all())
    assert within_binomial(int(mirrored.sum()), n, 0.5)  # sd 31.6, 4 sd = 127 images


def test_batch_augment_draws_crop_and_flip_from_the_generator_in_order():
    """The chapters' setting: its random stream is the flips, then the tops, then the lefts."""
    x = torch.rand(32, 3, 8, 8, generator=gen(4))
    out = augment.BatchAugment(crop_padding=4, flip=True)(x, generator=gen(5))
    g = gen(5)
    flips = torch.rand(32, generator=g) < 0.5
    top, left = (torch.rand(32, generator=g) * 9).long(), (torch.rand(32, generator=g) * 9).long()
    expected = augment.gather_crops(torch.nn.functional.pad(x, (4, 4, 4, 4)), top, left, 8, 8, flips)
    assert torch.equal(out, expected)


# --------------------------------------------------------------------------
# Colour jitter
# --------------------------------------------------------------------------
def check_factors_fill_range(factors, low, high):
    # 4000 uniform factors on [low, high]: the chance that none falls in the outer 1% of the range at
    # one end is 0.99 ** 4000 = 4e-18, so min and max lie within 1% of the width of the ends; their mean
    # has sd (high - low) / sqrt(12 * 4000) = 0.0046 * (high - low), tolerance 4 sd.
    width = high - low
    assert factors.min() >= low - 1e-5 and factors.max() <= high + 1e-5, (factors.min(), factors.max())
    assert factors.min() < low + 0.01 * width and factors.max() > high - 0.01 * width, (factors.min(), factors.max())
    assert abs(float(factors.mean()) - (low + high) / 2) < 4 * 0.0046 * width


@pytest.mark.parametrize("strength", [0.2, 0.4])
def test_brightness_factors_fill_their_range(strength):
    x = torch.full((4000, 3, 2, 2), 0.25)  # 0.25 * 1.4 < 1: no clipping hides a factor
    out = augment.BatchAugment(crop_padding=0, flip=False, brightness=strength)(x, generator=gen(6))
    factors = out[:, 0, 0, 0] / 0.25
    assert torch.allclose(out, factors.view(-1, 1, 1, 1) * x)  # one factor per image, every pixel
    check_factors_fill_range(factors, 1 - strength, 1 + strength)


@pytest.mark.parametrize("strength", [0.2, 0.4])
def test_contrast_factors_fill_their_range(strength):
    x = torch.tensor([0.3, 0.5]).repeat(4000, 3, 2, 1)  # half the pixels 0.3, half 0.5: mean 0.4
    out = augment.color_jitter(x, contrast=strength, generator=gen(7))
    factors = (out[:, 0, 0, 1] - out[:, 0, 0, 0]) / 0.2
    assert torch.allclose(out.mean(dim=(1, 2, 3)), torch.full((4000,), 0.4))  # the mean stays put
    check_factors_fill_range(factors, 1 - strength, 1 + strength)


def test_saturation_factors_fill_their_range_and_keep_grey():
    colour = torch.tensor([0.6, 0.4, 0.3])
    grey = float((colour * torch.tensor([0.299, 0.587, 0.114])).sum())
    x = colour.view(1, 3, 1, 1).repeat(4000, 1, 2, 2)
    out = augment.color_jitter(x, saturation=0.3, generator=gen(8))
    factors = (out[:, 0, 0, 0] - grey) / (0.6 - grey)
    assert torch.allclose(augment._grey(out), torch.full((4000, 1, 2, 2), grey), atol=1e-6)
    check_factors_fill_range(factors, 0.7, 1.3)
    grey_images = torch.rand(8, 1, 4, 4, generator=gen(9))
    assert torch.equal(augment.color_jitter(grey_images, saturation=0.3, generator=gen(9)), grey_images)


def test_jitter_stays_in_range_and_leaves_its_input_alone():
    x = torch.rand(64, 3, 16, 16, generator=gen(10))
    before = x.clone()
    out = augment.BatchAugment(crop_padding=0, flip=False, brightness=0.4, contrast=0.4, saturation=0.4)(
        x, generator=gen(11))
    assert out.min() >= 0 and out.max() <= 1 and torch.equal(x, before)
    assert augment.BatchAugment(crop_padding=0, flip=False)(x) is x  # nothing switched on: nothing done


# --------------------------------------------------------------------------
# Random erasing
# --------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.25, 0.6])
def test_erasing_frequency_is_p_and_area_in_range(p):
    n, h, w = 4000, 16, 16
    x = torch.rand(n, 3, h, w, generator=gen(12))
    out = augment.random_erasing(x, p, generator=gen(13))
    changed = (out != x).any(1).flatten(1)                # (N, H*W): the erased pixels
    erased = changed.any(1)
    # Binomial(4000, p): sd 27.4 at p = 0.25 (31.0 at 0.6), tolerance 4 sd, about 110 (124) images;
    # erasing every image regardless of p would give 4000.
    assert within_binomial(int(erased.sum()), n, p), int(erased.sum())
    share = changed[erased].float().mean(1)
    # The rectangle is 2%-33% of the area before its sides are rounded and cut at the border.
    assert share.min() >= 0.01 and share.max() <= 0.36 and share.min() < 0.03 and share.max() > 0.3
    fill = x.mean(dim=(0, 2, 3))
    i = int(erased.nonzero()[0])
    spot = changed[i].view(h, w).nonzero()[0]
    assert torch.equal(out[i, :, spot[0], spot[1]], fill)  # filled with the batch's mean colour


def test_erasing_probability_zero_and_one():
    x = torch.rand(200, 3, 8, 8, generator=gen(14))
    assert torch.equal(augment.random_erasing(x, 0.0, generator=gen(15)), x)
    assert (augment.random_erasing(x, 1.0, generator=gen(15)) != x).flatten(1).any(1).all()


# --------------------------------------------------------------------------
# RandAugment-style operations
# --------------------------------------------------------------------------
def test_each_image_gets_the_operation_it_drew():
    x = torch.rand(60, 3, 12, 12, generator=gen(16))
    op = torch.arange(60) % len(augment.RAND_AUGMENT_OPS)
    strength = torch.rand(60, generator=gen(17)) * 2 - 1
    out = augment._apply_ops(x, op, strength)
    for i in range(60):
        alone = augment._apply_ops(x[i:i + 1], op[i:i + 1], strength[i:i + 1])
        assert torch.allclose(out[i:i + 1], alone, atol=1e-6), augment.RAND_AUGMENT_OPS[int(op[i])]
    assert torch.equal(out[op == 0], x[op == 0])  # identity
    brightness = op == augment.RAND_AUGMENT_OPS.index("brightness")
    factor = (1 + 0.9 * strength[brightness]).view(-1, 1, 1, 1)
    assert torch.allclose(out[brightness], (x[brightness] * factor).clamp(0, 1))
    solarize = op == augment.RAND_AUGMENT_OPS.index("solarize")
    threshold = (1 - strength[solarize].abs()).view(-1, 1, 1, 1)
    assert torch.equal(out[solarize], torch.where(x[solarize] >= threshold, 1 - x[solarize], x[solarize]))


def test_geometric_operations_move_pixels_exactly():
    x = torch.rand(1, 3, 32, 32, generator=gen(18))
    kinds = {name: torch.tensor([k]) for k, name in enumerate(augment._GEOMETRIC_OPS)}
    for kind in kinds.values():
        assert torch.equal(augment._geometry(x, kind, torch.zeros(1)), x)  # strength 0: nothing moves
    four_pixels = torch.full((1,), 4 * 331 / (150 * 32))                     # a shift of 4 of 32 pixels
    moved = augment._geometry(x, kinds["translate_x"], four_pixels)
    assert torch.equal(moved[..., :28], x[..., 4:]) and (moved[..., 28:] == 0).all()
    moved = augment._geometry(x, kinds["translate_y"], four_pixels)
    assert torch.equal(moved[..., :28, :], x[..., 4:, :]) and (moved[..., 28:, :] == 0).all()
    assert torch.equal(augment._geometry(x, kinds["rotate"], torch.full((1,), 3.0)), x.rot90(1, (2, 3)))  # 90 degrees


def drawn_ops(monkeypatch, call):
    """The (op, strength) arguments of every round that ``call`` hands to ``_apply_ops``."""
    rounds = []
    real = augment._apply_ops

    def recording(x, op, strength):
        rounds.append((op.clone(), strength.clone()))
        return real(x, op, strength)

    monkeypatch.setattr(augment, "_apply_ops", recording)
    call()
    return rounds


def test_rand_augment_draws_operation_and_sign_per_image(monkeypatch):
    n = 2600
    x = torch.rand(n, 3, 4, 4, generator=gen(19))
    rounds = drawn_ops(monkeypatch, lambda: augment.rand_augment(x, num_ops=2, magnitude=9, generator=gen(20)))
    assert len(rounds) == 2
    k = len(augment.RAND_AUGMENT_OPS)
    for op, strength in rounds:
        # Chi-square of the 13 operations' counts, 12 degrees of freedom: 99.99% quantile about 36.
        counts = torch.bincount(op, minlength=k).double()
        assert len(counts) == k and float(((counts - n / k) ** 2 / (n / k)).sum()) < 36
        assert torch.allclose(strength.abs(), torch.full((n,), 9 / 30))
        assert within_binomial(int((strength > 0).sum()), n, 0.5)     # sd 25.5, tolerance 102
    assert not torch.equal(rounds[0][0], rounds[1][0])                  # a new choice every round


def test_trivial_augment_draws_strength_per_image(monkeypatch):
    n = 3100
    x = torch.rand(n, 3, 4, 4, generator=gen(21))
    rounds = drawn_ops(monkeypatch, lambda: augment.trivial_augment(x, generator=gen(22)))
    assert len(rounds) == 1
    levels = (rounds[0][1].abs() * 30).round().long()
    # 31 equally likely levels, 100 expected each: chi-square over 30 degrees of freedom, 99.99% quantile ~ 64.
    counts = torch.bincount(levels, minlength=31).double()
    assert len(counts) == 31 and float(((counts - 100) ** 2 / 100).sum()) < 64


def test_rand_augment_changes_identical_images_differently():
    x = torch.rand(1, 3, 16, 16, generator=gen(23)).repeat(2600, 1, 1, 1)
    out = augment.rand_augment(x, num_ops=1, generator=gen(24))
    unchanged = (out == x).flatten(1).all(1)
    # Only the identity (1 of 13) leaves a random image exactly as it was: Binomial(2600, 1/13), sd 13.6.
    assert within_binomial(int(unchanged.sum()), 2600, 1 / 13)
    # One strength, a random sign: identity, posterize, solarize and autocontrast have one outcome each, the
    # other 9 operations two (one per sign): 22 different images, and 2600 draws reach all of them.
    assert len(torch.unique(out.flatten(1), dim=0)) == 22
    assert out.min() >= 0 and out.max() <= 1


# --------------------------------------------------------------------------
# Mixup and CutMix: soft labels
# --------------------------------------------------------------------------
def test_mixup_mixes_images_and_labels_by_the_same_lambda():
    n = 500
    x = torch.rand(n, 3, 4, 4, generator=gen(25))
    y = torch.arange(n)                                 # image i is the only one of class i
    mixed, soft = augment.mixup(x, y, alpha=0.4, num_classes=n, generator=gen(26))
    assert soft.shape == (n, n) and soft.dtype == torch.float32
    assert torch.allclose(soft.sum(1), torch.ones(n))
    assert ((soft > 0).sum(1) <= 2).all()                # two images at most
    # With class i = image i, the label row holds the mixing weights: the image must be that mix.
    assert torch.allclose(mixed.flatten(1), soft @ x.flatten(1), atol=1e-6)
    lam = soft[torch.arange(n), y]                       # the weight of the image's own class
    assert (lam < 0.999).float().mean() > 0.5            # most images really are mixed
    # Beta(0.4, 0.4) is symmetric: the mean of lam is 0.5 with sd sqrt(1/(4 * 1.8) / 500) = 0.017 (tolerance 4 sd);
    # the partner's weight is 1 - lam, so labels mixed by 1 - lam instead would not match the images above.
    mixed_pairs = lam < 0.999
    assert abs(float(lam[mixed_pairs].mean()) - 0.5) < 0.07


def test_cutmix_label_weight_is_the_pasted_area():
    n, h, w = 500, 10, 12
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).repeat(1, 3, h, w)   # image k: value k everywhere
    mixed, soft = augment.cutmix(x, torch.arange(n), alpha=1.0, num_classes=n, generator=gen(27))
    assert torch.allclose(soft.sum(1), torch.ones(n))
    share = torch.nn.functional.one_hot(mixed[:, 0].long().flatten(1), n).float().mean(1)   # (N, K) pixel shares
    assert torch.allclose(soft, share, atol=1e-6)        # each label weight is exactly its share of pixels
    pasted = 1 - soft[torch.arange(n), torch.arange(n)]
    assert (pasted > 0).float().mean() > 0.9 and pasted.max() > 0.8
    # Boxes cut at the border: Beta(1, 1) asks for a mean pasted area of 0.5; the pasted areas are smaller.
    assert float(pasted.mean()) < 0.45


def test_cutmix_pastes_one_rectangle_of_the_partner():
    n = 200
    x = torch.rand(n, 3, 16, 16, generator=gen(28))
    mixed, _ = augment.cutmix(x, torch.zeros(n, dtype=torch.long), num_classes=3, generator=gen(29))
    for i in range(0, n, 7):
        rows, cols = (mixed[i] != x[i]).any(0).nonzero().unbind(1)
        if len(rows):
            box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
            assert len(rows) == box                      # the changed pixels fill their bounding box


def test_mixing_accepts_soft_labels_and_needs_num_classes_for_indices():
    x = torch.rand(64, 3, 8, 8, generator=gen(30))
    y = torch.randint(10, (64,), generator=gen(31))
    _, soft = augment.cutmix(x, y, num_classes=10, generator=gen(32))
    _, twice = augment.mixup(x, soft, generator=gen(33))
    assert twice.shape == (64, 10) and torch.allclose(twice.sum(1), torch.ones(64))
    with pytest.raises(ValueError, match="num_classes"):
        augment.mixup(x, y, generator=gen(34))


# --------------------------------------------------------------------------
# Seeds: same seed, same images; another seed, other images; resumable
# --------------------------------------------------------------------------
AUGMENTERS = {
    "crop": lambda x, y, g: augment.random_crop(x, 4, generator=g),
    "flip": lambda x, y, g: augment.random_flip(x, generator=g),
    "jitter": lambda x, y, g: augment.color_jitter(x, 0.3, 0.3, 0.3, generator=g),
    "erasing": lambda x, y, g: augment.random_erasing(x, 0.5, generator=g),
    "rand_augment": lambda x, y, g: augment.rand_augment(x, generator=g),
    "trivial_augment": lambda x, y, g: augment.trivial_augment(x, generator=g),
    "reference": lambda x, y, g: augment.BatchAugment.reference()(x, generator=g),
    "mixup": lambda x, y, g: torch.cat([t.flatten() for t in augment.mixup(x, y, num_classes=10, generator=g)]),
    "cutmix": lambda x, y, g: torch.cat([t.flatten() for t in augment.cutmix(x, y, num_classes=10, generator=g)]),
}


@pytest.mark.parametrize("name", AUGMENTERS)
def test_same_seed_same_output_other_seed_other_output(name):
    x = torch.rand(64, 3, 16, 16, generator=gen(35))
    y = torch.randint(10, (64,), generator=gen(36))
    run = AUGMENTERS[name]
    assert torch.equal(run(x, y, gen(1)), run(x, y, gen(1)))
    assert not torch.equal(run(x, y, gen(1)), run(x, y, gen(2)))
    g = gen(3)
    run(x, y, g)
    state = g.get_state()
    after = run(x, y, g)
    assert torch.equal(run(x, y, torch.Generator().set_state(state)), after)   # resumes from a saved state


# --------------------------------------------------------------------------
# The per-image pipeline (torchvision transforms.v2 on uint8 tensors)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["randaugment", "trivialaugment", None])
@pytest.mark.parametrize("channels", [1, 3])
def test_per_image_pipeline_takes_uint8_tensors(policy, channels):
    image = torch.randint(0, 256, (channels, 16, 16), dtype=torch.uint8, generator=gen(37))
    transform = augment.train_transforms((0.5,) * channels, (0.25,) * channels, size=16, policy=policy)
    torch.manual_seed(0)
    out = transform(image)
    assert out.shape == (channels, 16, 16) and out.dtype == torch.float32
    torch.manual_seed(0)
    assert torch.equal(transform(image), out)             # torch's global seed drives it
    assert "ToTensor" not in repr(transform) and "PIL" not in repr(transform)


def test_per_image_reference_and_evaluation_pipelines():
    names = [type(t).__name__ for t in augment.reference_transforms((0.5,) * 3, (0.25,) * 3).transforms]
    assert names == ["RandomCrop", "RandomHorizontalFlip", "ColorJitter", "RandAugment", "ToDtype", "Normalize",
                     "RandomErasing"]
    image = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8, generator=gen(38))
    out = augment.eval_transforms((0.5,) * 3, (0.25,) * 3)(image)
    assert torch.allclose(out, (image.float() / 255 - 0.5) / 0.25, atol=1e-6)
    with pytest.raises(ValueError, match="policy"):
        augment.train_transforms((0.5,), (0.25,), policy="autoaugment")


def test_augment_uses_nothing_else_from_the_course_package():
    """icdl.data imports icdl.augment; the other way round would be a cycle."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(augment.__file__).read_text())
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level > 0]
    assert data.BatchAugment is augment.BatchAugment
