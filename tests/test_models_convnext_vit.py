"""ConvNeXt and the Vision Transformer: what is particular to them (their equality with torchvision's is
tests/test_models_registry.py)."""

import pytest
import torch
from icdl.models import convnext, vit
from torch import nn


def test_convnext_patchify_stem_and_stage_shapes():
    model = convnext.ConvNeXt(convnext._stages((8, 16, 32, 64), (1, 1, 2, 1)), num_classes=5).eval()
    x = torch.randn(2, 3, 64, 64)
    stem = model.features[0](x)
    assert stem.shape == (2, 8, 16, 16)  # 4x4 patches, stride 4: no overlap
    assert model.forward_features(x).shape == (2, 64, 2, 2) and model(x).shape == (2, 5)


def test_convnext_block_has_one_norm_one_activation_and_starts_near_the_identity():
    block = convnext.ConvNeXtBlock(16).eval()
    kinds = [type(m) for m in block.block]
    assert kinds.count(nn.LayerNorm) == 1 and kinds.count(nn.GELU) == 1 and nn.BatchNorm2d not in kinds
    depthwise = block.block[0]
    assert depthwise.kernel_size == (7, 7) and depthwise.groups == 16
    hidden = block.block[3]
    assert hidden.out_features == 4 * 16  # the inverted bottleneck
    x = torch.randn(2, 16, 8, 8)
    assert (block(x) - x).abs().max() < 1e-3  # layer scale 1e-6: each block starts as (nearly) the identity
    with torch.no_grad():
        block.layer_scale.fill_(1.0)
    assert (block(x) - x).abs().max() > 1e-2  # the control: with scale 1 the block changes its input


def test_convnext_stochastic_depth_grows_linearly_to_the_last_block():
    model = convnext.convnext_tiny()
    probs = [m.stochastic_depth.p for m in model.modules() if isinstance(m, convnext.ConvNeXtBlock)]
    assert len(probs) == 18 and probs[0] == 0.0 and abs(probs[-1] - 0.1) < 1e-12
    assert all(b > a for a, b in zip(probs, probs[1:]))
    with pytest.raises(TypeError, match=r"convnext_tiny\(\) is defined by stages="):
        convnext.convnext_tiny(stages=convnext._stages((8, 16), (1, 1)))


def test_self_attention_is_torchs_multi_head_attention_written_out():
    torch.manual_seed(0)
    ours = vit.SelfAttention(32, 4).eval()
    theirs = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 10, 32)
    out, weights = ours(x, return_weights=True)
    want, want_weights = theirs(x, x, x, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights, want_weights, atol=1e-6, rtol=1e-5)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4, 10))  # each token's weights are a distribution
    with torch.no_grad():
        ours.in_proj_weight[:32].mul_(2)  # the control: other queries give other outputs
    assert (ours(x) - want).abs().max() > 1e-3


def test_vit_tokens_class_token_and_fixed_input_size():
    model = vit.vit_tiny(num_classes=7).eval()
    x = torch.randn(2, 3, 32, 32)
    assert model.patchify(x).shape == (2, 64, 128)  # (32 / 4)^2 patches
    tokens = model.forward_features(x)
    assert tokens.shape == (2, 65, 128) and model(x).shape == (2, 7)
    # The head reads only the class token: changing another token's output changes nothing.
    changed = tokens.clone()
    changed[:, 1:] += 1.0
    torch.testing.assert_close(model.forward_head(changed), model.forward_head(tokens))
    with pytest.raises(ValueError, match="takes 32x32 images"):
        model(torch.randn(1, 3, 64, 64))
    with pytest.raises(TypeError, match="vit_tiny\\(\\) is defined by"):
        vit.vit_tiny(patch_size=8)
    assert sum(p.numel() for p in model.parameters()) < 1_000_000


def test_vit_position_embedding_tells_positions_apart():
    """Without the position embedding, the model is blind to where patches are: shuffling patches changes
    nothing; with it, the output changes."""
    torch.manual_seed(0)
    model = vit.vit_tiny(num_classes=3, image_size=16).eval()
    with torch.no_grad():
        model.heads.head.weight.normal_()
    x = torch.randn(1, 3, 16, 16)
    # Swap the two top-left 4x4 patches.
    swapped = x.clone()
    swapped[..., :4, :4], swapped[..., :4, 4:8] = x[..., :4, 4:8], x[..., :4, :4]
    with torch.no_grad():
        assert (model(x) - model(swapped)).abs().max() > 1e-4
        model.encoder.pos_embedding.zero_()
        torch.testing.assert_close(model(x), model(swapped), atol=1e-5, rtol=1e-5)
