"""The small core every exercise check is built on.

A learner writes ``q1.check(answer)``, ``q1.hint()`` and ``q1.solution()``.
A question is a small class: its hints, and a ``verify`` method that raises
:class:`Incorrect` with a message naming what was expected and what the learner
had. The core turns whatever happens into one of four outcomes:

* **correct**;
* **incorrect**: the message says what is wrong;
* **not attempted**: the answer is ``None`` (the stub's placeholder), or the
  learner's code still raises the stub's own ``NotImplementedError`` (any
  other ``NotImplementedError``, such as torch's for a model whose ``forward``
  is misspelt, is a mistake with its own message);
* **uncheckable**: the checker itself failed (a course bug: please report it).

A check never raises on a learner's answer, except in *strict* mode
(``COURSE_STRICT_CHECKS=1``, set in CI for the solution notebooks), where every
outcome but *correct* raises :class:`CheckFailed`.

Every check has a time limit (``COURSE_CHECK_TIMEOUT`` seconds, default 120):
an answer that runs longer is stopped and the message names the slow line.
In *graded* mode (``COURSE_GRADING=1``, set by ``python -m icdl.grade``, or by
an instructor) ``solution()`` is unavailable and hints are counted.

When ``COURSE_CHECK_LOG`` names a file, each outcome is appended to it as one
JSON line: this is how ``python -m icdl.grade`` collects grades.
"""

from __future__ import annotations

import inspect
import json
import math
import operator
import os
import re
import signal
import sysconfig
import threading
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
def describe(value, limit: int = 60) -> str:
    """A short description of any value, for messages: type, and shape if it has one; never long."""
    if value is None:
        return "None"
    shape = getattr(value, "shape", None)
    if shape is not None:
        dtype = getattr(value, "dtype", "")
        try:
            shape = tuple(shape)
        except TypeError:
            shape = "?"
        return f"{type(value).__name__} of shape {shape} {dtype}".rstrip()
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"{type(value).__name__} with about {int(value.bit_length() * 0.30103) + 1:,} digits"
    try:
        text = repr(value)
    except Exception:  # a learner's object whose repr fails
        text = "<no repr>"
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    return f"{type(value).__name__} {text}"


STUB_MESSAGE = "Replace this line with your code."  # what the exercise generator's stubs raise
_LIBRARY_DIRS = tuple({str(Path(p).resolve()) for p in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
                                                        sysconfig.get_paths()["stdlib"])})
_COURSE_DIR = str(Path(__file__).resolve().parents[1])


def _own_frames(tb):
    """The frames of a traceback that are the learner's code, not an installed library's or the course's."""
    frames = traceback.extract_tb(tb)
    return [f for f in frames
            if not str(Path(f.filename).resolve()).startswith((*_LIBRARY_DIRS, _COURSE_DIR))
            and "site-packages" not in f.filename and "dist-packages" not in f.filename]


def learner_error(exc: BaseException, doing: str) -> str:
    """Message for an exception raised by the learner's code, pointing at their own line."""
    own = _own_frames(exc.__traceback__)
    where = ""
    if own:
        f = own[-1]
        code = (f.line or "").strip()
        where = f" (at line {f.lineno}: `{code}`)" if code else f" (at line {f.lineno})"
    text = str(exc)
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{doing} raised {type(exc).__name__}: {text}{where}"


def is_stub(exc: NotImplementedError) -> bool:
    """True for the exercise stub's own ``raise NotImplementedError(...)``, raised from the learner's cell."""
    if str(exc) not in (STUB_MESSAGE, ""):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1] in _own_frames(exc.__traceback__)


def not_implemented_message(exc: NotImplementedError) -> str:
    """What a NotImplementedError that is not the stub's means, in words."""
    text = str(exc)
    missing = re.search(r'Module \[(\w+)\] is missing the required "forward" function', text)
    if missing:
        return (f"Your model `{missing.group(1)}` has no `forward` method of its own, so PyTorch does not know "
                f"what to compute. Check the spelling: `def forward(self, x):`, indented inside the class.")
    return learner_error(exc, "Your code") + (" This NotImplementedError does not come from the exercise's "
                                              "placeholder, so your answer was run and failed.")


def call(fn, *args, doing: str | None = None, may_return_none: bool = False, **kwargs):
    """Call the learner's ``fn``; turn any exception into :class:`Incorrect`.

    The stub's ``NotImplementedError`` propagates, and becomes *not attempted*.
    A ``None`` result is a forgotten ``return`` unless ``may_return_none``.
    """
    if not callable(fn):
        raise Incorrect(f"Expected a function or class, got {describe(fn)}.")
    name = getattr(fn, "__name__", type(fn).__name__)
    try:
        result = fn(*args, **kwargs)
    except NotImplementedError as exc:
        if is_stub(exc):
            raise
        raise Incorrect(not_implemented_message(exc)) from None
    except CheckTimeout:
        raise
    except Exception as exc:  # the learner's bug, reported rather than raised
        raise Incorrect(learner_error(exc, doing or f"Calling `{name}`")) from None
    if result is None and not may_return_none:
        raise Incorrect(f"`{name}` returned None: did you forget the `return`?")
    return result


