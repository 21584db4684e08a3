"""Ready-made kinds of question, so that a question is mostly data.

Four kinds cover most of the course (after learntools' ``EqualityCheckProblem``,
``FunctionProblem`` and ``ThoughtExperiment``):

* :class:`FunctionQuestion`: the learner writes a function; it runs on ``cases``
  and is compared with a ``reference``. ``mistakes`` lists the functions a learner
  plausibly writes instead, each with the message that explains the slip.
* :class:`ValueQuestion`: the learner gives one or more numbers (counts, ratios,
  sizes). The expected values are computed by ``expected()``, never typed in, and
  are never printed: the number is the answer.
* :class:`ChoiceQuestion`: one option among several (a prediction, a diagnosis, a
  reading of a plot). Every wrong option has its own explanation.
* :class:`TorchvisionQuestion`: the learner's function copies the weights of a
  torchvision model into the course's model; the copy's direction, keys, shapes,
  mode and outputs are checked on a reference built afresh for every check.

All four inherit the answer rules of :class:`~icdl.checks.core.Question`
(not attempted, a forgotten ``return``, the number of answers, the time limit,
plain numbers). Example::

    class OutputSize(FunctionQuestion):
        title = "the output-size formula"
        function = "conv_output_size"
        cases = [(32, 5), (28, 3, 2, 1)]
        result = "int"
        reference = staticmethod(lambda n, k, s=1, p=0: (n + 2 * p - k) // s + 1)
        mistakes = [("forgot the padding", lambda n, k, s=1, p=0: (n - k) // s + 1)]
"""

from __future__ import annotations

import copy
import math

from .core import Incorrect, NotAttempted, Question, call, describe, expect_close, graded_mode, plain_number
from .shared import call_copy, whole_number


def _args(case) -> tuple[tuple, dict]:
    """A case as ``(args, kwargs)``: a tuple of arguments, or a pair ``(tuple, dict)``."""
    if isinstance(case, tuple) and len(case) == 2 and isinstance(case[0], tuple) and isinstance(case[1], dict):
        return case
    return (case if isinstance(case, tuple) else (case,)), {}


def _short(value) -> str:
    """A value for a message: a plain number or a short repr (``describe`` keeps it short)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return describe(value, 50)
    return f"{value:,}" if isinstance(value, int) else f"{value:.6g}"


def _call_text(function: str, args: tuple, kwargs: dict) -> str:
    parts = [describe(a, 30).split(" ", 1)[-1] if not hasattr(a, "shape") else f"<{describe(a)}>" for a in args]
    parts += [f"{k}={describe(v, 30).split(' ', 1)[-1]}" for k, v in kwargs.items()]
    return f"{function}({', '.join(parts)})"


class FunctionQuestion(Question):
    """A function checked on cases against a reference, with a table of named mistakes.

    Subclasses set:

    * ``function``: the function's name in the notebook, for messages;
    * ``cases``: argument tuples (or ``(args, kwargs)`` pairs), simplest first, so that
      the first failure is the telling one;
    * ``reference``: ``staticmethod`` computing the right result of a case;
    * ``mistakes``: ``[(message, wrong_function), ...]``: when the learner's result
      equals ``wrong_function``'s on a case where the reference differs, the message
      names the slip;
    * ``result``: ``"int"`` (a size or count: an ``int``, no floats), ``"number"``
      (``rel``/``abs_`` tolerance), ``"tensor"`` (shape then values, ``atol``/``rtol``)
      or ``"value"`` (``==``);
    * ``success``: the note shown when every case passes.

    Each case gets its own deep copy of the arguments, so an answer that changes its
    input in place cannot change the reference's result or a later case.
    """

    function = "f"
    cases: list = []
    mistakes: list = []
    result = "value"
    rel, abs_ = 1e-6, 0.0
    atol, rtol = 1e-5, 1e-4
    success = ""
    show_result = True  # messages quote the learner's result (False for long results)

    @staticmethod
    def reference(*args, **kwargs):  # pragma: no cover - every subclass sets its own
        raise NotImplementedError

    def normalise(self, got, label: str):
        """The learner's result in comparable form, or :class:`Incorrect` for the wrong type."""
        if self.result == "int":
            return whole_number(got, label)
        if self.result == "number":
            value = plain_number(got, label)
            if isinstance(value, float) and math.isnan(value):
                raise Incorrect(f"{label} returned NaN.")
            return value
        return got

    def same(self, got, expected) -> bool:
        import torch

        if self.result == "number":
            return math.isclose(got, expected, rel_tol=self.rel, abs_tol=self.abs_)
        if self.result == "tensor":
            return (isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(expected.shape)
                    and torch.allclose(got.detach().double().cpu(), expected.double().cpu(), atol=self.atol,
                                       rtol=self.rtol))
        try:
            return bool(got == expected) and type(got) is type(expected)
        except Exception:  # a learner's object whose == fails or is not a bool
            return False

    def verify(self, fn):
        for case in self.cases:
            args, kwargs = _args(case)
            label = _call_text(self.function, args, kwargs)
            expected = self.reference(*copy.deepcopy(args), **copy.deepcopy(kwargs))
            got = self.normalise(call(fn, *copy.deepcopy(args), doing=f"`{label}`", **copy.deepcopy(kwargs)), label)
            if self.same(got, expected):
                continue
            returned = f"{label} returned {_short(got)}" if self.show_result else label
            for message, wrong in self.mistakes:
                try:
                    slip = self.normalise(wrong(*copy.deepcopy(args), **copy.deepcopy(kwargs)), label)
                except Exception:  # this mistake cannot even be made on this case
                    continue
                if not self.same(slip, expected) and self.same(got, slip):
                    raise Incorrect(f"{returned}: it looks like you {message}.")
            explanation = self.explain(got, expected, args, kwargs)
            if explanation:
                raise Incorrect(f"{returned}: {explanation}")
            if self.result == "tensor":
                expect_close(got, expected, f"The result of {label}", atol=self.atol, rtol=self.rtol)
            shown = "" if graded_mode() else f"; expected {_short(expected)}"
            raise Incorrect(f"{label} returned {_short(got)}{shown}.")
        return self.success or None

    def explain(self, got, expected, args: tuple, kwargs: dict) -> str | None:
        """What is wrong with ``got`` when no listed mistake matches (``None``: the generic message)."""
        return None


