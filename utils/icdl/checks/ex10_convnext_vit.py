"""Checks for the exercise notebook ``10_convnext_vit``: the arithmetic of a ViT, a bug in attention, and
what the position embedding and layer scale are for.

    from icdl.checks import ex10_convnext_vit as ex
    ex.q1.check(encoder_block_params)   # parameters of one ViT encoder block for hidden size D and MLP ratio r
    ex.q2.check(num_tokens)             # tokens a ViT reads for an image size and a patch size
    ex.q3.check(attention_macs)         # multiply-adds of one self-attention layer on T tokens of D numbers
    ex.q4.check("b")                    # which term dominates at 16 px and at 4 px patches (predict, then measure)
    ex.q5.check(FixedAttention)         # the given attention block, its one bug fixed (checked through outputs)
    ex.q6.check("a")                    # what the position embedding is for
    ex.q7.check("c")                    # what layer scale does at initialisation
"""

from __future__ import annotations

import math

from .core import Incorrect, Question, call, describe, register
from .kinds import ChoiceQuestion, FunctionQuestion

NOTEBOOK = "10_convnext_vit"


# --------------------------------------------------------------------------
# q1: parameters of an encoder block
# --------------------------------------------------------------------------
def _block_params(d, r, *, norms=True, biases=True, out_proj=True, mlp_layers=2, norm_bias=True):
    """Parameters of a pre-norm ViT encoder block by formula, with switches for the common slips."""
    h = r * d
    total = 3 * d * d + (3 * d if biases else 0)  # q, k, v projections
    if out_proj:
        total += d * d + (d if biases else 0)
    total += d * h + (h if biases else 0)  # MLP: D -> rD
    if mlp_layers == 2:
        total += h * d + (d if biases else 0)  # rD -> D
    if norms:
        total += 2 * (2 * d if norm_bias else d)  # two LayerNorms, weight and bias each
    return total


class EncoderBlockParams(FunctionQuestion):
    title = "the parameters of one ViT encoder block"
    hints = [
        "List the layers of EncoderBlock: ln_1, the attention (its q, k, v projections and out_proj), ln_2, and the "
        "MLP (two Linear layers). Count weights and biases of each, as functions of D and r (the MLP's hidden "
        "size is r * D).",
        "A Linear(a, b) has a * b weights and b biases; a LayerNorm(D) has D weights and D biases. The number of "
        "heads changes nothing: the heads split the same D x D projections.",
        "Skeleton: `attention = 3 * (D * D + D) + (D * D + D)`; `mlp = (D * ____ + ____) + (____ * D + D)`; "
        "`norms = 2 * ____`; return their sum.",
    ]
    function = "encoder_block_params"
    result = "int"
    cases = [(768, 4), (192, 4), (64, 2), (100, 3)]
    mistakes = [
        ("left out the biases (of the projections and the MLP)",
         lambda d, r: _block_params(d, r, biases=False)),
        ("left out the two LayerNorms (2 x 2D parameters)", lambda d, r: _block_params(d, r, norms=False)),
        ("counted the LayerNorms' weights but not their biases", lambda d, r: _block_params(d, r, norm_bias=False)),
        ("left out the output projection (out_proj, D x D + D), which joins the heads",
         lambda d, r: _block_params(d, r, out_proj=False)),
        ("counted one linear layer of the MLP: it has two, D -> rD and rD -> D",
         lambda d, r: _block_params(d, r, mlp_layers=1)),
        ("left out the biases and the LayerNorms: they are small, but they are parameters",
         lambda d, r: _block_params(d, r, biases=False, norms=False)),
    ]
    success = ("Correct! (4 + 2r)D² + (9 + r)D: ViT-B/16's block (D = 768, r = 4) has 7,087,872 parameters, "
               "and 12 of them are 85M of the model's 86.6M.")

    @staticmethod
    def reference(dim, mlp_ratio):
        return _block_params(dim, mlp_ratio)  # the tests check it against vit.EncoderBlock's parameters()


