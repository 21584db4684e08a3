"""Answer rules and question parts shared by several exercises' checks.

An exercise's checks module may import from ``core`` and from this module, never from another
exercise's module: while a notebook is graded, the other exercises' modules are stand-ins.
(Candidates for :mod:`icdl.checks.core`.)

* :func:`whole_number`: a size or a count as a plain ``int``: no floats (even 28.0), int
  subclasses reduced to their value, and one too large to print refused before a message prints it.
* :func:`call_copy`: for "copy torchvision's weights into the course's model" questions: a fresh
  reference for every check, snapshotted, and checked unchanged afterwards (the copy's direction,
  and its dtype, device and layers).
* :func:`expect_loads_and_matches`: a learner's repaired ``state_dict`` must load into the course's
  model with ``strict=True`` and give the reference's outputs.
"""

from __future__ import annotations

from .core import Incorrect, NotAttempted, call, plain_number


def whole_number(value, what: str) -> int:
    """A learner's size or count as a plain ``int`` (core's rules: no floats, even 75008.0; int subclasses
    reduced to their value), refusing one too large to print before any message tries to print it.
    """
    if value is None:
        raise NotAttempted(f"Not attempted yet: {what} is still None.")
    number = plain_number(value, what, integer=True)
    if abs(number) >= 10 ** 15:
        raise Incorrect(f"{what} is an int of {number.bit_length()} bits: far too large for a size or a count.")
    return number


# --------------------------------------------------------------------------
# "Copy torchvision's weights into the course's model" questions
# --------------------------------------------------------------------------
def _snapshot(model) -> dict:
    """A copy of every parameter and buffer of ``model``: values, dtype, device and shape."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _changes(model, before: dict) -> str | None:
    """How ``model`` differs from its snapshot ``before``, in words; "values" if only values; None if not at all."""
    import torch

    after = model.state_dict()
    if after.keys() != before.keys():
        gone, new = sorted(set(before) - set(after)), sorted(set(after) - set(before))
        what = [f"{len(gone)} weights gone ({', '.join(gone[:2])}{', ...' if len(gone) > 2 else ''})"] if gone else []
        what += [f"{len(new)} new ones" if gone else f"{len(new)} new weights"] if new else []
        return f"its layers were replaced or removed: {'; '.join(what)}"
    for k, v in before.items():
        now = after[k]
        if now.dtype != v.dtype:
            return f"its weights are now {now.dtype}, not {v.dtype} (`{k}`)"
        if now.device != v.device:
            return f"its weights moved to {now.device} (`{k}`)"
        if now.shape != v.shape:
            return f"`{k}` now has shape {tuple(now.shape)}, not {tuple(v.shape)}"
    if any(not torch.equal(after[k], v) for k, v in before.items()):
        return "values"
    return None


def call_copy(fn, build, *args, doing: str):
    """Run a learner's "copy torchvision's weights into the course's model" function, and check its direction.

    ``build()`` makes the reference (torchvision's model). It is built afresh for every check and
    snapshotted before the learner's ``fn(reference, *args)`` runs; afterwards it must be unchanged:
    values (else the copy went the wrong way), dtype, device and layers. So nothing the learner does
    to it can carry into the comparison, or into a later check. Returns ``(model, reference)``.
    """
    reference = build()
    before = _snapshot(reference)
    model = call(fn, reference, *args, doing=doing)
    change = _changes(reference, before)
    if change == "values":
        raise Incorrect(f"{doing}: you copied in the wrong direction: torchvision's weights were overwritten. "
                        f"`model.load_state_dict(tv_model.state_dict())` copies torchvision's weights into your "
                        f"model; `tv_model.load_state_dict(...)` copies the other way.")
    if change:
        raise Incorrect(f"{doing} changed torchvision's model ({change}). Your function should only read it: build "
                        f"the course's model and copy torchvision's weights into that one.")
    return model, reference


def expect_loads_and_matches(model, state_dict: dict, reference, x, what: str) -> None:
    """Load the learner's ``state_dict`` into the course's ``model`` (``strict=True``) and compare its eval-mode
    outputs on ``x`` with ``reference``'s; :class:`Incorrect` says which of the two failed. ``what`` names the
    model in messages ("DenseNet")."""
    import torch

    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise Incorrect(f"The course's {what} does not load your dict with strict=True: "
                        f"{str(exc).splitlines()[-1][:300]}") from None
    with torch.no_grad():
        diff = (model.eval()(x) - reference(x)).abs().max().item()
    if not diff <= 1e-5:  # also NaN
        raise Incorrect(f"Loaded into the course's {what}, your dict gives outputs that differ from the reference's "
                        f"by up to {diff:.3g}.")


def some_keys(keys, limit: int = 2) -> str:
    """A few of ``keys`` for a message, in backticks: "`a`, `b` and 3 more"."""
    keys = sorted(keys)
    return ", ".join(f"`{k}`" for k in keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")