class ShapeListQuestion(FunctionQuestion):
    """A function of the input size returning the (C, H, W) after each of ``layers``.

    No listed mistake matches: the message names the first layer that is off, what is
    off (channels, or height and width), what it should be worked out from, and the
    layer's rule from ``rules`` (never the expected shape).
    """

    result = "value"
    show_result = False
    layers: tuple = ()
    rules: dict = {}
    input_text = "the {0}x{0} input"  # formatted with the case's arguments
    channel_word = "channels"

    def normalise(self, got, label):
        n = len(self.layers)
        if not isinstance(got, (list, tuple)) or len(got) != n:
            raise Incorrect(f"{label} should return a list of {n} (C, H, W) tuples, one for each of "
                            f"{', '.join(self.layers)}; it returned {describe(got)}.")
        shapes = []
        for layer, shape in zip(self.layers, got):
            if not isinstance(shape, (list, tuple)) or len(shape) != 3:
                raise Incorrect(f"{label}: the shape for {layer} should be a (C, H, W) tuple of 3 ints, but it is "
                                f"{describe(shape)}.")
            shapes.append(tuple(whole_number(v, f"{label}: a number in the shape for {layer}") for v in shape))
        return shapes

    def same(self, got, expected) -> bool:
        return got == expected

    def explain(self, got, expected, args, kwargs):
        i = next(i for i, (g, w) in enumerate(zip(got, expected)) if g != w)
        layer = self.layers[i]
        what = f"its {self.channel_word} are" if got[i][0] != expected[i][0] else "its height and width are"
        before = self.input_text.format(*args) if i == 0 else f"{self.layers[i - 1]}'s {expected[i - 1]}"
        return (f"the shape after {layer} is {got[i]}, and {what} off. Work it out from {before}: {layer} is "
                f"{self.rules[layer]}.")


