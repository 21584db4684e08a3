"""Tests of icdl.transfer: freezing really freezes, batch norm stays in eval mode, features are the model's."""

import copy

import torch
from icdl import transfer
from icdl.checks.core import randomize_bn_stats
from icdl.models import efficientnet
from icdl.summary import count_params
from torch import nn

SMALL = dict(width_mult=0.25, depth_mult=0.4, num_classes=4)


def small():
    torch.manual_seed(0)
    model = efficientnet.EfficientNet(**SMALL)
    randomize_bn_stats(model)
    return model


def test_keep_bn_eval_survives_train_and_leaves_other_layers_alone():
    model = transfer.keep_bn_eval(small())
    model.train()
    assert model.training and model.classifier[0].training  # dropout still trains
    assert all(not m.training for _, m in transfer.batch_norms(model))
    assert transfer.bn_held_in_eval(model) and not transfer.bn_held_in_eval(small())
    model.eval()
    assert not model.training
    model.train()
    assert all(not m.training for _, m in transfer.batch_norms(model))
    # only this model: a fresh one still switches its batch norms to train mode
    other = small().train()
    assert all(m.training for _, m in transfer.batch_norms(other))


def test_freeze_keeps_the_backbone_bit_identical_through_training_steps():
    model = transfer.freeze(small(), trainable=("classifier",))
    before = copy.deepcopy(model.state_dict())
    assert count_params(model, trainable_only=True) == model.classifier[1].weight.numel() + 4
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    for _ in range(3):
        loss = nn.functional.cross_entropy(model(torch.randn(8, 3, 32, 32)), torch.randint(0, 4, (8,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == ["classifier.1.weight", "classifier.1.bias"]


def test_control_requires_grad_alone_lets_the_running_statistics_drift():
    model = small()
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("classifier."))
    before = copy.deepcopy(model.state_dict())
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 32, 32) * 3 + 1)
    assert not torch.equal(before["features.0.1.running_mean"], model.state_dict()["features.0.1.running_mean"])


def test_freeze_prefixes_match_whole_module_names():
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(11)])
    transfer.freeze(model, trainable=("1",))
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["1.weight", "1.bias"]  # not "10."


def test_pooled_features_are_what_the_head_reads():
    model = small().eval()
    x = torch.randn(6, 3, 32, 32)
    feats, labels = transfer.pooled_features(model.train(), [(x[:4], torch.arange(4)), (x[4:], torch.arange(2))])
    assert model.training  # mode restored
    assert feats.shape == (6, model.num_features) and labels.tolist() == [0, 1, 2, 3, 0, 1]
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model.classifier(feats), model(x), atol=1e-5)