# --------------------------------------------------------------------------
# q2: the number of tokens
# --------------------------------------------------------------------------
class NumTokens(FunctionQuestion):
    title = "the number of tokens a ViT reads"
    hints = [
        "The image is cut into non-overlapping patch_size x patch_size squares, in rows and columns.",
        "Count the patches along one side, then in the whole image; then remember the token that is not a patch.",
    ]
    function = "num_tokens"
    result = "int"
    cases = [(224, 16), (224, 32), (32, 4), (384, 16), (64, 8)]
    mistakes = [
        ("left out the class token, which is put in front of the patch tokens",
         lambda s, p: (s // p) ** 2),
        ("counted the patches along one side only: the image has (size / patch)² patches",
         lambda s, p: s // p + 1),
        ("counted the patches along one side and left out the class token", lambda s, p: s // p),
        ("divided the number of pixels by the patch *side*: a patch covers patch_size² pixels",
         lambda s, p: s * s // p + 1),
        ("counted a class token and a second extra token: a ViT has one class token",
         lambda s, p: (s // p) ** 2 + 2),
    ]
    success = "Correct! ViT-B/16 at 224 px: 14 x 14 = 196 patches and a class token, 197 tokens."

    @staticmethod
    def reference(image_size, patch_size):
        return (image_size // patch_size) ** 2 + 1


# --------------------------------------------------------------------------
# q3: the multiply-adds of self-attention
# --------------------------------------------------------------------------
class AttentionMacs(FunctionQuestion):
    title = "the multiply-adds of one self-attention layer"
    hints = [
        "Four matrix products with weights (q, k, v and the output projection), each T x D times D x D; and two "
        "products between tokens: the scores Q Kᵀ and the weighted sum of the values.",
        "Q Kᵀ: every one of T queries meets every one of T keys, d numbers each, in every one of the h heads, and "
        "h x d = D. The weighted sum A V costs the same.",
        "Skeleton: `projections = 4 * T * ____`; `between_tokens = 2 * ____ * D`; the number of heads cancels.",
    ]
    function = "attention_macs"
    result = "int"
    cases = [(197, 768, 12), (65, 64, 4), (3137, 768, 12), (50, 768, 1), ((10, 6, 3), {})]
    mistakes = [
        ("multiplied the token-to-token part by the number of heads: each head works on d = D / h numbers, so "
         "the heads together cost T² x D, whatever h is",
         lambda t, d, h: 4 * t * d * d + 2 * t * t * d * h),
        ("left out the weighted sum of the values (A V): it costs as much as the scores Q Kᵀ",
         lambda t, d, h: 4 * t * d * d + t * t * d),
        ("left out the projections: the q, k, v and output projections cost 4 T D²",
         lambda t, d, h: 2 * t * t * d),
        ("left out the output projection (out_proj), T x D²", lambda t, d, h: 3 * t * d * d + 2 * t * t * d),
        ("counted the scores with the head size d = D / h but left out that there are h heads",
         lambda t, d, h: 4 * t * d * d + 2 * t * t * (d // h)),
        ("counted the projections once for q, k and v together as T x D², but there are three of them",
         lambda t, d, h: 2 * t * d * d + 2 * t * t * d),
    ]
    success = ("Correct! 4TD² + 2T²D: the projections grow linearly with the tokens, the token-to-token part with "
               "their square.")

    @staticmethod
    def reference(tokens, dim, heads):
        return 4 * tokens * dim * dim + 2 * tokens * tokens * dim  # checked against count_flops in the tests


# --------------------------------------------------------------------------
# q4: which term dominates (predict, then measure)
# --------------------------------------------------------------------------
class WhichDominates(ChoiceQuestion):
    title = "which part of self-attention dominates, at 16 px and at 4 px patches"
    hints = [
        "The ratio of the token-to-token part to the projections is 2T²D / 4TD² = T / (2D).",
        "With D = 768: T = 197 at 16 px patches, T = 3137 at 4 px patches. Is T / (2D) above or below 1?",
    ]
    options = {
        "a": "the token-to-token part (Q Kᵀ and A V) dominates at both patch sizes",
        "b": "the projections dominate with 16 px patches; the token-to-token part with 4 px patches",
        "c": "the projections dominate at both patch sizes",
        "d": "the token-to-token part dominates with 16 px patches; the projections with 4 px patches",
    }
    answer = "b"
    why = {
        "a": "with 16 px patches T = 197 tokens against D = 768: T / (2D) is about 0.13, so the token-to-token part "
             "is about an eighth of the projections.",
        "c": "with 4 px patches T = 3137: T / (2D) is about 2, so the token-to-token part is twice the projections, "
             "and it grows with T² while the projections grow with T.",
        "d": "the other way round: the token-to-token part grows with T², so it is the one that takes over when the "
             "patches get smaller and the tokens many.",
    }
    success = ("Correct! The ratio is T / (2D): 0.13 at 197 tokens, 2.0 at 3,137. Smaller patches make attention "
               "quadratic in practice, which is why ViT uses 16 px patches and why hierarchical models such as Swin "
               "attend within windows.")


# --------------------------------------------------------------------------
# q5: debug an attention block
# --------------------------------------------------------------------------
def _attention(x, state, heads, *, softmax_dim=-1, scale="sqrt", split="right"):
    """Multi-head self-attention from a SelfAttention state_dict, with switches for the common bugs."""
    import torch
    import torch.nn.functional as F

    n, t, d = x.shape
    q, k, v = F.linear(x, state["in_proj_weight"], state["in_proj_bias"]).chunk(3, dim=-1)
    if split == "right":
        q, k, v = (z.reshape(n, t, heads, d // heads).transpose(1, 2) for z in (q, k, v))
    else:  # reshaped straight to (n, heads, t, d / heads): tokens and channels mixed up
        q, k, v = (z.reshape(n, heads, t, d // heads) for z in (q, k, v))
    divisor = {"sqrt": math.sqrt(d // heads), "none": 1.0, "d": d // heads, "sqrt_full": math.sqrt(d)}[scale]
    w = torch.softmax(q @ k.transpose(-2, -1) / divisor, dim=softmax_dim)
    out = (w @ v).transpose(1, 2).reshape(n, t, d) if split == "right" else (w @ v).reshape(n, t, d)
    return F.linear(out, state["out_proj.weight"], state["out_proj.bias"])


def _is_class(value, base) -> bool:
    return isinstance(value, type) and issubclass(value, base)


class DebugAttention(Question):
    title = "debug a given self-attention block"
    hints = [
        "Run the given block on a few tokens with return_weights=True and look at the weights: for each query "
        "(each row), what should they add up to? What do they add up to?",
        "softmax(Q Kᵀ / sqrt(d)) has one row per query and one column per key: the softmax normalises over the "
        "keys, the last axis.",
    ]
    # (dim, heads, tokens): several heads, so a head split that mixes tokens with channels shows too
    CONFIGS = [(24, 2, 5), (32, 4, 7)]  # d, sqrt(d) and sqrt(D) all differ

    def verify(self, cls):
        import torch
        from torch import nn

        from ..models.vit import SelfAttention

        if not _is_class(cls, nn.Module):
            raise Incorrect(f"Pass your class itself (`FixedAttention`, an nn.Module subclass); got {describe(cls)}.")
        for dim, heads, tokens in self.CONFIGS:
            torch.manual_seed(dim)
            reference = SelfAttention(dim, heads).eval()
            with torch.no_grad():
                for p in reference.parameters():
                    p.normal_(std=0.5)  # large enough that a missing scale changes the softmax visibly
            state = {k: v.detach().clone() for k, v in reference.state_dict().items()}
            block = call(cls, dim, heads, doing=f"Creating FixedAttention({dim}, {heads})")
            if not isinstance(block, nn.Module):
                raise Incorrect(f"FixedAttention({dim}, {heads}) should create an nn.Module; it gave {describe(block)}.")
            try:
                block.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise Incorrect(f"FixedAttention({dim}, {heads}) does not load a SelfAttention state_dict with "
                                f"strict=True: {str(exc).splitlines()[-1][:250]}. Keep the given parameter names "
                                f"and shapes; the bug is in forward.") from None
            block.eval()
            x = torch.randn(2, tokens, dim, generator=torch.Generator().manual_seed(1))
            with torch.no_grad():
                got = call(block, x, doing=f"FixedAttention({dim}, {heads}) on tokens of shape {tuple(x.shape)}")
                want = _attention(x, state, heads)
            if isinstance(got, tuple):
                got = got[0]
            if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(want.shape):
                raise Incorrect(f"The output should be a tensor of shape {tuple(want.shape)} (the same as the input); "
                                f"it is {describe(got)}.")
            if torch.isnan(got).any():
                raise Incorrect("The output contains NaN.")
            if torch.allclose(got.double(), want.double(), atol=1e-5, rtol=1e-4):
                continue
            self._diagnose(got, x, state, heads)
        return ("Correct! Each query's weights now add up to 1 over the keys: every output token is an average of "
                "the values.")

    @staticmethod
    def _diagnose(got, x, state, heads):
        import torch

        def close(**kw):
            with torch.no_grad():
                slip = _attention(x, state, heads, **kw)
            return torch.allclose(got.double(), slip.double(), atol=1e-5, rtol=1e-4)

        if close(softmax_dim=-2):
            raise Incorrect("The output is still the given block's: the softmax normalises over the queries "
                            "(dim=-2), so each *key's* weights add up to 1, not each query's. Each output token "
                            "must be a weighted average of the values: softmax over the keys, dim=-1.")
        if close(scale="none"):
            raise Incorrect("The softmax is now over the right axis, but the scores are not divided by sqrt(d): "
                            "without it the dot products grow with d and the softmax saturates. Keep the scale.")
        if close(scale="d"):
            raise Incorrect("The scores are divided by d, the head size; the scale is 1 / sqrt(d).")
        if close(scale="sqrt_full"):
            raise Incorrect("The scores are divided by sqrt(D), the whole hidden size; each head's dot products have "
                            "d = D / heads terms, so the scale is 1 / sqrt(D / heads).")
        if close(split="mixed"):
            raise Incorrect("The heads are split by reshaping straight to (N, heads, T, d), which mixes tokens and "
                            "channels; reshape to (N, T, heads, d) and then transpose(1, 2), as the given block did.")
        if close(softmax_dim=-2, scale="none"):
            raise Incorrect("The softmax is still over the queries (dim=-2), and the sqrt(d) scale is gone too. "
                            "Change only the softmax's axis.")
        diff = (got.double() - _attention(x, state, heads).double()).abs().max().item()
        raise Incorrect(f"The output differs from multi-head self-attention by up to {diff:.3g}. Change only the "
                        f"line with the bug; the rest of the given block was right.")


# --------------------------------------------------------------------------
# q6: the position embedding
# --------------------------------------------------------------------------
class PositionEmbedding(ChoiceQuestion):
    title = "what the position embedding is for"
    hints = [
        "Self-attention computes each output from all tokens' queries, keys and values; the MLP works on each "
        "token alone. Does either of them know in which order the tokens come?",
        "Shuffle the patch tokens of an image, and shuffle the outputs back: with no position embedding, what "
        "changes?",
    ]
    options = {
        "a": "it tells the model where each patch came from: without it, the blocks treat the patches as an "
             "unordered set, and shuffling the patches would not change the prediction",
        "b": "it normalises the tokens so that training is stable",
        "c": "it is what makes the class token different from the patch tokens",
        "d": "it makes attention local: each token attends to its neighbours",
        "e": "it lets the ViT read images of any size",
    }
    answer = "a"
    why = {
        "b": "it is *added* to the tokens, a learned vector per position; it does not rescale anything. The "
             "LayerNorms before each attention and MLP do the normalising.",
        "c": "the class token is its own learned vector, different from every patch token whatever the position "
             "embedding holds; its entry in E_pos (index 0) is one more position to tell apart, not what makes it a "
             "class token.",
        "d": "attention is global with or without it: every token can attend to every token. The position embedding "
             "only makes locality *learnable*; the chapter's maps at initialisation showed none.",
        "e": "the reverse: E_pos has one entry per patch, so it fixes the number of patches, and a ViT built for "
             "224 px refuses other sizes unless its position embedding is interpolated to the new grid.",
    }
    success = ("Correct! Attention and the MLP are permutation-equivariant: the position embedding is the only "
               "place where the model learns that patch 15 sits below patch 1.")


# --------------------------------------------------------------------------
# q7: layer scale at initialisation
# --------------------------------------------------------------------------
class LayerScale(ChoiceQuestion):
    title = "what layer scale does at initialisation"
    hints = [
        "A ConvNeXt block computes x + scale * F(x), with every entry of scale set to 1e-6 at the start.",
        "What is that sum when scale is 1e-6? And does the gradient with respect to scale vanish?",
    ]
    options = {
        "a": "it multiplies the block's input by 1e-6, so the signal nearly vanishes through a deep network",
        "b": "it freezes the residual branch: with so small a factor its weights get no gradient and never learn",
        "c": "every block starts as (almost) the identity, x + 1e-6 F(x), so a deep network starts like a shallow "
             "one; training grows each channel's factor where the branch helps",
        "d": "it normalises each channel's activations, like a LayerNorm",
    }
    answer = "c"
    why = {
        "a": "the factor multiplies only the residual branch F(x); the shortcut x passes unchanged, so the signal "
             "keeps its size however many blocks there are.",
        "b": "the gradient of the loss with respect to the factor is F(x) times the incoming gradient, which is not "
             "small, so the factors grow in the first steps (an optimiser such as AdamW moves them by about the "
             "learning rate per step); the branch weights then learn too.",
        "d": "it is a fixed-shape learned vector, one number per channel, with no statistics of the activations; "
             "the LayerNorm is a separate layer inside the block.",
    }
    success = ("Correct! The same idea as zero-initialising the last batch norm of a ResNet block (chapter 06): "
               "each block starts as the identity, and deep networks train stably from the first step (Touvron "
               "et al., 2021, 'Going deeper with Image Transformers').")


q1 = EncoderBlockParams()
q2 = NumTokens()
q3 = AttentionMacs()
q4 = WhichDominates()
q5 = DebugAttention()
q6 = PositionEmbedding()
q7 = LayerScale()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5, q6=q6, q7=q7)

__all__ = ["q1", "q2", "q3", "q4", "q5", "q6", "q7"]