class ValueQuestion(Question):
    """One or more numbers, compared with values the check computes.

    Subclasses set ``names`` (the notebook variables, in order; they are also what the
    grader reads), implement ``expected()`` (one value per name, computed, e.g. from a
    real layer's ``parameters()``), and may set:

    * ``integer``: counts and sizes must be ``int`` (``True`` by default);
    * ``rel``: relative tolerance for non-integers (``1e-9`` by default: a ratio is exact);
    * ``mistakes``: ``{name: [(wrong_value_or_function, message), ...]}``, where a
      function receives the expected values and returns the slip's value;
    * ``wrong``: the message when a value is wrong and no listed mistake matches.

    The expected values are never printed.
    """

    names: tuple = ("answer",)
    integer = True
    rel = 1e-9
    mistakes: dict = {}
    wrong = "recount it step by step"
    success = ""

    def expected(self) -> tuple:  # pragma: no cover - every subclass sets its own
        raise NotImplementedError

    @property
    def answers(self) -> tuple:
        return tuple(self.names)

    def _answer_count_message(self, answers) -> str | None:
        if len(answers) == len(self.names):
            return None
        names = ", ".join(f"`{n}`" for n in self.names)
        return (f"`{self.name or 'this question'}.check(...)` takes {len(self.names)} answer"
                f"{'s' if len(self.names) != 1 else ''} ({names}); you passed {len(answers)}.")

    def _equal(self, got, want) -> bool:
        if isinstance(want, int) and self.integer:
            return got == want
        return math.isclose(got, want, rel_tol=self.rel, abs_tol=0.0)

    def verify(self, *answers):
        expected = tuple(self.expected())
        missing = [n for n, a in zip(self.names, answers) if a is None]
        if missing:
            raise NotAttempted(f"Not attempted yet: {', '.join(f'`{n}`' for n in missing)} still None.")
        values = []
        for name, answer, want in zip(self.names, answers, expected):
            integer = self.integer and isinstance(want, int)
            got = whole_number(answer, f"`{name}`") if integer else plain_number(answer, f"`{name}`")
            if isinstance(got, float) and math.isnan(got):
                raise Incorrect(f"`{name}` is NaN.")
            values.append(got)
        for name, got, want in zip(self.names, values, expected):
            if self._equal(got, want):
                continue
            for slip, message in self.mistakes.get(name, []):
                value = slip(*expected) if callable(slip) else slip
                if not self._equal(value, want) and self._equal(got, value):
                    raise Incorrect(f"`{name}` = {_short(got)} is not right: {message}.")
            raise Incorrect(f"`{name}` = {_short(got)} is not right: {self.wrong}.")
        return self.success or None


class ChoiceQuestion(Question):
    """One option among several, named by its letter.

    Subclasses set ``options`` (``{"a": "text", ...}``), ``answer`` (the right letter),
    ``why`` (``{letter: why that option is wrong}``, one for every wrong option: the
    explanation is the lesson) and ``success`` (why the right one is right). The learner
    passes a letter: ``"b"``, ``"B"``, ``"(b)"`` and ``" b "`` are the same answer.
    """

    options: dict = {}
    answer = ""
    why: dict = {}
    success = ""

    def verify(self, choice):
        if not isinstance(choice, str):
            raise Incorrect(f"Your answer should be a letter ({self._letters()}) as a string, like \"a\"; "
                            f"it is {describe(choice)}.")
        letter = choice.strip().strip("().").strip().lower()
        if letter not in self.options:
            texts = {t.strip().lower(): k for k, t in self.options.items()}
            letter = texts.get(choice.strip().lower(), letter)
        if letter not in self.options:
            raise Incorrect(f"{describe(choice, 40).split(' ', 1)[1]} is not one of the options: answer with one "
                            f"letter, {self._letters()}.")
        if letter != self.answer:
            raise Incorrect(f"Not ({letter}): {self.why[letter]}")
        return self.success or None

    def _letters(self) -> str:
        letters = [f'"{k}"' for k in self.options]
        return ", ".join(letters[:-1]) + f" or {letters[-1]}"

    def options_text(self) -> str:
        """The options as the notebook prints them."""
        return "\n".join(f"  ({k}) {t}" for k, t in self.options.items())


class TorchvisionQuestion(Question):
    """The learner's ``fn(tv_model)`` returns the course's model carrying torchvision's weights.

    Subclasses set ``function`` (its name, for messages), ``course_class`` (a staticmethod
    returning the course's class), ``input_shape``, ``build_text`` (how to build the right
    course model, for messages) and implement ``build_reference()`` (a seeded torchvision
    model, with random batch-norm statistics where it has batch norm). The reference is
    built afresh for every check and must be unchanged afterwards.
    """

    function = "transfer"
    input_shape: tuple = (2, 3, 64, 64)
    build_text = ""
    require_eval = True
    success = "Correct! Same names, same shapes, same outputs."

    def build_reference(self):  # pragma: no cover - every subclass sets its own
        raise NotImplementedError

    @staticmethod
    def course_class():  # pragma: no cover - every subclass sets its own
        raise NotImplementedError

    def verify(self, fn):
        import torch

        from .core import expect_same_model

        model, reference = call_copy(fn, self.build_reference, doing=f"{self.function}(tv_model)")
        x = torch.randn(*self.input_shape, generator=torch.Generator().manual_seed(1))
        expect_same_model(model, reference, self.course_class(), x, label=f"The model from `{self.function}`",
                          build=self.build_text, require_eval=self.require_eval)
        return self.success
