"""The small core every exercise check is built on.

A learner writes ``q1.check(answer)``, ``q1.hint()`` and ``q1.solution()``.
A question is a small class: its hints, and a ``verify`` method that raises
:class:`Incorrect` with a message naming what was expected and what the learner
had. The core turns whatever happens into one of four outcomes:

* **correct**;
* **incorrect**: the message says what is wrong;
* **not attempted**: the answer is ``None`` (the stub's placeholder), or the
  learner's code still raises ``NotImplementedError``;
* **uncheckable**: the checker itself failed (a course bug: please report it).

A check never raises on a learner's answer, except in *strict* mode
(``COURSE_STRICT_CHECKS=1``, set in CI for the solution notebooks), where every
outcome but *correct* raises :class:`CheckFailed`.

When ``COURSE_CHECK_LOG`` names a file, each outcome is appended to it as one
JSON line: this is how ``python -m icdl.grade`` collects grades.
"""

from __future__ import annotations

import json
import math
import os
import re
import traceback
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from .. import __version__

CORRECT, INCORRECT, NOT_ATTEMPTED, UNCHECKABLE = "correct", "incorrect", "not attempted", "uncheckable"


class Outcome(str, Enum):
    CORRECT = CORRECT
    INCORRECT = INCORRECT
    NOT_ATTEMPTED = NOT_ATTEMPTED
    UNCHECKABLE = UNCHECKABLE


class Incorrect(Exception):
    """Raised by a question's ``verify`` with a message for the learner."""


class NotAttempted(Exception):
    """Raised by a question's ``verify`` when the answer is still the stub."""


class CheckFailed(AssertionError):
    """Raised in strict mode when a check is not correct."""


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    message: str
    question: str = ""

    def __bool__(self) -> bool:
        return self.outcome is Outcome.CORRECT


def strict_mode() -> bool:
    return os.environ.get("COURSE_STRICT_CHECKS", "").lower() not in ("", "0", "false", "no")


# --------------------------------------------------------------------------
# Running the learner's code safely
# --------------------------------------------------------------------------
def describe(value) -> str:
    """A short description of any value, for messages: type, and shape if it has one."""
    if value is None:
        return "None"
    shape = getattr(value, "shape", None)
    if shape is not None:
        dtype = getattr(value, "dtype", "")
        return f"{type(value).__name__} of shape {tuple(shape)} {dtype}".rstrip()
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def learner_error(exc: BaseException, doing: str) -> str:
    """Message for an exception raised by the learner's code, pointing at their line."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if "icdl" not in Path(f.filename).parts and "torch" not in Path(f.filename).parts]
    where = ""
    if own:
        f = own[-1]
        code = (f.line or "").strip()
        where = f" (at line {f.lineno}: `{code}`)" if code else f" (at line {f.lineno})"
    return f"{doing} raised {type(exc).__name__}: {exc}{where}"


def call(fn, *args, doing: str | None = None, **kwargs):
    """Call the learner's ``fn``; turn any exception into :class:`Incorrect`.

    ``NotImplementedError`` (the stub) propagates, and becomes *not attempted*.
    """
    if not callable(fn):
        raise Incorrect(f"Expected a function or class, got {describe(fn)}.")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as exc:  # the learner's bug, reported rather than raised
        name = getattr(fn, "__name__", type(fn).__name__)
        raise Incorrect(learner_error(exc, doing or f"Calling `{name}`")) from None


def expect_type(value, types, what: str = "Your answer"):
    if value is None:
        raise NotAttempted()
    if not isinstance(value, types):
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise Incorrect(f"{what} should be a {names}, but it is {describe(value)}.")
    return value


def expect_number(value, expected: float, what: str = "Your answer", rel: float = 1e-6, abs_: float = 0.0):
    """Compare a learner's number with ``expected``; NaN, strings and tensors get their own message."""
    if value is None:
        raise NotAttempted()
    if hasattr(value, "item") and getattr(value, "numel", lambda: 1)() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Incorrect(f"{what} should be a number, but it is {describe(value)}.")
    if math.isnan(value):
        raise Incorrect(f"{what} is NaN; expected {expected}.")
    if not math.isclose(value, expected, rel_tol=rel, abs_tol=abs_):
        raise Incorrect(f"{what} is {value}, but the expected value is {expected}.")
    return value


def expect_close(got, expected, what: str = "Your output", atol: float = 1e-5, rtol: float = 1e-4):
    """Compare two tensors: type, shape, NaNs, then values, each with its own message."""
    import torch

    if got is None:
        raise NotAttempted()
    if not isinstance(got, torch.Tensor):
        raise Incorrect(f"{what} should be a torch.Tensor, but it is {describe(got)}.")
    if tuple(got.shape) != tuple(expected.shape):
        raise Incorrect(f"{what} has shape {tuple(got.shape)}; expected {tuple(expected.shape)}.")
    got = got.detach().to("cpu", torch.float64)
    expected = expected.detach().to("cpu", torch.float64)
    if torch.isnan(got).any():
        raise Incorrect(f"{what} contains NaN ({int(torch.isnan(got).sum())} of {got.numel()} values).")
    if not torch.allclose(got, expected, atol=atol, rtol=rtol):
        diff = (got - expected).abs()
        idx = tuple(int(i) for i in torch.nonzero(diff == diff.max())[0])
        raise Incorrect(
            f"{what} differs from the expected values: the largest difference is "
            f"{diff.max().item():.3g} at index {idx} (yours {got[idx].item():.5g}, "
            f"expected {expected[idx].item():.5g})."
        )
    return got