def expect_type(value, types, what: str = "Your answer"):
    if value is None:
        raise NotAttempted()
    if not isinstance(value, types):
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise Incorrect(f"{what} should be a {names}, but it is {describe(value)}.")
    return value


def plain_number(value, what: str = "Your answer", integer: bool = False):
    """The learner's number as a plain ``int`` or ``float``, or :class:`Incorrect` saying why it is not one.

    Tensors and arrays must hold exactly one value. Subclasses of int and float
    are reduced to the plain value (so an ``__eq__`` that always says True
    changes nothing). ``integer=True``: counts and sizes must be whole numbers
    of an integer type (``operator.index``), so ``14.0`` is not accepted for a size.
    """
    if value is None:
        raise NotAttempted()
    size = getattr(value, "numel", None) or getattr(value, "size", None)
    if hasattr(value, "item") and hasattr(value, "shape"):
        count = size() if callable(size) else size
        if count != 1:
            raise Incorrect(f"{what} should be one number, but it is {describe(value)}.")
        value = value.item()
    if isinstance(value, bool):
        raise Incorrect(f"{what} should be a number, but it is {describe(value)}.")
    if integer:
        if isinstance(value, float) or (type(value).__module__ == "numpy" and "float" in type(value).__name__):
            raise Incorrect(f"{what} should be an int, but it is {describe(value)}. Sizes and counts are whole "
                            f"numbers: use // rather than /, or int(...) where the formula needs a floor.")
        if not hasattr(type(value), "__index__"):
            raise Incorrect(f"{what} should be a number, but it is {describe(value)}.")
        return int.__index__(value) if isinstance(value, int) else int(operator.index(value))
    if isinstance(value, int):
        return int.__index__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if type(value).__module__ == "numpy" and hasattr(value, "dtype"):
        return float(value)
    raise Incorrect(f"{what} should be a number, but it is {describe(value)}.")


def expect_number(value, expected: float, what: str = "Your answer", rel: float = 1e-6, abs_: float = 0.0,
                  integer: bool | None = None):
    """Compare a learner's number with ``expected``; NaN, strings and tensors get their own message.

    ``integer`` (default: whether ``expected`` is an int) requires an int, not a float equal to it.
    """
    if integer is None:
        integer = isinstance(expected, int) and not isinstance(expected, bool)
    if isinstance(value, float) and math.isnan(value):
        raise Incorrect(f"{what} is NaN; expected {expected}.")
    value = plain_number(value, what, integer=integer)
    if isinstance(value, float) and math.isnan(value):
        raise Incorrect(f"{what} is NaN; expected {expected}.")
    try:
        close = math.isclose(value, expected, rel_tol=rel, abs_tol=abs_)
    except OverflowError:  # an int too large for a float
        close = False
    if not close:
        raise Incorrect(f"{what} is {describe(value).split(' ', 1)[1]}, but the expected value is {expected}.")
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
    except NotImplementedError as exc:
        if is_stub(exc):
            raise
        raise Incorrect(not_implemented_message(exc)) from None
    except CheckTimeout:
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
        raise Incorrect(f"{label} is None: did your function forget `return`?")
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


class CheckTimeout(BaseException):
    """Raised inside the learner's code when a check runs past its time limit.

    A BaseException, so a learner's ``except Exception`` cannot swallow it.
    """


def check_time_limit() -> float:
    """Seconds one check may run: ``COURSE_CHECK_TIMEOUT`` (default 120; 0 turns the limit off)."""
    try:
        return float(os.environ.get("COURSE_CHECK_TIMEOUT", "120"))
    except ValueError:
        return 120.0


