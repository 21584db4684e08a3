"""Helpers shared by the tests of the exercise checks (``tests/test_checks_exNN.py``)."""

from icdl.checks.core import Outcome
from torch import nn


def stub(*args, **kwargs):
    """An untouched exercise function: the generated stub raises NotImplementedError."""
    raise NotImplementedError("Replace this line with your code.")


class StubModule(nn.Module):
    """An untouched exercise class: its ``__init__`` still raises NotImplementedError."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        raise NotImplementedError("Replace this line with your code.")


def assert_incorrect(result, *fragments):
    """The check said "incorrect", and its message contains every one of ``fragments``."""
    assert result.outcome is Outcome.INCORRECT, result
    for fragment in fragments:
        assert fragment in result.message, f"{fragment!r} not in {result.message!r}"


def assert_wrong(question, answer, *fragments):
    """``question.check(answer)`` says "incorrect" with a message naming ``fragments``."""
    assert_incorrect(question.evaluate(answer), *fragments)


def assert_not_attempted(question, *untouched):
    """``None`` and the untouched stubs (default: :func:`stub`) all count as not attempted."""
    for answer in (None, *(untouched or (stub,))):
        assert question.evaluate(answer).outcome is Outcome.NOT_ATTEMPTED, answer