def trace_forward(model, x):
    """Run ``model(x)`` recording each leaf layer's output shape.

    Returns ``(output, [(name, module, out_shape), ...])``. An exception inside
    the learner's forward becomes :class:`Incorrect`, naming the last layer that
    ran and the input the failing step received.
    """
    import torch

    records = []
    handles = []

    def hook(name):
        def fn(module, inputs, output):
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
            in_shape = tuple(inputs[0].shape) if inputs and isinstance(inputs[0], torch.Tensor) else None
            records.append((name, module, shape, in_shape))
        return fn

    for name, module in model.named_modules():
        if name and not list(module.children()):
            handles.append(module.register_forward_hook(hook(name)))
    try:
        with torch.no_grad():
            out = model(x)
    except NotImplementedError:
        raise
    except Exception as exc:
        after = (f" The last layer that ran was `{records[-1][0]}` ({type(records[-1][1]).__name__}), "
                 f"which output shape {records[-1][2]}." if records else " No layer had run yet.")
        raise Incorrect(learner_error(exc, f"Your model's forward on an input of shape {tuple(x.shape)}")
                        + after) from None
    finally:
        for h in handles:
            h.remove()
    if isinstance(out, torch.Tensor) and torch.isnan(out).any():
        raise Incorrect(f"Your model's output contains NaN for an input of shape {tuple(x.shape)}.")
    return out, [(n, m, s) for n, m, s, _ in records]


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _some(keys, limit: int = 4) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def randomize_bn_stats(model, seed: int = 1):
    """Give every BatchNorm non-trivial running statistics (in place; returns the model).

    Fresh BN layers hold mean 0 and variance 1, so a model whose BN buffers were
    never copied would still match: after this, it cannot.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return model


def expect_same_model(model, reference, course_class, x, label: str = "Your model", build: str = "",
                      require_eval: bool = True) -> None:
    """For "load torchvision's weights into the course's model" questions.

    Checks, each with its own message: an answer at all; the course's class
    (not torchvision's model handed back); the same state_dict keys and shapes;
    eval mode; and the same outputs as ``reference`` on ``x`` (atol 1e-5).
    ``build`` says how to build the right course model, e.g. "resnet.resnet18(num_classes=...)".
    With ``require_eval=False`` the model is put in eval mode here instead of
    being marked wrong for training mode.
    """
    import torch

    if model is None:
        raise NotAttempted("Not attempted yet: your function returns None.")
    how = f" Build {build} and load torchvision's state_dict into it." if build else ""
    if model is reference:
        raise Incorrect(f"{label} is torchvision's model itself, not the course's {course_class.__name__}.{how}")
    if type(model).__module__.startswith("torchvision"):
        raise Incorrect(f"{label} is a torchvision model ({type(model).__module__}.{type(model).__name__}), "
                        f"not the course's {course_class.__name__}.{how}")
    if not isinstance(model, course_class):
        raise Incorrect(f"{label} should be the course's {course_class.__name__} "
                        f"({course_class.__module__}), but it is {describe(model)}.{how}")
    ours, theirs = model.state_dict(), reference.state_dict()
    missing, unexpected = set(theirs) - set(ours), set(ours) - set(theirs)
    if missing or unexpected:
        parts = [f"missing keys ({len(missing)}): {_some(missing)}"] if missing else []
        parts += [f"unexpected keys ({len(unexpected)}): {_some(unexpected)}"] if unexpected else []
        raise Incorrect(f"{label}'s state_dict does not match torchvision's: {'; '.join(parts)}.{how}")
    wrong = [f"{k} {tuple(ours[k].shape)} vs {tuple(theirs[k].shape)}" for k in theirs
             if ours[k].shape != theirs[k].shape]
    if wrong:
        raise Incorrect(f"{label}: some shapes differ from torchvision's (yours vs theirs): {_some(wrong, 3)}. "
                        f"Is the number of classes the same as torchvision's model's?{how}")
    if model.training and not require_eval:
        model.eval()
    if model.training:
        raise Incorrect(f"{label} is in training mode, so dropout and batch norm behave differently at every "
                        f"call: return model.eval().")
    with torch.no_grad():
        want = reference.eval()(x)
        got, _ = trace_forward(model, x)
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        raise Incorrect(f"{label} outputs {describe(got)}; torchvision's outputs shape {tuple(want.shape)}.")
    diff = (got - want).abs().max().item()
    if not diff <= 1e-5:  # also catches NaN
        raise Incorrect(f"{label}: the keys and shapes match, but the outputs differ from torchvision's by up "
                        f"to {diff:.3g}: were the weights copied with load_state_dict?")


# --------------------------------------------------------------------------
# Questions
# --------------------------------------------------------------------------
class Question:
    """One checked exercise question.

    Subclasses set ``title``, ``hints`` (a list, shown one at a time) and
    implement ``verify(self, *answers)``, which raises :class:`Incorrect` or
    :class:`NotAttempted`, or returns an optional success note.

    ``notebook`` and ``name`` (set by :func:`register`) let ``solution()`` show
    the answer cell from ``solutions/<notebook>.ipynb``: the single source.
    """

    title = ""
    hints: list[str] = []
    notebook = ""
    name = ""

    def __init__(self):
        self._hints_shown = 0

    # -- for subclasses -------------------------------------------------
    def verify(self, *answers):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- for learners ---------------------------------------------------
    def evaluate(self, *answers) -> Result:
        """Run the check and return a :class:`Result` (no printing, never raises)."""
        label = f"{self.name.upper()}: {self.title}" if self.name else self.title
        if not answers or all(a is None for a in answers):
            return Result(Outcome.NOT_ATTEMPTED, "Not attempted yet: replace the placeholder with your answer, "
                                                 "run the cell, then run the check again.", label)
        try:
            note = self.verify(*answers)
        except NotImplementedError:
            return Result(Outcome.NOT_ATTEMPTED, "Not attempted yet: your code still raises NotImplementedError. "
                                                 "Replace that line with your code.", label)
        except NotAttempted as exc:
            return Result(Outcome.NOT_ATTEMPTED, str(exc) or "Not attempted yet.", label)
        except Incorrect as exc:
            return Result(Outcome.INCORRECT, str(exc), label)
        except Exception as exc:  # a bug in the checker, not in the learner's answer
            return Result(Outcome.UNCHECKABLE,
                          f"The checker itself failed ({type(exc).__name__}: {exc}). This is a course bug; "
                          f"please report it with icdl {__version__}.", label)
        return Result(Outcome.CORRECT, note or "Correct!", label)

    def check(self, *answers) -> None:
        """Check your answer and print what is right or wrong with it."""
        result = self.evaluate(*answers)
        mark = {Outcome.CORRECT: "✅ Correct", Outcome.INCORRECT: "❌ Incorrect",
                Outcome.NOT_ATTEMPTED: "⏳ Not attempted", Outcome.UNCHECKABLE: "⚠️ Uncheckable"}[result.outcome]
        text = result.message if result.outcome is not Outcome.CORRECT or result.message != "Correct!" else ""
        print(f"{mark} — {result.question}" + (f"\n{text}" if text else "") + f"\n[icdl {__version__}]")
        _log(self, result)
        if strict_mode() and result.outcome is not Outcome.CORRECT:
            raise CheckFailed(f"{result.question}: {result.outcome.value}: {result.message}")

    def hint(self, n: int | None = None) -> None:
        """Show the next hint (or hint ``n``, counting from 1)."""
        if not self.hints:
            print("No hints for this question.")
            return
        if n is None:
            self._hints_shown = min(self._hints_shown + 1, len(self.hints))
            n = self._hints_shown
        n = max(1, min(n, len(self.hints)))
        print(f"💡 Hint {n} of {len(self.hints)}: {self.hints[n - 1]}")

    def solution(self) -> None:
        """Show the solution cell(s), read from ``solutions/<notebook>.ipynb``."""
        print(solution_text(self.notebook, self.name))


def solution_text(notebook: str, name: str) -> str:
    from ..env import repo_root

    path = repo_root() / "solutions" / f"{notebook}.ipynb"
    if not path.is_file():
        return f"The solution is in solutions/{notebook}.ipynb of the course repository."
    cells = json.loads(path.read_text())["cells"]
    pattern = re.compile(rf"\b{re.escape(name)}\.check\(")
    found = []
    for cell in cells:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "code" and "### BEGIN SOLUTION" in src and pattern.search(src):
            lines = [ln for ln in src.splitlines() if "### BEGIN SOLUTION" not in ln and "### END SOLUTION" not in ln]
            found.append("\n".join(lines))
    if not found:
        return f"No solution cell for {name} found in solutions/{notebook}.ipynb."
    return "Solution:\n\n" + "\n\n".join(found)


def register(notebook: str, **questions: Question) -> dict[str, Question]:
    """Name the questions of one exercise notebook: ``q1 = ...`` in the module."""
    for name, q in questions.items():
        q.notebook, q.name = notebook, name
    return questions


def _log(question: Question, result: Result) -> None:
    path = os.environ.get("COURSE_CHECK_LOG")
    if not path:
        return
    entry = {"notebook": question.notebook, "question": question.name, "outcome": result.outcome.value,
             "message": result.message}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