class _TimeLimit:
    """``with _TimeLimit(s):`` raises :class:`CheckTimeout` in the block after ``s`` seconds.

    Uses a real-time interval timer, so it works only in the main thread of a
    Unix process (where a notebook's cells run); elsewhere there is no limit.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.active = (seconds > 0 and hasattr(signal, "setitimer")
                       and threading.current_thread() is threading.main_thread()
                       # a limit already running (the grader's) stays in charge: never replace it
                       and signal.getitimer(signal.ITIMER_REAL)[0] == 0)

    def _expire(self, signum, frame):
        raise CheckTimeout(self.seconds)

    def __enter__(self):
        if self.active:
            self.previous = signal.signal(signal.SIGALRM, self._expire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False


def timeout_message(exc: CheckTimeout) -> str:
    own = _own_frames(exc.__traceback__)
    where = ""
    if own:
        f = own[-1]
        where = f" It was busy in your code at line {f.lineno}" + (f": `{f.line.strip()}`" if f.line else "") + "."
    return (f"Your answer was still running after {exc.args[0]:g} seconds, so the check stopped it.{where} "
            f"Look for a loop that never ends or work that grows too fast (set COURSE_CHECK_TIMEOUT to allow "
            f"more time).")


def graded_mode() -> bool:
    """True while a notebook is being graded (``COURSE_GRADING=1``): no solutions, hints counted."""
    return os.environ.get("COURSE_GRADING", "").lower() not in ("", "0", "false", "no")


def _parse_hint_number(n, count: int):
    """``hint(2)``, ``hint("2")``, ``hint(2.0)`` all mean hint 2; anything else gets a message, not an error."""
    if n is None:
        return None
    text = str(n).strip().lower().removeprefix("hint").strip().lstrip("#")
    try:
        number = float(text)
    except ValueError:
        return f"hint() takes a hint number from 1 to {count}, such as hint(2); {describe(n)} is not one."
    if number != int(number) or not 1 <= number <= count:
        return f"This question has hints 1 to {count}; there is no hint {text}."
    return int(number)


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
        """Run the check and return a :class:`Result` (no printing, never raises on the learner's answer)."""
        label = f"{self.name.upper()}: {self.title}" if self.name else self.title
        if not answers or all(a is None for a in answers):
            return Result(Outcome.NOT_ATTEMPTED, "Not attempted yet: replace the placeholder with your answer, "
                                                 "run the cell, then run the check again.", label)
        wrong_count = self._answer_count_message(answers)
        if wrong_count:
            return Result(Outcome.INCORRECT, wrong_count, label)
        try:
            with _TimeLimit(check_time_limit()):
                note = self.verify(*answers)
        except CheckTimeout as exc:
            return Result(Outcome.INCORRECT, timeout_message(exc), label)
        except NotImplementedError as exc:
            if not is_stub(exc):
                return Result(Outcome.INCORRECT, not_implemented_message(exc), label)
            return Result(Outcome.NOT_ATTEMPTED, "Not attempted yet: your code still raises NotImplementedError. "
                                                 "Replace that line with your code.", label)
        except NotAttempted as exc:
            return Result(Outcome.NOT_ATTEMPTED, str(exc) or "Not attempted yet.", label)
        except Incorrect as exc:
            return Result(Outcome.INCORRECT, str(exc), label)
        except Exception as exc:  # a bug in the checker, not in the learner's answer
            return Result(Outcome.UNCHECKABLE,
                          f"The checker itself failed ({type(exc).__name__}: {str(exc)[:200]}). This is a "
                          f"course bug; please report it with icdl {__version__}.", label)
        return Result(Outcome.CORRECT, note or "Correct!", label)

    def _answer_count_message(self, answers) -> str | None:
        """A message when ``check`` got more or fewer answers than ``verify`` takes, else None."""
        try:
            inspect.signature(self.verify).bind(*answers)
        except TypeError:
            params = [p for p in inspect.signature(self.verify).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            names = ", ".join(f"`{p.name}`" for p in params)
            return (f"`{self.name or 'this question'}.check(...)` takes {len(params)} answer"
                    f"{'s' if len(params) != 1 else ''} ({names}); you passed {len(answers)}.")
        return None

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

    def hint(self, n=None) -> None:
        """Show the next hint (or hint ``n``, counting from 1: ``hint(2)`` or ``hint("2")``)."""
        if not self.hints:
            print("No hints for this question.")
            return
        number = _parse_hint_number(n, len(self.hints))
        if isinstance(number, str):
            print(number)
            return
        if number is None:
            self._hints_shown = min(self._hints_shown + 1, len(self.hints))
            number = self._hints_shown
        self.hints_used = getattr(self, "hints_used", 0) + 1
        print(f"💡 Hint {number} of {len(self.hints)}: {self.hints[number - 1]}")

    def solution(self) -> None:
        """Show the solution cell(s), read from ``solutions/<notebook>.ipynb`` (not while graded)."""
        self.solutions_used = getattr(self, "solutions_used", 0) + 1
        if graded_mode():
            print("Solutions are not available while this notebook is graded.")
            return
        print(solution_text(self.notebook, self.name))


def solution_text(notebook: str, name: str) -> str:
    from ..env import repo_root

    path = repo_root() / "solutions" / f"{notebook}.ipynb"
    if not path.is_file():
        return (f"This copy of the course has no solutions/{notebook}.ipynb (a student version leaves the "
                f"solutions out): ask your instructor.")
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
    """Name the questions of one exercise notebook and return its table of questions.

    Every checks module ends with ``QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, ...)``:
    the grader reads that table (never the module's other globals).
    """
    for name, q in questions.items():
        if not isinstance(q, Question):
            raise TypeError(f"{name} is {type(q).__name__}, not a Question")
        q.notebook, q.name = notebook, name
    return dict(questions)


def _log(question: Question, result: Result) -> None:
    path = os.environ.get("COURSE_CHECK_LOG")
    if not path:
        return
    entry = {"notebook": question.notebook, "question": question.name, "outcome": result.outcome.value,
             "message": result.message}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
